#!/usr/bin/env bash
# Every benchmark in one invocation, each printing its table with ratios against baselines
# run in the same invocation on the same machine (docs/benchmarks.md):
#   plan_scale: `sealer plan` at 500, 1,000 and 5,000 hosts with 100 apps (wall, peak RSS);
#   compare:    fan-out (8, 32, 128 hosts) vs an OpenSSH ControlMaster loop and
#               ansible-playbook, rootfs distribution vs parallel scp, no-op plan/apply of
#               1,000 hosts;
#   distribution: a 50 MB rootfs to 8, 32 and 64 hosts, tree vs direct, the operator behind
#               a tc-shaped 100 Mbit/s uplink, hosts on 1 Gbit/s links.
# Needs root (the SSH test bed uses network, mount and PID namespaces). Installs the
# baselines' Debian packages when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

packages=()
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
[ -x /usr/bin/ssh ] && [ -x /usr/bin/scp ] || packages+=(openssh-client)
[ -x /usr/sbin/tc ] || packages+=(iproute2)
command -v ansible-playbook >/dev/null 2>&1 || packages+=(ansible-core)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

cargo build --release --locked
cargo bench --locked --bench plan_scale
cargo bench --locked --bench compare
cargo bench --locked --bench distribution
