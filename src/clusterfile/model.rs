//! The Clusterfile as written: one typed struct per kind, user values wrapped in
//! [`Spanned`] so that later checks can point at them. Defaults are not filled in here;
//! the resolved view (`hosts()`, `registry()`, env helpers) applies them.

use super::env::EnvValue;
use super::secret::Secret;
use super::span::{Source, Span, Spanned};
use super::taint::Taint;
use crate::diag::Location;
use crate::image::reference::Reference;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A loaded and validated Clusterfile.
#[derive(Debug, Clone)]
pub struct Clusterfile {
    /// The path as given, for messages.
    pub path: PathBuf,
    /// The file's absolute path when it was [`load`](super::load)ed (`None` for text parsed
    /// without a file): relative `sandbox` and `pk` values are anchored at its directory.
    pub origin: Option<PathBuf>,
    pub cluster: Cluster,
    pub application: Option<Application>,
    pub configs: Vec<Config>,
    pub plugins: Vec<Plugin>,
    /// Kubeadm documents in file order, passed through to the kubeadm config.
    pub kubeadm: Vec<KubeadmDocument>,
    pub(crate) source: Source,
}

impl Clusterfile {
    /// Where `span` is in this file, quoting its line: for located errors of other modules.
    pub fn location(&self, span: Span) -> Location {
        self.source.location(span)
    }

    /// The absolute directory of the file it was loaded from: see [`Clusterfile::origin`].
    pub fn dir(&self) -> Option<&Path> {
        self.origin.as_deref().and_then(Path::parent)
    }
}

/// `kind: Cluster`.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The document's `kind` value.
    pub span: Span,
    pub api_version: Spanned<String>,
    pub name: Spanned<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub image: Spanned<Reference>,
    pub env: Vec<EnvVar>,
    /// `spec.cmd`: `None` when absent.
    pub cmd: Option<Vec<Spanned<String>>>,
    /// `spec.appNames`: `None` when absent; `[]` or `[""]` launch nothing.
    pub app_names: Option<Spanned<Vec<Spanned<String>>>>,
    pub ssh: Ssh,
    pub hosts: Vec<HostGroup>,
    /// The `hosts` key.
    pub hosts_span: Span,
    /// `spec.containerRuntime.type`.
    pub container_runtime: Option<Spanned<String>>,
    pub host_aliases: Vec<HostAlias>,
    pub registry: Registry,
    pub data_root: Option<Spanned<String>>,
}

/// One `K=V` env item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: Spanned<String>,
    pub value: EnvValue,
}

/// How a host is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Ssh,
    /// Commands run on the operator machine itself (our extension).
    Local,
}

impl Transport {
    pub const NAMES: &[&str] = &["ssh", "local"];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ssh => "ssh",
            Transport::Local => "local",
        }
    }
}

/// `ssh` as written, cluster-wide or for a host group; absent fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssh {
    pub user: Option<Spanned<String>>,
    pub passwd: Option<Spanned<Secret>>,
    /// A private key path on the operator machine, `~` not yet expanded.
    pub pk: Option<Spanned<String>>,
    pub pk_passwd: Option<Spanned<Secret>>,
    pub port: Option<Spanned<u16>>,
    pub transport: Option<Spanned<Transport>>,
    /// For `transport: local`: a directory that receives every write the host's commands
    /// make to the system (our extension; see docs/clusterfile.md).
    pub sandbox: Option<Spanned<String>>,
}

/// One element of `spec.hosts`.
#[derive(Debug, Clone)]
pub struct HostGroup {
    pub span: Span,
    pub ips: Vec<Spanned<IpAddr>>,
    pub roles: Vec<Spanned<String>>,
    pub ssh: Ssh,
    pub env: Vec<EnvVar>,
    pub labels: Vec<Label>,
    pub taints: Vec<Spanned<Taint>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: Spanned<String>,
    pub value: Spanned<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    pub ip: Spanned<IpAddr>,
    pub hostnames: Vec<Spanned<String>>,
}

/// `spec.registry`.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub local: Option<LocalRegistry>,
    pub external: Option<ExternalRegistry>,
    pub image_policy: Option<Spanned<ImagePolicy>>,
    pub image_policy_app: Option<Spanned<String>>,
    pub image_policy_exclude: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Default)]
pub struct LocalRegistry {
    pub span: Span,
    pub domain: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub ha: Option<Spanned<bool>>,
    pub insecure: Option<Spanned<bool>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<Secret>>,
    /// `cert.subjectAltName.dnsNames`.
    pub cert_dns_names: Vec<Spanned<String>>,
    /// `cert.subjectAltName.ips`.
    pub cert_ips: Vec<Spanned<IpAddr>>,
}

#[derive(Debug, Clone)]
pub struct ExternalRegistry {
    pub span: Span,
    pub domain: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<Secret>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImagePolicy {
    Kyverno,
}

impl ImagePolicy {
    pub const NAMES: &[&str] = &["kyverno"];

    pub fn as_str(self) -> &'static str {
        match self {
            ImagePolicy::Kyverno => "kyverno",
        }
    }
}

/// `kind: Application`.
#[derive(Debug, Clone)]
pub struct Application {
    pub span: Span,
    pub api_version: Spanned<String>,
    pub name: Spanned<String>,
    /// App images installed after the cluster image's apps, in this order (our extension).
    pub images: Vec<Spanned<Reference>>,
    pub cmds: Option<Vec<Spanned<String>>>,
    pub launch_apps: Option<Vec<Spanned<String>>>,
    pub configs: Vec<AppConfig>,
}

