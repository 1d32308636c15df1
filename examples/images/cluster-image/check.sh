#!/usr/bin/env bash
# Checks that a cluster image holds the real binaries and files a deploy needs (README.md,
# "What to add"), before you spend a deploy finding out.
#
#   check.sh [DIR]            a build context (default: this directory), before `sealer build`
#   check.sh --archive FILE   an image saved with `sealer save -o FILE.tar IMAGE`
#
# Exit 0 when every required file is there and is a real program (an ELF binary, not a
# script: the demo image's stand-ins are scripts); 1 otherwise, with one line per problem.
# Optional files (seautil for several masters, helm for helm apps, crictl) are reported as
# notes.
set -euo pipefail

usage() { echo "usage: $0 [DIR] | $0 --archive FILE.tar" >&2; exit 2; }

root=""
cleanup=""
trap '[ -z "$cleanup" ] || rm -rf "$cleanup"' EXIT
case ${1:-} in
  --archive)
    [ $# -eq 2 ] || usage
    [ -f "$2" ] || { echo "check.sh: no archive $2" >&2; exit 2; }
    cleanup=$(mktemp -d)
    root=$cleanup/rootfs
    mkdir -p "$cleanup/archive" "$root"
    tar -xf "$2" -C "$cleanup/archive"
    # Every layer, in no particular order: presence is what counts here. Blobs that are not
    # layers (manifests, the config) are not tar archives and are skipped.
    for blob in "$cleanup"/archive/blobs/sha256/*; do
      tar -xzf "$blob" -C "$root" 2>/dev/null || tar -xf "$blob" -C "$root" 2>/dev/null || true
    done
    ;;
  -h | --help) usage ;;
  "") root=$(cd "$(dirname "$0")" && pwd) ;;
  *)
    if [ $# -ne 1 ] || [ ! -d "$1" ]; then usage; fi
    root=$1
    ;;
esac

problems=0
problem() { echo "missing: $*"; problems=$((problems + 1)); }
note() { echo "note: $*"; }

# An ELF file starts with 0x7f 'E' 'L' 'F'.
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

program() { # PATH WHAT REQUIRED
  local path=$root/$1
  if [ ! -f "$path" ]; then
    if [ "$3" = required ]; then problem "$1 ($2)"; else note "no $1 ($2)"; fi
  elif ! is_elf "$path"; then
    if [ "$3" = required ]; then
      problem "$1 is not a real program: it is not an ELF binary (a script, like the demo image's stand-ins?)"
    else
      note "$1 is not a real program (a stand-in?)"
    fi
  fi
}

program bin/kubeadm "kubeadm of the image's Kubernetes version" required
program bin/kubelet "kubelet of the image's Kubernetes version" required
program bin/kubectl "kubectl of the image's Kubernetes version" required
program bin/seautil "needed with several masters: workers and hosts of HA registries run it" optional
program bin/helm "needed by helm apps" optional
program bin/crictl "debugging on hosts" optional

[ -f "$root/cri/containerd.tar.gz" ] ||
  problem "cri/containerd.tar.gz (containerd, runc and the CNI plugins, laid out from /: cri/README.md)"
[ -f "$root/images/registry.tar" ] ||
  problem "images/registry.tar (the registry's own image: README.md, \"Before a real deploy\")"
repositories=$root/registry/docker/registry/v2/repositories
if [ ! -d "$repositories" ]; then
  problem "registry/ with the cluster's container images (README.md, \"Before a real deploy\")"
elif ! find "$repositories" -type d -name pause -print -quit | grep -q .; then
  problem "the pause image in registry/ (containerd's sandbox_image: README.md, \"Before a real deploy\")"
fi

if [ "$problems" -gt 0 ]; then
  echo "$problems problem(s): this image cannot deploy a real cluster" >&2
  exit 1
fi
echo "ok: the real binaries and files a deploy needs are there"
