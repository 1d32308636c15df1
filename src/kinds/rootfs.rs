//! `rootfs.<ip>`: the cluster image's rendered rootfs on a host, at `<dataRoot>/<cluster>/rootfs`
//! (`deploy.md`). Create and update sync the rendered tree there, changed files only, the
//! `registry/` data only to hosts that run a registry; its content digest (image, rendered
//! inputs, the host's env) is what makes a change. Destroy removes `<dataRoot>/<cluster>`
//! (and the data root sealer made, when empty).

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::runner::Runner;
use crate::exec::{Event, StepFailure};
use crate::graph::input::{ClusterInput, HostInput};
use crate::plan::Change;
use crate::plan::distribution::Source;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use sealer_providers::sync::TreeCheck;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::Rootfs,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
    explains: &["inputs", "env"],
    lives_on: &[Foundation::Host],
};

/// What a host's rootfs is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsAttrs {
    /// The cluster image, `NAME@sha256:...`.
    pub image: String,
    /// Where it lives on the host.
    pub path: String,
    /// Digest of the image, the rendered inputs and the host's env: what the host gets.
    pub content_digest: String,
    /// Whether the registry's data is copied too (the host runs a registry).
    pub registry_data: bool,
    /// What the content digest is made of, to name what changed: the Config documents and
    /// Application files (texts, secrets masked) and the host's env (a digest per key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl RootfsAttrs {
    pub fn from_input(input: &ClusterInput, host: &HostInput, registry_data: bool) -> RootfsAttrs {
        let content = crate::image::layout::sha256_digest(
            format!(
                "{}\n{}\n{}",
                input.image_digest, input.rootfs_inputs_digest, host.env_digest
            )
            .as_bytes(),
        );
        RootfsAttrs {
            image: format!("{}@{}", input.image, input.image_digest),
            path: input.rootfs_path.clone(),
            content_digest: content,
            registry_data,
            inputs: input.rootfs_inputs.clone(),
            env: host.env.clone(),
        }
    }
}

/// `rootfs.<ip>`, after its host.
pub fn desired(input: &ClusterInput, host: &HostInput, registry_data: bool) -> Desired {
    let attrs = RootfsAttrs::from_input(input, host, registry_data);
    let ip = host.ip.as_str();
    SCHEMA.desired(
        format!("rootfs.{ip}"),
        Some(ip),
        &attrs,
        vec![format!("host.{ip}")],
    )
}

/// Why the content changed, in words: the image, the Config documents and Application
/// files, the env keys (from the explanations the record has; `None` when it has none).
pub fn describe_update(
    before: &crate::resource::Attributes,
    after: &crate::resource::Attributes,
) -> Option<String> {
    let (Ok(old), Ok(new)) = (
        super::from_attributes::<RootfsAttrs>("rootfs", before),
        super::from_attributes::<RootfsAttrs>("rootfs", after),
    ) else {
        return None;
    };
    let mut causes = Vec::new();
    if old.image != new.image {
        causes.push(format!("image {}", short_image(&new.image)));
    }
    causes.extend(crate::graph::explain::differences(
        "",
        &old.inputs,
        &new.inputs,
    ));
    causes.extend(crate::graph::explain::differences(
        "env ", &old.env, &new.env,
    ));
    (!causes.is_empty()).then(|| format!("content changed: {}", causes.join(", ")))
}

/// `NAME@sha256:0123456789ab…` for a reason line.
pub(super) fn short_image(image: &str) -> String {
    match image.split_once("@sha256:") {
        Some((name, hex)) => format!("{name}@sha256:{}…", &hex[..hex.len().min(12)]),
        None => image.to_string(),
    }
}

