//! Plan at scale, for 500, 1,000 and 5,000 hosts with 100 apps, against an empty and an
//! applied state:
//!
//! 1. `sealer plan -f Clusterfile`, the real binary on a generated Clusterfile and a cluster
//!    image with 100 apps: wall time and peak RSS (wait4(2)) of the whole command, from
//!    reading the Clusterfile and the image store to the rendered plan;
//! 2. the library pipeline alone (compile, diff, render), to see where time goes.
//!
//! Prints the 5,000/500 ratios (target ≤ 11: linear growth) and the peak RSS at 5,000 hosts
//! (target ≤ 200 MB). Run: `cargo build --release && cargo bench --bench plan_scale`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::sealer_binary;

use sealer::graph::input::{AppInput, ClusterInput, HostInput, Launch, RegistryInput};
use sealer::plan::human::{Style, render};
use sealer::plan::{Current, PlanOptions, diff};
use sealer::resource::{Attributes, Recorded};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
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
            // As many keys as the example images' hosts have: explanations cost too.
            env: (0..14)
                .map(|k| (format!("Key{k}"), format!("{k:012x}")))
                .collect(),
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
            overrides: BTreeMap::new(),
            env: BTreeMap::new(),
            texts: BTreeMap::new(),
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
        rootfs_inputs: BTreeMap::new(),
        launch: Launch::Apps(apps),
        plugins: Vec::new(),
        image_policy: None,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs `cmd` to completion: (wall time, peak RSS in bytes, stdout). The bench re-runs
/// itself as a go-between whose only child is `cmd`, so that its RUSAGE_CHILDREN peak is
/// exactly that command's (no unsafe wait4 call needed).
fn measure(cmd: &Command) -> (Duration, u64, String) {
    let start = Instant::now();
    let out = Command::new(std::env::current_exe().expect("bench path"))
        .arg(MEASURE)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .expect("run the measured command");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sealer failed: {stderr}");
    let rss = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("maxrss-kib="))
        .next_back()
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the go-between reports maxrss");
    (
        took,
        rss * 1024,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const MEASURE: &str = "--measure-child";

/// The go-between of [`measure`]: runs argv, then reports its peak RSS on stderr.
fn measure_child(argv: &[String]) -> ! {
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .expect("spawn the measured command");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    eprintln!("maxrss-kib={}", usage.max_rss());
    std::process::exit(status.code().unwrap_or(1));
}

/// A cluster image with `apps` kube apps (one manifest each), launched in order.
fn build_image(home: &Path, dir: &Path, apps: usize) {
    let mut kubefile = String::from(
        "FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.22.15\nCOPY scripts/ scripts/\n",
    );
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for s in ["containerd.sh", "init-kube.sh"] {
        std::fs::write(dir.join("scripts").join(s), "true\n").unwrap();
    }
    let mut names = Vec::new();
    for i in 0..apps {
        let name = format!("app{i:03}");
        let app_dir = dir.join("apps").join(&name);
        std::fs::create_dir_all(&app_dir).unwrap();
        std::fs::write(
            app_dir.join("a.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"),
        )
        .unwrap();
        let _ = writeln!(kubefile, "APP {name} local://apps/{name}/");
        names.push(format!("\"{name}\""));
    }
    let _ = writeln!(kubefile, "LAUNCH [{}]", names.join(", "));
    std::fs::write(dir.join("Kubefile"), kubefile).unwrap();
    let out = Command::new(sealer_binary())
        .args(["build", "-t", "scale:v1"])
        .arg(dir)
        .env("SEALER_HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn clusterfile(hosts: usize) -> String {
    let ips: Vec<String> = (0..hosts)
        .map(|i| format!("10.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, i % 250 + 1))
        .collect();
    format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: scale\nspec:\n  image: scale:v1\n  ssh: {{passwd: bench-secret}}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [node]\n",
        ips[..3].join(", "),
        ips[3..].join(", ")
    )
}

struct BinaryRow {
    empty: (Duration, u64),
    applied: (Duration, u64),
}

fn binary_plans() -> BTreeMap<usize, BinaryRow> {
    println!("sealer plan (the binary), 100 apps, median of 3 wall times, peak RSS:");
    println!(
        "{:>6} {:>12} {:>10} {:>14} {:>10}",
        "hosts", "empty state", "RSS", "applied state", "RSS"
    );
    let scratch = tempfile::Builder::new()
        .prefix("sealer-bench-plan-")
        .tempdir()
        .unwrap();
    let image_dir = scratch.path().join("image");
    let mut rows = BTreeMap::new();
    for hosts in [500, 1_000, 5_000] {
        let home = scratch.path().join(format!("home-{hosts}"));
        build_image(&home, &image_dir, 100);
        let file = scratch.path().join(format!("Clusterfile-{hosts}"));
        std::fs::write(&file, clusterfile(hosts)).unwrap();
        let plan = |extra: &[&str]| {
            let mut cmd = Command::new(sealer_binary());
            cmd.arg("plan")
                .arg("-f")
                .arg(&file)
                .args(extra)
                .env("SEALER_HOME", &home)
                .env("NO_COLOR", "1");
            measure(&cmd)
        };
        let mut empty = Vec::new();
        for _ in 0..3 {
            let (t, rss, out) = plan(&[]);
            assert!(out.contains(" to add, 0 to change, 0 to destroy."), "{out}");
            empty.push((t, rss));
        }
        let saved = scratch.path().join(format!("plan-{hosts}.bin"));
        plan(&["--out", saved.to_str().unwrap()]);
        common::seed_applied_state(&home.join("state.db"), "scale", &saved);
        let mut applied = Vec::new();
        for _ in 0..3 {
            let (t, rss, out) = plan(&[]);
            assert!(out.starts_with("No changes."), "{out}");
            applied.push((t, rss));
        }
        let row = BinaryRow {
            empty: median_of(empty),
            applied: median_of(applied),
        };
        println!(
            "{hosts:>6} {:>10.0?} {:>8} MB {:>12.0?} {:>8} MB",
            row.empty.0,
            row.empty.1 / 1_000_000,
            row.applied.0,
            row.applied.1 / 1_000_000
        );
        rows.insert(hosts, row);
    }
    rows
}

/// The median by time, with its RSS; the largest RSS seen is reported by the caller.
fn median_of(mut xs: Vec<(Duration, u64)>) -> (Duration, u64) {
    let max_rss = xs.iter().map(|x| x.1).max().unwrap_or(0);
    xs.sort();
    (xs[xs.len() / 2].0, max_rss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(MEASURE) {
        measure_child(&args[2..]);
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it, and
    // only needs it to compile.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let binary = binary_plans();
    let ratio = |f: fn(&BinaryRow) -> Duration| {
        f(&binary[&5_000]).as_secs_f64() / f(&binary[&500]).as_secs_f64()
    };
    println!(
        "5000/500 ratio: empty state {:.1}, applied state {:.1} (target ≤ 11); peak RSS at 5,000 hosts {} MB (target ≤ 200)\n",
        ratio(|r| r.empty.0),
        ratio(|r| r.applied.0),
        binary[&5_000].empty.1.max(binary[&5_000].applied.1) / 1_000_000
    );
    println!("the library pipeline alone (compile, diff, render):");
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
