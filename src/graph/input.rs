//! What graph compilation needs to know, already resolved: hosts with merged settings,
//! registry, kubeadm configuration, the launch plan of every app, plugins. Built from a
//! Clusterfile and image metadata by [`super::resolve`]; kept as plain data so the graph
//! rules can be read (and tested) on their own.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInput {
    pub name: String,
    /// `<dataRoot>/<cluster>/rootfs` on every host.
    pub rootfs_path: String,
    /// Hosts in Clusterfile order; the first master is master0.
    pub hosts: Vec<HostInput>,
    /// The cluster image: name and manifest digest.
    pub image: String,
    pub image_digest: String,
    pub kube_version: String,
    pub runtime_type: String,
    pub runtime_version: String,
    pub registry: RegistryInput,
    /// `/etc/hosts` lines every host gets (hostAliases), `IP NAME...`.
    pub host_aliases: Vec<String>,
    /// The kubeadm configuration master0 is initialised with, exactly as applied: the
    /// image's `etc/kubeadm.yml` < the Clusterfile's kubeadm documents < forced values.
    pub kubeadm_config: String,
    pub cert_sans: Vec<String>,
    pub svc_cidr: String,
    pub pod_cidr: String,
    /// Virtual IP workers reach the masters through when there are several.
    pub vip: String,
    /// Digest of everything written into the rootfs before it is copied (Config
    /// documents, Application files).
    pub rootfs_inputs_digest: String,
    /// The same inputs as texts, secrets masked, by source (`Config NAME`, `Application
    /// config APP file PATH`): what a plan shows when they change (`graph::explain`).
    pub rootfs_inputs: BTreeMap<String, String>,
    pub launch: Launch,
    pub plugins: Vec<PluginInput>,
    pub image_policy: Option<ImagePolicyInput>,
}

impl ClusterInput {
    /// The masters' IPs in Clusterfile order: the first is master0.
    pub fn master_ips(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.is_master())
            .map(|h| h.ip.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInput {
    pub ip: String,
    pub roles: Vec<String>,
    pub ssh_user: String,
    pub ssh_port: u16,
    pub local: bool,
    /// The sandbox directory of a local host: absolute or `~/...` (expanded at apply) for a
    /// loaded Clusterfile; see [`crate::clusterfile::anchor`].
    pub sandbox: Option<String>,
    /// Digests of the secrets that reach this host's transport (never the secrets).
    pub password_digest: Option<String>,
    /// The private key path, anchored like `sandbox` (`~` unexpanded).
    pub key_file: Option<String>,
    pub key_passphrase_digest: Option<String>,
    /// The merged env for this host (image < cluster < host, plus derived keys), digested.
    pub env_digest: String,
    /// The same env as a short digest per key, to name what changed (`graph::explain`).
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
}

impl HostInput {
    pub fn is_master(&self) -> bool {
        self.roles.iter().any(|r| r == "master")
    }

    pub fn is_worker(&self) -> bool {
        self.roles.iter().any(|r| r == "node")
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryInput {
    /// Registries run on master0, or on every master with `ha`.
    Local {
        domain: String,
        port: u16,
        ha: bool,
        username: Option<String>,
        password_digest: Option<String>,
        sans: Vec<String>,
    },
    External {
        domain: String,
        port: Option<u16>,
        username: Option<String>,
        password_digest: Option<String>,
    },
}

/// What runs on master0 once the cluster is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Raw commands (Cluster `cmd`, Application `cmds`, or the image's CMDS): only they run.
    Raw(Vec<String>),
    /// Apps, in launch order.
    Apps(Vec<AppInput>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInput {
    pub name: String,
    /// The image the app comes from, `NAME@sha256:...`.
    pub image: String,
    /// `helm`, `kube`, `shell` or `custom`: decides how it is uninstalled.
    pub kind: String,
    /// The resolved launch commands, run in order.
    pub cmds: Vec<String>,
    /// File path (relative to the app root) → content digest, after Application files.
    pub files: BTreeMap<String, String>,
    pub env_digest: String,
    /// What was written over its files, by path: the sources' texts, secrets masked.
    pub overrides: BTreeMap<String, String>,
    /// Its env as a short digest per key (`graph::explain`).
    pub env: BTreeMap<String, String>,
    /// What its files hold once written, by path, secrets masked (`explain::app_texts`);
    /// empty when the image's tree was not read.
    pub texts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInput {
    pub name: String,
    pub phases: Vec<String>,
    /// Roles the plugin runs on (per-host phases); empty = every host.
    pub scope: Vec<String>,
    pub data: String,
}

impl PluginInput {
    /// Whether a per-host phase of this plugin runs on `host`.
    pub fn applies_to(&self, host: &HostInput) -> bool {
        self.scope.is_empty() || self.scope.iter().any(|r| host.has_role(r))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicyInput {
    /// The app that installs Kyverno: the policy follows it.
    pub app: String,
    pub registry_url: String,
    pub exclude: Vec<String>,
    pub policy_yaml: String,
}
