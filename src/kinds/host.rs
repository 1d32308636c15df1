//! `host.<ip>`: a machine of the cluster, reached over SSH or locally (in a sandbox)
//! (`deploy.md`). Create and update connect (verifying or pinning the host key), write the
//! cluster's `/etc/hosts` entries (hostAliases, the registry domain) and record the host's
//! arch, hostname and SSH host key; destroy removes those `/etc/hosts` lines. Another
//! sandbox is another machine: a sandbox change replaces the host. How a host is reached
//! is read from these attributes too, for hosts only the state still knows.

use super::Schema;
use super::read::ReadBack;
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::HostInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::Host,
    // Another sandbox is another machine, as far as the cluster can tell.
    replace_on: &["sandbox"],
    sensitive: &["password", "key_passphrase"],
    computed: &["arch", "hostname", "host_key"],
    explains: &[],
    lives_on: &[],
};

/// How sealer reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Ssh,
    /// This machine, in a private mount namespace over `sandbox` when one is set.
    Local,
}

/// What a host is. Absent values are not attributes (a host without a key file has no
/// `key_file`); the computed ones are absent until the host's create has run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAttrs {
    /// `uname -m`, recorded by create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The host's name (its node name), recorded by create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The SSH host key fingerprint pinned at create (none for local hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    pub ssh_user: String,
    pub ssh_port: u16,
    pub transport: Transport,
    /// A local host's sandbox directory (absolute or `~/...`, expanded at apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Digest of the SSH password (never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The private key path (`~` unexpanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Digest of the private key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase: Option<String>,
    /// The `/etc/hosts` lines the host gets, `IP NAME...`.
    pub hosts_entries: Vec<String>,
}

impl HostAttrs {
    /// A host of the Clusterfile with its `/etc/hosts` lines; computed values unknown yet.
    pub fn from_input(host: &HostInput, hosts_entries: Vec<String>) -> HostAttrs {
        HostAttrs {
            arch: None,
            hostname: None,
            host_key: None,
            ssh_user: host.ssh_user.clone(),
            ssh_port: host.ssh_port,
            transport: if host.local {
                Transport::Local
            } else {
                Transport::Ssh
            },
            sandbox: host.sandbox.clone(),
            password: host.password_digest.clone(),
            key_file: host.key_file.clone(),
            key_passphrase: host.key_passphrase_digest.clone(),
            hosts_entries,
        }
    }

    /// The attributes the state recorded for a host, or None when the record does not fit
    /// the kind (a damaged state): callers then reach the host with SSH defaults, as an
    /// empty record would be.
    pub fn recorded(r: &Recorded) -> Option<HostAttrs> {
        super::from_attributes(&r.address, &r.attributes).ok()
    }
}

/// `host.<ip>`, the root of everything on that host (no dependencies).
pub fn desired(host: &HostInput, hosts_entries: Vec<String>) -> Desired {
    let attrs = HostAttrs::from_input(host, hosts_entries);
    SCHEMA.desired(
        format!("host.{}", host.ip),
        Some(&host.ip),
        &attrs,
        Vec::new(),
    )
}

/// What create learns about a host: its computed attributes.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
struct Learned {
    #[serde(skip_serializing_if = "Option::is_none")]
    arch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_key: Option<String>,
}

impl Learned {
    /// The `arch=...` and `hostname=...` lines `steps::host_create` prints (a repeated line:
    /// the last one).
    fn from_output(output: &[u8]) -> Learned {
        let mut learned = Learned::default();
        for line in String::from_utf8_lossy(output).lines() {
            match line.split_once('=') {
                Some(("arch", v)) => learned.arch = Some(v.to_string()),
                Some(("hostname", v)) => learned.hostname = Some(v.to_string()),
                _ => {}
            }
        }
        learned
    }
}

