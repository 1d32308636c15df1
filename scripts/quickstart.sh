#!/usr/bin/env bash
# Quickstart: builds sealer and the example images into a sandbox, then shows them.
# Everything it writes stays under ./.quickstart (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
sealer="$PWD/target/release/sealer"
export SEALER_HOME="$PWD/.quickstart/home"
mkdir -p "$SEALER_HOME"

"$sealer" build -t example/cluster-image:v1.22.15 examples/images/cluster-image
for app in kube-app helm-app shell-app; do
  "$sealer" build --type app-installer -t "example/$app:v1" "examples/images/$app"
done
"$sealer" images
"$sealer" inspect example/shell-app:v1
