#!/usr/bin/env bash
# init-registry.sh PORT DATADIR DOMAIN: runs the local registry container on this host.
# With basic auth set in the Clusterfile, sealer writes the htpasswd file beforehand and
# exports its path as RegistryHtpasswd.
set -euo pipefail
port=${1:?port}; data=${2:?data dir}; domain=${3:?domain}
cd "$(dirname "$0")/.."
auth=()
if [ -n "${RegistryHtpasswd:-}" ]; then
  auth=(-e REGISTRY_AUTH=htpasswd -e REGISTRY_AUTH_HTPASSWD_REALM="sealer registry"
    -e REGISTRY_AUTH_HTPASSWD_PATH="/etc/docker/registry/$(basename "$RegistryHtpasswd")")
fi
ctr -n k8s.io images import images/registry.tar
nerdctl -n k8s.io rm -f sealer-registry 2>/dev/null || true
nerdctl -n k8s.io run -d --restart=always --name sealer-registry \
  -p "${port}:5000" -v "${data}:/var/lib/registry" \
  -v /etc/sealer/registry:/etc/docker/registry:ro \
  -e REGISTRY_HTTP_TLS_CERTIFICATE="/etc/docker/registry/${domain}.crt" \
  -e REGISTRY_HTTP_TLS_KEY="/etc/docker/registry/${domain}.key" \
  "${auth[@]}" registry:2.8.2
