//! Desired resources × recorded state → ordered changes with reasons.

use super::order::{Node, topological};
use super::upgrade::Upgrade;
use super::{Action, Change, Plan, ReasonCode, cascade};
use crate::diag::{Diagnostic, Error, Result};
use crate::kinds::plugin;
use crate::resource::{Desired, Drift, Recorded, ResourceType, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The recorded state of the cluster a plan is made against.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub lineage: &'a str,
    pub serial: u64,
    pub resources: &'a BTreeMap<String, Recorded>,
}

/// What the user asked of the plan beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--target ADDR`: only these resources and what they depend on.
    pub targets: Vec<String>,
    /// `--replace ADDR`: replace these even if unchanged.
    pub replace: Vec<String>,
    /// `sealer destroy`: every recorded resource goes.
    pub destroy: bool,
    /// `--max-unavailable`: workers a Kubernetes upgrade drains at once (0 counts as 1).
    pub max_unavailable: usize,
    /// `--rootfs-distribution`.
    pub rootfs_distribution: super::distribution::Mode,
}

/// Attributes whose change is a plan error rather than a change, with why.
fn unsupported_change(resource_type: ResourceType, attribute: &str) -> Option<&'static str> {
    match resource_type {
        ResourceType::KubernetesInit => {
            crate::kinds::kubernetes_init::unsupported_change(attribute)
        }
        _ => None,
    }
}

pub fn diff(
    cluster: &str,
    desired: &[Desired],
    current: Option<Current<'_>>,
    options: &PlanOptions,
) -> Result<Plan> {
    let empty = BTreeMap::new();
    let recorded = current.map_or(&empty, |c| c.resources);
    let desired: &[Desired] = if options.destroy { &[] } else { desired };
    let mut errors: Vec<Diagnostic> = Vec::new();

    let desired_by_address: HashMap<&str, &Desired> =
        desired.iter().map(|d| (d.address.as_str(), d)).collect();
    for address in &options.replace {
        if !recorded.contains_key(address) {
            errors.push(
                Diagnostic::error(format!("cannot replace {address}: it is not in the state"))
                    .hint("`sealer state list` shows the recorded resources"),
            );
        }
    }
    for address in &options.targets {
        if !recorded.contains_key(address) && !desired_by_address.contains_key(address.as_str()) {
            errors.push(
                Diagnostic::error(format!(
                    "--target {address}: no such resource in the configuration or the state"
                ))
                .hint("`sealer graph` and `sealer state list` show the addresses"),
            );
        }
    }

    let nodes: Vec<Node> = desired
        .iter()
        .map(|d| Node {
            address: &d.address,
            depends_on: &d.depends_on,
        })
        .collect();
    let order = topological(&nodes).map_err(cycle_error)?;

    let replace_requested: BTreeSet<&str> = options.replace.iter().map(String::as_str).collect();
    let upgrade = if options.destroy {
        None
    } else {
        super::upgrade::detect(desired, recorded, &mut errors)
    };
    // Replaced so far, in plan order: what lives on them is taken with them (`cascade`).
    let mut replaced: HashSet<&str> = HashSet::new();
    let mut forward: Vec<Change> = Vec::new();
    let mut unchanged = 0;
    for &i in &order {
        let want = &desired[i];
        let Some(have) = recorded.get(&want.address) else {
            forward.push(change(
                want,
                None,
                Action::Create,
                "new in configuration".into(),
                BTreeSet::new(),
            ));
            continue;
        };
        let changed = changed_attributes(want, have);
        for attribute in &changed {
            if let Some(why) = unsupported_change(want.resource_type, attribute) {
                errors.push(Diagnostic::error(format!(
                    "{}: {why} ({attribute}: {} -> {})",
                    want.address,
                    show(have.attributes.get(attribute)),
                    show(want.attributes.get(attribute)),
                )));
            }
        }
        if let Some(drift) = &have.drift
            && crate::kinds::drift_repair(want.resource_type, drift.gone).is_none()
            && have.status != Status::Tainted
            && !replace_requested.contains(want.address.as_str())
        {
            errors.push(
                Diagnostic::error(format!("{}: {}", want.address, drift_reason(drift))).hint(
                    format!(
                        "only a new `kubeadm init` repairs this, and it takes every node with it: \
                         pass `--replace {}` if that is what you want; or repair it by hand and \
                         record that with `sealer apply --refresh-only`",
                        want.address
                    ),
                ),
            );
        }
        let upgrading = upgrade
            .as_ref()
            .and_then(|u| u.applies_to(want, have).map(|from| (u, from)));
        let forcing: BTreeSet<String> = changed
            .iter()
            .filter(|a| want.replace_on.contains(*a))
            .filter(|a| upgrading.is_none() || !Upgrade::covers(a))
            .cloned()
            .collect();
        let requested = replace_requested.contains(want.address.as_str());
        let (action, code, reason, caused_by) = decide(
            want, have, &changed, &forcing, requested, &replaced, upgrading,
        );
        match action {
            Some(action) => {
                if action == Action::Replace {
                    replaced.insert(&want.address);
                }
                let mut c = change(want, Some(have), action, reason, forcing);
                c.reason_code = code;
                // Taken with a replacement: its workloads go, whatever its kind.
                c.disruptive |= caused_by.is_some();
                c.caused_by = caused_by;
                forward.push(c);
            }
            None => unchanged += 1,
        }
    }

    let deletes = deletions(recorded, &desired_by_address, options.destroy);
    let mut changes = deletes;
    changes.extend(forward);
    let changes = drop_plugins_whose_phase_does_not_occur(changes, &mut unchanged);
    let changes = if options.targets.is_empty() {
        changes
    } else {
        keep_targets(changes, &options.targets, desired, recorded)
    };
    let mut changes = super::teardown::arrange(changes);
    if upgrade.is_some() {
        super::upgrade::order(&mut changes, options.max_unavailable);
    }

    if !errors.is_empty() {
        return Err(Error::many(errors));
    }
    Ok(Plan {
        cluster: cluster.to_string(),
        lineage: current.map(|c| c.lineage.to_string()),
        serial: current.map_or(0, |c| c.serial),
        changes,
        unchanged,
        destroy: options.destroy,
        targets: options.targets.clone(),
        replace: options.replace.clone(),
        max_unavailable: options.max_unavailable.max(1),
        rootfs_distribution: options.rootfs_distribution,
        context: Default::default(),
    })
}

