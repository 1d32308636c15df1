//! The SSH test bed itself (`support/testbed.rs`): isolation, limits, faults, cleanup.

use crate::support::testbed::{Shaping, TestBed, shell_quote};
use crate::support::{Sandbox, repo_root, stdout_of};
use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Names of the machine's network namespaces.
fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    stdout(&out)
}

#[test]
fn hosts_have_their_own_name_address_and_host_key() {
    let bed = TestBed::start(2);
    let (a, b) = (bed.host(0), bed.host(1));
    assert_eq!(bed.ssh_ok(0, "hostname").trim(), "node-0");
    assert_eq!(bed.ssh_ok(1, "hostname").trim(), "node-1");
    assert_ne!(a.ip(), b.ip());
    assert_eq!(a.ssh_port(), 22);
    // Each host sees only its own address on its own eth0.
    for (i, host) in [(0, a), (1, b)] {
        let addrs = bed.ssh_ok(i, "ip -o -4 addr show | awk '{print $2, $4}'");
        assert_eq!(addrs, format!("lo 127.0.0.1/8\neth0 {}/24\n", host.ip()));
    }
    assert_ne!(a.host_key(), b.host_key());
    assert_ne!(a.host_key_fingerprint(), b.host_key_fingerprint());
    // The fingerprints are OpenSSH's, computed from the key the host really serves.
    let printed = bed.ssh_ok(1, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    assert!(
        printed.contains(b.host_key_fingerprint()),
        "{printed} vs {}",
        b.host_key_fingerprint()
    );
    let known = std::fs::read_to_string(bed.known_hosts_path()).unwrap();
    assert_eq!(
        known,
        format!("{} {}\n{} {}\n", a.ip(), a.host_key(), b.ip(), b.host_key())
    );

    // Pinning means something: host 1 under host 0's key is refused.
    let wrong = bed.dir().join("wrong_known_hosts");
    std::fs::write(&wrong, format!("{} {}\n", b.ip(), a.host_key())).unwrap();
    let out = bed
        .command("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-i"])
        .arg(bed.client_key_path())
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", wrong.display()))
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg(format!("root@{}", b.ip()))
        .arg("true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_engines_logins_are_counted_apart_from_the_harnesss() {
    let bed = TestBed::start(1);
    bed.ssh_ok(0, "true");
    assert_eq!(bed.client_logins(0), 0);
    let engine_like = |user: &str| {
        bed.command("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-i"])
            .arg(bed.client_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                bed.known_hosts_path().display()
            ))
            .arg(format!("{user}@{}", bed.host(0).ip()))
            .arg("true")
            .status()
            .unwrap()
    };
    assert!(engine_like("root").success());
    assert!(engine_like("root").success());
    bed.ssh_ok(0, "true");
    assert_eq!(bed.client_logins(0), 2);
}

#[test]
fn writes_stay_on_their_host() {
    let bed = TestBed::start(2);
    let mark = format!("sealer-testbed-mark-{}", bed.id());
    let dirs = [
        "/etc",
        "/opt",
        "/usr/local",
        "/usr/bin",
        "/root",
        "/var/lib",
        "/home",
        "/srv",
        "/tmp",
    ];
    let paths: Vec<String> = dirs.iter().map(|d| format!("{d}/{mark}")).collect();
    let script: String = paths
        .iter()
        .map(|p| format!("echo host0 > {} && ", shell_quote(p)))
        .collect();
    bed.ssh_ok(0, &format!("{script}true"));
    for p in &paths {
        assert_eq!(bed.ssh_ok(0, &format!("cat {p}")), "host0\n", "{p}");
        let on_1 = bed.ssh(1, &format!("test -e {p}"));
        assert_eq!(on_1.status.code(), Some(1), "{p} leaked to host 1");
        assert!(!Path::new(p).exists(), "{p} leaked to the machine itself");
    }

    // The file tree helper sees the files, their modes and contents.
    bed.ssh_ok(
        0,
        "mkdir -p /opt/t/sub && printf abc > /opt/t/a && chmod 640 /opt/t/a && \
         ln -s a /opt/t/link && printf 'x y' > '/opt/t/sub/with space'",
    );
    let tree = bed.file_tree(0, "/opt/t");
    let sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(tree[Path::new("/opt/t/a")], (0o100640, sha_abc.to_string()));
    assert_eq!(tree[Path::new("/opt/t/sub")].0, 0o040755);
    assert_eq!(tree[Path::new("/opt/t/link")].0, 0o120777);
    assert_eq!(tree.len(), 5, "{tree:#?}");
    let sha_xy = bed.ssh_ok(0, "sha256sum '/opt/t/sub/with space' | cut -d' ' -f1");
    assert_eq!(tree[Path::new("/opt/t/sub/with space")].1, sha_xy.trim());
    assert!(bed.file_tree(1, "/opt/t").is_empty());
    bed.ssh_ok(0, "chmod 600 /opt/t/a");
    assert_ne!(bed.file_tree(0, "/opt/t"), tree, "a mode change shows");
}

