//! How `sealer plan --refresh-only` shows what the hosts hold against the state.

use sealer::kinds::read::ReadBack;
use sealer::ops::{Found, ReadResult, Refresh, RefreshRecord};

/// Format version of the JSON: bumped on any incompatible change.
pub const FORMAT_VERSION: &str = "1";

/// For people: the drifted resources with what was found, the ones that could not be
/// read, the ones nothing can read, and a summary.
pub fn text(refresh: &Refresh) -> String {
    let mut out = format!(
        "Read {} resources of cluster \"{}\" back from {} host{} (state serial {}); nothing on a host or in the state changed.\n\n",
        refresh.resources.len(),
        clean(&refresh.cluster),
        refresh.hosts(),
        if refresh.hosts() == 1 { "" } else { "s" },
        refresh.serial
    );
    let drifted: Vec<&ReadResult> = refresh.drifted().collect();
    if !drifted.is_empty() {
        out.push_str("Drift: the hosts differ from what the state records:\n\n");
        for r in &drifted {
            let (marker, word) = match &r.found {
                Found::Read(ReadBack::Gone(_)) => ("-", "gone"),
                _ => ("~", "drifted"),
            };
            out.push_str(&format!("  {marker} {} ({word})\n", clean(&r.address)));
            if let Found::Read(read) = &r.found {
                for finding in read.findings() {
                    out.push_str(&format!("      {}\n", clean(finding)));
                }
            }
        }
        out.push('\n');
    }
    let failed: Vec<&ReadResult> = refresh.failed().collect();
    if !failed.is_empty() {
        out.push_str("Could not read:\n\n");
        for r in &failed {
            if let Found::Failed { error, .. } = &r.found {
                // A transport's error carries its hint on a line of its own.
                let (error, hints) = sealer::diag::split_hints(error);
                out.push_str(&format!("  ! {}: {}\n", clean(&r.address), clean(&error)));
                for hint in hints {
                    out.push_str(&format!("      hint: {}\n", clean(&hint)));
                }
            }
        }
        out.push('\n');
    }
    let unreadable: Vec<String> = refresh
        .resources
        .iter()
        .filter(|r| matches!(r.found, Found::Read(ReadBack::Unreadable(_))))
        .map(|r| clean(&r.address))
        .collect();
    if !unreadable.is_empty() {
        out.push_str(&format!(
            "Not checked (nothing on a host tells whether they still hold): {}\n\n",
            unreadable.join(", ")
        ));
    }
    let checked = refresh.resources.len() - unreadable.len() - failed.len();
    if drifted.is_empty() && failed.is_empty() {
        out.push_str(&format!(
            "No drift: the {checked} resources read back are as the state records them.\n"
        ));
    } else {
        out.push_str(&format!(
            "{} of {} resources drifted, {} could not be read.\n",
            drifted.len(),
            refresh.resources.len(),
            failed.len()
        ));
    }
    out
}

/// One line for `plan --refresh` and `apply --refresh`, before the plan that repairs what
/// the reads found (its reasons say what each found).
pub fn summary_line(refresh: &Refresh) -> String {
    let drifted = refresh.drifted().count();
    format!(
        "Read {} resources of cluster \"{}\" back from {} host{}: {}.",
        refresh.resources.len(),
        clean(&refresh.cluster),
        refresh.hosts(),
        if refresh.hosts() == 1 { "" } else { "s" },
        match drifted {
            0 => "no drift".to_string(),
            1 => "1 drifted".to_string(),
            n => format!("{n} drifted"),
        }
    )
}

/// What `apply --refresh-only` will write: each resource whose recorded drift changes.
pub fn record_text(record: &RefreshRecord) -> String {
    let mut out = String::from("The state will record:\n\n");
    for (address, mark) in &record.marks {
        let what = match mark {
            Some(d) if d.gone => "gone",
            Some(_) => "drifted",
            None => "as recorded again (drift cleared)",
        };
        out.push_str(&format!("  {} {what}\n", clean(address)));
    }
    let set = record.marks.values().filter(|m| m.is_some()).count();
    let cleared = record.marks.len() - set;
    out.push_str(&format!(
        "\nRefresh: {set} to record drifted, {cleared} to clear; no host will change.\n"
    ));
    out
}

