#!/usr/bin/env bash
# Installs Calico from the manifest next to this script, pointing at the local registry.
set -euo pipefail
cd "$(dirname "$0")"
sed "s|docker.io/calico/|${RegistryURL:-sea.hub:5000}/calico/|g" calico.yaml.in | kubectl apply -f -
