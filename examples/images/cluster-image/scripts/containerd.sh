#!/usr/bin/env bash
# Installs containerd from ../cri/containerd.tar.gz. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v containerd >/dev/null 2>&1; then
  tar -xzf cri/containerd.tar.gz -C /
fi
mkdir -p /etc/containerd
containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > /etc/containerd/config.toml
systemctl daemon-reload
systemctl enable --now containerd
