#!/usr/bin/env bash
# Removes what containerd.sh installed.
set -euo pipefail
systemctl disable --now containerd 2>/dev/null || true
rm -rf /etc/containerd /usr/local/bin/containerd* /usr/local/bin/ctr /usr/local/sbin/runc