#[test]
fn hosts_are_reachable_only_through_the_hub() {
    let bed = TestBed::start(2);
    let subnet_prefix = bed.subnet().trim_end_matches("0/24").to_string();
    // Nothing of the bed in the root namespace: no link, no address, no route. (No probe
    // packet from here: with the default route it would leave the machine.)
    for what in [["-o", "link"], ["-o", "addr"]] {
        let out = Command::new("ip").args(what).output().unwrap();
        assert!(!stdout(&out).contains(bed.id()), "{}", stdout(&out));
        assert!(!stdout(&out).contains(&subnet_prefix), "{}", stdout(&out));
    }
    let routes = Command::new("ip")
        .args(["route", "show", "table", "all"])
        .output()
        .unwrap();
    assert!(
        !stdout(&routes).contains(&subnet_prefix),
        "{}",
        stdout(&routes)
    );

    // The hub reaches every host; a host reaches the hub and its neighbour, nothing else.
    let out = bed
        .command("bash")
        .args([
            "-c",
            r#"for ip; do : <>"/dev/tcp/$ip/22" || exit 1; done"#,
            "_",
        ])
        .arg(bed.host(0).ip().to_string())
        .arg(bed.host(1).ip().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let routes = bed.ssh_ok(0, "ip route");
    assert_eq!(
        routes.trim(),
        format!(
            "{} dev eth0 proto kernel scope link src {}",
            bed.subnet(),
            bed.host(0).ip()
        )
    );
    let links = bed.ssh_ok(0, "ls /sys/class/net | sort | tr '\\n' ' '");
    assert_eq!(links, "eth0 lo ");
}

/// The root qdisc of `dev` in `netns`, as `tc qdisc show` prints it (one line).
fn root_qdisc(netns: &str, dev: &str) -> String {
    let out = Command::new("tc")
        .args(["-n", netns, "qdisc", "show", "dev", dev, "root"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn a_shaped_bed_puts_the_operator_behind_its_uplink() {
    // Unshaped (every test's bed): no operator namespace, no token bucket on any link.
    let plain = TestBed::start(1);
    assert_eq!(plain.operator_ip(), None);
    assert!(!netns_list().contains(&format!("{}-op", plain.id())));
    let veth = format!("{}-v0", plain.id());
    assert!(!root_qdisc(plain.hub_netns(), &veth).contains("tbf"));
    drop(plain);

    let bed = TestBed::builder(2)
        .shaped(Shaping {
            operator_uplink_mbit: 100,
            host_link_mbit: 1000,
        })
        .start();
    let operator = format!("{}-op", bed.id());
    let op_ip = bed.operator_ip().unwrap();
    assert_eq!(op_ip.octets()[3], 2);
    // Both ends of the operator's link at 100 Mbit/s, both ends of each host's at 1 Gbit/s.
    for (netns, dev, rate) in [
        (
            bed.hub_netns().to_string(),
            format!("{}-vop", bed.id()),
            "100Mbit",
        ),
        (operator.clone(), "eth0".to_string(), "100Mbit"),
        (
            bed.hub_netns().to_string(),
            format!("{}-v1", bed.id()),
            "1Gbit",
        ),
        (bed.host(1).netns().to_string(), "eth0".to_string(), "1Gbit"),
    ] {
        let qdisc = root_qdisc(&netns, &dev);
        assert!(
            qdisc.starts_with("qdisc tbf") && qdisc.contains(&format!("rate {rate}")),
            "{netns} {dev}: {qdisc}"
        );
    }
    // The operator reaches the hosts with the client key, and the hosts see it come from
    // its own address (not the hub's).
    let out = bed
        .operator_command("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-i"])
        .arg(bed.client_key_path())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            bed.known_hosts_path().display()
        ))
        .arg(format!("root@{}", bed.host(1).ip()))
        .arg("echo $SSH_CLIENT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("{op_ip} ")),
        "{}",
        stdout(&out)
    );
    drop(bed);
    assert!(!netns_list().contains(&operator), "{}", netns_list());
}

#[test]
fn hosts_keep_the_default_max_sessions() {
    let bed = TestBed::start(1);
    let settings = bed.ssh_ok(0, "/usr/sbin/sshd -T -f /etc/ssh/sshd_config");
    assert!(settings.contains("\nmaxsessions 10\n"), "{settings}");
    assert!(
        settings.contains("\nmaxstartups 200:30:400\n"),
        "{settings}"
    );

    // On the wire: one connection carries 10 sessions, the 11th is refused.
    let sock = bed.dir().join("mux.sock");
    let control = |cmd: &mut Command| {
        cmd.arg("-S").arg(&sock).args(["-o", "ControlMaster=no"]);
    };
    let mut master = bed.ssh_command(0, "root");
    master.arg("-S").arg(&sock).args(["-M", "-N"]);
    let mut master = master.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        assert!(master.try_wait().unwrap().is_none(), "the master exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sessions = Vec::new();
    for n in 0..10 {
        let mut cmd = bed.ssh_command(0, "root");
        control(&mut cmd);
        let mut child = cmd
            .arg("echo open; exec sleep 30")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "open\n", "session {n}");
        sessions.push(child);
    }
    // The 11th: refused by the server on this connection. (The client then falls back to a
    // connection of its own, which is why its output is not the proof.)
    let mut eleventh = bed.ssh_command(0, "root");
    control(&mut eleventh);
    let out = eleventh.arg("echo open").output().unwrap();
    for mut child in sessions.into_iter().chain([master]) {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        stderr(&out).contains("session request failed: Session open refused by peer"),
        "the 11th session was not refused: {}",
        stderr(&out)
    );
}

#[test]
fn a_killed_host_fails_fast_and_restarts_with_its_disk() {
    let bed = TestBed::start(2);
    bed.ssh_ok(
        0,
        "echo kept > /etc/kept && echo kept > /var/kept && echo gone > /tmp/gone",
    );
    let pids = std::fs::read_to_string(bed.dir().join("hosts/0/pid")).unwrap();
    let pids: Vec<u32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "unshare and the host's PID 1 are recorded");

    bed.kill(0);
    assert!(!bed.is_running(0));
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} survived"
        );
    }
    let t = Instant::now();
    let out = bed.ssh(0, "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(
        bed.ssh_ok(1, "hostname").trim(),
        "node-1",
        "host 1 lives on"
    );

    bed.restart(0);
    assert!(bed.is_running(0));
    assert_eq!(bed.ssh_ok(0, "cat /etc/kept /var/kept"), "kept\nkept\n");
    assert_eq!(bed.ssh(0, "test -e /tmp/gone").status.code(), Some(1));
    assert_eq!(bed.ssh_ok(0, "hostname").trim(), "node-0");
}

