//! Teardown plugins: the `pre-/post-uninstall` and `pre-/post-clean-host` phases.
//!
//! They are recorded when applied ("armed"), without running, so that a destroy planned from
//! the state alone still has them; they run when what they tear down goes: the uninstall
//! phases when the plan destroys `kubernetes.init` (the cluster), the clean-host phases when
//! it destroys their host. Any other removal (the plugin left the Clusterfile, its host
//! stays) forgets them without running. The plan says which, and the executor decides with
//! the same [`Teardown`] of the same changes, so what runs is what the plan said.

use super::order::{Node, topological};
use super::{Action, Change};
use crate::kinds::plugin;
use crate::resource::ResourceType;
use std::collections::{BTreeMap, BTreeSet};

/// The phases that run around destroys, in the order they run.
pub const PHASES: [&str; 4] = [
    "pre-uninstall",
    "pre-clean-host",
    "post-clean-host",
    "post-uninstall",
];

/// Whether `phase` is a teardown phase.
pub fn is_teardown_phase(phase: &str) -> bool {
    PHASES.contains(&phase)
}

/// The phase of a plugin change (from what it will be, or for a delete what it was), when
/// it is a teardown plugin.
pub fn phase_of(change: &Change) -> Option<&str> {
    if change.resource_type != ResourceType::Plugin {
        return None;
    }
    change
        .after()
        .or(change.before.as_ref())
        .and_then(plugin::phase_of)
        .filter(|p| is_teardown_phase(p))
}

/// What a plan tears down: the cluster, and hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    pub cluster: bool,
    pub hosts: BTreeSet<String>,
}

impl Teardown {
    pub fn of(changes: &[Change]) -> Teardown {
        let mut t = Teardown::default();
        for c in changes.iter().filter(|c| c.action == Action::Delete) {
            match c.resource_type {
                ResourceType::KubernetesInit => t.cluster = true,
                ResourceType::Host => t.hosts.extend(c.host.clone()),
                _ => {}
            }
        }
        t
    }

    /// Whether deleting this teardown plugin runs it (rather than forgetting it).
    pub fn runs(&self, change: &Change) -> bool {
        if change.action != Action::Delete {
            return false;
        }
        match phase_of(change) {
            Some("pre-uninstall" | "post-uninstall") => self.cluster,
            Some(_) => change.host.as_ref().is_some_and(|h| self.hosts.contains(h)),
            None => false,
        }
    }
}

/// Says in each teardown plugin's reason what it will do, and orders the deletes so that
/// running ones surround what they tear down.
pub fn arrange(changes: Vec<Change>) -> Vec<Change> {
    let teardown = Teardown::of(&changes);
    let mut changes = changes;
    for c in changes.iter_mut() {
        let Some(phase) = phase_of(c).map(str::to_string) else {
            continue;
        };
        let cluster_phase = phase.ends_with("uninstall");
        let note = match c.action {
            Action::Delete if teardown.runs(c) => format!("runs now, at {phase}"),
            Action::Delete if cluster_phase => {
                "forgotten without running: the cluster is not destroyed".to_string()
            }
            Action::Delete => "forgotten without running: its host stays".to_string(),
            _ if cluster_phase => "runs only when the cluster is destroyed".to_string(),
            _ => "runs only when its host leaves the cluster".to_string(),
        };
        c.reason = format!("{}; {note}", c.reason);
    }
    order_deletes(changes, &teardown)
}

/// Deletes come first in a plan, dependents first. A running teardown plugin is given the
/// dependencies that put it at its phase: `pre-uninstall` before every other delete,
/// `pre-clean-host` before its host's, `post-clean-host` after its host's (but before its
/// rootfs, where it runs), `post-uninstall` after all but the rootfs and host resources.
fn order_deletes(changes: Vec<Change>, teardown: &Teardown) -> Vec<Change> {
    let split = changes
        .iter()
        .position(|c| c.action != Action::Delete)
        .unwrap_or(changes.len());
    let running: Vec<usize> = (0..split).filter(|&i| teardown.runs(&changes[i])).collect();
    if running.is_empty() {
        return changes;
    }
    let mut changes = changes;
    let is_plugin = |c: &Change| phase_of(c).is_some();
    let last = |c: &Change| matches!(c.resource_type, ResourceType::Rootfs | ResourceType::Host);
    // `a` is deleted before `b` when `a` depends on `b`.
    let mut before: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for &p in &running {
        let phase = phase_of(&changes[p]).unwrap_or_default().to_string();
        let host = changes[p].host.clone();
        for i in (0..split).filter(|&i| i != p) {
            let other = &changes[i];
            let same_host = other.host == host;
            match phase.as_str() {
                "pre-uninstall" if phase_of(other) != Some("pre-uninstall") => {
                    before.entry(p).or_default().push(other.address.clone());
                }
                "pre-clean-host" if same_host && !is_plugin(other) => {
                    before.entry(p).or_default().push(other.address.clone());
                }
                "post-clean-host" if same_host && !is_plugin(other) && !last(other) => {
                    before
                        .entry(i)
                        .or_default()
                        .push(changes[p].address.clone());
                }
                "post-uninstall" if !last(other) && phase_of(other) != Some("post-uninstall") => {
                    before
                        .entry(i)
                        .or_default()
                        .push(changes[p].address.clone());
                }
                _ => {}
            }
        }
    }
    for (i, extra) in before {
        for address in extra {
            if !changes[i].depends_on.contains(&address) {
                changes[i].depends_on.push(address);
            }
        }
    }
    let nodes: Vec<Node> = changes[..split]
        .iter()
        .map(|c| Node {
            address: &c.address,
            depends_on: &c.depends_on,
        })
        .collect();
    let Ok(mut order) = topological(&nodes) else {
        return changes;
    };
    order.reverse();
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let mut out: Vec<Change> = order.iter().filter_map(|&i| slots[i].take()).collect();
    out.extend(slots.into_iter().flatten());
    out
}
