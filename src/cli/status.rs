//! How `sealer status` shows a cluster's health: a table per part, then one line that says
//! healthy or names every problem.

use sealer::ops::status::{Check, Status};

/// Format version of the JSON: bumped on any incompatible change.
pub const FORMAT_VERSION: &str = "1";

/// The exit code of an unhealthy cluster (or an unreachable host): the same as an error,
/// so `sealer status && ...` stops on either.
pub const EXIT_UNHEALTHY: u8 = 1;

/// For people.
pub fn text(status: &Status) -> String {
    let mut out = format!(
        "Cluster \"{}\" (state serial {}), checked from its hosts; master0 is {}.\n\n",
        clean(&status.cluster),
        status.serial,
        clean(&status.master0)
    );
    if let Some(running) = &status.running {
        out.push_str(&format!(
            "warning: another sealer holds the cluster's lock ({}): what follows may be mid-change\n\n",
            clean(running)
        ));
    }
    let mut rows = vec![row(&["HOST", "NODE", "ROLE", "REACHABLE", "NODE STATUS"])];
    for h in &status.hosts {
        rows.push(vec![
            clean(&h.host),
            clean(h.node.as_deref().unwrap_or("-")),
            h.role.unwrap_or("-").to_string(),
            cell(&h.reachable),
            h.ready.as_ref().map_or_else(|| "-".to_string(), cell),
        ]);
    }
    out.push_str(&table(&rows));
    if !status.with_clusterfile && status.hosts.iter().any(|h| h.reachable.is_failing()) {
        out.push_str(
            "hint: the state keeps no SSH password or key passphrase: for hosts that need one, `sealer status -f Clusterfile`\n",
        );
    }
    if !status.unknown_nodes.is_empty() {
        out.push_str(&format!(
            "Nodes in `kubectl get nodes` that the state does not record: {}\n",
            status
                .unknown_nodes
                .iter()
                .map(|n| clean(n))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push('\n');
    if !status.apps.is_empty() {
        let mut rows = vec![row(&["APP", "KIND", "INSTALLED"])];
        for a in &status.apps {
            rows.push(vec![clean(&a.name), clean(&a.kind), cell(&a.installed)]);
        }
        out.push_str(&table(&rows));
        out.push('\n');
    }
    let mut rows = Vec::new();
    if let Some(r) = &status.registry {
        rows.push(vec![
            "registry".to_string(),
            clean(&r.endpoint),
            cell(&r.answering),
        ]);
    }
    rows.push(vec!["API".to_string(), String::new(), cell(&status.api)]);
    out.push_str(&table(&rows));
    out.push('\n');
    let problems = status.problems();
    if problems.is_empty() {
        let nodes = status.hosts.iter().filter(|h| h.ready.is_some()).count();
        let installed = status
            .apps
            .iter()
            .filter(|a| matches!(a.installed, Check::Ok { .. }))
            .count();
        out.push_str(&format!(
            "Healthy: {} host{} reachable, {nodes} node{} Ready, {installed} app{} installed{}, the API answering.\n",
            status.hosts.len(),
            plural(status.hosts.len()),
            plural(nodes),
            plural(installed),
            if status.registry.is_some() {
                ", the registry answering"
            } else {
                ""
            }
        ));
    } else {
        out.push_str(&format!(
            "Unhealthy: {} problem{}: {}.\n",
            problems.len(),
            plural(problems.len()),
            problems
                .iter()
                .map(|p| clean(p))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    out
}

/// For machines: every check with its state and words.
pub fn json(status: &Status) -> serde_json::Value {
    serde_json::json!({
        "format_version": FORMAT_VERSION,
        "sealer_version": env!("CARGO_PKG_VERSION"),
        "healthy": status.healthy(),
        "cluster": status.cluster,
        "serial": status.serial,
        "master0": status.master0,
        "with_clusterfile": status.with_clusterfile,
        "running": status.running,
        "hosts": status.hosts,
        "unknown_nodes": status.unknown_nodes,
        "apps": status.apps,
        "registry": status.registry,
        "api": status.api,
        "problems": status.problems(),
    })
}

/// A check in a table cell: what was seen when healthy, what is wrong otherwise.
fn cell(check: &Check) -> String {
    match check {
        Check::Ok { detail } => clean(detail),
        // A cell is one line: a transport's hint lines stay out of the table.
        Check::Failing { finding } => {
            format!("FAILING: {}", clean(&sealer::diag::split_hints(finding).0))
        }
        Check::NotChecked { why } => format!("not checked: {}", clean(why)),
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell (the last one is not padded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn clean(text: &str) -> String {
    sealer::plan::human::visible(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealer::ops::{AppStatus, HostStatus, RegistryStatus};

    fn status() -> Status {
        Status {
            cluster: "demo".into(),
            serial: 7,
            master0: "10.0.0.10".into(),
            with_clusterfile: false,
            running: None,
            hosts: vec![
                HostStatus {
                    host: "10.0.0.10".into(),
                    node: Some("node-0".into()),
                    role: Some("master"),
                    reachable: Check::ok("reachable"),
                    ready: Some(Check::ok("Ready")),
                },
                HostStatus {
                    host: "10.0.0.11".into(),
                    node: Some("node-1".into()),
                    role: Some("worker"),
                    reachable: Check::ok("reachable"),
                    ready: Some(Check::ok("Ready,SchedulingDisabled")),
                },
            ],
            unknown_nodes: vec![],
            apps: vec![
                AppStatus {
                    name: "calico".into(),
                    kind: "shell".into(),
                    installed: Check::not_checked(
                        "a shell app's commands are its own: nothing tells whether they still hold",
                    ),
                },
                AppStatus {
                    name: "dashboard".into(),
                    kind: "kube".into(),
                    installed: Check::ok("installed"),
                },
            ],
            registry: Some(RegistryStatus {
                endpoint: "sea.hub:5000".into(),
                answering: Check::ok(
                    "answers https://sea.hub:5000/v2/ from 10.0.0.10 (HTTP 401: it asks for credentials)",
                ),
            }),
            api: Check::ok("answers /readyz on 10.0.0.10"),
        }
    }

    #[test]
    fn a_healthy_cluster_renders_its_tables_and_one_healthy_line() {
        insta::assert_snapshot!(text(&status()), @r#"
        Cluster "demo" (state serial 7), checked from its hosts; master0 is 10.0.0.10.

        HOST       NODE    ROLE    REACHABLE  NODE STATUS
        10.0.0.10  node-0  master  reachable  Ready
        10.0.0.11  node-1  worker  reachable  Ready,SchedulingDisabled

        APP        KIND   INSTALLED
        calico     shell  not checked: a shell app's commands are its own: nothing tells whether they still hold
        dashboard  kube   installed

        registry  sea.hub:5000  answers https://sea.hub:5000/v2/ from 10.0.0.10 (HTTP 401: it asks for credentials)
        API                     answers /readyz on 10.0.0.10

        Healthy: 2 hosts reachable, 2 nodes Ready, 1 app installed, the registry answering, the API answering.
        "#);
    }

    #[test]
    fn an_unreachable_host_checked_from_the_state_hints_at_the_clusterfile() {
        let mut s = status();
        s.hosts[1].reachable = Check::failing("unreachable: authentication failed");
        let shown = text(&s);
        assert!(
            shown
                .contains("10.0.0.11  node-1  worker  FAILING: unreachable: authentication failed"),
            "{shown}"
        );
        assert!(
            shown.contains("hint: the state keeps no SSH password"),
            "{shown}"
        );
        s.with_clusterfile = true;
        assert!(!text(&s).contains("hint:"));
        s.running = Some("pid 7 on host ops since 2026-12-03T16:00:00Z (apply, lock ID ab)".into());
        assert!(
            text(&s).contains("\nwarning: another sealer holds the cluster's lock (pid 7 on host ops since 2026-12-03T16:00:00Z (apply, lock ID ab)): what follows may be mid-change\n"),
            "{}",
            text(&s)
        );
    }

    #[test]
    fn an_unhealthy_cluster_names_every_problem_in_text_and_json() {
        let mut s = status();
        s.hosts[1].ready = Some(Check::failing("node node-1 is NotReady"));
        s.apps[1].installed = Check::failing(
            "not installed: objects of 10-deployment.yaml: Error from server (NotFound): deployments \"dashboard\" not found",
        );
        s.unknown_nodes = vec!["stray".into()];
        s.api = Check::failing(
            "`kubectl get --raw /readyz` on 10.0.0.10: not ready: [-]etcd failed: reason withheld",
        );
        insta::assert_snapshot!(text(&s), @r#"
        Cluster "demo" (state serial 7), checked from its hosts; master0 is 10.0.0.10.

        HOST       NODE    ROLE    REACHABLE  NODE STATUS
        10.0.0.10  node-0  master  reachable  Ready
        10.0.0.11  node-1  worker  reachable  FAILING: node node-1 is NotReady
        Nodes in `kubectl get nodes` that the state does not record: stray

        APP        KIND   INSTALLED
        calico     shell  not checked: a shell app's commands are its own: nothing tells whether they still hold
        dashboard  kube   FAILING: not installed: objects of 10-deployment.yaml: Error from server (NotFound): deployments "dashboard" not found

        registry  sea.hub:5000  answers https://sea.hub:5000/v2/ from 10.0.0.10 (HTTP 401: it asks for credentials)
        API                     FAILING: `kubectl get --raw /readyz` on 10.0.0.10: not ready: [-]etcd failed: reason withheld

        Unhealthy: 3 problems: host 10.0.0.11 (node node-1): node node-1 is NotReady; app dashboard: not installed: objects of 10-deployment.yaml: Error from server (NotFound): deployments "dashboard" not found; API: `kubectl get --raw /readyz` on 10.0.0.10: not ready: [-]etcd failed: reason withheld.
        "#);
        let json = json(&s);
        assert_eq!(json["format_version"], "1");
        assert_eq!(json["healthy"], false);
        assert_eq!(json["problems"].as_array().unwrap().len(), 3);
        assert_eq!(
            json["hosts"][1]["ready"],
            serde_json::json!({"state": "failing", "finding": "node node-1 is NotReady"})
        );
        assert_eq!(json["apps"][0]["installed"]["state"], "not_checked");
        assert_eq!(json["registry"]["answering"]["state"], "ok");
    }
}
