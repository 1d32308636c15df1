#!/usr/bin/env bash
# Prepares a host for kubeadm: binaries, kernel settings, kubelet service.
set -euo pipefail
cd "$(dirname "$0")/.."
install -m 0755 bin/kubeadm bin/kubectl bin/kubelet /usr/bin/
for b in helm crictl seautil; do [ -f "bin/$b" ] && install -m 0755 "bin/$b" /usr/bin/; done
modprobe br_netfilter overlay 2>/dev/null || true
cat > /etc/sysctl.d/k8s.conf <<'SYSCTL'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
SYSCTL
sysctl --system >/dev/null
swapoff -a
# BEGIN kubelet unit: the same in every example image (tests/it/examples.rs checks).
# kubelet.service and kubeadm's drop-in 10-kubeadm.conf, as the Kubernetes packages install
# them. kubeadm writes the kubelet's runtime flags to /var/lib/kubelet/kubeadm-flags.env
# (with containerd: --container-runtime=remote --container-runtime-endpoint=...), and only
# this drop-in passes them on: a kubelet <= 1.23 started without them runs dockershim, and
# `kubeadm init` times out waiting for it.
mkdir -p /etc/systemd/system/kubelet.service.d
cat >/etc/systemd/system/kubelet.service <<'UNIT'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/home/
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
cat >/etc/systemd/system/kubelet.service.d/10-kubeadm.conf <<'UNIT'
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# The user's overrides (KUBELET_EXTRA_ARGS): /etc/default/kubelet on Debian, /etc/sysconfig/kubelet on RPM distributions.
EnvironmentFile=-/etc/default/kubelet
EnvironmentFile=-/etc/sysconfig/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
UNIT
# END kubelet unit
systemctl daemon-reload
systemctl enable kubelet
