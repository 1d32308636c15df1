#!/usr/bin/env bash
# Quickstart: builds sealer and the example images, then plans and applies the example
# cluster (examples/quickstart/Clusterfile) onto this machine through the `local` transport,
# and shows what the state recorded. Everything it writes stays under ./.quickstart: the image
# store and state (SEALER_HOME) and the cluster's sandbox, which receives every file the
# cluster's steps write to the system (an overlay in a private mount namespace, which needs
# root: when you are not root, every sealer command runs through sudo, so that all of
# ./.quickstart belongs to one user). Delete ./.quickstart to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo unshare openssl; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "quickstart: \`$tool\` is missing (cargo: https://rustup.rs; unshare: util-linux; openssl: apt-get install openssl)" >&2
    exit 1
  }
done

cargo build --release --locked
sealer="$PWD/target/release/sealer"
export SEALER_HOME="$PWD/.quickstart/home"
mkdir -p "$SEALER_HOME"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo --preserve-env=SEALER_HOME)

step() { printf '\n== %s\n' "$*"; }

step "build the images (Kubefile -> OCI image in $SEALER_HOME)"
# The names the examples' Kubefiles and Clusterfiles use (examples/README.md).
"${as_root[@]}" "$sealer" build -t example/demo-cluster:v1.22.15 examples/images/demo-cluster
"${as_root[@]}" "$sealer" build -t my-kubernetes:v1.22.15 examples/images/cluster-image
"${as_root[@]}" "$sealer" build --type app-installer -t nginx-app:v1 examples/images/kube-app
"${as_root[@]}" "$sealer" build --type app-installer -t redis-app:v1 examples/images/helm-app
"${as_root[@]}" "$sealer" build --type app-installer -t backup-app:v1 examples/images/shell-app
"${as_root[@]}" "$sealer" images

step "plan the example cluster (examples/quickstart/Clusterfile)"
"${as_root[@]}" "$sealer" plan -f examples/quickstart/Clusterfile --out .quickstart/plan.bin

step "apply exactly that plan, onto this machine, confined to .quickstart/sandbox"
"${as_root[@]}" "$sealer" apply .quickstart/plan.bin

step "what the state recorded"
"${as_root[@]}" "$sealer" state list --cluster quickstart

cat <<'EOF'

Done. Try next (with SEALER_HOME=./.quickstart/home; through sudo -E unless you are root):
  sealer plan -f examples/quickstart/Clusterfile        # no changes: the state matches
  sealer state show kubernetes.init --cluster quickstart
  find .quickstart/sandbox/upper -type f                 # every file the cluster wrote
  sealer destroy -f examples/quickstart/Clusterfile      # take it down again
EOF
