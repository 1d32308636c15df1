//! The resolved hosts: groups flattened in file order, SSH settings merged field by field
//! over `spec.ssh`, env merged over the cluster env.

use super::env::Env;
use super::model::{Clusterfile, EnvVar, Ssh, Transport};
use super::secret::Secret;
use super::span::{Span, Spanned};
use super::taint::Taint;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_SSH_USER: &str = "root";
pub const DEFAULT_SSH_PORT: u16 = 22;

/// How to log in to a host. Without a key and a password, the SSH agent is used.
///
/// `pk` and `sandbox` are paths of the operator machine as the plan records them: anchored
/// at the Clusterfile's directory when relative ([`anchor`]), `~` kept as written so that the
/// plan does not depend on `$HOME`; [`SshSettings::pk_path`] and
/// [`SshSettings::sandbox_path`] expand `~` where the path is used, at apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    pub password: Option<Secret>,
    /// The private key path, anchored (`~` not expanded).
    pub pk: Option<String>,
    pub pk_passwd: Option<Secret>,
    /// `transport: local` only: where the host's system writes go, anchored (`~` not expanded).
    pub sandbox: Option<String>,
}

impl SshSettings {
    /// The private key path with `~` expanded to `home`.
    pub fn pk_path(&self, home: Option<&Path>) -> Option<PathBuf> {
        Some(expand_home(self.pk.as_deref()?, home))
    }

    /// The sandbox directory with `~` expanded to `home`.
    pub fn sandbox_path(&self, home: Option<&Path>) -> Option<PathBuf> {
        Some(expand_home(self.sandbox.as_deref()?, home))
    }

    /// Commands of a non-root user run through `sudo -n`.
    pub fn needs_sudo(&self) -> bool {
        self.user != "root"
    }
}

/// `~` and `~/...` relative to `home`; other paths unchanged.
pub fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path, home) {
        ("~", Some(home)) => home.to_path_buf(),
        (p, Some(home)) if p.starts_with("~/") => home.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// A path of the Clusterfile as the plan records it: a relative one joined to `dir` (the
/// Clusterfile's absolute directory, like Terraform's `path.module`) and normalized
/// lexically, so that the plan is the same from any working directory. Absolute and `~`
/// paths, and every path when there is no `dir` (text parsed without a file), stay as written.
pub fn anchor(path: &str, dir: Option<&Path>) -> String {
    let relative = !(path == "~" || path.starts_with("~/") || Path::new(path).is_absolute());
    match dir {
        Some(dir) if relative => normalize(&dir.join(path)).to_string_lossy().into_owned(),
        _ => path.to_string(),
    }
}

/// Drops `.` and applies `..` to the component before it, on the text alone: symlinks are
/// not followed, so the result reads the way the Clusterfile's author wrote it.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            // `pop` leaves a root in place: `/..` is `/`. A leading `..` of a relative path
            // (no base to apply it to) is kept.
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            Component::ParentDir if out.has_root() => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// One host of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub ip: IpAddr,
    /// Where the IP is written.
    pub span: Span,
    pub roles: Vec<String>,
    pub ssh: SshSettings,
    pub transport: Transport,
    /// Cluster env < the group's env (image env and derived keys are added by
    /// [`Clusterfile::host_env`]).
    pub env: Env,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl Host {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_master(&self) -> bool {
        self.has_role("master")
    }

    /// Role `node`: a Kubernetes worker.
    pub fn is_worker(&self) -> bool {
        self.has_role("node")
    }

    /// Whether the host joins Kubernetes at all (a host with neither role gets node setup,
    /// runtime and registry config only).
    pub fn joins(&self) -> bool {
        self.is_master() || self.is_worker()
    }
}

pub(crate) fn env_of(vars: &[EnvVar]) -> Env {
    vars.iter()
        .map(|v| (v.key.value.clone(), v.value.clone()))
        .collect()
}

/// The group's value, else the cluster's.
fn pick<T: Clone>(group: &Option<Spanned<T>>, cluster: &Option<Spanned<T>>) -> Option<T> {
    group.as_ref().or(cluster.as_ref()).map(|s| s.value.clone())
}

/// The group's SSH settings over the cluster's; paths anchored at `dir` (see [`anchor`]).
fn merge_ssh(cluster: &Ssh, group: &Ssh, dir: Option<&Path>) -> (SshSettings, Transport) {
    let user = pick(&group.user, &cluster.user);
    let path = |group: &Option<Spanned<String>>, cluster: &Option<Spanned<String>>| {
        pick(group, cluster).map(|p| anchor(&p, dir))
    };
    let settings = SshSettings {
        user: user.unwrap_or_else(|| DEFAULT_SSH_USER.to_string()),
        port: pick(&group.port, &cluster.port).unwrap_or(DEFAULT_SSH_PORT),
        password: pick(&group.passwd, &cluster.passwd),
        pk: path(&group.pk, &cluster.pk),
        pk_passwd: pick(&group.pk_passwd, &cluster.pk_passwd),
        sandbox: path(&group.sandbox, &cluster.sandbox),
    };
    let transport = pick(&group.transport, &cluster.transport).unwrap_or(Transport::Ssh);
    (settings, transport)
}

impl Clusterfile {
    /// Every host, group by group in file order.
    pub fn hosts(&self) -> Vec<Host> {
        let cluster_env = self.env();
        let dir = self.dir();
        let mut out = Vec::new();
        for group in &self.cluster.hosts {
            let (ssh, transport) = merge_ssh(&self.cluster.ssh, &group.ssh, dir);
            let mut env = cluster_env.clone();
            env.merge(&env_of(&group.env));
            let labels: BTreeMap<String, String> = group
                .labels
                .iter()
                .map(|l| (l.key.value.clone(), l.value.value.clone()))
                .collect();
            for ip in &group.ips {
                out.push(Host {
                    ip: ip.value,
                    span: ip.span,
                    roles: group.roles.iter().map(|r| r.value.clone()).collect(),
                    ssh: ssh.clone(),
                    transport,
                    env: env.clone(),
                    labels: labels.clone(),
                    taints: group.taints.iter().map(|t| t.value.clone()).collect(),
                });
            }
        }
        out
    }

    /// The first IP of the first group with role `master`; `None` only for a hand-built
    /// Clusterfile (loading requires a master).
    pub fn master0(&self) -> Option<Host> {
        self.hosts().into_iter().find(Host::is_master)
    }

    /// Masters in file order, master0 first.
    pub fn masters(&self) -> Vec<Host> {
        self.hosts().into_iter().filter(Host::is_master).collect()
    }

    /// Hosts with role `node`, in file order.
    pub fn workers(&self) -> Vec<Host> {
        self.hosts().into_iter().filter(Host::is_worker).collect()
    }

    /// Hosts by IP.
    pub fn host(&self, ip: IpAddr) -> Option<Host> {
        self.hosts().into_iter().find(|h| h.ip == ip)
    }
}