/// One element of Application `spec.configs`.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub span: Span,
    pub name: Spanned<String>,
    /// `launch.cmds`: each element a separate command.
    pub launch_cmds: Option<Vec<Spanned<String>>>,
    pub files: Vec<AppFile>,
}

#[derive(Debug, Clone)]
pub struct AppFile {
    pub span: Span,
    /// Relative to the app's directory.
    pub path: Spanned<String>,
    pub strategy: Spanned<Strategy>,
    pub data: Spanned<String>,
}

/// How a file's `data` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Deep-merge the YAML `data` into every document of the file.
    Merge,
    /// Replace the file with `data` (the default).
    Overwrite,
}

impl Strategy {
    pub const NAMES: &[&str] = &["merge", "overwrite"];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Overwrite => "overwrite",
        }
    }
}

/// `kind: Config`.
#[derive(Debug, Clone)]
pub struct Config {
    pub span: Span,
    pub api_version: Spanned<String>,
    pub name: Spanned<String>,
    /// Relative to the rootfs, or to `application/apps/APP/` when `app_name` is set.
    pub path: Spanned<String>,
    pub app_name: Option<Spanned<String>>,
    pub strategy: Spanned<Strategy>,
    /// Applied left to right.
    pub process: Vec<Spanned<ProcessStep>>,
    pub data: Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessStep {
    Value,
    ToJson,
    ToBase64,
    ToSecret,
}

impl ProcessStep {
    pub const NAMES: &[&str] = &["value", "toJson", "toBase64", "toSecret"];

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessStep::Value => "value",
            ProcessStep::ToJson => "toJson",
            ProcessStep::ToBase64 => "toBase64",
            ProcessStep::ToSecret => "toSecret",
        }
    }
}

/// `kind: Plugin`.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub span: Span,
    pub api_version: Spanned<String>,
    pub name: Spanned<String>,
    pub plugin_type: Spanned<PluginType>,
    /// `action`, split at `|`.
    pub actions: Vec<Spanned<Phase>>,
    /// `scope`, split at `|`; empty means every host.
    pub scope: Vec<Spanned<String>>,
    pub data: Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginType {
    Shell,
}

impl PluginType {
    pub const NAMES: &[&str] = &["SHELL"];
}

/// When a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    PreInstall,
    PostInstall,
    PreUninstall,
    PostUninstall,
    PreScaleUp,
    PostScaleUp,
    PreInitHost,
    PostInitHost,
    PreCleanHost,
    PostCleanHost,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::PreInstall,
        Phase::PostInstall,
        Phase::PreUninstall,
        Phase::PostUninstall,
        Phase::PreScaleUp,
        Phase::PostScaleUp,
        Phase::PreInitHost,
        Phase::PostInitHost,
        Phase::PreCleanHost,
        Phase::PostCleanHost,
    ];

    pub const NAMES: &[&str] = &[
        "pre-install",
        "post-install",
        "pre-uninstall",
        "post-uninstall",
        "pre-scaleup",
        "post-scaleup",
        "pre-init-host",
        "post-init-host",
        "pre-clean-host",
        "post-clean-host",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreInstall => "pre-install",
            Phase::PostInstall => "post-install",
            Phase::PreUninstall => "pre-uninstall",
            Phase::PostUninstall => "post-uninstall",
            Phase::PreScaleUp => "pre-scaleup",
            Phase::PostScaleUp => "post-scaleup",
            Phase::PreInitHost => "pre-init-host",
            Phase::PostInitHost => "post-init-host",
            Phase::PreCleanHost => "pre-clean-host",
            Phase::PostCleanHost => "post-clean-host",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Cluster phases run once on master0; host phases run on each host in scope.
    pub fn runs_on_master0(self) -> bool {
        !matches!(
            self,
            Phase::PreInitHost | Phase::PostInitHost | Phase::PreCleanHost | Phase::PostCleanHost
        )
    }
}

/// The kinds of kubeadm documents passed through to the kubeadm config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubeadmKind {
    InitConfiguration,
    JoinConfiguration,
    ClusterConfiguration,
    KubeletConfiguration,
    KubeProxyConfiguration,
}

impl KubeadmKind {
    pub const ALL: [KubeadmKind; 5] = [
        KubeadmKind::InitConfiguration,
        KubeadmKind::JoinConfiguration,
        KubeadmKind::ClusterConfiguration,
        KubeadmKind::KubeletConfiguration,
        KubeadmKind::KubeProxyConfiguration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KubeadmKind::InitConfiguration => "InitConfiguration",
            KubeadmKind::JoinConfiguration => "JoinConfiguration",
            KubeadmKind::ClusterConfiguration => "ClusterConfiguration",
            KubeadmKind::KubeletConfiguration => "KubeletConfiguration",
            KubeadmKind::KubeProxyConfiguration => "KubeProxyConfiguration",
        }
    }

    pub fn parse(text: &str) -> Option<KubeadmKind> {
        KubeadmKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The apiVersions accepted for this kind.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            KubeadmKind::InitConfiguration
            | KubeadmKind::JoinConfiguration
            | KubeadmKind::ClusterConfiguration => &[
                "kubeadm.k8s.io/v1beta2",
                "kubeadm.k8s.io/v1beta3",
                "kubeadm.k8s.io/v1beta4",
            ],
            KubeadmKind::KubeletConfiguration => &["kubelet.config.k8s.io/v1beta1"],
            KubeadmKind::KubeProxyConfiguration => &["kubeproxy.config.k8s.io/v1alpha1"],
        }
    }
}

/// A kubeadm document, kept whole (with its `apiVersion` and `kind`) as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeadmDocument {
    pub span: Span,
    pub kind: Spanned<KubeadmKind>,
    pub api_version: Spanned<String>,
    pub value: serde_json::Map<String, serde_json::Value>,
}