/// Syncs the rendered rootfs to the host (update is the same: only changed files go):
/// from this machine, or, in a distribution tree, from the seeder the plan names, falling
/// back to this machine when the seeder has no verified copy or cannot deliver one. The
/// output line says which path the files took.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    let Some(source) = &ctx.rootfs_source else {
        return Err(StepFailure::message("no rendered rootfs to copy"));
    };
    let attrs: RootfsAttrs = super::step_attributes(change, change.after())?;
    let (host_ref, dest) = (host.as_str(), attrs.path.as_str());
    let direct = |path: Path| async move {
        r.sync_tree(host_ref, source, dest, attrs.registry_data)
            .await
            .map(|report| (report, path))
    };
    let (report, path) = match ctx.rootfs_tree.source(&change.address) {
        None => direct(Path::Direct).await?,
        Some(Source::Operator) => direct(Path::Operator).await?,
        Some(Source::Seeder(seeder)) if !r.distribution.has_seeded(seeder) => {
            let reason = format!("{seeder} has no verified copy: its rootfs step did not finish");
            direct(Path::Fallback(reason)).await?
        }
        Some(Source::Seeder(seeder)) => {
            let relayed = r
                .sync_tree_from(&host, seeder, source, &attrs.path, attrs.registry_data)
                .await;
            match relayed {
                Ok((report, true)) => (report, Path::Seeder(seeder.clone())),
                Ok((report, false)) => (report, Path::TooLittleToRelay),
                Err(reason) => direct(Path::Fallback(reason)).await?,
            }
        }
    };
    if ctx.rootfs_tree.source(&change.address).is_some() {
        r.distribution.seeded(&host);
    }
    r.sink.event(Event::StepOutput {
        address: change.address.clone(),
        host: Some(host.clone()),
        stderr: false,
        line: path.line(report.files_sent, report.bytes_sent),
    });
    Ok(Attributes::new())
}

/// The way a host's rootfs files came, as its step's output line says it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    /// No distribution (one receiver, or `--rootfs-distribution direct`).
    Direct,
    /// The first host of a tree.
    Operator,
    /// From the host that got them earlier in this apply.
    Seeder(String),
    /// Nothing but directories, symlinks or deletions, or fewer bytes than a relay is worth
    /// (`SEALER_RELAY_MIN`): sent from here.
    TooLittleToRelay,
    /// The seeder could not serve it: sent from here, and why.
    Fallback(String),
}

impl Path {
    fn line(&self, files: usize, bytes: u64) -> String {
        let how = match self {
            Path::Direct => "sent".to_string(),
            Path::Operator => "sent from the operator".to_string(),
            Path::Seeder(ip) => format!("from {ip}"),
            Path::TooLittleToRelay => "sent from the operator (too little to relay)".to_string(),
            Path::Fallback(reason) => format!("sent directly (fallback: {reason})"),
        };
        format!("{files} files, {bytes} bytes {how}")
    }
}

/// Removes the cluster's data directory it recorded (and the parents sealer made, when
/// left empty).
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let attrs: RootfsAttrs = super::step_attributes(change, change.before.as_ref())?;
    let data_dir = attrs.path.trim_end_matches("/rootfs");
    let host = super::step_host(r, change);
    r.run(
        &change.address,
        &host,
        steps::remove_data_dir(data_dir, &data_parents(data_dir)),
        Stdin::Null,
    )
    .await?;
    Ok(())
}

/// The directories above the data dir that sealer may have made: the data root, and for the
/// default root `/var/lib/sealer/data` also `/var/lib/sealer`.
fn data_parents(data_dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((root, _)) = data_dir.rsplit_once('/')
        && !root.is_empty()
    {
        out.push(root.to_string());
        if root == "/var/lib/sealer/data" {
            out.push("/var/lib/sealer".to_string());
        }
    }
    out
}

/// Reads the tree back: whether the host still holds what the last sync wrote (without
/// the registry's data where the host has none).
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let attrs: RootfsAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let transport = r.transport(&host).await?;
    let excluded = if attrs.registry_data {
        Vec::new()
    } else {
        vec!["registry".to_string()]
    };
    let check = sealer_providers::sync::check(
        transport.as_ref(),
        &attrs.path,
        &excluded,
        r.ctx.step_timeout,
    )
    .await
    .map_err(|e| StepFailure::message(format!("on host {host}: {}", e.message)))?;
    Ok(read_back(&attrs.path, check))
}