/// What happens to a recorded resource the configuration still wants, and why; `None`
/// when nothing changes.
fn decide(
    want: &Desired,
    have: &Recorded,
    changed: &[String],
    forcing: &BTreeSet<String>,
    requested: bool,
    replaced: &HashSet<&str>,
    upgrading: Option<(&Upgrade, String)>,
) -> (Option<Action>, ReasonCode, String, Option<String>) {
    let replace = |code, reason| (Some(Action::Replace), code, reason, None);
    if have.status == Status::Tainted {
        replace(
            ReasonCode::ReplaceBecauseTainted,
            "tainted by a failed apply".to_string(),
        )
    } else if requested {
        replace(
            ReasonCode::ReplaceByRequest,
            format!("replace requested (--replace {})", want.address),
        )
    } else if let Some(taken) = cascade::taken_with(want, replaced) {
        // Before the resource's own forcing changes: those often derive from the cause (a
        // join's kubeadm_config_digest), and the cause is what the reviewer needs.
        (
            Some(Action::Replace),
            ReasonCode::ReplaceBecauseDependencyReplaced,
            cascade::reason(&taken),
            Some(taken.cause),
        )
    } else if !forcing.is_empty() {
        replace(
            ReasonCode::ReplaceBecauseCannotUpdate,
            changed_reason(want, have, forcing),
        )
    } else if let Some(drift) = &have.drift
        && let Some(action) = crate::kinds::drift_repair(want.resource_type, drift.gone)
    {
        let mut reason = drift_reason(drift);
        if !changed.is_empty() && action == Action::Update {
            reason.push_str(&format!(
                "; {}",
                changed_reason(want, have, &changed.iter().cloned().collect())
            ));
        }
        let code = match action {
            Action::Replace => ReasonCode::ReplaceBecauseDrifted,
            _ => ReasonCode::UpdateBecauseDrifted,
        };
        (Some(action), code, reason, None)
    } else if let Some((upgrade, from)) = upgrading
        && changed.iter().any(|a| Upgrade::covers(a))
    {
        let mut reason = upgrade.reason(want.resource_type, &from);
        let rest: BTreeSet<String> = changed
            .iter()
            .filter(|a| !Upgrade::covers(a))
            .cloned()
            .collect();
        if !rest.is_empty() {
            reason.push_str(&format!("; {}", changed_reason(want, have, &rest)));
        }
        (
            Some(Action::Update),
            ReasonCode::UpdateBecauseKubernetesUpgrade,
            reason,
            None,
        )
    } else if !changed.is_empty() {
        (
            Some(Action::Update),
            ReasonCode::UpdateAttributesChanged,
            changed_reason(want, have, &changed.iter().cloned().collect()),
            None,
        )
    } else {
        (
            None,
            ReasonCode::UpdateAttributesChanged,
            String::new(),
            None,
        )
    }
}

