//! Rootfs distribution, the tree (hosts that hold the verified rootfs serve the next ones,
//! doubling each round) against the direct path (the operator sends to every host), in one
//! run on one machine, on a shaped SSH test bed (issue 15):
//!
//! - links: sealer runs in the bed's operator namespace behind a 100 Mbit/s uplink; every
//!   host has a 1 Gbit/s link; both shaped both ways with `tc ... tbf`
//!   ([`testbed::TestBedBuilder::shaped`]);
//! - payload: a 50 MB rootfs of incompressible data (five 10 MB files from `/dev/urandom`)
//!   on top of the bench image (whose runtime and kubeadm scripts do nothing);
//! - sizes: 8, 32 and 64 hosts (host 0 the master, every host receives the rootfs); per size
//!   one bed, then `sealer apply --rootfs-distribution tree` and `... direct`, each with a
//!   fresh state and followed by a destroy, so each starts from hosts that hold nothing.
//! - parallelism: `--parallelism` = hosts for both (a round's transfers, or every direct
//!   sync, all at once; the direct path is bound by the uplink whatever the parallelism).
//!
//! Measured per apply: the wall time; the rootfs phase (first `rootfs.*` step start to last
//! `rootfs.*` step done, from `--json` events timed as they arrive); the bytes that left the
//! operator's uplink (the operator link's `tx_bytes`); where each host's rootfs came from
//! (its rootfs line: the operator, a seeder, or a fallback to direct). Printed: the times with the ratio
//! tree/direct, then the growth: seconds added per doubling of the hosts, 8→32 (two
//! doublings) and 32→64 (one), which stay about equal when time grows with log N, and
//! quadruple when it grows with N.
//!
//! Run as root: `cargo bench --bench distribution` (every size) or
//! `cargo bench --bench distribution -- 8 32` (some). A sealer without
//! `--rootfs-distribution` is measured on its one (direct) path, the tree columns empty.
#![allow(clippy::print_stdout, clippy::print_stderr, dead_code)]

mod common;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "../tests/it/support/testbed.rs"]
mod testbed;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sealer_binary;
use scratch::Scratch;
use testbed::{Shaping, TestBed};

const SIZES: [usize; 3] = [8, 32, 64];
const SHAPING: Shaping = Shaping {
    operator_uplink_mbit: 100,
    host_link_mbit: 1_000,
};
const PAYLOAD_FILES: usize = 5;
const PAYLOAD_FILE_BYTES: usize = 10_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Tree,
    Direct,
    /// A sealer without the flag: its only path, which is direct.
    Unflagged,
}

impl Method {
    fn flag(self) -> Option<&'static str> {
        match self {
            Method::Tree => Some("tree"),
            Method::Direct => Some("direct"),
            Method::Unflagged => None,
        }
    }
}

/// One apply: wall time, rootfs phase, bytes through the operator's uplink.
#[derive(Clone, Copy)]
struct Run {
    apply: Duration,
    rootfs: Option<Duration>,
    uplink_bytes: u64,
    paths: Paths,
}

/// Where the hosts' rootfs came from, counted from each host's rootfs line (`N files, B
/// bytes sent from the operator`, `... bytes from SEEDER`, `... directly (fallback: ...)`).
#[derive(Clone, Copy, Default)]
struct Paths {
    operator: usize,
    seeded: usize,
    fallback: usize,
}

impl Paths {
    fn count(&mut self, line: &str) {
        if line.contains("(fallback") {
            self.fallback += 1;
        } else if line.contains(" sent") {
            self.operator += 1;
        } else if line.contains(" bytes from ") {
            self.seeded += 1;
        }
    }
}