/// Writes the `/etc/hosts` entries and records arch, hostname and host key (update is the
/// same: the entries are rewritten, the facts read again).
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let attrs: HostAttrs = super::step_attributes(change, change.after())?;
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    let out = r
        .run(
            &change.address,
            &host,
            steps::host_create(&ctx.cluster, &attrs.hosts_entries),
            Stdin::Null,
        )
        .await?;
    let mut learned = Learned::from_output(&out);
    // Later steps (drains, node_meta) name the node: known now, not asked for again.
    if let Some(name) = &learned.hostname
        && let Ok(mut m) = r.node_names.lock()
    {
        m.insert(host.clone(), name.clone());
    }
    learned.host_key = r.transport(&host).await?.host_key();
    Ok(super::to_attributes(&learned))
}

/// What create would learn about a host (arch, hostname, host key), read without changing
/// it: `sealer import` records a running host with these.
pub async fn facts(r: &Runner, host: &str) -> Result<Attributes, StepFailure> {
    let out = r
        .probe(
            host,
            "printf 'arch=%s\\nhostname=%s\\n' \"$(uname -m)\" \"$(hostname)\"\n".to_string(),
        )
        .await?;
    if !out.ok {
        return Err(StepFailure::message(format!(
            "on host {host}: reading its facts: {}",
            out.stderr_line()
        )));
    }
    let mut learned = Learned::from_output(out.stdout.as_bytes());
    if [&learned.arch, &learned.hostname]
        .iter()
        .any(|v| v.as_deref().is_none_or(str::is_empty))
    {
        return Err(StepFailure::message(format!(
            "on host {host}: reading its facts: `uname -m` and `hostname` printed nothing"
        )));
    }
    learned.host_key = r.transport(host).await?.host_key();
    Ok(super::to_attributes(&learned))
}

/// Removes the cluster's `/etc/hosts` lines.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    r.run(
        &change.address,
        &host,
        steps::host_destroy(&ctx.cluster),
        Stdin::Null,
    )
    .await?;
    Ok(())
}

/// Reads the host's facts and its cluster lines in `/etc/hosts` back. Reaching it at all
/// checks its host key against the pinned one.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let attrs: HostAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let script = format!(
        "set -e\nprintf 'arch=%s\\nhostname=%s\\n' \"$(uname -m)\" \"$(hostname)\"\n{} | sed 's/^/hosts=/'\n",
        steps::hosts_block_lines(&r.ctx.cluster, "host").trim_end()
    );
    let out = r.probe(&host, script).await?;
    if !out.ok {
        return Err(StepFailure::message(format!(
            "on host {host}: reading its facts: {}",
            out.stderr_line()
        )));
    }
    Ok(ReadBack::of_findings(findings(&attrs, &out.stdout)))
}

