//! Resource kinds, one module per type of `state-schema/plan.schema.json`, the way a
//! Terraform provider declares its resources: a kind's typed attributes (a serde struct),
//! how it is compiled from the cluster input, which attribute changes force replacement,
//! and its create / update / delete steps against the transport. Graph compilation, the
//! plan, `run` and the executor all go through these definitions; attributes travel as the
//! plan's attribute maps and are read back into the kind's struct where they are used.
//! `graph::compile` only places the kinds' resources in the graph (dependencies), and
//! `exec::runner` only dispatches to their steps. docs/ARCHITECTURE.md has the table.

pub mod app;
pub mod container_runtime;
pub mod host;
pub mod image_policy;
pub mod kubernetes_init;
pub mod kubernetes_join;
pub mod node_meta;
pub mod plugin;
pub mod read;
pub mod registry;
pub mod registry_client;
pub mod rootfs;

use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, ResourceType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

/// What a kind declares about its attributes.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub resource_type: ResourceType,
    /// Attributes that cannot change in place: a change replaces the resource.
    pub replace_on: &'static [&'static str],
    /// Attributes whose values are digests of secrets: never shown.
    pub sensitive: &'static [&'static str],
    /// Attributes known only after apply: never compared.
    pub computed: &'static [&'static str],
    /// Attributes that explain another's change (the texts and per-key digests behind a
    /// digest, `graph::explain`): never compared, shown when the resource changes.
    pub explains: &'static [&'static str],
    /// What the resource lives on: replacing that takes this resource with it
    /// (`plan::cascade`; `deploy.md`, "What lives on what").
    pub lives_on: &'static [Foundation],
}

/// What a resource can live on. A replacement of the foundation destroys it first, and
/// with it what lives on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foundation {
    /// Its host (`host.IP`): a replaced host is a new machine.
    Host,
    /// Its host's container runtime: uninstalling it removes its containers.
    ContainerRuntime,
    /// The cluster's etcd (`kubernetes.init`): `kubeadm reset` wipes it.
    Etcd,
    /// Its node (the host's join): `kubeadm reset` removes the node.
    Node,
}

/// How a plan repairs drift of a kind (`gone`: not there at all), or `None` when no step
/// repairs it safely. Most kinds run their step again: it is idempotent (files synced
/// again, manifests applied again, labels set again; a worker's update rewrites its route
/// to the masters). A node that left the cluster is reset and joins again. A control plane
/// that is gone is made again; one that is there but differs (an edited kubeadm.yaml, an
/// API server that does not answer) is not repaired by re-initializing the cluster behind
/// the operator's back.
pub fn drift_repair(resource_type: ResourceType, gone: bool) -> Option<crate::plan::Action> {
    use crate::plan::Action;
    match resource_type {
        ResourceType::KubernetesInit if gone => Some(Action::Replace),
        ResourceType::KubernetesInit => None,
        ResourceType::KubernetesMaster => Some(Action::Replace),
        ResourceType::KubernetesWorker if gone => Some(Action::Replace),
        _ => Some(Action::Update),
    }
}

/// The schema of a kind.
pub fn schema(resource_type: ResourceType) -> &'static Schema {
    match resource_type {
        ResourceType::Host => &host::SCHEMA,
        ResourceType::Rootfs => &rootfs::SCHEMA,
        ResourceType::ContainerRuntime => &container_runtime::SCHEMA,
        ResourceType::Registry => &registry::SCHEMA,
        ResourceType::RegistryClient => &registry_client::SCHEMA,
        ResourceType::KubernetesInit => &kubernetes_init::SCHEMA,
        ResourceType::KubernetesMaster => &kubernetes_join::MASTER_SCHEMA,
        ResourceType::KubernetesWorker => &kubernetes_join::WORKER_SCHEMA,
        ResourceType::NodeMeta => &node_meta::SCHEMA,
        ResourceType::ImagePolicy => &image_policy::SCHEMA,
        ResourceType::Plugin => &plugin::SCHEMA,
        ResourceType::App => &app::SCHEMA,
    }
}

/// What `desired` lives on: its kind's foundations, or for a plugin what its phase makes
/// it depend on.
pub fn lives_on(desired: &Desired) -> &'static [Foundation] {
    match desired.resource_type {
        ResourceType::Plugin => plugin::lives_on(&desired.attributes),
        t => schema(t).lives_on,
    }
}

impl Schema {
    /// A desired resource of this kind with `attributes` (a kind's typed struct).
    pub fn desired<T: Serialize>(
        &self,
        address: String,
        host: Option<&str>,
        attributes: &T,
        depends_on: Vec<String>,
    ) -> Desired {
        let attributes = to_attributes(attributes);
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        Desired {
            sensitive: names(self.sensitive)
                .into_iter()
                .filter(|n| attributes.contains_key(n))
                .collect(),
            computed: names(self.computed),
            replace_on: names(self.replace_on),
            address,
            resource_type: self.resource_type,
            host: host.map(str::to_string),
            attributes,
            depends_on,
        }
    }
}

/// A kind's typed attributes as a plan's attribute map. An absent value is not an
/// attribute (`null`s are dropped), so adding an optional field to a kind changes no plan.
pub fn to_attributes<T: Serialize>(attributes: &T) -> Attributes {
    match serde_json::to_value(attributes) {
        Ok(serde_json::Value::Object(map)) => {
            map.into_iter().filter(|(_, v)| !v.is_null()).collect()
        }
        _ => Attributes::new(),
    }
}

/// The typed attributes of `address`, read back from a plan or the state. A map that does
/// not fit its kind (a state written by another sealer, a damaged record) is an error that
/// names the resource, never a guess.
pub fn from_attributes<T: DeserializeOwned>(
    address: &str,
    attributes: &Attributes,
) -> Result<T, String> {
    let map: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| format!("{address}: its recorded attributes do not fit its kind: {e}"))
}

/// The typed attributes a step works from: `attributes` is the change's `after()` for a
/// create or update, its `before` for a destroy. A change without them is a plan that does
/// not fit its action, reported as the step's failure rather than run with guessed values.
pub(crate) fn step_attributes<T: DeserializeOwned>(
    change: &Change,
    attributes: Option<&Attributes>,
) -> Result<T, StepFailure> {
    let attributes = attributes.ok_or_else(|| {
        StepFailure::message(format!(
            "{}: the plan has no attributes for it",
            change.address
        ))
    })?;
    from_attributes(&change.address, attributes).map_err(StepFailure::message)
}

/// The host a step runs on: its own, or master0 for cluster-wide resources.
pub(crate) fn step_host(r: &Runner, change: &Change) -> String {
    change.host.clone().unwrap_or_else(|| r.ctx.master0.clone())
}

/// Why an update of this kind happens, in words, when the kind can say more than the names
/// of the changed attributes.
pub fn describe_update(
    resource_type: ResourceType,
    before: &Attributes,
    after: &Attributes,
    changed: &BTreeSet<String>,
) -> Option<String> {
    match resource_type {
        ResourceType::App => app::describe_update(before, after, changed),
        ResourceType::Rootfs => rootfs::describe_update(before, after),
        ResourceType::KubernetesWorker => kubernetes_join::describe_update(before, after, changed),
        ResourceType::RegistryClient => registry_client::describe_update(before, after, changed),
        _ => None,
    }
}