#[test]
fn a_cut_host_times_out_until_healed() {
    let bed = TestBed::start(1);
    bed.cut(0);
    let t = Instant::now();
    let out = bed
        .ssh_command_with_timeout(0, "root", Duration::from_secs(1))
        .arg("true")
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    bed.heal(0);
    assert_eq!(bed.ssh_ok(0, "hostname").trim(), "node-0");
}

#[test]
fn a_sudo_user_can_sudo_without_a_password() {
    let bed = TestBed::builder(2)
        .sudo_user(&[1])
        .setup(1, "echo from-setup > /etc/setup-ran")
        .start();
    assert!(bed.host(1).has_sudo_user() && !bed.host(0).has_sudo_user());
    let out = bed.ssh_as(
        1,
        "deploy",
        "id -un && sudo -n true && sudo -n id -u && cat /etc/setup-ran",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "deploy\n0\nfrom-setup\n");
    // Without sudo it is an ordinary user.
    let out = bed.ssh_as(1, "deploy", "touch /etc/nope");
    assert!(!out.status.success());
    // Host 0 has no such user, and no setup ran there.
    assert_eq!(bed.ssh_as(0, "deploy", "true").status.code(), Some(255));
    assert_eq!(bed.ssh(0, "test -e /etc/setup-ran").status.code(), Some(1));
}

#[test]
fn a_password_login_works_when_asked_for() {
    let bed = TestBed::builder(1).password("s3cret pass").start();
    assert_eq!(bed.password(), Some("s3cret pass"));
    let shadow = bed.ssh_ok(0, "getent shadow root | cut -d: -f2");
    assert!(
        shadow.starts_with('$'),
        "root has a password hash: {shadow}"
    );
    let config = bed.ssh_ok(0, "/usr/sbin/sshd -T -f /etc/ssh/sshd_config");
    assert!(
        config.contains("\npasswordauthentication yes\n"),
        "{config}"
    );
}

/// What a bed leaves behind if it did not clean up: namespaces, processes, its directory.
struct Traces {
    id: String,
    dir: std::path::PathBuf,
    pids: Vec<u32>,
}

impl Traces {
    fn of(bed: &TestBed) -> Traces {
        let mut pids = Vec::new();
        for i in 0..bed.len() {
            let text = std::fs::read_to_string(bed.dir().join(format!("hosts/{i}/pid"))).unwrap();
            pids.extend(text.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
        assert_eq!(pids.len(), 2 * bed.len());
        assert!(netns_list().contains(bed.id()));
        Traces {
            id: bed.id().to_string(),
            dir: bed.dir().to_path_buf(),
            pids,
        }
    }

    fn assert_gone(&self) {
        assert!(!netns_list().contains(&self.id), "{}", netns_list());
        assert!(!self.dir.exists(), "{} is left", self.dir.display());
        for pid in &self.pids {
            // A PID may be reused by then, but never by a host of this bed.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            assert!(
                !cmdline.contains(&self.id) && !cmdline.contains("sshd"),
                "{pid} is left: {cmdline}"
            );
        }
    }
}

#[test]
fn drop_leaves_nothing_behind_even_on_panic() {
    let bed = TestBed::start(2);
    let traces = Traces::of(&bed);
    drop(bed);
    traces.assert_gone();

    let (send, receive) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let bed = TestBed::start(2);
        send.send(Traces::of(&bed)).unwrap();
        panic!("a test failing with a bed up");
    })
    .join();
    assert!(failed.is_err());
    receive.recv().unwrap().assert_gone();
}

