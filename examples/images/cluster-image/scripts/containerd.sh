#!/usr/bin/env bash
# Installs containerd from ../cri/containerd.tar.gz. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v containerd >/dev/null 2>&1; then
  tar -xzf cri/containerd.tar.gz -C /
fi
# BEGIN containerd config: the same in every example image (tests/it/examples.rs checks).
# containerd 1.6's defaults read no registry config (`config_path = ""`), so the cluster
# registry's hosts.toml and CA under /etc/containerd/certs.d/ (written by sealer) would be
# ignored, and they name the public pause image, which an air-gapped host cannot pull.
# Point both at the cluster's registry; the pause image is the one kubeadm lists for this
# Kubernetes version, so the registry holds it already (README.md, "Before a real deploy").
registry=${RegistryURL:-sea.hub:5000}
kube_version=$(bin/kubeadm version -o short)
pause=$(bin/kubeadm config images list --kubernetes-version "$kube_version" --image-repository "$registry" |
  awk '/\/pause:/ && !found { print; found = 1 }')
[ -n "$pause" ] || { echo "containerd.sh: kubeadm $kube_version lists no pause image" >&2; exit 1; }
mkdir -p /etc/containerd/certs.d
containerd config default |
  sed -e 's/SystemdCgroup = false/SystemdCgroup = true/' \
    -e 's|^\( *\)config_path = ""$|\1config_path = "/etc/containerd/certs.d"|' \
    -e "s|^\\( *\\)sandbox_image = .*|\\1sandbox_image = \"$pause\"|" >/etc/containerd/config.toml.new
for want in 'SystemdCgroup = true' 'config_path = "/etc/containerd/certs.d"' "sandbox_image = \"$pause\""; do
  grep -qF "$want" /etc/containerd/config.toml.new ||
    { echo "containerd.sh: cannot set '$want' in the default config of $(containerd --version)" >&2; exit 1; }
done
mv -f /etc/containerd/config.toml.new /etc/containerd/config.toml
# END containerd config
systemctl daemon-reload
systemctl enable containerd
# A running containerd reads its config only when it starts.
systemctl restart containerd
