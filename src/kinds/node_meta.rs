//! `node_meta.<ip>`: a node's role label, labels and taints (`deploy.md`), set through
//! master0's kubectl after the node's join (`kubectl label/taint --overwrite`). An update
//! applies the difference: what the record had and the configuration no longer has is
//! removed. Destroy does nothing: the metadata dies with the node.

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::HostInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::quote::quote;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::NodeMeta,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[
        Foundation::Host,
        Foundation::ContainerRuntime,
        Foundation::Etcd,
        Foundation::Node,
    ],
};

/// What a node's metadata is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMetaAttrs {
    /// `master` or `node`: gives the node its `node-role.kubernetes.io/...` label.
    pub role: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `key=value:Effect` as written in the Clusterfile.
    #[serde(default)]
    pub taints: Vec<String>,
}

impl NodeMetaAttrs {
    pub fn from_host(host: &HostInput) -> NodeMetaAttrs {
        NodeMetaAttrs {
            role: if host.is_master() { "master" } else { "node" }.to_string(),
            labels: host.labels.clone(),
            taints: host.taints.clone(),
        }
    }

    /// The labels to set, the role's last.
    fn labels(&self) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key = if self.role == "master" {
            "node-role.kubernetes.io/master"
        } else {
            "node-role.kubernetes.io/worker"
        };
        labels.push((key.to_string(), String::new()));
        labels
    }
}

/// `node_meta.<ip>`, after the host's join (`join`: its address).
pub fn desired(host: &HostInput, join: String) -> Desired {
    SCHEMA.desired(
        format!("node_meta.{}", host.ip),
        Some(&host.ip),
        &NodeMetaAttrs::from_host(host),
        vec![join],
    )
}

/// Sets the labels and taints, and removes those the record had that are gone.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    let meta: NodeMetaAttrs = super::step_attributes(change, change.after())?;
    // A create has no record: nothing to remove.
    let old: Option<NodeMetaAttrs> = match &change.before {
        Some(before) => Some(super::step_attributes(change, Some(before))?),
        None => None,
    };
    let node = r.node_name(a, &host).await?;
    let labels = meta.labels();
    let old_labels = old.as_ref().map(NodeMetaAttrs::labels).unwrap_or_default();
    let remove_labels: Vec<String> = old_labels
        .into_iter()
        .filter(|(k, _)| !labels.iter().any(|(n, _)| n == k))
        .map(|(k, _)| k)
        .collect();
    let remove_taints: Vec<String> = old
        .map(|o| o.taints)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !meta.taints.contains(t))
        .collect();
    r.run(
        a,
        &ctx.master0,
        steps::node_meta(&node, &labels, &meta.taints, &remove_labels, &remove_taints),
        Stdin::Null,
    )
    .await?;
    Ok(Attributes::new())
}

/// Applies the difference, which is what create does.
pub async fn update(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    create(r, change).await
}

/// Reads the node's labels and taints back from the API (others may add their own: only
/// the recorded ones are checked).
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let meta: NodeMetaAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let node = r.node_name(&recorded.address, &host).await?;
    let out = r
        .probe(
            &r.ctx.master0,
            format!("kubectl get node {} -o json\n", quote(&node)),
        )
        .await?;
    if !out.ok {
        return Ok(if out.stderr.contains("NotFound") {
            ReadBack::gone(format!("node {node} is not in the API"))
        } else {
            ReadBack::unreadable(format!(
                "`kubectl get node {node}` fails: {}",
                out.stderr_line()
            ))
        });
    }
    let seen: NodeJson = serde_json::from_str(&out.stdout).map_err(|e| {
        StepFailure::message(format!(
            "on host {}: `kubectl get node {node} -o json` printed no node: {e}",
            r.ctx.master0
        ))
    })?;
    Ok(ReadBack::of_findings(meta_findings(&meta, &seen)))
}

/// The fields of `kubectl get node -o json` a read needs.
#[derive(Debug, Default, Deserialize)]
struct NodeJson {
    #[serde(default)]
    metadata: NodeMetadata,
    #[serde(default)]
    spec: NodeSpec,
}