/// For machines: every resource with what was found.
pub fn json(refresh: &Refresh) -> serde_json::Value {
    serde_json::json!({
        "format_version": FORMAT_VERSION,
        "sealer_version": env!("CARGO_PKG_VERSION"),
        "cluster": refresh.cluster,
        "serial": refresh.serial,
        "drifted": refresh.drifted().count(),
        "failed": refresh.failed().count(),
        "resources": refresh.resources,
    })
}

/// Text from hosts (tool output in findings) as plans show outside text: control
/// characters, which could rewrite what a terminal shows, as visible escapes.
fn clean(text: &str) -> String {
    sealer::plan::human::visible(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh() -> Refresh {
        let read = |address: &str, host: &str, found: Found| ReadResult {
            address: address.to_string(),
            host: Some(host.to_string()),
            found,
        };
        Refresh {
            cluster: "demo".into(),
            serial: 7,
            resources: vec![
                read(
                    "app.dashboard",
                    "10.0.0.2",
                    Found::Read(ReadBack::Drifted(vec![
                        "objects of a.yaml: NotFound\u{1b}[2J".into(),
                    ])),
                ),
                read(
                    "host.10.0.0.2",
                    "10.0.0.2",
                    Found::Read(ReadBack::AsRecorded),
                ),
                read(
                    "kubernetes.worker.10.0.0.3",
                    "10.0.0.3",
                    Found::Read(ReadBack::gone("node node-3 is not in `kubectl get nodes`")),
                ),
                read(
                    "plugin.x.post-install",
                    "10.0.0.2",
                    Found::Read(ReadBack::unreadable("scripts")),
                ),
                read(
                    "rootfs.10.0.0.4",
                    "10.0.0.4",
                    Found::Failed {
                        found: "error",
                        error: "cannot reach host 10.0.0.4: timed out".into(),
                    },
                ),
            ],
        }
    }

    #[test]
    fn drift_renders_for_people_without_control_characters() {
        let text = text(&refresh());
        assert_eq!(
            text,
            "Read 5 resources of cluster \"demo\" back from 3 hosts (state serial 7); nothing on a host or in the state changed.\n\n\
             Drift: the hosts differ from what the state records:\n\n\
             \x20 ~ app.dashboard (drifted)\n\
             \x20     objects of a.yaml: NotFound\\u{1b}[2J\n\
             \x20 - kubernetes.worker.10.0.0.3 (gone)\n\
             \x20     node node-3 is not in `kubectl get nodes`\n\n\
             Could not read:\n\n\
             \x20 ! rootfs.10.0.0.4: cannot reach host 10.0.0.4: timed out\n\n\
             Not checked (nothing on a host tells whether they still hold): plugin.x.post-install\n\n\
             2 of 5 resources drifted, 1 could not be read.\n"
        );
    }

    #[test]
    fn a_transports_hint_is_a_hint_line_under_what_could_not_be_read() {
        let mut r = refresh();
        r.resources[4].found = Found::Failed {
            found: "error",
            error:
                "cannot reach host 10.0.0.4: cannot connect to 10.0.0.4:22: Connection refused\n\
                    hint: check that the host is up and its sshd listens on port 22"
                    .into(),
        };
        assert!(text(&r).contains(
            "\x20 ! rootfs.10.0.0.4: cannot reach host 10.0.0.4: cannot connect to 10.0.0.4:22: Connection refused\n\
             \x20     hint: check that the host is up and its sshd listens on port 22\n\n"
        ));
    }

    #[test]
    fn drift_renders_for_machines_with_one_object_per_resource() {
        let value = json(&refresh());
        assert_eq!(value["drifted"], 2);
        assert_eq!(value["failed"], 1);
        assert_eq!(value["resources"][1]["found"], "as_recorded");
        assert_eq!(value["resources"][2]["found"], "gone");
        assert_eq!(value["resources"][4]["found"], "error");
        assert_eq!(
            value["resources"][4]["error"],
            "cannot reach host 10.0.0.4: timed out"
        );
    }
}
