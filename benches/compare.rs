//! sealer against the tools operators would otherwise use, on the namespaced SSH test bed,
//! all in one run on one machine (so every ratio compares like with like):
//!
//! 1. fan-out: the same 10 small commands per host on 8, 32 and 128 hosts, run by `sealer
//!    apply`, by a bash loop over OpenSSH with one ControlMaster per host, and (up to 32
//!    hosts) by ansible-playbook (forks = N, pipelining, ControlPersist); median of 3;
//! 2. rootfs distribution: a ~200 MB rootfs to 16 hosts, against `scp -r` in parallel; then
//!    re-applies with nothing changed and with one file changed (bytes sent);
//! 3. no-op: plan and apply of an unchanged 1,000-host state (time, connections).
//!
//! Run as root: `cargo bench --bench compare` (needs openssh-client, ansible-core), or some
//! of it: `cargo bench --bench compare -- fan-out 128` (sections fan-out, rootfs, no-op;
//! fan-out sizes; `direct` makes the fan-out's applies send the rootfs directly).
#![allow(clippy::print_stdout, clippy::print_stderr, dead_code)]

mod common;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "../tests/it/support/testbed.rs"]
mod testbed;

use scratch::Scratch;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testbed::TestBed;

const ROUNDS: usize = 3;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// The 10 small commands every method runs on every host.
fn commands(round: usize) -> Vec<String> {
    (0..10)
        .map(|i| format!("echo {round}-{i} > /tmp/bench-{i}"))
        .collect()
}

