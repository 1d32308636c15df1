//! What `sealer import` prints: how many resources were recorded how, then each one that
//! was not recorded as applied, with what its read found.

use sealer::ops::{Adopted, Import};
use std::fmt::Write;

/// The version of `sealer import --json`'s format.
pub const FORMAT_VERSION: &str = "1";

/// `sealer import --json`: the import with its format's version.
pub fn json(import: &Import) -> serde_json::Value {
    serde_json::json!({
        "format_version": FORMAT_VERSION,
        "cluster": import.cluster,
        "serial": import.serial,
        "resources": import.resources,
    })
}

/// The text report of an import.
pub fn text(import: &Import) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Imported cluster \"{}\" from {} hosts (state serial {}): {} as applied, {} drifted, {} accepted as found, {} missing, {} assumed.",
        import.cluster,
        import.hosts(),
        import.serial,
        import.count(Adopted::Imported),
        import.count(Adopted::Drifted),
        import.count(Adopted::Accepted),
        import.count(Adopted::Missing),
        import.count(Adopted::Assumed),
    );
    for (adopted, title) in [
        (
            Adopted::Drifted,
            "Drifted (recorded with their drift: the next plan repairs them):",
        ),
        (
            Adopted::Accepted,
            "Accepted as found (different, but only a reinstall would change that):",
        ),
        (
            Adopted::Missing,
            "Missing (not recorded: the next plan creates them):",
        ),
        (
            Adopted::Assumed,
            "Assumed applied (cannot be read: nothing on a host tells):",
        ),
    ] {
        let listed: Vec<_> = import
            .resources
            .iter()
            .filter(|r| r.adopted == adopted)
            .collect();
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{title}");
        for r in listed {
            let _ = writeln!(s, "  {}", r.address);
            for finding in &r.findings {
                let _ = writeln!(s, "      {finding}");
            }
        }
    }
    let _ = writeln!(s, "\nRun `sealer plan` to see what differs.");
    s
}