fn read_back(path: &str, check: TreeCheck) -> ReadBack {
    match check {
        TreeCheck::Absent => ReadBack::gone(format!("{path} is not there")),
        TreeCheck::Unrecorded => ReadBack::Drifted(vec![format!(
            "{path} has no manifest: no copy of the rootfs finished there"
        )]),
        TreeCheck::Checked { changed, missing } => {
            let mut findings = Vec::new();
            if !changed.is_empty() {
                findings.push(format!(
                    "{} of its files changed since sealer wrote them: {}",
                    changed.len(),
                    super::read::listed(&changed, 5)
                ));
            }
            if !missing.is_empty() {
                findings.push(format!(
                    "{} of its files are missing: {}",
                    missing.len(),
                    super::read::listed(&missing, 5)
                ));
            }
            ReadBack::of_findings(findings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn attrs() -> RootfsAttrs {
        RootfsAttrs {
            image: "kubernetes:v1.22@sha256:aa".to_string(),
            path: "/var/lib/sealer/data/c/rootfs".to_string(),
            content_digest: "sha256:bb".to_string(),
            registry_data: true,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let map = to_attributes(&attrs());
        let back: RootfsAttrs = from_attributes("rootfs.10.0.0.2", &map).unwrap();
        assert_eq!(back, attrs());
    }

    #[test]
    fn a_recorded_rootfs_reads_back() {
        let recorded: Attributes = serde_json::from_value(json!({
            "content_digest": "sha256:bb",
            "image": "kubernetes:v1.22@sha256:aa",
            "path": "/var/lib/sealer/data/c/rootfs",
            "registry_data": true,
        }))
        .unwrap();
        let back: RootfsAttrs = from_attributes("rootfs.10.0.0.2", &recorded).unwrap();
        assert_eq!(back, attrs());
        assert_eq!(to_attributes(&back), recorded);
    }

    #[test]
    fn the_output_line_says_which_way_the_files_came() {
        let lines: Vec<String> = [
            Path::Direct,
            Path::Operator,
            Path::Seeder("10.0.0.2".into()),
            Path::TooLittleToRelay,
            Path::Fallback("from 10.0.0.2: refused".into()),
        ]
        .iter()
        .map(|p| p.line(3, 120))
        .collect();
        assert_eq!(
            lines,
            [
                "3 files, 120 bytes sent",
                "3 files, 120 bytes sent from the operator",
                "3 files, 120 bytes from 10.0.0.2",
                "3 files, 120 bytes sent from the operator (too little to relay)",
                "3 files, 120 bytes sent directly (fallback: from 10.0.0.2: refused)",
            ]
        );
    }

    #[test]
    fn data_parents_of_the_default_root_include_var_lib_sealer() {
        assert_eq!(
            data_parents("/var/lib/sealer/data/c"),
            ["/var/lib/sealer/data", "/var/lib/sealer"]
        );
        assert_eq!(data_parents("/data/c"), ["/data"]);
        assert!(data_parents("/c").is_empty());
    }

    #[test]
    fn a_read_back_tree_names_what_changed_and_what_is_missing() {
        let path = "/var/lib/sealer/data/c/rootfs";
        assert_eq!(
            read_back(path, TreeCheck::Absent),
            ReadBack::gone("/var/lib/sealer/data/c/rootfs is not there")
        );
        let check = TreeCheck::Checked {
            changed: vec!["bin/kubeadm".into()],
            missing: (1..=7).map(|i| format!("etc/f{i}")).collect(),
        };
        assert_eq!(
            read_back(path, check).findings(),
            [
                "1 of its files changed since sealer wrote them: bin/kubeadm",
                "7 of its files are missing: etc/f1, etc/f2, etc/f3, etc/f4, etc/f5 and 2 more"
            ]
        );
        let same = TreeCheck::Checked {
            changed: vec![],
            missing: vec![],
        };
        assert_eq!(read_back(path, same), ReadBack::AsRecorded);
    }
}