/// `drifted on its host: FINDING; FINDING`, saying when a refresh recorded it.
fn drift_reason(drift: &Drift) -> String {
    let what = if drift.gone {
        "gone from its host"
    } else {
        "drifted on its host"
    };
    let when = match drift.recorded_at {
        Some(serial) => format!(" (recorded by a refresh at state serial {serial})"),
        None => String::new(),
    };
    format!("{what}{when}: {}", drift.findings.join("; "))
}

fn cycle_error(cycles: Vec<Vec<String>>) -> Error {
    Error::many(
        cycles
            .into_iter()
            .map(|members| {
                Diagnostic::error(format!("dependency cycle between {}", members.join(", ")))
                    .hint("a resource cannot depend on itself through others; check plugin phases and app order")
            })
            .collect(),
    )
}

fn change(
    want: &Desired,
    have: Option<&Recorded>,
    action: Action,
    reason: String,
    forcing: BTreeSet<String>,
) -> Change {
    let mut sensitive = want.sensitive.clone();
    if let Some(h) = have {
        sensitive.extend(h.sensitive.iter().cloned());
    }
    Change {
        address: want.address.clone(),
        resource_type: want.resource_type,
        host: want.host.clone(),
        disruptive: action == Action::Replace && want.resource_type.disruptive(),
        action,
        reason,
        reason_code: ReasonCode::NewInConfiguration,
        caused_by: None,
        before: have.map(|h| h.attributes.clone()),
        sensitive,
        computed: want.computed.clone(),
        forcing,
        depends_on: want.depends_on.clone(),
        desired: Some(want.clone()),
    }
}

/// Attributes that differ, computed ones aside (they are only known after apply) and the
/// explanations (they change with what they explain, and say why; `Schema::explains`).
fn changed_attributes(want: &Desired, have: &Recorded) -> Vec<String> {
    let explains = crate::kinds::schema(want.resource_type).explains;
    let keys: BTreeSet<&String> = want
        .attributes
        .keys()
        .chain(have.attributes.keys())
        .filter(|k| !want.computed.contains(*k))
        .filter(|k| !explains.contains(&k.as_str()))
        .collect();
    keys.into_iter()
        .filter(|k| want.attributes.get(*k) != have.attributes.get(*k))
        .cloned()
        .collect()
}

/// `attribute X changed`, or what the kind says of its change (`files changed: ...`).
fn changed_reason(want: &Desired, have: &Recorded, attributes: &BTreeSet<String>) -> String {
    if let Some(words) = crate::kinds::describe_update(
        want.resource_type,
        &have.attributes,
        &want.attributes,
        attributes,
    ) {
        return words;
    }
    let names: Vec<&str> = attributes.iter().map(String::as_str).collect();
    match names.as_slice() {
        [one] => format!("attribute {one} changed"),
        many => format!("attributes {} changed", many.join(", ")),
    }
}

fn show(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(none)".to_string(),
    }
}

/// Recorded resources the configuration no longer has, dependents first.
fn deletions(
    recorded: &BTreeMap<String, Recorded>,
    desired: &HashMap<&str, &Desired>,
    destroy: bool,
) -> Vec<Change> {
    let gone: Vec<&Recorded> = recorded
        .values()
        .filter(|r| !desired.contains_key(r.address.as_str()))
        .collect();
    let nodes: Vec<Node> = gone
        .iter()
        .map(|r| Node {
            address: &r.address,
            depends_on: &r.depends_on,
        })
        .collect();
    // Recorded dependencies were acyclic when applied; if the state says otherwise, fall
    // back to address order rather than refuse to destroy.
    let mut order = topological(&nodes).unwrap_or_else(|_| (0..gone.len()).collect());
    order.reverse();
    let reason = if destroy {
        "the cluster is destroyed"
    } else {
        "removed from configuration"
    };
    order
        .into_iter()
        .map(|i| {
            let r = gone[i];
            let installed_by_run = r.resource_type == ResourceType::App
                && crate::kinds::app::installed_by_run(&r.attributes);
            let reason = if installed_by_run && !destroy {
                "installed by `sealer run`; list its image in Application spec.images to keep it"
            } else {
                reason
            };
            Change {
                address: r.address.clone(),
                resource_type: r.resource_type,
                host: r.host.clone(),
                action: Action::Delete,
                reason: reason.to_string(),
                reason_code: if destroy {
                    ReasonCode::DeleteBecauseDestroy
                } else {
                    ReasonCode::DeleteBecauseNoResourceConfig
                },
                caused_by: None,
                disruptive: r.resource_type.disruptive(),
                before: Some(r.attributes.clone()),
                sensitive: r.sensitive.clone(),
                computed: BTreeSet::new(),
                forcing: BTreeSet::new(),
                depends_on: r.depends_on.clone(),
                desired: None,
            }
        })
        .collect()
}

