//! The plan for machines: one versioned JSON object (schema:
//! `state-schema/plan.schema.json`). Sensitive values are redacted in the JSON itself.

use super::{Change, FORMAT_VERSION, Plan};
use crate::diag::Diagnostic;
use crate::resource::Attributes;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The plan as JSON.
pub fn to_json(plan: &Plan) -> Value {
    let summary = plan.summary();
    json!({
        "format_version": FORMAT_VERSION,
        "sealer_version": super::saved::SEALER_VERSION,
        "cluster": plan.cluster,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "new_cluster": plan.is_new_cluster(),
        "destroy": plan.destroy,
        "targets": plan.targets,
        "replace": plan.replace,
        "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "rootfs_distribution": distribution_json(plan),
        "summary": {
            "add": summary.add,
            "change": summary.change,
            "destroy": summary.destroy,
            "unchanged": summary.unchanged,
        },
        "errors": [],
    })
}

/// The JSON of a plan that could not be made: no changes, and every error as an object
/// with its location and hint. `cluster` is `None` when the Clusterfile did not say.
pub fn errors_json(cluster: Option<&str>, errors: &[Diagnostic]) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "sealer_version": super::saved::SEALER_VERSION,
        "cluster": cluster,
        "lineage": null,
        "serial": 0,
        "new_cluster": false,
        "destroy": false,
        "targets": [],
        "replace": [],
        "changes": [],
        "rootfs_distribution": {"mode": "tree", "sources": []},
        "summary": {"add": 0, "change": 0, "destroy": 0, "unchanged": 0},
        "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
    })
}

/// One error: its message, where it points (file, 1-based line and column, or nulls) and
/// what to do (`hint`, the hints one per line, or null).
pub fn error_json(d: &Diagnostic) -> Value {
    let location = d.location.as_ref();
    json!({
        "message": d.message,
        "file": location.map(|l| l.path.display().to_string()),
        "line": location.map(|l| l.line),
        "column": location.map(|l| l.column.max(1)),
        "hint": (!d.hints.is_empty()).then(|| d.hints.join("\n")),
    })
}

/// The mode, and where each host's rootfs comes from (empty when every host gets it from
/// the operator): `{"address": "rootfs.IP", "from": "operator" | "SEEDER-IP"}`.
fn distribution_json(plan: &Plan) -> Value {
    use super::distribution::Source;
    let tree = super::distribution::tree(&plan.changes, plan.rootfs_distribution);
    let sources: Vec<Value> = plan
        .changes
        .iter()
        .filter_map(|c| {
            tree.source(&c.address).map(|s| {
                let from = match s {
                    Source::Operator => "operator",
                    Source::Seeder(ip) => ip.as_str(),
                };
                json!({"address": c.address, "from": from})
            })
        })
        .collect();
    json!({"mode": plan.rootfs_distribution.as_str(), "sources": sources})
}

fn change_json(change: &Change) -> Value {
    let sensitive: Vec<&String> = change.sensitive.iter().collect();
    json!({
        "address": change.address,
        "type": change.resource_type.as_str(),
        "host": change.host,
        "action": change.action.as_str(),
        "reason": change.reason,
        "reason_code": change.reason_code.as_str(),
        "caused_by": change.caused_by,
        "disruptive": change.disruptive,
        "before": change.before.as_ref().map(|a| redact(a, &change.sensitive)),
        "after": change.after().map(|a| redact(a, &change.sensitive)),
        "after_unknown": change.computed.iter().collect::<Vec<_>>(),
        "changed_attributes": change.changed_attributes(),
        "forces_replacement": change.forcing.iter().collect::<Vec<_>>(),
        "sensitive_paths": sensitive,
        "depends_on": change.depends_on,
    })
}

/// Sensitive attributes become `null`; `sensitive_paths` says which they are.
fn redact(attributes: &Attributes, sensitive: &BTreeSet<String>) -> Value {
    let mut map = Map::new();
    for (k, v) in attributes {
        let value = if sensitive.contains(k) {
            Value::Null
        } else {
            v.clone()
        };
        map.insert(k.clone(), value);
    }
    Value::Object(map)
}
