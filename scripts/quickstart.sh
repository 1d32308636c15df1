#!/usr/bin/env bash
# Quickstart: builds the example images (and sealer, unless one is given: SEALER_BIN, else a
# `sealer` on PATH, else `cargo build --release`), then plans and applies the example
# cluster (examples/quickstart/Clusterfile) onto this machine through the `local` transport,
# and shows what the state recorded. Everything it writes stays under ./.quickstart: the image
# store and state (SEALER_HOME) and the cluster's sandbox, which receives every file the
# cluster's steps write to the system (an overlay in a private mount namespace, which needs
# root: when you are not root, every sealer command runs through sudo, so that all of
# ./.quickstart belongs to one user). Delete ./.quickstart to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "quickstart: \`$1\` is missing ($2)" >&2
    exit 1
  }
}
need unshare "util-linux"
need openssl "apt-get install openssl"

# Which sealer: SEALER_BIN when set, else one on PATH, else this checkout's, built now.
if [ -n "${SEALER_BIN:-}" ]; then
  [ -x "$SEALER_BIN" ] || { echo "quickstart: SEALER_BIN=$SEALER_BIN is not an executable file" >&2; exit 1; }
  sealer=$(cd "$(dirname "$SEALER_BIN")" && pwd)/$(basename "$SEALER_BIN")
  echo "quickstart: using SEALER_BIN ($sealer)" >&2
elif sealer=$(command -v sealer); then
  echo "quickstart: using the sealer on PATH ($sealer; set SEALER_BIN to use another)" >&2
else
  need cargo "https://rustup.rs"
  # Measured: 5 minutes for a first release build on 2 cores (CI); seconds once built.
  echo "quickstart: building sealer (a first build takes about 5 minutes on 2 cores; set SEALER_BIN, or put a sealer on PATH, to skip)" >&2
  cargo build --release --locked
  sealer="$PWD/target/release/sealer"
fi
export SEALER_HOME="$PWD/.quickstart/home"
mkdir -p "$SEALER_HOME"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo --preserve-env=SEALER_HOME)

step() { printf '\n== %s\n' "$*"; }

step "build the images (Kubefile -> OCI image in $SEALER_HOME)"
# The names the examples' Kubefiles and Clusterfiles use (examples/README.md).
"${as_root[@]}" "$sealer" build -t example/demo-cluster:v1.22.15 examples/images/demo-cluster
"${as_root[@]}" "$sealer" build -t my-kubernetes:v1.22.15 examples/images/cluster-image
"${as_root[@]}" "$sealer" build --build-arg KUBE_VERSION=v1.26.15 -t my-kubernetes:v1.26.15 examples/images/cluster-image
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

Done. Next: the README's Tour, or (with SEALER_HOME=./.quickstart/home; through sudo -E unless you are root):
  sealer plan -f examples/quickstart/Clusterfile        # no changes: the state matches
  sealer state show kubernetes.init --cluster quickstart
  find .quickstart/sandbox/upper -type f                 # every file the cluster wrote
  sealer destroy -f examples/quickstart/Clusterfile      # take it down again
EOF
