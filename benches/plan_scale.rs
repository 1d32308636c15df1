//! Plan at scale: compile the graph, diff it against an empty and an applied state, and
//! render it, for 500, 1,000 and 5,000 hosts with 100 apps. Prints wall times and the
//! 5,000/500 ratio (target ≤ 11: linear growth). Run: `cargo bench --bench plan_scale`.
#![allow(clippy::print_stdout)]

use sealer::graph::input::{AppInput, ClusterInput, HostInput, Launch, RegistryInput};
use sealer::plan::human::{Style, render};
use sealer::plan::{Current, PlanOptions, diff};
use sealer::resource::{Attributes, Recorded};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn input(hosts: usize, apps: usize) -> ClusterInput {
    let hosts = (0..hosts)
        .map(|i| HostInput {
            ip: format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256),
            roles: vec![if i < 3 { "master" } else { "node" }.to_string()],
            ssh_user: "root".into(),
            ssh_port: 22,
            local: false,
            sandbox: None,
            password_digest: None,
            key_file: Some("/root/.ssh/id_ed25519".into()),
            key_passphrase_digest: None,
            env_digest: "sha256:env".into(),
            labels: BTreeMap::from([("zone".to_string(), format!("z{}", i % 3))]),
            taints: Vec::new(),
        })
        .collect();
    let apps = (0..apps)
        .map(|i| AppInput {
            name: format!("app{i:03}"),
            image: "k8s@sha256:img".into(),
            kind: "kube".into(),
            cmds: vec![format!(
                "kubectl apply -f application/apps/app{i:03}/a.yaml"
            )],
            files: BTreeMap::from([("a.yaml".to_string(), format!("sha256:{i}"))]),
            env_digest: "sha256:env".into(),
        })
        .collect();
    ClusterInput {
        name: "bench".into(),
        rootfs_path: "/var/lib/sealer/data/bench/rootfs".into(),
        hosts,
        image: "k8s:v1.22.15".into(),
        image_digest: "sha256:img".into(),
        kube_version: "v1.22.15".into(),
        runtime_type: "containerd".into(),
        runtime_version: "1.6.24".into(),
        registry: RegistryInput::Local {
            domain: "sea.hub".into(),
            port: 5000,
            ha: true,
            username: None,
            password_digest: None,
            sans: Vec::new(),
        },
        host_aliases: Vec::new(),
        kubeadm_config: "kind: ClusterConfiguration\n".into(),
        cert_sans: Vec::new(),
        svc_cidr: "10.96.0.0/22".into(),
        pod_cidr: "100.64.0.0/10".into(),
        vip: "10.103.97.2".into(),
        rootfs_inputs_digest: "sha256:none".into(),
        launch: Launch::Apps(apps),
        plugins: Vec::new(),
        image_policy: None,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    println!(
        "{:>6} {:>8} {:>14} {:>14} {:>10}",
        "hosts", "apps", "empty state", "applied state", "resources"
    );
    let mut times = BTreeMap::new();
    for hosts in [500, 1_000, 5_000] {
        let cluster = input(hosts, 100);
        let mut empty = Vec::new();
        let mut applied = Vec::new();
        let mut resources = 0;
        for _ in 0..3 {
            let start = Instant::now();
            let desired = sealer::graph::compile(&cluster);
            let plan = diff("bench", &desired, None, &PlanOptions::default()).expect("plan");
            let text = render(&plan, Style::default());
            empty.push(start.elapsed());
            resources = desired.len();
            assert!(!text.is_empty());

            let state: BTreeMap<String, Recorded> = desired
                .iter()
                .map(|d| (d.address.clone(), Recorded::applied(d, Attributes::new())))
                .collect();
            let start = Instant::now();
            let desired = sealer::graph::compile(&cluster);
            let current = Current {
                lineage: "l",
                serial: 1,
                resources: &state,
            };
            let plan =
                diff("bench", &desired, Some(current), &PlanOptions::default()).expect("plan");
            let text = render(&plan, Style::default());
            applied.push(start.elapsed());
            assert!(text.starts_with("No changes."));
        }
        let (e, a) = (median(empty), median(applied));
        times.insert(hosts, (e, a));
        println!(
            "{hosts:>6} {:>8} {:>12.1?} {:>14.1?} {resources:>10}",
            100, e, a
        );
    }
    let ratio = |f: fn(&(Duration, Duration)) -> Duration| {
        f(&times[&5_000]).as_secs_f64() / f(&times[&500]).as_secs_f64()
    };
    println!(
        "5000/500 ratio: empty state {:.1}, applied state {:.1} (target ≤ 11)",
        ratio(|t| t.0),
        ratio(|t| t.1)
    );
}
