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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    pub password: Option<Secret>,
    /// The private key path as written (`~` not expanded): see [`SshSettings::pk_path`].
    pub pk: Option<String>,
    pub pk_passwd: Option<Secret>,
    /// `transport: local` only: where the host's system writes go (as written).
    pub sandbox: Option<String>,
}

impl SshSettings {
    /// The private key path with `~` expanded from `$HOME`.
    pub fn pk_path(&self) -> Option<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        self.pk
            .as_deref()
            .map(|pk| expand_home(pk, home.as_deref()))
    }

    /// The sandbox directory, absolute (`~` expanded, relative to the current directory),
    /// so that the state records one path whatever directory `destroy` runs from.
    pub fn sandbox_path(&self) -> Option<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = expand_home(self.sandbox.as_deref()?, home.as_deref());
        if path.is_absolute() {
            return Some(path);
        }
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        // Joining keeps `./`; collecting the components drops it.
        Some(base.join(path).components().collect())
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

fn merge_ssh(cluster: &Ssh, group: &Ssh) -> (SshSettings, Transport) {
    let user = pick(&group.user, &cluster.user);
    let settings = SshSettings {
        user: user.unwrap_or_else(|| DEFAULT_SSH_USER.to_string()),
        port: pick(&group.port, &cluster.port).unwrap_or(DEFAULT_SSH_PORT),
        password: pick(&group.passwd, &cluster.passwd),
        pk: pick(&group.pk, &cluster.pk),
        pk_passwd: pick(&group.pk_passwd, &cluster.pk_passwd),
        sandbox: pick(&group.sandbox, &cluster.sandbox),
    };
    let transport = pick(&group.transport, &cluster.transport).unwrap_or(Transport::Ssh);
    (settings, transport)
}

impl Clusterfile {
    /// Every host, group by group in file order.
    pub fn hosts(&self) -> Vec<Host> {
        let cluster_env = self.env();
        let mut out = Vec::new();
        for group in &self.cluster.hosts {
            let (ssh, transport) = merge_ssh(&self.cluster.ssh, &group.ssh);
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
