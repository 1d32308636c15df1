//! What a replacement takes with it (`deploy.md`, "What lives on what"): replacing a
//! resource destroys it first, and what lived on it is gone too, so the plan replaces that
//! as well and says why. Each kind declares what it lives on (`kinds::Schema::lives_on`);
//! this maps a foundation to the resource that is it, and says why it takes the rest. Read
//! by the plan only: the executor then runs each replacement as planned and decides nothing.

use crate::kinds::{self, Foundation};
use crate::resource::Desired;
use std::collections::HashSet;

/// A replacement that takes `address` with it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenWith {
    pub cause: String,
    pub why: &'static str,
}

/// The first replacement among `replaced` (addresses already planned as replaced, in plan
/// order) that takes `want` with it. Foundations are checked from the widest (the host) to
/// the narrowest (the node), so the reason names the root of the cascade.
pub fn taken_with(want: &Desired, replaced: &HashSet<&str>) -> Option<TakenWith> {
    let host = want.host.as_deref();
    kinds::lives_on(want).iter().find_map(|foundation| {
        let (causes, why) = foundation_of(*foundation, host);
        causes
            .into_iter()
            .find(|cause| replaced.contains(cause.as_str()) && *cause != want.address)
            .map(|cause| TakenWith { cause, why })
    })
}

/// The resources that are `foundation` for a resource on `host`, and what replacing them
/// does.
fn foundation_of(foundation: Foundation, host: Option<&str>) -> (Vec<String>, &'static str) {
    let on_host = |prefixes: &[&str]| -> Vec<String> {
        host.map(|ip| prefixes.iter().map(|p| format!("{p}.{ip}")).collect())
            .unwrap_or_default()
    };
    match foundation {
        Foundation::Host => (
            on_host(&["host"]),
            "a replaced host keeps nothing that ran on it",
        ),
        Foundation::ContainerRuntime => (
            on_host(&["container_runtime"]),
            "uninstalling the container runtime removes its containers",
        ),
        Foundation::Etcd => (
            vec![kinds::kubernetes_init::ADDRESS.to_string()],
            "kubeadm reset wipes etcd",
        ),
        Foundation::Node => (
            on_host(&["kubernetes.master", "kubernetes.worker"]),
            "kubeadm reset removes the node",
        ),
    }
}

/// The reason of a change taken with another: "replaced with kubernetes.init: kubeadm reset
/// wipes etcd".
pub fn reason(taken: &TakenWith) -> String {
    format!("replaced with {}: {}", taken.cause, taken.why)
}
