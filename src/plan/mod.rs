//! Plans: the difference between what the configuration wants (a graph of [`Desired`]
//! resources) and what the state recorded, as ordered changes with reasons; and their
//! renderings for people (terminal), machines (JSON) and pull requests (Markdown).
//!
//! Everything here is pure: same inputs, byte-identical outputs.

pub mod cascade;
pub mod context;
mod diff;
pub mod distribution;
pub mod human;
pub mod json;
pub mod markdown;
pub mod order;
pub mod rekey;
pub mod saved;
pub mod teardown;
pub mod upgrade;

pub use diff::{Current, PlanOptions, diff};

use crate::resource::{Attributes, Desired, ResourceType};
use std::collections::BTreeSet;

/// The version of the plan JSON (`state-schema/plan.schema.json`); saved plans have their own.
pub const FORMAT_VERSION: &str = "2.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// The marker Terraform users read: `+`, `~`, `-/+`, `-`.
    pub fn marker(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// "will be created", ... as the human plan says it.
    pub fn phrase(self) -> &'static str {
        match self {
            Action::Create => "will be created",
            Action::Update => "will be updated in place",
            Action::Replace => "must be replaced",
            Action::Delete => "will be destroyed",
        }
    }
}

/// Why a change is in the plan, for machines and for the executor (which never reads the
/// reason's words). Modelled on Terraform's `action_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonCode {
    /// Not in the state yet.
    NewInConfiguration,
    /// Attributes that can change in place changed.
    UpdateAttributesChanged,
    /// An attribute that cannot change in place changed.
    ReplaceBecauseCannotUpdate,
    /// A step failed midway (or was interrupted): what is there is unknown.
    ReplaceBecauseTainted,
    /// `--replace ADDR`.
    ReplaceByRequest,
    /// Something it lives on is replaced ([`Change::caused_by`] names it).
    ReplaceBecauseDependencyReplaced,
    /// It left the configuration.
    DeleteBecauseNoResourceConfig,
    /// `sealer destroy`.
    DeleteBecauseDestroy,
    /// A refresh found it changed or gone on its host; re-running its step repairs it.
    UpdateBecauseDrifted,
    /// A refresh found it changed or gone on its host, and only a new one repairs it (a
    /// node that left the cluster joins again).
    ReplaceBecauseDrifted,
    /// The cluster image brings another Kubernetes version: kubeadm upgrades it in place.
    UpdateBecauseKubernetesUpgrade,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 11] = [
        ReasonCode::NewInConfiguration,
        ReasonCode::UpdateAttributesChanged,
        ReasonCode::ReplaceBecauseCannotUpdate,
        ReasonCode::ReplaceBecauseTainted,
        ReasonCode::ReplaceByRequest,
        ReasonCode::ReplaceBecauseDependencyReplaced,
        ReasonCode::DeleteBecauseNoResourceConfig,
        ReasonCode::DeleteBecauseDestroy,
        ReasonCode::UpdateBecauseDrifted,
        ReasonCode::ReplaceBecauseDrifted,
        ReasonCode::UpdateBecauseKubernetesUpgrade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::NewInConfiguration => "new_in_configuration",
            ReasonCode::UpdateAttributesChanged => "update_attributes_changed",
            ReasonCode::ReplaceBecauseCannotUpdate => "replace_because_cannot_update",
            ReasonCode::ReplaceBecauseTainted => "replace_because_tainted",
            ReasonCode::ReplaceByRequest => "replace_by_request",
            ReasonCode::ReplaceBecauseDependencyReplaced => "replace_because_dependency_replaced",
            ReasonCode::DeleteBecauseNoResourceConfig => "delete_because_no_resource_config",
            ReasonCode::DeleteBecauseDestroy => "delete_because_destroy",
            ReasonCode::UpdateBecauseDrifted => "update_because_drifted",
            ReasonCode::ReplaceBecauseDrifted => "replace_because_drifted",
            ReasonCode::UpdateBecauseKubernetesUpgrade => "update_because_kubernetes_upgrade",
        }
    }

    pub fn parse(text: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub address: String,
    pub resource_type: ResourceType,
    pub host: Option<String>,
    pub action: Action,
    /// Why, in words: `new in configuration`, `attribute version changed`, ...
    pub reason: String,
    /// Why, as a code: what tools and the executor go by.
    pub reason_code: ReasonCode,
    /// The replacement that takes this resource with it (`kubernetes.init`), if any.
    pub caused_by: Option<String>,
    pub disruptive: bool,
    /// Recorded attributes (None for a create).
    pub before: Option<Attributes>,
    /// Attributes whose values must never be shown.
    pub sensitive: BTreeSet<String>,
    /// Attributes known only after apply.
    pub computed: BTreeSet<String>,
    /// Attributes whose change forced the replacement.
    pub forcing: BTreeSet<String>,
    pub depends_on: Vec<String>,
    /// What the executor needs to carry this change out (None for a delete).
    pub desired: Option<Desired>,
}

impl Change {
    /// Desired attributes (None for a delete): those of [`Change::desired`], kept once
    /// (a 5,000-host plan holds 30,000 of them).
    pub fn after(&self) -> Option<&Attributes> {
        self.desired.as_ref().map(|d| &d.attributes)
    }

    /// Attribute names whose values differ between before and after (computed ones aside).
    pub fn changed_attributes(&self) -> Vec<String> {
        let (Some(before), Some(after)) = (&self.before, self.after()) else {
            return Vec::new();
        };
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        keys.into_iter()
            .filter(|k| !self.computed.contains(*k))
            .filter(|k| before.get(*k) != after.get(*k))
            .cloned()
            .collect()
    }
}

/// `Plan: X to add, Y to change, Z to destroy.` A replace counts as one add and one destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub unchanged: usize,
}

impl Summary {
    pub fn line(&self) -> String {
        format!(
            "Plan: {} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        )
    }
}

/// A plan for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub cluster: String,
    /// The state this plan was made against: `None` for a cluster with no state yet.
    pub lineage: Option<String>,
    pub serial: u64,
    /// Changes in execution order (destroys of removed resources first, in reverse
    /// dependency order; then the rest in dependency order; ties broken by address).
    pub changes: Vec<Change>,
    pub unchanged: usize,
    /// Whether this plan destroys the whole cluster (`sealer destroy`).
    pub destroy: bool,
    /// `--target` addresses: the plan is partial, limited to them and what they need.
    pub targets: Vec<String>,
    /// `--replace` addresses.
    pub replace: Vec<String>,
    /// `--max-unavailable`: how many workers a Kubernetes upgrade drains at once.
    pub max_unavailable: usize,
    /// `--rootfs-distribution`: whether hosts send the rootfs on to others
    /// ([`distribution`]).
    pub rootfs_distribution: distribution::Mode,
    /// What every step shares, decided with the plan (`context`).
    pub context: context::Context,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            unchanged: self.unchanged,
            ..Summary::default()
        };
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn is_new_cluster(&self) -> bool {
        self.lineage.is_none()
    }
}

#[cfg(test)]
mod tests;
