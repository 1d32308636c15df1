//! `node_meta.<ip>`: a node's role label, labels and taints (`deploy.md`), set through
//! master0's kubectl after the node's join (`kubectl label/taint --overwrite`). An update
//! applies the difference: what the record had and the configuration no longer has is
//! removed. Destroy does nothing: the metadata dies with the node.

use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::HostInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::NodeMeta,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
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
}