/// Not a test on its own: the bed-holding process that
/// `leftovers_of_a_killed_test_process_are_reaped` starts and then kills.
#[test]
#[ignore = "run by leftovers_of_a_killed_test_process_are_reaped"]
#[allow(clippy::print_stdout)]
fn hold_a_bed_until_killed() {
    if std::env::var_os("SEALER_TESTBED_HOLD").is_none() {
        return;
    }
    let bed = TestBed::start(2);
    bed.ssh_ok(0, "true"); // a kept connection too: one more process in the hub
    println!("BED {}", bed.dir().display());
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn leftovers_of_a_killed_test_process_are_reaped() {
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "testbed::hold_a_bed_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("SEALER_TESTBED_HOLD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let dir = loop {
        let line = lines.next().expect("the holder said which bed").unwrap();
        if let Some(dir) = line.strip_prefix("BED ") {
            break PathBuf::from(dir);
        }
    };
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for i in 0..2 {
        let text = std::fs::read_to_string(dir.join(format!("hosts/{i}/pid"))).unwrap();
        pids.extend(text.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
    }
    // Killed as a test process can be: no Drop runs.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        netns_list().contains(&id) && dir.exists(),
        "the bed outlived its owner"
    );

    TestBed::reap_leftovers();
    let traces = Traces { id, dir, pids };
    traces.assert_gone();
    let marker = traces.dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&marker),
            "process {:?} of the bed is left",
            entry.file_name()
        );
    }
}

#[test]
fn beds_of_6_and_32_hosts_start_quickly() {
    for (n, limit) in [(6, Duration::from_secs(5)), (32, Duration::from_secs(20))] {
        let t = Instant::now();
        let bed = TestBed::start(n);
        let took = t.elapsed();
        // Typically 0.25 s and 1.1 s on 2 cores; the limits leave room for a busy machine.
        assert!(took < limit, "{n} hosts took {took:?}");
        let first_and_last = format!(
            "{} {}",
            bed.ssh_ok(0, "hostname").trim(),
            bed.ssh_ok(n - 1, "hostname").trim()
        );
        assert_eq!(first_and_last, format!("node-0 node-{}", n - 1));
    }
}

// ---- the test cluster image (examples/images/demo-cluster) ----

const CLUSTER_IMAGE: &str = "sealer-test/kubernetes:v1.22.15";
const ROOTFS: &str = "/var/lib/sealer/data/test/rootfs";