/// What differs between the recorded host and what [`read`]'s script printed.
fn findings(attrs: &HostAttrs, output: &str) -> Vec<String> {
    let learned = Learned::from_output(output.as_bytes());
    let entries: Vec<String> = output
        .lines()
        .filter_map(|l| l.strip_prefix("hosts="))
        .map(str::to_string)
        .collect();
    let mut findings = Vec::new();
    for (what, recorded, now) in [
        ("hostname", &attrs.hostname, &learned.hostname),
        ("arch (`uname -m`)", &attrs.arch, &learned.arch),
    ] {
        if let (Some(recorded), Some(now)) = (recorded, now)
            && recorded != now
        {
            findings.push(format!("its {what} is {now:?}, recorded {recorded:?}"));
        }
    }
    if entries != attrs.hosts_entries {
        findings.push(if entries.is_empty() {
            "`/etc/hosts` no longer has the cluster's lines".to_string()
        } else {
            format!(
                "the cluster's lines in `/etc/hosts` are {entries:?}, recorded {:?}",
                attrs.hosts_entries
            )
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use crate::resource::Status;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn input() -> HostInput {
        HostInput {
            ip: "10.0.0.2".to_string(),
            roles: vec!["master".to_string()],
            ssh_user: "root".to_string(),
            ssh_port: 22,
            local: false,
            sandbox: None,
            password_digest: Some("sha256:aa".to_string()),
            key_file: Some("~/.ssh/id_rsa".to_string()),
            key_passphrase_digest: None,
            env_digest: "sha256:bb".to_string(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let attrs = HostAttrs::from_input(&input(), vec!["10.0.0.2 sea.hub".to_string()]);
        let map = to_attributes(&attrs);
        assert_eq!(
            map.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "hosts_entries",
                "key_file",
                "password",
                "ssh_port",
                "ssh_user",
                "transport"
            ]
        );
        assert_eq!(map["transport"], json!("ssh"));
        let back: HostAttrs = from_attributes("host.10.0.0.2", &map).unwrap();
        assert_eq!(back, attrs);
    }

    #[test]
    fn desired_declares_the_schema() {
        let d = desired(&input(), Vec::new());
        assert_eq!(d.address, "host.10.0.0.2");
        assert_eq!(d.host.as_deref(), Some("10.0.0.2"));
        assert!(d.depends_on.is_empty());
        // Only secrets the host has are sensitive.
        assert_eq!(d.sensitive.iter().collect::<Vec<_>>(), ["password"]);
        assert!(d.replace_on.contains("sandbox"));
        assert_eq!(d.computed.len(), 3);
    }

    #[test]
    fn a_recorded_host_reads_back_with_its_computed_attributes() {
        let attributes: Attributes = serde_json::from_value(json!({
            "arch": "x86_64",
            "hostname": "node-a",
            "host_key": "SHA256:abc",
            "hosts_entries": ["10.0.0.2 sea.hub"],
            "sandbox": "~/.quickstart",
            "ssh_port": 2222,
            "ssh_user": "admin",
            "transport": "local",
        }))
        .unwrap();
        let r = Recorded {
            address: "host.10.0.0.2".to_string(),
            resource_type: ResourceType::Host,
            host: Some("10.0.0.2".to_string()),
            attributes: attributes.clone(),
            sensitive: Default::default(),
            status: Status::Ready,
            depends_on: Vec::new(),
            drift: None,
        };
        let host = HostAttrs::recorded(&r).unwrap();
        assert_eq!(host.arch.as_deref(), Some("x86_64"));
        assert_eq!(host.hostname.as_deref(), Some("node-a"));
        assert_eq!(host.host_key.as_deref(), Some("SHA256:abc"));
        assert_eq!(host.transport, Transport::Local);
        assert_eq!(host.ssh_port, 2222);
        assert_eq!(to_attributes(&host), attributes);
    }

    #[test]
    fn a_damaged_record_does_not_fit() {
        let attributes: Attributes =
            serde_json::from_value(json!({"ssh_user": "root", "ssh_port": "22"})).unwrap();
        let err = from_attributes::<HostAttrs>("host.10.0.0.2", &attributes).unwrap_err();
        assert!(err.starts_with("host.10.0.0.2: "), "{err}");
    }

    #[test]
    fn create_learns_arch_and_hostname_from_its_output() {
        let learned = Learned::from_output(b"arch=aarch64\nhostname=node-a\n");
        assert_eq!(
            to_attributes(&learned),
            serde_json::from_value::<Attributes>(json!({"arch": "aarch64", "hostname": "node-a"}))
                .unwrap()
        );
    }

    #[test]
    fn a_read_back_host_differs_in_name_and_hosts_lines() {
        let attrs = HostAttrs {
            arch: Some("x86_64".into()),
            hostname: Some("node-1".into()),
            host_key: None,
            ssh_user: "root".into(),
            ssh_port: 22,
            transport: Transport::Ssh,
            sandbox: None,
            password: None,
            key_file: None,
            key_passphrase: None,
            hosts_entries: vec!["10.0.0.2 node-1".into()],
        };
        let same = "arch=x86_64\nhostname=node-1\nhosts=10.0.0.2 node-1\n";
        assert!(findings(&attrs, same).is_empty());
        let renamed = "arch=x86_64\nhostname=other\n";
        assert_eq!(
            findings(&attrs, renamed),
            [
                "its hostname is \"other\", recorded \"node-1\"",
                "`/etc/hosts` no longer has the cluster's lines"
            ]
        );
    }
}