/// A plugin runs at its phase: when the plan does not contain its phase, a new or changed
/// plugin waits (it is not applied, so the next plan that has the phase runs it).
fn drop_plugins_whose_phase_does_not_occur(
    changes: Vec<Change>,
    unchanged: &mut usize,
) -> Vec<Change> {
    let created_or_replaced = |changes: &[Change], pred: &dyn Fn(&Change) -> bool| {
        changes
            .iter()
            .any(|c| matches!(c.action, Action::Create | Action::Replace) && pred(c))
    };
    let init_created = created_or_replaced(&changes, &|c| {
        c.resource_type == ResourceType::KubernetesInit
    });
    let join_created = created_or_replaced(&changes, &|c| {
        matches!(
            c.resource_type,
            ResourceType::KubernetesMaster | ResourceType::KubernetesWorker
        )
    });
    let occurs = |c: &Change| -> bool {
        let phase = c.after().and_then(plugin::phase_of).unwrap_or("");
        let host_changed = |types: &[ResourceType], actions: &[Action]| {
            changes.iter().any(|o| {
                o.host.is_some()
                    && o.host == c.host
                    && types.contains(&o.resource_type)
                    && actions.contains(&o.action)
            })
        };
        let joins = [
            ResourceType::KubernetesInit,
            ResourceType::KubernetesMaster,
            ResourceType::KubernetesWorker,
        ];
        match phase {
            "pre-install" | "post-install" => init_created,
            "pre-scaleup" | "post-scaleup" => join_created && !init_created,
            "pre-init-host" => host_changed(
                &[ResourceType::ContainerRuntime],
                &[Action::Create, Action::Replace],
            ),
            "post-init-host" => host_changed(&joins, &[Action::Create, Action::Replace]),
            // Armed whenever applied; they run only when deleted (`teardown`).
            _ => true,
        }
    };
    let keep: Vec<bool> = changes
        .iter()
        // A tainted plugin started and never finished (a killed or aborted apply): its phase
        // did occur, and running it again is how that apply completes.
        .map(|c| {
            c.resource_type != ResourceType::Plugin
                || c.action == Action::Delete
                || c.reason_code == ReasonCode::ReplaceBecauseTainted
                || occurs(c)
        })
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    for (c, keep) in changes.into_iter().zip(keep) {
        if keep {
            out.push(c);
        } else {
            *unchanged += 1;
        }
    }
    out
}

/// `--target`: the targets and everything they depend on, and what a kept replacement takes
/// with it (a targeted worker's replacement resets its node: its labels go too, so they are
/// in the plan).
fn keep_targets(
    changes: Vec<Change>,
    targets: &[String],
    desired: &[Desired],
    recorded: &BTreeMap<String, Recorded>,
) -> Vec<Change> {
    let mut deps: BTreeMap<&str, &[String]> = BTreeMap::new();
    for r in recorded.values() {
        deps.insert(&r.address, &r.depends_on);
    }
    for d in desired {
        deps.insert(&d.address, &d.depends_on);
    }
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = targets.iter().map(String::as_str).collect();
    loop {
        while let Some(address) = stack.pop() {
            if keep.insert(address)
                && let Some(ds) = deps.get(address)
            {
                stack.extend(ds.iter().map(String::as_str));
            }
        }
        stack.extend(
            changes
                .iter()
                .filter(|c| !keep.contains(c.address.as_str()))
                .filter(|c| c.caused_by.as_deref().is_some_and(|by| keep.contains(by)))
                .map(|c| c.address.as_str()),
        );
        if stack.is_empty() {
            break;
        }
    }
    let keep: BTreeSet<String> = keep.into_iter().map(str::to_string).collect();
    changes
        .into_iter()
        .filter(|c| keep.contains(&c.address))
        .collect()
}