#[derive(Debug, Default, Deserialize)]
struct NodeMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct NodeSpec {
    #[serde(default)]
    taints: Vec<Taint>,
}

#[derive(Debug, Deserialize)]
struct Taint {
    key: String,
    #[serde(default)]
    value: Option<String>,
    effect: String,
}

impl Taint {
    /// As the Clusterfile writes it: `key=value:Effect` or `key:Effect`.
    fn written(&self) -> String {
        match self.value.as_deref() {
            Some(v) if !v.is_empty() => format!("{}={v}:{}", self.key, self.effect),
            _ => format!("{}:{}", self.key, self.effect),
        }
    }
}

fn meta_findings(meta: &NodeMetaAttrs, seen: &NodeJson) -> Vec<String> {
    let mut findings = Vec::new();
    for (key, value) in meta.labels() {
        match seen.metadata.labels.get(&key) {
            None => findings.push(format!("label {key}={value} is missing")),
            Some(now) if *now != value => {
                findings.push(format!("label {key} is {now:?}, recorded {value:?}"))
            }
            Some(_) => {}
        }
    }
    let taints: Vec<String> = seen.spec.taints.iter().map(Taint::written).collect();
    for taint in &meta.taints {
        if !taints.contains(taint) {
            findings.push(format!("taint {taint} is missing"));
        }
    }
    findings
}

/// Nothing to undo: the labels and taints go with the node.
pub async fn destroy(_r: &Runner, _change: &Change) -> Result<(), StepFailure> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn attrs() -> NodeMetaAttrs {
        NodeMetaAttrs {
            role: "node".into(),
            labels: [("disk".to_string(), "ssd".to_string())].into(),
            taints: vec!["gpu=yes:NoSchedule".into()],
        }
    }

    #[test]
    fn attributes_round_trip() {
        let map = to_attributes(&attrs());
        let read: NodeMetaAttrs = from_attributes("node_meta.10.0.0.5", &map).unwrap();
        assert_eq!(read, attrs());
    }

    #[test]
    fn a_recorded_node_meta_reads_back() {
        let recorded: Attributes = [
            ("role", json!("node")),
            ("labels", json!({"disk": "ssd"})),
            ("taints", json!(["gpu=yes:NoSchedule"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let read: NodeMetaAttrs = from_attributes("node_meta.10.0.0.5", &recorded).unwrap();
        assert_eq!(read, attrs());
        assert_eq!(to_attributes(&read), recorded);
    }

    #[test]
    fn the_role_label_comes_last() {
        assert_eq!(
            attrs().labels(),
            vec![
                ("disk".to_string(), "ssd".to_string()),
                ("node-role.kubernetes.io/worker".to_string(), String::new()),
            ]
        );
        let master = NodeMetaAttrs {
            role: "master".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
        };
        assert_eq!(
            master.labels(),
            vec![("node-role.kubernetes.io/master".to_string(), String::new())]
        );
    }

    #[test]
    fn a_read_back_node_misses_a_changed_label_and_a_removed_taint() {
        let meta = NodeMetaAttrs {
            role: "node".into(),
            labels: BTreeMap::from([("zone".to_string(), "a".to_string())]),
            taints: vec!["dedicated=gpu:NoSchedule".into(), "x:NoExecute".into()],
        };
        let node = |json: serde_json::Value| -> NodeJson { serde_json::from_value(json).unwrap() };
        let same = node(serde_json::json!({
            "metadata": {"labels": {"zone": "a", "node-role.kubernetes.io/worker": "", "other": "x"}},
            "spec": {"taints": [
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                {"key": "x", "effect": "NoExecute"}
            ]}
        }));
        assert!(meta_findings(&meta, &same).is_empty());
        let drifted = node(serde_json::json!({
            "metadata": {"labels": {"zone": "b"}},
            "spec": {"taints": [{"key": "x", "effect": "NoExecute"}]}
        }));
        assert_eq!(
            meta_findings(&meta, &drifted),
            [
                "label zone is \"b\", recorded \"a\"",
                "label node-role.kubernetes.io/worker= is missing",
                "taint dedicated=gpu:NoSchedule is missing"
            ]
        );
    }
}