/// (b) bash + OpenSSH, one ControlMaster per host, hosts in parallel.
fn controlmaster_loop(bed: &TestBed, hosts: &[usize], cmds: &[String], dir: &Path) -> Duration {
    let mut script = String::from("set -e\n");
    for &i in hosts {
        let ip = bed.host(i).ip();
        let opts = format!(
            "-o BatchMode=yes -o UserKnownHostsFile={} -i {} -o ControlMaster=auto -o ControlPath={}/cm-{i} -o ControlPersist=60",
            bed.known_hosts_path().display(),
            bed.client_key_path().display(),
            dir.display()
        );
        let _ = write!(script, "( ");
        for c in cmds {
            let _ = write!(
                script,
                "ssh {opts} root@{ip} {} >/dev/null; ",
                shell_quote(c)
            );
        }
        let _ = writeln!(
            script,
            "ssh {opts} -O exit root@{ip} 2>/dev/null || true ) &"
        );
    }
    script.push_str("wait\n");
    // From a file: at 128 hosts the script is longer than one argument may be (128 KiB).
    let file = dir.join("controlmaster-loop.sh");
    std::fs::write(&file, &script).unwrap();
    let start = Instant::now();
    let out = bed.command("bash").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// (c) ansible-playbook with forks = N and pipelining.
fn ansible(bed: &TestBed, hosts: &[usize], cmds: &[String], dir: &Path) -> Option<Duration> {
    if Command::new("ansible-playbook")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return None;
    }
    let mut inventory = String::from("[bench]\n");
    for &i in hosts {
        let _ = writeln!(inventory, "{} ansible_user=root", bed.host(i).ip());
    }
    std::fs::write(dir.join("inventory"), inventory).unwrap();
    let mut play = String::from("- hosts: bench\n  gather_facts: false\n  tasks:\n");
    for (n, c) in cmds.iter().enumerate() {
        let _ = writeln!(
            play,
            "    - name: step {n}\n      shell: {}",
            serde_json::to_string(c).unwrap()
        );
    }
    std::fs::write(dir.join("play.yml"), play).unwrap();
    std::fs::write(
        dir.join("ansible.cfg"),
        format!(
            "[defaults]\nhost_key_checking = False\nforks = {}\nprivate_key_file = {}\n[ssh_connection]\npipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={}\n",
            hosts.len(),
            bed.client_key_path().display(),
            bed.known_hosts_path().display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let out = bed
        .command("ansible-playbook")
        .args(["-i", "inventory", "play.yml"])
        .current_dir(dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("ansible failed: {}", String::from_utf8_lossy(&out.stdout));
        return None;
    }
    Some(start.elapsed())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `fan_out` with `rootfs_direct`: the applies pass `--rootfs-distribution direct` (the
/// default, tree, orders the tiny bench rootfs in log2 N rounds; see docs/benchmarks.md).
fn fan_out(
    n: usize,
    with_ansible: bool,
    rootfs_direct: bool,
) -> (Duration, Duration, Option<Duration>) {
    let bed = TestBed::start(n + 1);
    let workers: Vec<usize> = (1..=n).collect();
    let mut sealer_times = Vec::new();
    let mut loop_times = Vec::new();
    let mut ansible_times = Vec::new();
    for round in 0..ROUNDS {
        let cmds = commands(round);
        let s = Scratch::new();
        s.build_bench_image(None);
        let file = s.clusterfile(&bed, n + 1, &cmds);
        let parallelism = n.max(10).to_string();
        let mut args = vec![
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--auto-approve",
            "--parallelism",
            &parallelism,
        ];
        if rootfs_direct {
            args.extend(["--rootfs-distribution", "direct"]);
        }
        let (_, took) = s.sealer(Some(&bed), &args);
        sealer_times.push(took);
        s.sealer(
            Some(&bed),
            &["destroy", "-f", file.to_str().unwrap(), "--auto-approve"],
        );
        loop_times.push(controlmaster_loop(&bed, &workers, &cmds, s.dir.path()));
        if with_ansible && let Some(t) = ansible(&bed, &workers, &cmds, s.dir.path()) {
            ansible_times.push(t);
        }
    }
    let ansible = (!ansible_times.is_empty()).then(|| median(ansible_times));
    (median(sealer_times), median(loop_times), ansible)
}

/// A ~200 MB tree: 5,000 small files and three large ones.
fn make_payload(dir: &Path) {
    std::fs::create_dir_all(dir.join("small")).unwrap();
    for i in 0..5_000 {
        std::fs::write(
            dir.join(format!("small/f{i:05}.txt")),
            format!("{i}\n").repeat(200),
        )
        .unwrap();
    }
    for i in 0..3 {
        let status = Command::new("head")
            .args(["-c", "60000000", "/dev/urandom"])
            .stdout(std::fs::File::create(dir.join(format!("large-{i}.bin"))).unwrap())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn bytes_sent(stdout: &[u8]) -> u64 {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "step_output")
        .filter_map(|v| {
            let line = v["line"].as_str()?.to_string();
            let bytes = line
                .split(" files, ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()?;
            Some(bytes)
        })
        .sum()
}

fn rootfs_distribution() -> Vec<String> {
    let hosts = 16;
    let bed = TestBed::start(hosts + 1);
    let s = Scratch::new();
    let payload = s.path("payload");
    make_payload(&payload);
    s.build_bench_image(Some(&payload));
    let file = s.clusterfile(&bed, hosts + 1, &[]);
    let f = file.to_str().unwrap();
    let (out, first) = s.sealer(
        Some(&bed),
        &[
            "apply",
            "-f",
            f,
            "--auto-approve",
            "--json",
            "--parallelism",
            "17",
        ],
    );
    let sent_first = bytes_sent(&out.stdout);
    // scp -r of the same tree to the same hosts, in parallel.
    let mut script = String::from("set -e\n");
    for i in 1..=hosts {
        let _ = writeln!(
            script,
            "scp -q -r -o BatchMode=yes -o UserKnownHostsFile={} -i {} {} root@{}:/tmp/scp-payload &",
            bed.known_hosts_path().display(),
            bed.client_key_path().display(),
            payload.display(),
            bed.host(i).ip()
        );
    }
    script.push_str("wait\n");
    let start = Instant::now();
    let scp = bed.command("bash").arg("-c").arg(&script).output().unwrap();
    assert!(
        scp.status.success(),
        "{}",
        String::from_utf8_lossy(&scp.stderr)
    );
    let scp_time = start.elapsed();
    // Nothing changed: the rootfs steps do not even run.
    let (out, unchanged) = s.sealer(Some(&bed), &["apply", "-f", f, "--auto-approve", "--json"]);
    let sent_unchanged = bytes_sent(&out.stdout);
    // One file changed: a new image, then only that file travels.
    std::fs::write(payload.join("small/f00000.txt"), "changed\n".repeat(500)).unwrap();
    std::fs::remove_dir_all(s.path("image/payload")).unwrap();
    std::fs::remove_file(s.path("image/Kubefile")).unwrap();
    s.build_bench_image(Some(&payload));
    let (out, changed) = s.sealer(
        Some(&bed),
        &[
            "apply",
            "-f",
            f,
            "--auto-approve",
            "--json",
            "--parallelism",
            "17",
        ],
    );
    let sent_changed = bytes_sent(&out.stdout);
    vec![
        format!(
            "| rootfs ~200 MB to 16 hosts, first apply | {:.2} s | scp -r in parallel {:.2} s | ratio sealer/scp {:.2} | sent {} MB |",
            first.as_secs_f64(),
            scp_time.as_secs_f64(),
            first.as_secs_f64() / scp_time.as_secs_f64(),
            sent_first / 1_000_000
        ),
        format!(
            "| re-apply, nothing changed | {:.2} s | | | sent {sent_unchanged} bytes |",
            unchanged.as_secs_f64()
        ),
        format!(
            "| re-apply, one 4 kB file changed | {:.2} s | | | sent {sent_changed} bytes ({} per host) |",
            changed.as_secs_f64(),
            sent_changed / hosts as u64
        ),
    ]
}

fn no_op(hosts: usize) -> String {
    // The state of an applied 1,000-host cluster, recorded through the state API (no hosts
    // exist: a no-op must not need them).
    let s = Scratch::new();
    s.build_bench_image(None);
    let ips: Vec<String> = (0..hosts)
        .map(|i| format!("10.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, i % 250 + 1))
        .collect();
    let text = format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: big\nspec:\n  image: bench:v1\n  containerRuntime: {{type: bench}}\n  ssh: {{passwd: x}}\n  registry:\n    externalRegistry: {{domain: registry.invalid}}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [node]\n",
        ips[0],
        ips[1..].join(", ")
    );
    let file = s.write("Clusterfile", &text);
    let f = file.to_str().unwrap();
    s.sealer(None, &["plan", "-f", f, "--out", "seed.bin"]);
    common::seed_applied_state(&s.path("home/state.db"), "big", &s.path("seed.bin"));
    let (out, plan) = s.sealer(None, &["plan", "-f", f]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No changes."));
    let (_, apply) = s.sealer(None, &["apply", "-f", f, "--auto-approve"]);
    format!(
        "| no-op, {hosts} hosts | plan {:.2} s | apply {:.2} s | SSH connections 0 (no host exists) |",
        plan.as_secs_f64(),
        apply.as_secs_f64()
    )
}

/// Fan-out sizes; ansible runs up to 32 hosts (at 128 a round of it takes minutes, and the
/// target there is sealer against the limit).
const FAN_OUT_SIZES: [usize; 3] = [8, 32, 128];
const ANSIBLE_MAX_HOSTS: usize = 32;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it, and
    // only needs it to compile (the benchmarks take minutes and start dozens of hosts).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // `cargo bench --bench compare -- fan-out 128`: only these sections (fan-out, rootfs,
    // no-op) and fan-out sizes; nothing named runs everything.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let mut sections: Vec<&str> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    // `direct`: the fan-out's applies send the rootfs directly instead of by the tree.
    let rootfs_direct = sections.contains(&"direct");
    sections.retain(|&s| s != "direct");
    let runs = |name: &str| sections.is_empty() || sections.contains(&name);
    let mut rows = Vec::new();
    rows.push("| benchmark | sealer | baseline | ratio | notes |".to_string());
    rows.push("|---|---|---|---|---|".to_string());
    if runs("fan-out") {
        for n in FAN_OUT_SIZES {
            if !sizes.is_empty() && !sizes.contains(&n) {
                continue;
            }
            let (sealer, limit, ansible) = fan_out(n, n <= ANSIBLE_MAX_HOSTS, rootfs_direct);
            let ansible_text = match ansible {
                Some(a) => format!(
                    "ansible {:.2} s, ansible/sealer {:.1}",
                    a.as_secs_f64(),
                    a.as_secs_f64() / sealer.as_secs_f64()
                ),
                None if n > ANSIBLE_MAX_HOSTS => "(ansible not run at this size)".to_string(),
                None => "(ansible not installed)".to_string(),
            };
            let how = if rootfs_direct { ", rootfs direct" } else { "" };
            rows.push(format!(
                "| fan-out, {n} hosts × 10 commands{how} | {:.2} s | ControlMaster loop {:.2} s | sealer/limit {:.2} | {ansible_text} |",
                sealer.as_secs_f64(),
                limit.as_secs_f64(),
                sealer.as_secs_f64() / limit.as_secs_f64()
            ));
            println!("{}", rows.last().unwrap());
        }
    }
    if runs("rootfs") {
        rows.extend(rootfs_distribution());
    }
    if runs("no-op") {
        rows.push(no_op(1_000));
    }
    println!("\n{}", rows.join("\n"));
}
