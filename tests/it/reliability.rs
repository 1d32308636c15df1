//! Reliability on the real test bed: the engine killed at random points, hosts that die,
//! hang or drop off the network, two applies racing for one state.

// The crash test prints its seed and kill points, so a failure can be repeated.
#![allow(clippy::print_stderr)]

use crate::apply::Deploy;
use crate::support::testbed::TestBed;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A small deterministic generator, so a failing run can be repeated with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `(address, type)` of each JSON event line.
fn json_events(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["type"].as_str().unwrap_or_default().to_string(),
                v["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Runs `sealer ARGS --json`, SIGKILLs it once `kill_after` steps are done; returns its
/// events (those printed before the kill).
fn run_killed(d: &Deploy, args: &[&str], kill_after: usize) -> Vec<(String, String)> {
    let mut done = 0;
    run_killed_when(d, args, |line| {
        if line.contains("\"type\":\"step_done\"") {
            done += 1;
        }
        done == kill_after
    })
}

/// Runs `sealer ARGS --json` and SIGKILLs it at the first event line `kill_at` accepts;
/// returns its events (those printed before the kill).
pub(crate) fn run_killed_when(
    d: &Deploy,
    args: &[&str],
    mut kill_at: impl FnMut(&str) -> bool,
) -> Vec<(String, String)> {
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let mut cmd = d.bed.command(&binary);
    cmd.args(args)
        .arg("--json")
        .env("SEALER_HOME", d.sb.home())
        .env("HOME", d.sb.path(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        events.extend(json_events(&line));
        if kill_at(&line) {
            let _ = child.kill();
            break;
        }
    }
    let _ = child.wait();
    events
}

/// The state's resources: address → (status, attributes), through the CLI's JSON.
fn state_of(d: &Deploy) -> BTreeMap<String, serde_json::Value> {
    let list = d.sealer_ok(&["state", "list"]);
    // `# cluster "x" has no resources (...)` for an emptied cluster.
    list.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .map(|address| {
            let shown = d.sealer_ok(&["state", "show", &address, "--json"]);
            (address, serde_json::from_str(&shown).unwrap())
        })
        .collect()
}

fn integrity_check(d: &Deploy) {
    let conn = rusqlite::Connection::open(d.sb.home().join("state.db")).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
}

#[test]
fn killed_at_twenty_random_points_apply_converges() {
    let seed: u64 = std::env::var("SEALER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125);
    eprintln!("crash points seeded with SEALER_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let d = Deploy::new(TestBed::start(6));
    let file = d.clusterfile(&[0, 1, 2], &[3, 4, 5], "");
    let file = file.to_str().unwrap().to_string();
    // The end state of an uninterrupted apply, and how many steps it has.
    let total = json_events(&d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]))
        .iter()
        .filter(|(t, _)| t == "step_done")
        .count();
    let reference = state_of(&d);
    d.sealer_ok(&["destroy", "-f", &file, "--auto-approve"]);

    for round in 0..20 {
        // Even rounds kill an apply, odd rounds the destroy that follows it.
        let destroying = round % 2 == 1;
        let point = 1 + (rng.next() as usize) % (total - 1);
        eprintln!(
            "round {round}: killing {} after {point} of {total} steps",
            if destroying { "destroy" } else { "apply" }
        );
        let args: Vec<&str> = if destroying {
            vec!["destroy", "-f", &file, "--auto-approve"]
        } else {
            vec!["apply", "-f", &file, "--auto-approve"]
        };
        let killed = run_killed(&d, &args, point);
        integrity_check(&d);
        let finished: BTreeSet<String> = killed
            .iter()
            .filter(|(t, _)| t == "step_done")
            .map(|(_, a)| a.clone())
            .collect();
        // Again, to the end: the killed engine's lock went with it (the kernel released its
        // OS lock), and this run takes its row over, saying so.
        let mut again = args.clone();
        again.push("--json");
        let out = d.sealer(&again);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "round {round}: {err}");
        assert!(
            err.contains("which is gone: taken over"),
            "round {round}: {err}"
        );
        let resumed = json_events(&String::from_utf8_lossy(&out.stdout));
        integrity_check(&d);
        for (t, address) in &resumed {
            assert!(
                !(t == "step_start" && finished.contains(address)),
                "round {round}: {address} finished before the kill and ran again"
            );
        }
        if destroying {
            let list = d.sealer_ok(&["state", "list"]);
            assert!(
                list.starts_with("# cluster \"bed\" has no resources"),
                "round {round}: destroy converged: {list}"
            );
        } else {
            assert_eq!(
                state_of(&d),
                reference,
                "round {round}: apply converged to the same state"
            );
            d.assert_no_changes(&file);
        }
    }
}

/// The narrowest window: a join has finished on its host (kubeadm said so), and sealer dies
/// before recording it. The step was recorded tainted before it started, so the next plan
/// replaces it (reset, then join) instead of joining a joined node, and the apply converges.
#[test]
fn killed_between_a_finished_join_and_its_record_the_plan_replaces_it() {
    let d = Deploy::new(TestBed::start(2));
    let file = d.clusterfile(&[0], &[1], "");
    let file = file.to_str().unwrap().to_string();
    let worker = format!("kubernetes.worker.{}", d.bed.host(1).ip());
    let killed = run_killed_when(&d, &["apply", "-f", &file, "--auto-approve"], |line| {
        line.contains("\"type\":\"step_output\"")
            && line.contains(&format!("\"address\":\"{worker}\""))
            && line.contains("This node has joined the cluster")
    });
    assert!(
        !killed.iter().any(|(t, a)| t == "step_done" && *a == worker),
        "killed too late: {killed:?}"
    );
    // The join did happen on the host.
    d.bed
        .ssh_ok(1, "test -f /var/lib/kubelet/joined-with-ca-hash");
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    assert!(
        plan.contains(&format!(
            "# {worker} must be replaced (tainted by a failed apply)"
        )),
        "{plan}"
    );
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    integrity_check(&d);
    d.assert_no_changes(&file);
}

/// A host that hangs a command, one whose link is cut and one whose sshd dies: each fails
/// within its timeout naming host, step and command; the rest finishes; after recovery the
/// apply converges.
#[test]
fn hung_cut_and_killed_hosts_fail_in_time_and_apply_converges() {
    let d = Deploy::new(TestBed::start(5));
    let ip = |i: usize| d.bed.host(i).ip().to_string();
    // Host 2 hangs in a plugin; host 3 is cut and host 4 killed while host 2 hangs.
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: hang}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: hang\n  data: |\n    sleep 600\n";
    let groups = format!(
        "    - ips: [{}]\n      roles: [node, hang]\n    - ips: [{}, {}]\n      roles: [node, hang]\n",
        ip(2),
        ip(3),
        ip(4)
    );
    let file = d.clusterfile(&[0], &[1], &format!("{groups}{plugin}"));
    let file = file.to_str().unwrap().to_string();
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let mut cmd = d.bed.command(&binary);
    cmd.args([
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--step-timeout",
        "6",
    ])
    .env("SEALER_HOME", d.sb.home())
    .env("HOME", d.sb.path(""))
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    // Wait until the plugin runs on all three, then break two of them.
    let running = |i: usize| {
        d.bed
            .ssh(i, "pgrep -f 'sleep 600' >/dev/null")
            .status
            .code()
            == Some(0)
    };
    while !(running(2) && running(3) && running(4)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the plugins never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.bed.cut(3);
    d.bed.kill(4);
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(40), "the apply took {took:?}");
    for i in 2..5 {
        let address = format!("plugin.hang.pre-init-host.{}", ip(i));
        assert!(
            stderr.contains(&address),
            "{address} not reported:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("  command: ") && stderr.contains("sleep 600"),
        "{stderr}"
    );
    assert!(
        stderr.contains("timed out"),
        "the hung host's step timed out:\n{stderr}"
    );
    assert!(
        stderr.contains("hint: the step ran longer than --step-timeout (6s)"),
        "a timed-out step says which limit it hit:\n{stderr}"
    );
    // The rest of the graph finished: the healthy worker joined (the apps wait for every
    // join, so they wait for the broken hosts too).
    assert!(
        d.commands(1)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm join"))
    );

    // Recovery: heal, restart, and a plugin that no longer hangs.
    d.bed.heal(3);
    d.bed.restart(4);
    let file = d.clusterfile(
        &[0],
        &[1],
        &format!("{groups}{}", plugin.replace("sleep 600", "true")),
    );
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    for i in 2..5 {
        assert!(
            d.commands(i)
                .iter()
                .any(|(_, _, c)| c.starts_with("kubeadm join")),
            "host {i} joined"
        );
    }
    d.assert_no_changes(&file);
}

/// Every file under `dir`, recursively, as bytes (for grepping secrets).
fn all_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            all_files(&path, out);
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// SSH password, key passphrase, registry credentials and the join tokens never appear in
/// any output, the state or any file sealer writes; state and plan files are 0600.
#[test]
fn secrets_appear_nowhere() {
    let ssh_password = "S3cret-ssh-pass!";
    let key_passphrase = "S3cret-key-phrase!";
    let registry_password = "S3cret-registry-pass!";
    let d = Deploy::new(TestBed::builder(3).password(ssh_password).start());
    // Host 1 logs in with a passphrase-protected copy of the key; host 2 with the password.
    let key = d.sb.path("encrypted_key");
    std::fs::copy(d.bed.client_key_path(), &key).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", key_passphrase, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let text = format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: bed\nspec:\n  image: {}\n  ssh:\n    pk: {}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [node]\n      ssh: {{pk: {}, pkPasswd: \"{key_passphrase}\"}}\n    - ips: [{}]\n      roles: [node]\n      ssh: {{passwd: \"{ssh_password}\"}}\n  registry:\n    localRegistry: {{username: admin, password: \"{registry_password}\"}}\n",
        crate::apply::IMAGE,
        d.bed.client_key_path().display(),
        d.bed.host(0).ip(),
        d.bed.host(1).ip(),
        key.display(),
        d.bed.host(2).ip(),
    );
    let file = d.sb.path("Clusterfile");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap().to_string();

    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let run = |outputs: &mut Vec<(String, Vec<u8>)>, args: &[&str]| {
        let out = d.sealer(args);
        assert!(
            out.status.success(),
            "sealer {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((format!("{args:?} stdout"), out.stdout));
        outputs.push((format!("{args:?} stderr"), out.stderr));
    };
    run(&mut outputs, &["validate", "-f", &file]);
    run(&mut outputs, &["plan", "-f", &file]);
    run(&mut outputs, &["plan", "-f", &file, "--json"]);
    run(&mut outputs, &["plan", "-f", &file, "--out", "plan.bin"]);
    run(&mut outputs, &["show", "plan.bin"]);
    run(&mut outputs, &["show", "plan.bin", "--json"]);
    run(&mut outputs, &["show", "plan.bin", "--format", "markdown"]);
    run(&mut outputs, &["apply", "plan.bin", "--json"]);
    run(&mut outputs, &["plan", "-f", &file, "--json"]);
    run(&mut outputs, &["state", "list"]);
    let addresses = String::from_utf8(outputs.last().unwrap().1.clone()).unwrap();
    for address in addresses.lines() {
        run(&mut outputs, &["state", "show", address]);
        run(&mut outputs, &["state", "show", address, "--json"]);
    }
    // `sealer status` from the state alone reaches hosts without passwords and key
    // passphrases (the state keeps neither): host 1, whose key needs its passphrase, is
    // unreachable (host 2 also has the cluster's key: SSH settings merge). With the
    // Clusterfile, every host answers. (It exits 1 either way: nothing serves the registry
    // on the bed.)
    let reachable = |args: &[&str], outputs: &mut Vec<(String, Vec<u8>)>| -> Vec<String> {
        let out = d.sealer(args);
        assert_eq!(out.status.code(), Some(1), "sealer {args:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        outputs.push((format!("{args:?} stdout"), out.stdout));
        outputs.push((format!("{args:?} stderr"), out.stderr));
        json["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                format!(
                    "{} {}",
                    h["host"].as_str().unwrap(),
                    h["reachable"]["state"].as_str().unwrap()
                )
            })
            .collect()
    };
    let ip = |i: usize| d.bed.host(i).ip().to_string();
    let mut want = vec![
        format!("{} ok", ip(0)),
        format!("{} failing", ip(1)),
        format!("{} ok", ip(2)),
    ];
    want.sort();
    let mut got = reachable(&["status", "--json", "--timeout", "20s"], &mut outputs);
    got.sort();
    assert_eq!(got, want);
    let mut got = reachable(&["status", "-f", &file, "--json"], &mut outputs);
    got.sort();
    assert_eq!(got, [ip(0), ip(1), ip(2)].map(|ip| format!("{ip} ok")));

    // The join tokens and certificate key the cluster handed out.
    let tokens = d.bed.ssh_ok(
        0,
        "cat /var/lib/fake-kube/tokens/* /var/lib/fake-kube/certificate-key 2>/dev/null || true",
    );
    let mut secrets: Vec<String> = vec![
        ssh_password.into(),
        key_passphrase.into(),
        registry_password.into(),
    ];
    // Bootstrap tokens (`abcdef.0123456789abcdef`) and 64-hex certificate keys.
    let is_token = |w: &str| {
        let hex = |x: &str| {
            x.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        };
        matches!(w.split_once('.'), Some((a, b)) if a.len() == 6 && b.len() == 16 && hex(a) && hex(b))
            || (w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
    };
    secrets.extend(
        tokens
            .split_whitespace()
            .filter(|w| is_token(w))
            .map(str::to_string),
    );
    assert!(
        secrets.len() > 3,
        "the cluster handed out join credentials: {tokens:?}"
    );

    let mut files = Vec::new();
    all_files(&d.sb.home(), &mut files);
    files.push((
        d.sb.path("plan.bin"),
        std::fs::read(d.sb.path("plan.bin")).unwrap(),
    ));
    for secret in &secrets {
        for (what, bytes) in &outputs {
            for l in String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| l.contains(secret.as_str()))
            {
                eprintln!("LEAK: {}", l.replace(secret.as_str(), "<SECRET>"));
            }
            assert!(
                !contains(bytes, secret),
                "a secret appears in the output of {what}"
            );
        }
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, secret),
                "a secret appears in {}",
                path.display()
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    for name in ["state.db", "state.db-wal"] {
        let path = d.sb.home().join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
    }
    let plan_mode = std::fs::metadata(d.sb.path("plan.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(plan_mode & 0o777, 0o600);
}

/// Two applies on one state: the second is refused naming the holder, or waits for it.
#[test]
fn a_second_apply_waits_for_or_is_refused_by_the_lock() {
    let d = Deploy::new(TestBed::start(2));
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: slow}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: master\n  data: |\n    touch /tmp/slow-started; sleep 3\n";
    let file = d.clusterfile(&[0], &[1], plugin);
    let file = file.to_str().unwrap().to_string();
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let mut first = d.bed.command(&binary);
    first
        .args(["apply", "-f", &file, "--auto-approve"])
        .env("SEALER_HOME", d.sb.home())
        .env("HOME", d.sb.path(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = first.spawn().unwrap();
    let start = Instant::now();
    while d.bed.ssh(0, "test -f /tmp/slow-started").status.code() != Some(0) {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = d.sealer(&["apply", "-f", &file, "--auto-approve"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("is locked by pid {}", first.id())),
        "{err}"
    );
    assert!(err.contains(" since 20"), "names when: {err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    let waited = d.sealer(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--lock-timeout",
        "60",
    ]);
    assert!(first.wait().unwrap().success());
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
}

/// A changed host key is refused naming both fingerprints; the pinned key is kept.
#[test]
fn a_changed_host_key_is_refused_and_the_pin_survives() {
    let d = Deploy::new(TestBed::start(1));
    std::fs::remove_file(d.sb.path(".ssh/known_hosts")).unwrap();
    let file = d.clusterfile(&[0], &[], "");
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--accept-new-host-keys",
    ]);
    let pinned = d.bed.host(0).host_key_fingerprint().to_string();
    // Later runs need no flag: the key is pinned in the state.
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--replace",
        &format!("node_meta.{}", d.bed.host(0).ip()),
    ]);
    let host = format!("host.{}", d.bed.host(0).ip());
    let key_of = |shown: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(shown).unwrap();
        v["attributes"]["host_key"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // The pin survived the second run unchanged.
    assert_eq!(
        key_of(&d.sealer_ok(&["state", "show", &host, "--json"])),
        pinned
    );
    // The host gets a new key (a reinstall, or someone in the middle).
    d.bed
        .ssh_ok(0, "rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -A");
    d.bed.kill(0);
    d.bed.restart(0);
    let out = d.sealer(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--accept-new-host-keys",
        "--replace",
        &format!("node_meta.{}", d.bed.host(0).ip()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("host key changed"), "{err}");
    // Both fingerprints: the pinned one and the one the host offers now.
    let got = err
        .split("got ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == ',').next())
        .unwrap_or_default();
    assert!(err.contains(&format!("expected {pinned}")), "{err}");
    assert!(got.starts_with("SHA256:") && got != pinned, "{err}");
}

/// Values with `;`, `$(...)`, backticks, quotes and newlines reach hosts as data and never
/// run: env values arrive intact in scripts' environment, Config data in files.
#[test]
fn hostile_values_never_execute_on_hosts() {
    let d = Deploy::new(TestBed::start(2));
    let values = [
        ("SEMI", "a; touch /tmp/pwned-semi"),
        ("SUBST", "$(touch /tmp/pwned-subst)"),
        ("TICKS", "`touch /tmp/pwned-ticks`"),
        ("QUOTES", "it's \"quoted\" ' && touch /tmp/pwned-quote && '"),
        ("NEWLINE", "line1\ntouch /tmp/pwned-newline"),
    ];
    let mut env = String::from("  env:\n");
    for (k, v) in &values {
        env.push_str(&format!(
            "    - {}\n",
            serde_json::to_string(&format!("{k}={v}")).unwrap()
        ));
    }
    let mut dump = String::new();
    for (k, _) in &values {
        // `;` makes a list (spec): print every element.
        dump.push_str(&format!(
            "    printf '%s|' \"${{{k}[@]}}\" > /tmp/seen-{k}\n"
        ));
    }
    let docs = format!(
        "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: dump}}\nspec:\n  type: SHELL\n  action: pre-init-host\n  data: |\n{dump}---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {{name: hostile}}\nspec:\n  path: etc/hostile.conf\n  data: {}\n",
        serde_json::to_string("x=$(touch /tmp/pwned-config); `id`\n").unwrap()
    );
    let file = d.clusterfile(&[0], &[1], &docs);
    // The env block belongs to the Cluster's spec.
    let text =
        std::fs::read_to_string(&file)
            .unwrap()
            .replacen("spec:\n", &format!("spec:\n{env}"), 1);
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    for i in 0..2 {
        let pwned = d.bed.ssh_ok(i, "ls /tmp | grep pwned || true");
        assert_eq!(pwned.trim(), "", "host {i} ran injected commands");
        for (k, v) in &values {
            let seen = d.bed.ssh_ok(i, &format!("cat /tmp/seen-{k}"));
            let want: String = v.split(';').map(|item| format!("{item}|")).collect();
            assert_eq!(seen, want, "host {i}: {k} arrived changed");
        }
        let conf = d
            .bed
            .ssh_ok(i, "cat /var/lib/sealer/data/bed/rootfs/etc/hostile.conf");
        assert_eq!(conf, "x=$(touch /tmp/pwned-config); `id`\n");
    }
}

/// A reinstalled host is taken back on purpose: replacing its host resource with
/// --accept-new-host-keys pins the new key.
#[test]
fn a_replaced_host_takes_its_new_key() {
    let d = Deploy::new(TestBed::start(1));
    std::fs::remove_file(d.sb.path(".ssh/known_hosts")).unwrap();
    let file = d.clusterfile(&[0], &[], "");
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--accept-new-host-keys",
    ]);
    let host = format!("host.{}", d.bed.host(0).ip());
    let key_of = |shown: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(shown).unwrap();
        v["attributes"]["host_key"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let old = key_of(&d.sealer_ok(&["state", "show", &host, "--json"]));
    d.bed
        .ssh_ok(0, "rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -A");
    d.bed.kill(0);
    d.bed.restart(0);
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--accept-new-host-keys",
        "--replace",
        &host,
    ]);
    let new = key_of(&d.sealer_ok(&["state", "show", &host, "--json"]));
    assert!(
        new.starts_with("SHA256:") && old.starts_with("SHA256:") && new != old,
        "{old} {new}"
    );
    let out = d.sealer(&["plan", "-f", &file, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0));
}

