//! How preflight's findings are shown: per host, every failure at once, each with a hint.

use sealer::ops::{HostReport, Preflight, Severity};

/// Format version of the JSON: bumped on any incompatible change.
pub const FORMAT_VERSION: &str = "1";

/// For people: every checked host, what is wrong there with what to do, and a summary.
pub fn text(preflight: &Preflight) -> String {
    if preflight.hosts.is_empty() {
        return format!(
            "Preflight of cluster \"{}\": the plan creates nothing on any host, nothing to check.\n",
            clean(&preflight.cluster)
        );
    }
    let mut out = format!(
        "Preflight of cluster \"{}\": {} checked{}.\n\n",
        clean(&preflight.cluster),
        plural(preflight.hosts.len(), "host", "hosts"),
        if preflight.skipped.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = preflight.skipped.iter().map(|c| c.name()).collect();
            format!(" (skipped: {})", names.join(", "))
        }
    );
    for host in &preflight.hosts {
        out.push_str(&host_text(host));
    }
    let failures = preflight.failures();
    if failures == 0 {
        out.push_str("\nNo problems found.\n");
    } else {
        out.push_str(&format!(
            "\n{} on {}.\n",
            plural(failures, "problem", "problems"),
            plural(preflight.failed_hosts(), "host", "hosts")
        ));
    }
    out
}

fn host_text(host: &HostReport) -> String {
    let about = match &host.facts {
        Some(f) => format!(
            " ({}; {}, {})",
            clean(&f.hostname),
            clean(if f.os.is_empty() { &f.kernel } else { &f.os }),
            clean(&f.machine)
        ),
        None => String::new(),
    };
    let verdict = match host.failures() {
        0 => "ok".to_string(),
        n => plural(n, "problem", "problems"),
    };
    let mut out = format!("  {}{about}: {verdict}\n", clean(&host.host));
    if let Some(error) = &host.error {
        // A transport's error may carry its own hint on further lines: each stays a line.
        let mut lines = error.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().unwrap_or("(no message)");
        out.push_str(&format!(
            "    error: cannot check the host: {}\n",
            clean(first)
        ));
        let mut own_hint = false;
        for line in lines {
            own_hint |= line.trim_start().starts_with("hint:");
            out.push_str(&format!("      {}\n", clean(line.trim())));
        }
        if !own_hint {
            out.push_str(
                "      hint: check that it is up and reachable with the Clusterfile's SSH settings\n",
            );
        }
    }
    for f in &host.findings {
        let word = match f.severity {
            Severity::Fail => "error",
            Severity::Warn => "warning",
        };
        out.push_str(&format!(
            "    {word} [{}]: {}\n",
            f.check,
            clean(&f.message)
        ));
        out.push_str(&format!("      hint: {}\n", clean(&f.hint)));
    }
    if host.failures() == 0 && !host.checks.is_empty() {
        let names: Vec<&str> = host.checks.iter().map(|c| c.name()).collect();
        out.push_str(&format!("    passed: {}\n", names.join(", ")));
    }
    out
}

/// For machines: the report with its verdict.
pub fn json(preflight: &Preflight) -> serde_json::Value {
    let mut value = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "passed": preflight.passed(),
        "failures": preflight.failures(),
    });
    if let (Some(map), Ok(serde_json::Value::Object(report))) =
        (value.as_object_mut(), serde_json::to_value(preflight))
    {
        map.extend(report);
    }
    value
}

/// The error that refuses an apply (or fails `sealer check`).
pub fn failed(preflight: &Preflight, applying: bool) -> sealer::Error {
    let what = format!(
        "preflight failed: {} on {}",
        plural(preflight.failures(), "problem", "problems"),
        plural(preflight.failed_hosts(), "host", "hosts")
    );
    if applying {
        sealer::Error::msg(format!("{what}; nothing was changed")).hint(
            "fix them and apply again, or skip a check you accept with --skip-check NAME (`sealer check --help` lists them)",
        )
    } else {
        sealer::Error::msg(what).hint(
            "fix them, or skip a check you accept with --skip-check NAME (`sealer check --help` lists them)",
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn clean(text: &str) -> String {
    sealer::plan::human::visible(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealer::ops::{Check, Facts, Finding};

    fn report() -> Preflight {
        let facts = Facts {
            hostname: "node-0\x1b[2J".into(),
            kernel: "Linux".into(),
            machine: "x86_64".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            ..Facts::default()
        };
        Preflight {
            cluster: "bed".into(),
            skipped: vec![Check::Clock],
            hosts: vec![
                HostReport {
                    host: "10.0.0.2".into(),
                    checks: vec![Check::Swap, Check::Ports],
                    facts: Some(facts.clone()),
                    error: None,
                    findings: vec![Finding {
                        check: Check::IpForward,
                        severity: Severity::Warn,
                        message: "ip_forward is 0".into(),
                        hint: "set it".into(),
                    }],
                },
                HostReport {
                    host: "10.0.0.3".into(),
                    checks: vec![Check::Ports],
                    facts: Some(facts),
                    error: None,
                    findings: vec![Finding {
                        check: Check::Ports,
                        severity: Severity::Fail,
                        message: "port 10250 is in use".into(),
                        hint: "stop it".into(),
                    }],
                },
                HostReport {
                    host: "10.0.0.4".into(),
                    checks: vec![Check::Ports],
                    facts: None,
                    error: Some("connection refused".into()),
                    findings: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn each_host_shows_its_findings_with_hints_and_the_summary_counts_failures_only() {
        let text = text(&report());
        assert_eq!(
            text,
            "Preflight of cluster \"bed\": 3 hosts checked (skipped: clock).\n\n\
             \x20 10.0.0.2 (node-0\\u{1b}[2J; Debian GNU/Linux 12 (bookworm), x86_64): ok\n\
             \x20   warning [ip_forward]: ip_forward is 0\n\
             \x20     hint: set it\n\
             \x20   passed: swap, ports\n\
             \x20 10.0.0.3 (node-0\\u{1b}[2J; Debian GNU/Linux 12 (bookworm), x86_64): 1 problem\n\
             \x20   error [ports]: port 10250 is in use\n\
             \x20     hint: stop it\n\
             \x20 10.0.0.4: 1 problem\n\
             \x20   error: cannot check the host: connection refused\n\
             \x20     hint: check that it is up and reachable with the Clusterfile's SSH settings\n\
             \n2 problems on 2 hosts.\n"
        );
    }

    #[test]
    fn the_json_has_its_verdict_and_every_finding() {
        let value = json(&report());
        assert_eq!(value["passed"], false);
        assert_eq!(value["failures"], 2);
        assert_eq!(value["skipped"], serde_json::json!(["clock"]));
        assert_eq!(value["hosts"][1]["findings"][0]["check"], "ports");
        assert_eq!(value["hosts"][1]["findings"][0]["severity"], "fail");
        assert_eq!(value["hosts"][2]["error"], "connection refused");
    }
}
