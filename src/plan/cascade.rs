//! What a replacement takes with it (`deploy.md`, "What lives on what"): replacing a
//! resource destroys it first, and what lived on it is gone too, so the plan replaces that
//! as well and says why. One table, read by the plan only: the executor then runs each
//! replacement as planned and decides nothing.

use crate::kinds::plugin;
use crate::resource::{Desired, ResourceType};
use std::collections::HashSet;

/// A replacement that takes `address` with it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenWith {
    pub cause: String,
    pub why: &'static str,
}

const RESET_WIPES_ETCD: &str = "kubeadm reset wipes etcd";
const RESET_REMOVES_NODE: &str = "kubeadm reset removes the node";
const RUNTIME_UNINSTALL: &str = "uninstalling the container runtime removes its containers";
const NEW_MACHINE: &str = "a replaced host keeps nothing that ran on it";

/// Plugin phases whose effect lives in the cluster's API (gone with etcd).
const CLUSTER_PHASES: [&str; 4] = [
    "post-install",
    "post-init-host",
    "pre-scaleup",
    "post-scaleup",
];

/// The first replacement among `replaced` (addresses already planned as replaced, in plan
/// order) that takes `want` with it. Causes are checked from the widest (the host) to the
/// narrowest (the node's join), so the reason names the root of the cascade.
pub fn taken_with(want: &Desired, replaced: &HashSet<&str>) -> Option<TakenWith> {
    let host = want.host.as_deref().unwrap_or_default();
    let hit = |cause: String, why: &'static str| {
        replaced
            .contains(cause.as_str())
            .then_some(TakenWith { cause, why })
    };
    let t = want.resource_type;
    let on_host = want.host.is_some();
    if on_host
        && t != ResourceType::Host
        && let Some(found) = hit(format!("host.{host}"), NEW_MACHINE)
    {
        return Some(found);
    }
    if on_host
        && lives_in_runtime(t)
        && let Some(found) = hit(format!("container_runtime.{host}"), RUNTIME_UNINSTALL)
    {
        return Some(found);
    }
    if lives_in_etcd(want)
        && let Some(found) = hit("kubernetes.init".to_string(), RESET_WIPES_ETCD)
    {
        return Some(found);
    }
    if on_host && lives_on_node(want) {
        for join in ["kubernetes.master", "kubernetes.worker"] {
            if let Some(found) = hit(format!("{join}.{host}"), RESET_REMOVES_NODE) {
                return Some(found);
            }
        }
    }
    None
}

/// The reason of a change taken with another: "replaced with kubernetes.init: kubeadm reset
/// wipes etcd".
pub fn reason(taken: &TakenWith) -> String {
    format!("replaced with {}: {}", taken.cause, taken.why)
}

/// Runs inside the host's container runtime: its containers or its configuration.
fn lives_in_runtime(t: ResourceType) -> bool {
    matches!(
        t,
        ResourceType::Registry
            | ResourceType::RegistryClient
            | ResourceType::KubernetesInit
            | ResourceType::KubernetesMaster
            | ResourceType::KubernetesWorker
            | ResourceType::NodeMeta
    )
}

/// Exists only in the cluster's API, or as a member of it.
fn lives_in_etcd(want: &Desired) -> bool {
    match want.resource_type {
        ResourceType::KubernetesMaster
        | ResourceType::KubernetesWorker
        | ResourceType::NodeMeta
        | ResourceType::ImagePolicy
        | ResourceType::App => true,
        ResourceType::Plugin => {
            plugin::phase_of(&want.attributes).is_some_and(|p| CLUSTER_PHASES.contains(&p))
        }
        _ => false,
    }
}

/// Belongs to one node: its labels and taints, and what runs after it joined.
fn lives_on_node(want: &Desired) -> bool {
    match want.resource_type {
        ResourceType::NodeMeta => true,
        ResourceType::Plugin => plugin::phase_of(&want.attributes) == Some("post-init-host"),
        _ => false,
    }
}
