//! Reading recorded resources back from their hosts: what a refresh sees. Each kind says
//! how (its module's `read`); every read is read-only (it lists, stats, hashes and asks the
//! API, never writes) and reports what it found in words an operator can check by hand.

use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::resource::{Recorded, ResourceType};
use serde::Serialize;

/// What reading a recorded resource back found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "found", content = "findings", rename_all = "snake_case")]
pub enum ReadBack {
    /// On its host as the state records it.
    AsRecorded,
    /// There, but not as recorded: each finding says what differs.
    Drifted(Vec<String>),
    /// Not there any more: the finding says what is missing.
    Gone(Vec<String>),
    /// Nothing on a host tells whether it is still there (a plugin's script, a shell
    /// app's commands): the finding says why.
    Unreadable(Vec<String>),
}

impl ReadBack {
    /// Drifted when there are findings, as recorded otherwise.
    pub fn of_findings(findings: Vec<String>) -> ReadBack {
        if findings.is_empty() {
            ReadBack::AsRecorded
        } else {
            ReadBack::Drifted(findings)
        }
    }

    pub fn gone(finding: impl Into<String>) -> ReadBack {
        ReadBack::Gone(vec![finding.into()])
    }

    pub fn unreadable(why: impl Into<String>) -> ReadBack {
        ReadBack::Unreadable(vec![why.into()])
    }

    /// Whether a refresh has something to report.
    pub fn drifted(&self) -> bool {
        matches!(self, ReadBack::Drifted(_) | ReadBack::Gone(_))
    }

    pub fn findings(&self) -> &[String] {
        match self {
            ReadBack::AsRecorded => &[],
            ReadBack::Drifted(f) | ReadBack::Gone(f) | ReadBack::Unreadable(f) => f,
        }
    }
}

/// Reads `recorded` back from its host(s) through its kind.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    use super::{
        app, container_runtime, host, image_policy, kubernetes_init, kubernetes_join, node_meta,
        registry, registry_client, rootfs,
    };
    match recorded.resource_type {
        ResourceType::Host => host::read(r, recorded).await,
        ResourceType::Rootfs => rootfs::read(r, recorded).await,
        ResourceType::ContainerRuntime => container_runtime::read(r, recorded).await,
        ResourceType::Registry => registry::read(r, recorded).await,
        ResourceType::RegistryClient => registry_client::read(r, recorded).await,
        ResourceType::KubernetesInit => kubernetes_init::read(r, recorded).await,
        ResourceType::KubernetesMaster | ResourceType::KubernetesWorker => {
            kubernetes_join::read(r, recorded).await
        }
        ResourceType::NodeMeta => node_meta::read(r, recorded).await,
        ResourceType::ImagePolicy => image_policy::read(r, recorded).await,
        ResourceType::Plugin => Ok(ReadBack::unreadable(
            "a plugin's effects are its script's own: nothing on a host records them",
        )),
        ResourceType::App => app::read(r, recorded).await,
    }
}

/// The typed attributes of a recorded resource, or the read's failure.
pub(crate) fn attributes<T: serde::de::DeserializeOwned>(
    recorded: &Recorded,
) -> Result<T, StepFailure> {
    super::from_attributes(&recorded.address, &recorded.attributes).map_err(StepFailure::message)
}

/// The host a read runs on: the resource's own, or master0 for cluster-wide ones.
pub(crate) fn host_of(r: &Runner, recorded: &Recorded) -> String {
    recorded
        .host
        .clone()
        .unwrap_or_else(|| r.ctx.master0.clone())
}

/// What [`file_digests`] found of each path, in order: its SHA-256, or `None` when there
/// is no regular file there.
pub(crate) async fn file_digests(
    r: &Runner,
    host: &str,
    paths: &[String],
) -> Result<Vec<Option<String>>, StepFailure> {
    let out = r
        .probe(host, sealer_providers::steps::file_digests(paths))
        .await?;
    if !out.ok {
        return Err(StepFailure::message(format!(
            "on host {host}: reading {}: {}",
            paths.join(", "),
            out.stderr_line()
        )));
    }
    let lines: Vec<&str> = out.stdout.lines().collect();
    if lines.len() != paths.len() {
        return Err(StepFailure::message(format!(
            "on host {host}: reading {}: unexpected output",
            paths.join(", ")
        )));
    }
    Ok(lines
        .iter()
        .map(|l| (*l != "absent").then(|| l.to_string()))
        .collect())
}

/// The node names `kubectl get nodes` lists on master0, or what kubectl said when it
/// failed (the API is down: a finding, not a failed read).
pub(crate) async fn api_nodes(r: &Runner) -> Result<Result<Vec<String>, String>, StepFailure> {
    let out = r
        .probe(&r.ctx.master0, "kubectl get nodes\n".to_string())
        .await?;
    if !out.ok {
        return Ok(Err(format!(
            "the API server does not answer `kubectl get nodes` on {}: {}",
            r.ctx.master0,
            out.stderr_line()
        )));
    }
    Ok(Ok(out
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()))
}

/// `items`, at most `shown` of them, then how many more.
pub(crate) fn listed(items: &[String], shown: usize) -> String {
    let mut text = items
        .iter()
        .take(shown)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        text.push_str(&format!(" and {} more", items.len() - shown));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_backs_serialize_with_their_findings() {
        let json = serde_json::to_value(ReadBack::gone("node a is not there")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"found": "gone", "findings": ["node a is not there"]})
        );
        let json = serde_json::to_value(ReadBack::AsRecorded).unwrap();
        assert_eq!(json, serde_json::json!({"found": "as_recorded"}));
        assert!(ReadBack::of_findings(vec!["x".into()]).drifted());
        assert!(!ReadBack::unreadable("why").drifted());
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let items: Vec<String> = (1..=7).map(|i| format!("f{i}")).collect();
        assert_eq!(listed(&items, 3), "f1, f2, f3 and 4 more");
        assert_eq!(listed(&items[..2], 3), "f1, f2");
    }
}
