//! Where each host's rootfs comes from: the operator, or a host that already got it in
//! the same apply (`--rootfs-distribution tree`, the default). A pure function of the
//! plan, so the same plan always makes the same tree, and the plan can show it.
//!
//! The receivers are the plan's rootfs creates, updates and replaces, in plan order, hosts
//! that get the registry's data first (a seeder without it cannot send it). Receiver 0
//! gets its files from the operator; receiver `k` from receiver `k - 2^⌊log2 k⌋`, so the
//! hosts holding the content double each round: 0 → 1; 0 → 2, 1 → 3; 0 → 4, … 3 → 7.
//! A seeder serves its receivers one after the other (each waits for the one before it,
//! or for the seeder itself): the executor runs that as ordering only, so a receiver whose
//! seeder failed still runs, directly from the operator.

use super::{Action, Change};
use crate::resource::ResourceType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `--rootfs-distribution`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Hosts that got the rootfs send it on (O(log N) rounds).
    #[default]
    Tree,
    /// Every host gets it from the operator.
    Direct,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tree => "tree",
            Mode::Direct => "direct",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Mode::Tree
    }
}

/// Where one host's rootfs files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Operator,
    /// The host (IP) that got them earlier in the same apply.
    Seeder(String),
}

impl Source {
    /// `from the operator`, `from 10.0.0.2`: what the plan and the output say.
    pub fn describe(&self) -> String {
        match self {
            Source::Operator => "from the operator".to_string(),
            Source::Seeder(ip) => format!("from {ip}"),
        }
    }
}

/// The tree of one plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// By rootfs change address; empty when nothing is distributed (direct mode, or one
    /// receiver or none: then every sync is the plain direct one).
    pub sources: BTreeMap<String, Source>,
    /// `(before, after)` change indices: `after` starts once `before` ended, whatever its
    /// outcome.
    pub order: Vec<(usize, usize)>,
}

impl Tree {
    pub fn source(&self, address: &str) -> Option<&Source> {
        self.sources.get(address)
    }
}

/// The seeder of receiver `k` (k ≥ 1): the one `2^⌊log2 k⌋` places before it.
pub fn seeder_of(k: usize) -> usize {
    debug_assert!(k > 0);
    k - (1 << k.ilog2())
}

/// What receiver `k` (k ≥ 1) waits for: its seeder's previous receiver, or the seeder.
pub fn waits_for(k: usize) -> usize {
    let seeder = seeder_of(k);
    let step = 1usize << k.ilog2();
    if step / 2 > seeder {
        seeder + step / 2
    } else {
        seeder
    }
}

