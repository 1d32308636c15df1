//! `sealer status` on the SSH test bed: healthy after an apply once the cluster's registry
//! really serves (a real `docker-registry` with the certificate sealer generated), then
//! unhealthy, naming each problem, when master0's kubelet stops, an app's objects are
//! deleted by hand, etcd loses its data and a host goes down; exit codes and the JSON's shape.

use crate::apply::Deploy;
use crate::support::testbed::{TestBed, require_tool};
use std::time::{Duration, Instant};

/// `sealer status ARGS`: its exit code and stdout.
fn status(d: &Deploy, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let out = d.sealer(&all);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn status_json(d: &Deploy, code: i32) -> serde_json::Value {
    let out = d.sealer(&["status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_is_healthy_after_apply_and_names_a_stopped_kubelet_and_a_deleted_app() {
    require_tool(crate::support::registry::DOCKER_REGISTRY, "docker-registry");
    let d = Deploy::new(TestBed::start(2));
    let file = d.clusterfile(&[0], &[1], "");
    d.sealer_ok(&["apply", "-f", file.to_str().unwrap(), "--auto-approve"]);
    let bed = &d.bed;
    let (node0, node1) = (bed.host(0).hostname(), bed.host(1).hostname());

    // The bed runs no containers: until something serves the registry's port, it does not
    // answer, and status says so.
    let (code, out) = status(&d, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("registry sea.hub:5000: does not answer https://sea.hub:5000/v2/"),
        "{out}"
    );

    // The registry, for real: sealer's certificate and key, the cluster's port.
    bed.ssh_ok(
        0,
        "mkdir -p /var/lib/test-registry && cat > /root/registry.yml <<'YAML'\n\
         version: 0.1\n\
         log: {level: warn}\n\
         storage: {filesystem: {rootdirectory: /var/lib/test-registry}}\n\
         http:\n\
         \x20 addr: :5000\n\
         \x20 tls: {certificate: /etc/sealer/registry/sea.hub.crt, key: /etc/sealer/registry/sea.hub.key}\n\
         YAML\n\
         setsid docker-registry serve /root/registry.yml >/root/registry.log 2>&1 </dev/null & echo started",
    );
    let start = Instant::now();
    while !bed
        .ssh(0, "bash -c '</dev/tcp/127.0.0.1/5000'")
        .status
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the registry never listened:\n{}",
            bed.ssh_ok(0, "cat /root/registry.log")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (code, out) = status(&d, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\nHealthy: 2 hosts reachable, 2 nodes Ready"),
        "{out}"
    );
    let json = status_json(&d, 0);
    assert_eq!(json["format_version"], "1");
    assert_eq!(json["healthy"], true);
    assert_eq!(json["cluster"], "bed");
    assert_eq!(json["problems"], serde_json::json!([]));
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{json:#}");
    for (i, node, role) in [(0, node0, "master"), (1, node1, "worker")] {
        let ip = bed.host(i).ip().to_string();
        let h = hosts.iter().find(|h| h["host"] == ip.as_str()).unwrap();
        assert_eq!(h["node"], node, "{json:#}");
        assert_eq!(h["role"], role, "{json:#}");
        assert_eq!(h["reachable"]["state"], "ok", "{json:#}");
        assert_eq!(h["ready"]["state"], "ok", "{json:#}");
    }
    let apps: Vec<(String, String)> = json["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["installed"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        [
            ("calico".to_string(), "not_checked".to_string()),
            ("dashboard".to_string(), "ok".to_string()),
            ("metrics".to_string(), "ok".to_string()),
        ]
    );
    assert_eq!(json["registry"]["endpoint"], "sea.hub:5000");
    assert_eq!(json["registry"]["answering"]["state"], "ok");
    assert_eq!(json["api"]["state"], "ok");

    // By hand on master0: its kubelet stops (the stand-in's record of a running kubelet is
    // what `systemctl stop kubelet` takes away) and the dashboard's Deployment is deleted.
    bed.ssh_ok(
        0,
        "rm /var/lib/fake-kubelet/running && kubectl delete deployment dashboard -n dashboard",
    );
    let (code, out) = status(&d, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\nUnhealthy: 2 problems: "), "{out}");
    assert!(out.contains(&format!("node {node0} is NotReady")), "{out}");
    assert!(
        out.contains("app dashboard: not installed: objects of 10-deployment.yaml"),
        "{out}"
    );
    let json = status_json(&d, 1);
    assert_eq!(json["healthy"], false);
    let ready = |i: usize| {
        let ip = bed.host(i).ip().to_string();
        json["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == ip.as_str())
            .unwrap()["ready"]["state"]
            .clone()
    };
    assert_eq!(ready(0), "failing", "{json:#}");
    assert_eq!(ready(1), "ok", "{json:#}");
    assert_eq!(json["problems"].as_array().unwrap().len(), 2, "{json:#}");

    // The API server's etcd loses its data, and the worker's host goes down: both named.
    bed.ssh_ok(0, "rm -rf /var/lib/etcd/member");
    bed.kill(1);
    let (code, out) = status(&d, &["--timeout", "20s"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\nUnhealthy: 4 problems: "), "{out}");
    assert!(
        out.contains("API: `kubectl get --raw /readyz` on ")
            && out.contains("not ready: [-]etcd failed: reason withheld"),
        "{out}"
    );
    let ip1 = bed.host(1).ip().to_string();
    assert!(
        out.contains(&format!("host {ip1} (node {node1}): unreachable: ")),
        "{out}"
    );

    // A wrong name: an error naming what the state holds.
    let (code, out) = status(&d, &["--cluster", "nope"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no cluster \"nope\" in the state"), "{out}");
}