/// Runs `sealer ARGS --json`, sends SIGTERM `signals` times (300 ms apart) at the first
/// event line `at` accepts, and returns the exit code and stderr.
fn run_signalled(
    d: &Deploy,
    args: &[&str],
    signals: usize,
    mut at: impl FnMut(&str) -> bool,
) -> (Option<i32>, String) {
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let mut cmd = d.bed.command(&binary);
    cmd.args(args)
        .arg("--json")
        .env("SEALER_HOME", d.sb.home())
        .env("HOME", d.sb.path(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // `ip netns exec` execs sealer: the child's pid is sealer's.
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let stdout = child.stdout.take().unwrap();
    let mut sent = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if !sent && at(&line) {
            sent = true;
            for i in 0..signals {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
    }
    assert!(sent, "sealer {args:?} ended before the signal");
    let code = child.wait().unwrap().code();
    (code, errors.join().unwrap())
}

/// SIGTERM stops an apply like a first Ctrl-C: the running steps finish and are recorded,
/// no new one starts, the lock is released. A second one aborts at once (143): the running
/// step stays tainted and the lock goes with the process. Each time the next apply finishes
/// the job without a lock to take over.
#[test]
fn sigterm_stops_after_the_running_steps_and_a_second_one_aborts() {
    let d = Deploy::new(TestBed::start(2));
    let slow = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: slow}\nspec:\n  type: SHELL\n  action: post-install\n  data: sleep 5\n";
    let file = d.clusterfile(&[0], &[1], slow);
    let file = file.to_str().unwrap().to_string();
    let apply = ["apply", "-f", file.as_str(), "--auto-approve"];

    let (code, err) = run_signalled(&d, &apply, 1, |l| l.contains("\"type\":\"step_done\""));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("interrupted: finishing the running steps"),
        "{err}"
    );
    assert!(err.contains("steps did not start"), "{err}");
    integrity_check(&d);

    let slow_step = "\"address\":\"plugin.slow.post-install\"";
    let start = Instant::now();
    let (code, err) = run_signalled(&d, &apply, 2, |l| {
        l.contains("\"type\":\"step_start\"") && l.contains(slow_step)
    });
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("aborted"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the abort waited for the sleeping step"
    );
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    assert!(
        plan.contains("# plugin.slow.post-install must be replaced (tainted by a failed apply)"),
        "{plan}"
    );

    // The abort released its lock: nothing to take over.
    let out = d.sealer(&apply);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("taken over"), "{err}");
    d.assert_no_changes(&file);
}