/// The tree of `changes` (a plan's, in order).
pub fn tree(changes: &[Change], mode: Mode) -> Tree {
    if mode == Mode::Direct {
        return Tree::default();
    }
    let mut receivers: Vec<(bool, usize)> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.resource_type == ResourceType::Rootfs
                && c.host.is_some()
                && matches!(c.action, Action::Create | Action::Update | Action::Replace)
        })
        .map(|(i, c)| {
            let registry = c
                .after()
                .and_then(|a| a.get("registry_data"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            (!registry, i)
        })
        .collect();
    if receivers.len() < 2 {
        return Tree::default();
    }
    // Registry hosts first (stable: plan order within each group), so every registry
    // host's seeder is a registry host too (seeders always come earlier).
    receivers.sort();
    let mut out = Tree::default();
    for (k, &(_, i)) in receivers.iter().enumerate() {
        let source = if k == 0 {
            Source::Operator
        } else {
            let seeder = receivers[seeder_of(k)].1;
            out.order.push((receivers[waits_for(k)].1, i));
            Source::Seeder(changes[seeder].host.clone().unwrap_or_default())
        };
        out.sources.insert(changes[i].address.clone(), source);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ReasonCode;
    use crate::resource::{Attributes, Desired};
    use serde_json::json;

    fn rootfs(ip: &str, registry: bool, action: Action) -> Change {
        let mut attributes = Attributes::new();
        attributes.insert("registry_data".to_string(), json!(registry));
        Change {
            address: format!("rootfs.{ip}"),
            resource_type: ResourceType::Rootfs,
            host: Some(ip.to_string()),
            action,
            reason: String::new(),
            reason_code: ReasonCode::NewInConfiguration,
            caused_by: None,
            disruptive: false,
            before: None,
            sensitive: Default::default(),
            computed: Default::default(),
            forcing: Default::default(),
            depends_on: Vec::new(),
            desired: Some(Desired {
                address: format!("rootfs.{ip}"),
                resource_type: ResourceType::Rootfs,
                host: Some(ip.to_string()),
                attributes,
                sensitive: Default::default(),
                computed: Default::default(),
                replace_on: Default::default(),
                depends_on: Vec::new(),
            }),
        }
    }

    fn hosts(n: usize) -> Vec<Change> {
        (0..n)
            .map(|i| rootfs(&format!("10.0.0.{}", 10 + i), i == 0, Action::Create))
            .collect()
    }

    #[test]
    fn seeders_double_each_round() {
        let seeders: Vec<usize> = (1..8).map(seeder_of).collect();
        assert_eq!(seeders, [0, 0, 1, 0, 1, 2, 3]);
        // Each seeder serves one receiver at a time: 4 after 2 after 1 (seeder 0).
        let waits: Vec<usize> = (1..8).map(waits_for).collect();
        assert_eq!(waits, [0, 1, 1, 2, 3, 2, 3]);
        for k in 1..1000 {
            assert!(seeder_of(k) < k && waits_for(k) < k);
        }
    }

    #[test]
    fn the_tree_is_a_function_of_the_plan() {
        let changes = hosts(8);
        let tree = super::tree(&changes, Mode::Tree);
        assert_eq!(tree, super::tree(&changes, Mode::Tree));
        let from = |ip: &str| tree.source(&format!("rootfs.{ip}")).unwrap().describe();
        assert_eq!(from("10.0.0.10"), "from the operator");
        assert_eq!(from("10.0.0.11"), "from 10.0.0.10");
        assert_eq!(from("10.0.0.13"), "from 10.0.0.11");
        assert_eq!(from("10.0.0.17"), "from 10.0.0.13");
        assert_eq!(tree.order.len(), 7);
        assert!(tree.order.contains(&(1, 2)) && tree.order.contains(&(2, 4)));
        // At most one operator receiver, and a host never seeds itself.
        let operator = tree
            .sources
            .values()
            .filter(|s| **s == Source::Operator)
            .count();
        assert_eq!(operator, 1);
    }

    #[test]
    fn registry_hosts_are_seeded_by_registry_hosts() {
        let mut changes = hosts(6);
        changes[3] = rootfs("10.0.0.13", true, Action::Update);
        changes[5] = rootfs("10.0.0.15", true, Action::Replace);
        let tree = super::tree(&changes, Mode::Tree);
        // Registry hosts 10, 13, 15 come first: 10 → 13, 10 → 15.
        assert_eq!(
            tree.source("rootfs.10.0.0.13"),
            Some(&Source::Seeder("10.0.0.10".into()))
        );
        assert_eq!(
            tree.source("rootfs.10.0.0.15"),
            Some(&Source::Seeder("10.0.0.10".into()))
        );
        assert_eq!(
            tree.source("rootfs.10.0.0.11"),
            Some(&Source::Seeder("10.0.0.13".into()))
        );
    }

    #[test]
    fn direct_one_receiver_and_deletes_make_no_tree() {
        assert_eq!(super::tree(&hosts(8), Mode::Direct), Tree::default());
        assert_eq!(super::tree(&hosts(1), Mode::Tree), Tree::default());
        let mut changes = hosts(2);
        changes[1].action = Action::Delete;
        assert_eq!(super::tree(&changes, Mode::Tree), Tree::default());
    }
}