fn build_cluster_image(sb: &Sandbox) -> Value {
    stdout_of(
        sb.sealer()
            .args(["build", "-t", CLUSTER_IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    serde_json::from_str(&stdout_of(sb.sealer().args(["inspect", CLUSTER_IMAGE]))).unwrap()
}

/// The image's rootfs as a directory: `sealer save`, then its layers unpacked in order.
fn unpack_rootfs(sb: &Sandbox) -> PathBuf {
    let layout = sb.path("layout");
    stdout_of(sb.sealer().args(["save", CLUSTER_IMAGE, "-o"]).arg(&layout));
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json =
        |path: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let rootfs = sb.path("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(blob(layer["digest"].as_str().unwrap()))
            .arg("-C")
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(status.success());
    }
    rootfs
}

#[test]
fn the_test_cluster_image_builds() {
    let sb = Sandbox::new();
    let image = build_cluster_image(&sb);
    assert_eq!(image["type"], "kube-installer");
    assert_eq!(
        image["labels"]["cluster.alpha.sealer.io/cluster-runtime-version"],
        "v1.22.15"
    );
    assert_eq!(
        image["labels"]["cluster.alpha.sealer.io/kube-cni"],
        "[\"calico\"]"
    );
    let apps: Vec<(String, String)> = image["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().into(),
                a["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("calico", "shell"),
        ("dashboard", "kube"),
        ("metrics", "helm"),
    ];
    assert_eq!(
        apps,
        expected
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .to_vec()
    );
    assert_eq!(
        image["launch"]["app_names"],
        serde_json::json!(["calico", "dashboard", "metrics"])
    );
    let rootfs = unpack_rootfs(&sb);
    for path in [
        "bin/kubeadm",
        "bin/kubectl",
        "bin/kubelet",
        "bin/helm",
        "bin/crictl",
        "bin/seautil",
        "cri/containerd",
        "scripts/containerd.sh",
        "scripts/init-kube.sh",
        "scripts/clean-kube.sh",
        "scripts/init-registry.sh",
        "scripts/clean-registry.sh",
        "scripts/uninstall-containerd.sh",
        "etc/kubeadm.yml",
        "application/apps/calico/calico.sh",
        "application/apps/metrics/Chart.yaml",
    ] {
        assert!(rootfs.join(path).is_file(), "{path} is not in the image");
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(rootfs.join("bin/kubeadm"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "stand-ins stay executable");
}

/// One line of a host's `/var/log/sealer-test/commands.log`.
#[derive(Debug)]
struct Logged {
    start: f64,
    exit: i32,
    command: String,
}

/// The host's command log in start order (lines are appended when a run ends).
fn command_log(bed: &TestBed, host: usize) -> Vec<Logged> {
    let text = bed.ssh_ok(host, "cat /var/log/sealer-test/commands.log");
    let mut lines: Vec<Logged> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.splitn(4, ' ').collect();
            assert_eq!(f.len(), 4, "{line}");
            let (start, end): (f64, f64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
            assert!(end >= start, "{line}");
            Logged {
                start,
                exit: f[2].parse().unwrap(),
                command: f[3].to_string(),
            }
        })
        .collect();
    lines.sort_by(|a, b| a.start.total_cmp(&b.start));
    lines
}

/// Runs `script` with bash on host `i` in the rootfs; returns (exit code, stdout, stderr).
fn on(bed: &TestBed, i: usize, script: &str) -> (i32, String, String) {
    let out = bed.ssh(i, &format!("cd {ROOTFS} && {script}"));
    (out.status.code().unwrap(), stdout(&out), stderr(&out))
}

fn ok_on(bed: &TestBed, i: usize, script: &str) -> String {
    let (code, out, err) = on(bed, i, script);
    assert_eq!(code, 0, "`{script}` on host {i}: {out}{err}");
    out
}

fn fails_on(bed: &TestBed, i: usize, script: &str, message: &str) {
    let (code, out, err) = on(bed, i, script);
    assert_eq!(code, 1, "`{script}` on host {i} should fail: {out}{err}");
    assert!(
        err.contains(message),
        "`{script}`: expected {message:?} in:\n{err}"
    );
}

#[test]
fn the_stand_ins_check_their_input_and_record_what_ran() {
    let sb = Sandbox::new();
    build_cluster_image(&sb);
    let rootfs = unpack_rootfs(&sb);
    let bed = TestBed::start(2);
    for i in 0..2 {
        bed.copy_to(i, &rootfs, ROOTFS);
    }
    let etc_before = bed.file_tree(1, "/etc");
    assert!(!Path::new("/usr/bin/kubeadm").exists());
    // The machine may have Debian's containerd (the real-containerd tests use it).
    let machine_containerd_config = std::fs::read("/etc/containerd/config.toml").ok();

    // Host preparation installs the stand-ins on that host only.
    for i in 0..2 {
        ok_on(
            &bed,
            i,
            "bash scripts/containerd.sh && cd scripts && bash init-kube.sh",
        );
    }
    ok_on(&bed, 0, "kubeadm version -o short | grep -x v1.22.15");
    let config = ok_on(&bed, 0, "cat /etc/containerd/config.toml");
    assert!(config.contains("SystemdCgroup = true"), "{config}");
    // containerd 1.6 reads the registry's hosts.toml and CA only with config_path set, and
    // an air-gapped host pulls the pause image from the cluster registry: the one kubeadm
    // lists for the cluster's version.
    assert!(
        config.contains("      config_path = \"/etc/containerd/certs.d\"\n"),
        "{config}"
    );
    assert!(
        config.contains("    sandbox_image = \"sea.hub:5000/pause:3.5\"\n"),
        "{config}"
    );
    assert!(!config.contains("registry.k8s.io"), "{config}");
    assert!(
        !Path::new("/usr/bin/kubeadm").exists(),
        "installed on the machine itself"
    );
    assert_eq!(
        std::fs::read("/etc/containerd/config.toml").ok(),
        machine_containerd_config,
        "configured on the machine itself"
    );

    // kubeadm init: the config must exist, be YAML, and hold known kinds.
    let init = "kubeadm init --upload-certs --config";
    fails_on(
        &bed,
        0,
        &format!("{init} /nope.yaml"),
        "unable to read config from \"/nope.yaml\"",
    );
    ok_on(
        &bed,
        0,
        "printf 'apiVersion: kubeadm.k8s.io/v1beta3\\nkind ClusterConfiguration\\n' > /root/bad.yaml",
    );
    fails_on(
        &bed,
        0,
        &format!("{init} /root/bad.yaml"),
        "error converting YAML to JSON: yaml: line 2",
    );
    ok_on(
        &bed,
        0,
        "printf 'apiVersion: v1\\nkind: Pod\\n' > /root/pod.yaml",
    );
    fails_on(
        &bed,
        0,
        &format!("{init} /root/pod.yaml"),
        "no kind \"Pod\" is registered for version \"v1\"",
    );
    ok_on(
        &bed,
        0,
        "printf 'apiVersion: kubeadm.k8s.io/v1beta3\\n' > /root/nokind.yaml",
    );
    fails_on(
        &bed,
        0,
        &format!("{init} /root/nokind.yaml"),
        "Object 'Kind' is missing",
    );
    // Real kubeadm's system checks: a port in use and forwarding off fail the init, each
    // named; told to ignore them, it goes on (to the next failure, below).
    ok_on(
        &bed,
        0,
        "sysctl -q -w net.ipv4.ip_forward=0 && { python3 -c 'import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", 6443)); s.listen(); time.sleep(600)' </dev/null >/dev/null 2>&1 & echo $! > /root/listener.pid; } && for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/6443) 2>/dev/null && exit 0; sleep 0.1; done; exit 1",
    );
    let (code, _, err) = on(&bed, 0, &format!("{init} etc/kubeadm.yml"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[ERROR Port-6443]: Port 6443 is in use"),
        "{err}"
    );
    assert!(
        err.contains("[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1"),
        "{err}"
    );
    fails_on(
        &bed,
        0,
        &format!(
            "{init} etc/kubeadm.yml --ignore-preflight-errors=Port-6443,FileContent--proc-sys-net-ipv4-ip_forward"
        ),
        "lookup apiserver.cluster.local: no such host",
    );
    ok_on(
        &bed,
        0,
        "kill $(cat /root/listener.pid) && sysctl -q -w net.ipv4.ip_forward=1 && for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/6443) 2>/dev/null || exit 0; sleep 0.1; done; exit 1",
    );
    // A good config, but the API endpoint does not resolve until /etc/hosts maps it.
    fails_on(
        &bed,
        0,
        &format!("{init} etc/kubeadm.yml"),
        "lookup apiserver.cluster.local: no such host",
    );
    let master_ip = bed.host(0).ip();
    ok_on(
        &bed,
        0,
        &format!("echo '{master_ip} apiserver.cluster.local' >> /etc/hosts"),
    );
    // kubeadm starts the kubelet from the unit init-kube.sh installs: one that does not read
    // kubeadm-flags.env (as 10-kubeadm.conf does) starts kubelet 1.22 on dockershim, which
    // finds no docker, and the init times out.
    let dropin = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf";
    ok_on(
        &bed,
        0,
        &format!("cp {dropin} /root/dropin && sed -i /kubeadm-flags.env/d {dropin}"),
    );
    fails_on(
        &bed,
        0,
        &format!("{init} etc/kubeadm.yml"),
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
    );
    ok_on(
        &bed,
        0,
        &format!("kubeadm reset -f && cp /root/dropin {dropin}"),
    );
    let out = ok_on(&bed, 0, &format!("{init} etc/kubeadm.yml"));
    assert!(out.contains("initialized successfully"), "{out}");
    let flags = ok_on(&bed, 0, "cat /var/lib/kubelet/kubeadm-flags.env");
    assert!(flags.contains("--container-runtime=remote"), "{flags}");
    assert!(out.contains("--control-plane --certificate-key"), "{out}");
    ok_on(
        &bed,
        0,
        "test -f /etc/kubernetes/admin.conf && test -f /etc/kubernetes/manifests/etcd.yaml",
    );
    fails_on(
        &bed,
        0,
        &format!("{init} etc/kubeadm.yml"),
        "kube-apiserver.yaml already exists",
    );

    // Join material, fresh every time.
    let join = ok_on(&bed, 0, "kubeadm token create --print-join-command");
    let again = ok_on(&bed, 0, "kubeadm token create --print-join-command");
    assert_ne!(join, again);
    let words: Vec<&str> = join.split_whitespace().collect();
    assert_eq!(
        &words[..3],
        ["kubeadm", "join", "apiserver.cluster.local:6443"],
        "{join}"
    );
    assert_eq!(words[3], "--token");
    assert!(
        words[4].len() == 23 && words[4].as_bytes()[6] == b'.',
        "{join}"
    );
    assert_eq!(words[5], "--discovery-token-ca-cert-hash");
    assert!(
        words[6].starts_with("sha256:") && words[6].len() == 71,
        "{join}"
    );
    let certs = ok_on(&bed, 0, "kubeadm init phase upload-certs --upload-certs");
    let key = certs.lines().last().unwrap();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{certs}"
    );
    fails_on(
        &bed,
        1,
        "kubeadm token create --print-join-command",
        "this host runs no API server",
    );

    // kubeadm join on the worker.
    fails_on(
        &bed,
        1,
        "kubeadm join apiserver.cluster.local:6443",
        "the bootstrap token is invalid",
    );
    let join = join.trim();
    fails_on(
        &bed,
        1,
        join,
        "lookup apiserver.cluster.local: no such host",
    );
    ok_on(
        &bed,
        1,
        &format!("echo '{master_ip} apiserver.cluster.local' >> /etc/hosts"),
    );
    fails_on(
        &bed,
        1,
        &format!("{join} --control-plane"),
        "needs --certificate-key",
    );
    // A static pod before the join (lvscare's, on a worker of several masters): kubeadm
    // wants the manifests directory empty unless told to ignore it.
    ok_on(
        &bed,
        1,
        "mkdir -p /etc/kubernetes/manifests && echo 'kind: Pod' > /etc/kubernetes/manifests/kube-lvscare.yaml",
    );
    fails_on(
        &bed,
        1,
        join,
        "[ERROR DirAvailable--etc-kubernetes-manifests]: /etc/kubernetes/manifests is not empty",
    );
    ok_on(
        &bed,
        1,
        &format!("{join} --ignore-preflight-errors=DirAvailable--etc-kubernetes-manifests"),
    );
    ok_on(
        &bed,
        1,
        "grep -q 'server: https://apiserver.cluster.local:6443' /etc/kubernetes/kubelet.conf",
    );
    // The kubelet kubeadm started got the runtime flags through the unit's drop-in.
    let kubelet = command_log(&bed, 1)
        .into_iter()
        .rfind(|l| l.command.starts_with("kubelet "))
        .expect("kubeadm join started the kubelet");
    assert_eq!(kubelet.exit, 0, "{kubelet:?}");
    assert!(
        kubelet.command.contains(" --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock"),
        "{kubelet:?}"
    );
    // kubelet 1.22 refuses flags it does not know.
    fails_on(
        &bed,
        1,
        "kubelet --no-such-flag=1",
        "unknown flag: --no-such-flag",
    );
    // seautil: --run-once creates the rule and returns; without it seautil cares for the
    // rule in the foreground and does not return (here: until `timeout` kills it).
    let vs = "--vs 10.103.97.2:6443 --rs 10.0.0.2:6443 --rs 10.0.0.3:6443 --health-path /healthz --health-schem https";
    ok_on(&bed, 1, &format!("seautil ipvs {vs} --run-once"));
    assert_eq!(
        ok_on(&bed, 1, "cat /etc/fake-ipvs/10.103.97.2:6443"),
        "10.0.0.2:6443\n10.0.0.3:6443\n"
    );
    let (code, out, err) = on(&bed, 1, &format!("timeout 2 seautil ipvs {vs}"));
    assert_eq!(code, 124, "seautil without --run-once returned: {out}{err}");
    ok_on(&bed, 1, "seautil ipvs --vs 10.103.97.2:6443 --clean");
    fails_on(&bed, 1, join, "kubelet.conf already exists");

    // kubectl and helm on master0, against the fake API.
    fails_on(&bed, 0, "kubectl get nodes", "localhost:8080 was refused");
    let k = "KUBECONFIG=/etc/kubernetes/admin.conf";
    let nodes = ok_on(&bed, 0, &format!("{k} kubectl get nodes"));
    assert_eq!(
        nodes,
        "NAME STATUS ROLES VERSION\nnode-0 Ready control-plane,master v1.22.15\n"
    );
    // The API's health endpoints, as kube-apiserver answers them through kubectl.
    assert_eq!(
        ok_on(&bed, 0, &format!("{k} kubectl get --raw /readyz")),
        "ok"
    );
    assert_eq!(
        ok_on(&bed, 0, &format!("{k} kubectl get --raw '/livez?verbose'")),
        "ok"
    );
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl get --raw /nope"),
        "the server could not find the requested resource",
    );
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl get nodes --raw /readyz"),
        "arguments may not be passed when --raw is specified",
    );
    // master0's node is Ready while its kubelet runs: stopped, NotReady; started, Ready.
    ok_on(
        &bed,
        0,
        "mv /var/lib/fake-kubelet/running /root/kubelet-running",
    );
    assert_eq!(
        ok_on(&bed, 0, &format!("{k} kubectl get nodes")),
        "NAME STATUS ROLES VERSION\nnode-0 NotReady control-plane,master v1.22.15\n"
    );
    ok_on(
        &bed,
        0,
        "mv /root/kubelet-running /var/lib/fake-kubelet/running",
    );
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl label node {} a=b", bed.host(1).ip()),
        "node names are hostnames",
    );
    ok_on(
        &bed,
        0,
        &format!("{k} kubectl label node node-1 node-role.kubernetes.io/worker= --overwrite"),
    );
    ok_on(
        &bed,
        0,
        &format!("{k} kubectl taint node node-1 dedicated=infra:NoSchedule"),
    );
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl taint node node-1 dedicated=db:NoSchedule"),
        "--overwrite is false",
    );
    let applied = ok_on(
        &bed,
        0,
        &format!("{k} bash application/apps/calico/calico.sh"),
    );
    assert_eq!(applied, "daemonset/calico-node created\n");
    let applied = ok_on(
        &bed,
        0,
        &format!("{k} kubectl apply -f application/apps/dashboard/"),
    );
    assert_eq!(
        applied,
        "namespace/dashboard created\ndeployment/dashboard created\n"
    );
    let applied = ok_on(
        &bed,
        0,
        &format!("{k} kubectl apply -f application/apps/dashboard/00-namespace.yaml"),
    );
    assert_eq!(applied, "namespace/dashboard unchanged\n");
    ok_on(
        &bed,
        0,
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n\\tname: x\\n' > /root/tab.yaml",
    );
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl apply -f /root/tab.yaml"),
        "found a tab character",
    );
    ok_on(
        &bed,
        0,
        &format!("{k} helm install metrics application/apps/metrics/"),
    );
    fails_on(
        &bed,
        0,
        &format!("{k} helm install metrics application/apps/metrics/"),
        "cannot re-use a name",
    );
    fails_on(
        &bed,
        0,
        &format!("{k} helm install other application/apps/dashboard/"),
        "Chart.yaml file is missing",
    );
    ok_on(&bed, 0, &format!("{k} helm uninstall metrics"));
    fails_on(
        &bed,
        0,
        &format!("{k} helm uninstall metrics"),
        "release: not found",
    );
    ok_on(
        &bed,
        0,
        &format!(
            "{k} kubectl drain node-1 --ignore-daemonsets --delete-emptydir-data --timeout=60s"
        ),
    );
    let nodes = ok_on(&bed, 0, &format!("{k} kubectl get nodes"));
    assert!(
        nodes.contains("node-1 Ready,SchedulingDisabled worker"),
        "{nodes}"
    );

    // kubeadm upgrade, by kubeadm's version policy: no downgrade, one minor at a time, not
    // past kubeadm's own version, confirmation asked; the same version applies again.
    fails_on(
        &bed,
        0,
        "kubeadm upgrade plan v1.23.0",
        "is higher than the kubeadm version \"v1.22.15\". Upgrade kubeadm first",
    );
    fails_on(
        &bed,
        0,
        "kubeadm upgrade apply v1.21.0 --yes",
        "is equal to or lower than the cluster version \"v1.22.15\". Downgrades are not supported yet",
    );
    fails_on(
        &bed,
        0,
        "kubeadm upgrade apply v1.22.15 </dev/null",
        "won't proceed; the user didn't answer (Y|y) in order to continue",
    );
    fails_on(
        &bed,
        0,
        "sed 's/^VERSION=.*/VERSION=v1.24.1/' /usr/bin/kubeadm > /tmp/kubeadm-v1.24 && bash /tmp/kubeadm-v1.24 upgrade apply v1.24.1 --yes",
        "is too high; kubeadm can upgrade only 1 minor version at a time",
    );
    let upgraded = ok_on(&bed, 0, "kubeadm upgrade apply v1.22.15 --yes");
    assert!(
        upgraded.contains("SUCCESS! Your cluster was upgraded to \"v1.22.15\""),
        "{upgraded}"
    );
    let node = ok_on(&bed, 0, "kubeadm upgrade node");
    assert!(
        node.contains(
            "Upgrading your Static Pod-hosted control plane instance to version \"v1.22.15\""
        ),
        "{node}"
    );

    // Leaving: the worker resets and cleans up to exactly what /etc held before.
    fails_on(&bed, 1, "kubeadm reset", "use --force");
    ok_on(
        &bed,
        1,
        "kubeadm reset -f && cd scripts && bash clean-kube.sh && bash uninstall-containerd.sh",
    );
    ok_on(&bed, 0, &format!("{k} kubectl delete node node-1"));
    fails_on(
        &bed,
        0,
        &format!("{k} kubectl delete node node-1"),
        "nodes \"node-1\" not found",
    );
    ok_on(&bed, 1, "sed -i '/apiserver.cluster.local/d' /etc/hosts");
    assert_eq!(bed.file_tree(1, "/etc"), etc_before);
    ok_on(
        &bed,
        1,
        "! ls /usr/bin/kubeadm /usr/local/bin/containerd /var/lib/kubelet 2>/dev/null",
    );

    // What ran, in order, with exit codes, as a test of a deployment reads it.
    let log = command_log(&bed, 1);
    let summary: Vec<String> = log
        .iter()
        .map(|l| {
            let short: String = l.command.split(' ').take(2).collect::<Vec<_>>().join(" ");
            format!("{} {short}", l.exit)
        })
        .collect();
    assert_eq!(
        summary,
        [
            "0 containerd.sh",
            "0 kubeadm version",
            "0 kubeadm config",
            "0 containerd config",
            "0 init-kube.sh",
            "1 kubeadm token",
            "1 kubeadm join",
            "1 kubeadm join",
            "1 kubeadm join",
            "1 kubeadm join",
            "0 kubeadm join",
            "0 kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "1 kubelet --no-such-flag=1",
            "0 seautil ipvs",
            "143 seautil ipvs",
            "0 seautil ipvs",
            "1 kubeadm join",
            "1 kubeadm reset",
            "0 kubeadm reset",
            "0 clean-kube.sh",
            "0 uninstall-containerd.sh",
        ],
        "{log:#?}"
    );
    assert!(log[10].command.contains(" --token "), "{log:#?}");
    let master = command_log(&bed, 0);
    let inits: Vec<i32> = master
        .iter()
        .filter(|l| l.command.starts_with("kubeadm init --upload-certs"))
        .map(|l| l.exit)
        .collect();
    assert_eq!(inits, [1, 1, 1, 1, 1, 1, 1, 1, 0, 1]);
}