/// The incompressible payload: random bytes, so no compression on any path helps.
fn make_payload(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..PAYLOAD_FILES {
        let status = Command::new("head")
            .args(["-c", &PAYLOAD_FILE_BYTES.to_string(), "/dev/urandom"])
            .stdout(std::fs::File::create(dir.join(format!("blob-{i}.bin"))).unwrap())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Whether this sealer has the tree distribution's flag.
fn has_distribution_flag() -> bool {
    let out = Command::new(sealer_binary())
        .args(["apply", "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("--rootfs-distribution")
}

/// Bytes sent so far by the operator's end of its uplink.
fn uplink_tx_bytes(bed: &TestBed) -> u64 {
    let out = bed
        .operator_command("cat")
        .arg("/sys/class/net/eth0/statistics/tx_bytes")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `sealer apply` in the operator namespace, its `--json` events timed as they arrive.
fn apply(bed: &TestBed, s: &Scratch, file: &Path, hosts: usize, method: Method) -> Run {
    let stderr_path = s.path("apply.stderr");
    let mut cmd = s.with_home(bed.operator_command(sealer_binary()));
    cmd.args(["apply", "-f"])
        .arg(file)
        .args(["--auto-approve", "--json", "--parallelism"])
        .arg(hosts.to_string());
    if let Some(flag) = method.flag() {
        cmd.args(["--rootfs-distribution", flag]);
    }
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let before = uplink_tx_bytes(bed);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (mut first_start, mut last_done) = (None, None);
    let mut paths = Paths::default();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let at = start.elapsed();
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line.unwrap()) else {
            continue;
        };
        let rootfs = event["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("rootfs."));
        match event["type"].as_str() {
            Some("step_start") if rootfs => {
                first_start.get_or_insert(at);
            }
            Some("step_done") if rootfs => last_done = Some(at),
            Some("step_output") if rootfs => {
                if let Some(line) = event["line"].as_str().filter(|l| l.contains(" bytes")) {
                    paths.count(line);
                }
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert!(
        status.success(),
        "sealer apply ({}): {}",
        method.flag().unwrap_or("no flag"),
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    Run {
        apply: took,
        rootfs: first_start.zip(last_done).map(|(a, b)| b.saturating_sub(a)),
        uplink_bytes: uplink_tx_bytes(bed) - before,
        paths,
    }
}

/// Applies with each method from a fresh state, destroying in between, on one bed of `n`.
fn measure(n: usize, methods: &[Method], payload: &Path) -> Vec<(Method, Run)> {
    let bed = TestBed::builder(n).shaped(SHAPING).start();
    let mut runs = Vec::new();
    for &method in methods {
        let s = Scratch::new();
        s.build_bench_image(Some(payload));
        let file = s.clusterfile(&bed, n, &[]);
        let run = apply(&bed, &s, &file, n, method);
        eprintln!(
            "{n} hosts, {}: apply {:.2} s, rootfs {}, uplink {} MB; rootfs from the operator {}, from a seeder {}, fallback {}",
            method.flag().unwrap_or("direct (no flag)"),
            run.apply.as_secs_f64(),
            secs(run.rootfs),
            run.uplink_bytes / 1_000_000,
            run.paths.operator,
            run.paths.seeded,
            run.paths.fallback
        );
        runs.push((method, run));
        let mut destroy = s.with_home(bed.operator_command(sealer_binary()));
        let out = destroy
            .args(["destroy", "-f"])
            .arg(&file)
            .arg("--auto-approve")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sealer destroy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    runs
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("–".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("**{:.2}**", a.as_secs_f64() / b.as_secs_f64()),
        _ => "–".to_string(),
    }
}

/// Seconds added per doubling of the hosts between sizes `a` and `b` (times `ta`, `tb`).
fn per_doubling(a: usize, ta: Duration, b: usize, tb: Duration) -> f64 {
    let doublings = (b as f64 / a as f64).log2();
    (tb.as_secs_f64() - ta.as_secs_f64()) / doublings
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it, and
    // only needs it to compile (the benchmark takes many minutes and starts 100+ hosts).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = SIZES.to_vec();
    }
    let methods = if has_distribution_flag() {
        vec![Method::Tree, Method::Direct]
    } else {
        eprintln!("this sealer has no --rootfs-distribution: measuring its direct path only");
        vec![Method::Unflagged]
    };
    let payload_dir = tempfile::Builder::new()
        .prefix("sealer-bench-payload-")
        .tempdir()
        .unwrap();
    let payload = payload_dir.path().join("payload");
    make_payload(&payload);

    let mut table = vec![
        format!(
            "| hosts | tree: apply | tree: rootfs phase | direct: apply | direct: rootfs phase | tree/direct, apply | tree/direct, rootfs phase | uplink MB, tree / direct | tree: hosts from operator / seeder / fallback |"
        ),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut by_size = Vec::new();
    for &n in &sizes {
        let runs = measure(n, &methods, &payload);
        let get = |m: Method| runs.iter().find(|(x, _)| *x == m).map(|(_, r)| *r);
        let tree = get(Method::Tree);
        let direct = get(Method::Direct).or(get(Method::Unflagged));
        let mb = |r: Option<Run>| {
            r.map_or("–".to_string(), |r| {
                (r.uplink_bytes / 1_000_000).to_string()
            })
        };
        table.push(format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            secs(tree.map(|r| r.apply)),
            secs(tree.and_then(|r| r.rootfs)),
            secs(direct.map(|r| r.apply)),
            secs(direct.and_then(|r| r.rootfs)),
            ratio(tree.map(|r| r.apply), direct.map(|r| r.apply)),
            ratio(tree.and_then(|r| r.rootfs), direct.and_then(|r| r.rootfs)),
            mb(tree),
            mb(direct),
            tree.map_or("–".to_string(), |r| format!(
                "{} / {} / {}",
                r.paths.operator, r.paths.seeded, r.paths.fallback
            )),
        ));
        println!("{}", table.last().unwrap());
        by_size.push((n, tree, direct));
    }

    // Growth: seconds per doubling between consecutive sizes, of the apply's wall time.
    let mut growth = vec![
        "| method | seconds per doubling of hosts (apply) |".to_string(),
        "|---|---|".to_string(),
    ];
    for (name, pick) in [
        ("tree", 0usize),
        (
            if methods.contains(&Method::Unflagged) {
                "direct (no flag)"
            } else {
                "direct"
            },
            1,
        ),
    ] {
        let steps: Vec<String> = by_size
            .windows(2)
            .filter_map(|w| {
                let (a, ra) = (w[0].0, if pick == 0 { w[0].1 } else { w[0].2 });
                let (b, rb) = (w[1].0, if pick == 0 { w[1].1 } else { w[1].2 });
                Some(format!(
                    "{a}→{b}: {:.2} s",
                    per_doubling(a, ra?.apply, b, rb?.apply)
                ))
            })
            .collect();
        if !steps.is_empty() {
            growth.push(format!("| {name} | {} |", steps.join("; ")));
        }
    }
    println!(
        "\n50 MB rootfs, operator uplink {} Mbit/s, host links {} Mbit/s\n\n{}\n\n{}",
        SHAPING.operator_uplink_mbit,
        SHAPING.host_link_mbit,
        table.join("\n"),
        growth.join("\n")
    );
}
