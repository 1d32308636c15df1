//! Tables and sizes for people.

use sealer::ops::{ImageSummary, StateListing};
use sealer::resource::{Recorded, Status};
use std::path::Path;

pub fn images_table(rows: &[ImageSummary]) -> String {
    let header = ["NAME", "TYPE", "ID", "PLATFORM", "SIZE"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.image_type.clone().unwrap_or_else(|| "-".into()),
                short_id(&r.id),
                r.platform.clone(),
                human_size(r.size),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let mut text = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                text.push_str(c);
            } else {
                text.push_str(&format!("{c:<w$}   "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `sealer state list`: addresses one per line (tainted ones marked), or the clusters.
pub fn state_listing(listing: &StateListing, path: &Path) -> String {
    match listing {
        StateListing::Empty => format!("# no state at {}\n", sealer::state::display_location(path)),
        StateListing::Clusters(clusters) => {
            let mut out = String::from("CLUSTER   LINEAGE   SERIAL   RESOURCES   UPDATED\n");
            for c in clusters {
                out.push_str(&format!(
                    "{}   {}   {}   {}   {}\n",
                    c.name, c.lineage, c.serial, c.resources, c.updated_at
                ));
            }
            out
        }
        StateListing::Resources(state) if state.resources.is_empty() => format!(
            "# cluster \"{}\" has no resources (state serial {})\n",
            state.name, state.serial
        ),
        StateListing::Resources(state) => {
            let mut out = String::new();
            for (address, r) in &state.resources {
                let mark = match (&r.status, &r.drift) {
                    (Status::Tainted, _) => " (tainted)",
                    (_, Some(d)) if d.gone => " (gone, recorded by a refresh)",
                    (_, Some(_)) => " (drifted, recorded by a refresh)",
                    _ => "",
                };
                out.push_str(&format!("{address}{mark}\n"));
            }
            out
        }
    }
}

/// `sealer state list --json`: the clusters (when none is chosen among several, or there is
/// no state), else one cluster's resources.
pub fn state_listing_json(listing: &StateListing) -> serde_json::Value {
    use serde_json::json;
    match listing {
        StateListing::Empty => json!({"clusters": []}),
        StateListing::Clusters(clusters) => json!({
            "clusters": clusters.iter().map(|c| json!({
                "name": c.name,
                "lineage": c.lineage,
                "serial": c.serial,
                "resources": c.resources,
                "updated_at": c.updated_at,
            })).collect::<Vec<_>>(),
        }),
        StateListing::Resources(state) => json!({
            "cluster": state.name,
            "serial": state.serial,
            "resources": state.resources.values().map(|r| json!({
                "address": r.address,
                "type": r.resource_type.as_str(),
                "host": r.host,
                "status": r.status.as_str(),
                "drift": r.drift.as_ref().map(|d| if d.gone { "gone" } else { "drifted" }),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// `sealer state history`: one aligned line per write, oldest first.
pub fn history_text(lines: &[sealer::ops::HistoryLine]) -> String {
    let rows: Vec<[String; 5]> = lines
        .iter()
        .map(|l| {
            [
                l.serial.to_string(),
                l.at.clone(),
                l.command.clone().unwrap_or_else(|| "-".to_string()),
                sealer::plan::human::visible(l.address.as_deref().unwrap_or("-")).into_owned(),
                l.summary.clone(),
            ]
        })
        .collect();
    let header = ["SERIAL", "TIME", "COMMAND", "ADDRESS", "CHANGE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header.map(str::to_string)).chain(rows) {
        let mut text = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                text.push_str(c);
            } else {
                text.push_str(&format!("{c:<w$}   "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `sealer state show ADDR`: the recorded attributes, secrets hidden.
pub fn recorded_text(r: &Recorded) -> String {
    let mut out = format!("# {} ({}", r.address, r.resource_type);
    if let Some(host) = &r.host {
        out.push_str(&format!(" on {host}"));
    }
    out.push_str(&format!(", {})\n{} {{\n", r.status.as_str(), r.address));
    let width = r.attributes.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &r.attributes {
        let value = if r.sensitive.contains(k) {
            "(sensitive value)".to_string()
        } else {
            sealer::plan::human::inline(v)
        };
        out.push_str(&format!("    {k:<width$} = {value}\n"));
    }
    if !r.depends_on.is_empty() {
        out.push_str(&format!("    # depends on: {}\n", r.depends_on.join(", ")));
    }
    if let Some(drift) = &r.drift {
        let what = if drift.gone { "gone" } else { "drifted" };
        out.push_str(&format!("    # {what} (recorded by a refresh):\n"));
        for finding in &drift.findings {
            out.push_str(&format!(
                "    #   {}\n",
                sealer::plan::human::visible(finding)
            ));
        }
    }
    out.push_str("}\n");
    out
}

pub fn recorded_json(r: &Recorded) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = r
        .attributes
        .iter()
        .map(|(k, v)| {
            let v = if r.sensitive.contains(k) {
                serde_json::Value::Null
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    serde_json::json!({
        "address": r.address,
        "type": r.resource_type.as_str(),
        "host": r.host,
        "status": r.status.as_str(),
        "attributes": attributes,
        "sensitive_paths": r.sensitive,
        "depends_on": r.depends_on,
        "drift": r.drift,
    })
}

pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(2_000_000), "2.0 MB");
    }
}
