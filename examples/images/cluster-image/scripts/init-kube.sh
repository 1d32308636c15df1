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
cat > /etc/systemd/system/kubelet.service <<'UNIT'
[Unit]
Description=kubelet
After=containerd.service
[Service]
ExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --container-runtime-endpoint=unix:///run/containerd/containerd.sock
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable kubelet
