//! Resources: the unit that graphs are made of, plans change, the executor applies and the
//! state records. See `deploy.md` of the spec for the model; addresses are user interface.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The kinds of resource a cluster is made of, in the order `deploy.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Host,
    Rootfs,
    ContainerRuntime,
    Registry,
    RegistryClient,
    KubernetesInit,
    KubernetesMaster,
    KubernetesWorker,
    NodeMeta,
    ImagePolicy,
    Plugin,
    App,
}

impl ResourceType {
    pub const ALL: [ResourceType; 12] = [
        ResourceType::Host,
        ResourceType::Rootfs,
        ResourceType::ContainerRuntime,
        ResourceType::Registry,
        ResourceType::RegistryClient,
        ResourceType::KubernetesInit,
        ResourceType::KubernetesMaster,
        ResourceType::KubernetesWorker,
        ResourceType::NodeMeta,
        ResourceType::ImagePolicy,
        ResourceType::Plugin,
        ResourceType::App,
    ];

    /// The name used in addresses, state rows and plan JSON (`container_runtime`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Host => "host",
            ResourceType::Rootfs => "rootfs",
            ResourceType::ContainerRuntime => "container_runtime",
            ResourceType::Registry => "registry",
            ResourceType::RegistryClient => "registry_client",
            ResourceType::KubernetesInit => "kubernetes_init",
            ResourceType::KubernetesMaster => "kubernetes_master",
            ResourceType::KubernetesWorker => "kubernetes_worker",
            ResourceType::NodeMeta => "node_meta",
            ResourceType::ImagePolicy => "image_policy",
            ResourceType::Plugin => "plugin",
            ResourceType::App => "app",
        }
    }

    pub fn parse(text: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether destroying or replacing this kind disrupts workloads (spec plan-output.md).
    pub fn disruptive(self) -> bool {
        matches!(
            self,
            ResourceType::ContainerRuntime
                | ResourceType::Registry
                | ResourceType::KubernetesInit
                | ResourceType::KubernetesMaster
                | ResourceType::KubernetesWorker
        )
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Attribute values are JSON values: strings, numbers, lists and maps of them.
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// What the configuration wants a resource to be: the output of graph compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Stable address, e.g. `host.192.168.0.2`, `kubernetes.init`, `app.nginx`.
    pub address: String,
    pub resource_type: ResourceType,
    /// The host the resource's steps run on (an IP), if any.
    pub host: Option<String>,
    pub attributes: Attributes,
    /// Attributes whose values are digests of secrets; rendered as `(sensitive value)`.
    pub sensitive: BTreeSet<String>,
    /// Attributes known only after apply (e.g. a host's `arch`); never compared.
    pub computed: BTreeSet<String>,
    /// Attributes that cannot change in place: a change replaces the resource.
    pub replace_on: BTreeSet<String>,
    /// Addresses this resource depends on (they are created first, destroyed last). What a
    /// replacement takes with it is the plan's `cascade`, not a dependency.
    pub depends_on: Vec<String>,
}

/// The status of a recorded resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its last step finished.
    Ready,
    /// A step failed midway: the next plan replaces it.
    Tainted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::Tainted => "tainted",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "ready" => Some(Status::Ready),
            "tainted" => Some(Status::Tainted),
            _ => None,
        }
    }
}

/// What the state holds about a resource: the attributes it was applied with (computed
/// ones filled in), its status, and its dependencies (needed to destroy it in order once it
/// has left the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub address: String,
    pub resource_type: ResourceType,
    pub host: Option<String>,
    pub attributes: Attributes,
    pub sensitive: BTreeSet<String>,
    pub status: Status,
    pub depends_on: Vec<String>,
    /// What a refresh found different on its host: the next plan repairs it. Set by
    /// `sealer apply --refresh-only` (recorded) or by `plan --refresh` (this plan's reads);
    /// cleared when the resource is recorded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// Drift of a recorded resource: there but not as recorded, or not there at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Not there any more (rather than there but different).
    pub gone: bool,
    /// What was found, in words an operator can check by hand.
    pub findings: Vec<String>,
    /// The state serial that recorded it; `None` when this plan's own reads found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<u64>,
}

impl Recorded {
    /// The record of a desired resource whose step just finished.
    pub fn applied(desired: &Desired, computed: Attributes) -> Recorded {
        let mut attributes = desired.attributes.clone();
        attributes.extend(computed);
        Recorded {
            address: desired.address.clone(),
            resource_type: desired.resource_type,
            host: desired.host.clone(),
            attributes,
            sensitive: desired.sensitive.clone(),
            status: Status::Ready,
            depends_on: desired.depends_on.clone(),
            drift: None,
        }
    }
}
