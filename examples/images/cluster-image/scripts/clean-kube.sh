#!/usr/bin/env bash
# Undoes init-kube.sh after `kubeadm reset -f`.
set -euo pipefail
systemctl disable --now kubelet 2>/dev/null || true
rm -f /etc/systemd/system/kubelet.service /etc/sysctl.d/k8s.conf
rm -rf /etc/systemd/system/kubelet.service.d
rm -f /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd
