#!/usr/bin/env bash
# Removes the local registry container.
set -euo pipefail
nerdctl -n k8s.io rm -f sealer-registry 2>/dev/null || true
