//! `sealer apply` / `destroy` on the real SSH test bed: the real binary runs inside the
//! bed's hub network namespace and deploys the test cluster image onto real sshd hosts.

use crate::support::testbed::TestBed;
use crate::support::{Sandbox, repo_root, stdout_of};
use std::path::PathBuf;
use std::process::Output;

pub const IMAGE: &str = "sealer-test/kubernetes:v1.22.15";

/// A sandbox with the test cluster image built, and a HOME whose known_hosts trusts the bed.
pub struct Deploy {
    pub sb: Sandbox,
    pub bed: TestBed,
}

impl Deploy {
    /// The plan of `file` has nothing to do (`--detailed-exitcode` is 0).
    pub fn assert_no_changes(&self, file: &str) {
        let out = self.sealer(&["plan", "-f", file, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    pub fn new(bed: TestBed) -> Deploy {
        let sb = Sandbox::new();
        stdout_of(
            sb.sealer()
                .args(["build", "-t", IMAGE])
                .arg(repo_root().join("examples/images/demo-cluster")),
        );
        let ssh_dir = sb.path(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(bed.known_hosts_path(), ssh_dir.join("known_hosts")).unwrap();
        Deploy { sb, bed }
    }

    /// Writes a Clusterfile: `masters` and `workers` are host indices of the bed.
    pub fn clusterfile(&self, masters: &[usize], workers: &[usize], extra: &str) -> PathBuf {
        let ips = |idx: &[usize]| {
            idx.iter()
                .map(|&i| self.bed.host(i).ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: bed\nspec:\n  image: {IMAGE}\n  ssh:\n    pk: {}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n",
            self.bed.client_key_path().display(),
            ips(masters)
        );
        if !workers.is_empty() {
            text.push_str(&format!(
                "    - ips: [{}]\n      roles: [node]\n      labels: {{zone: a}}\n",
                ips(workers)
            ));
        }
        text.push_str(extra);
        let path = self.sb.path("Clusterfile");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `sealer ARGS` inside the hub namespace with this sandbox's home.
    pub fn sealer(&self, args: &[&str]) -> Output {
        self.sealer_with(&[], args)
    }

    /// [`Deploy::sealer`] with more environment variables.
    pub fn sealer_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let binary = assert_cmd::cargo::cargo_bin("sealer");
        let mut cmd = self.bed.command(&binary);
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .env("SEALER_HOME", self.sb.home())
            .env("HOME", self.sb.path(""))
            .env("NO_COLOR", "1")
            .current_dir(self.sb.path(""));
        cmd.output().unwrap()
    }

    pub fn sealer_ok(&self, args: &[&str]) -> String {
        crate::support::succeeded(&self.sealer(args), args)
    }

    /// stderr of `sealer ARGS`, which must fail with exit code 1.
    pub fn sealer_refused(&self, args: &[&str]) -> String {
        crate::support::refused(&self.sealer(args), args)
    }

    /// stderr of `sealer ARGS` refusing a stale saved plan (its own exit code).
    pub fn sealer_stale(&self, args: &[&str]) -> String {
        let code = crate::support::EXIT_STALE_PLAN;
        crate::support::refused_with(&self.sealer(args), args, code)
    }

    /// The command log of host `i`, sorted by start time: `(start, tool and args)`.
    pub fn commands(&self, i: usize) -> Vec<(f64, f64, String)> {
        let text = self.bed.ssh_ok(
            i,
            "cat /var/log/sealer-test/commands.log 2>/dev/null || true",
        );
        let mut lines: Vec<(f64, f64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                let start: f64 = parts.next()?.parse().ok()?;
                let end: f64 = parts.next()?.parse().ok()?;
                let _rc = parts.next()?;
                Some((start, end, parts.next()?.to_string()))
            })
            .collect();
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        lines
    }
}

#[test]
fn one_master_one_worker_apply_then_no_changes_then_destroy() {
    let d = Deploy::new(TestBed::start(2));
    // Everything the engine and the image's scripts may touch (the stand-ins' command log
    // in /var/log is kept on purpose: tests read it).
    let dirs = [
        "/etc",
        "/usr/bin",
        "/usr/local",
        "/var/lib",
        "/root",
        "/opt",
    ];
    // Hosts see the machine's own /var through their overlay: other tests' skopeo runs change
    // its container cache underneath, which is not the deploy's doing.
    let snapshot = |i: usize| -> Vec<_> {
        dirs.iter()
            .map(|p| {
                let mut tree = d.bed.file_tree(i, p);
                tree.retain(|path, _| !path.starts_with("/var/lib/containers"));
                tree
            })
            .collect()
    };
    let before: Vec<_> = (0..2).map(snapshot).collect();
    let file = d.clusterfile(&[0], &[1], &teardown_plugins());
    let file = file.to_str().unwrap();
    d.sealer_ok(&["apply", "-f", file, "--auto-approve"]);
    let master = d.commands(0);
    assert!(
        !master.iter().any(|(_, _, c)| c.starts_with("plugin")),
        "teardown plugins are only armed by apply: {master:?}"
    );
    let applied = [master.len(), d.commands(1).len()];
    let tools: Vec<&str> = master
        .iter()
        .map(|(_, _, c)| c.split(' ').next().unwrap_or(""))
        .collect();
    assert!(tools.contains(&"kubeadm"), "{master:?}");
    assert!(
        master.iter().any(|(_, _, c)| c.starts_with("kubeadm init")),
        "{master:?}"
    );
    assert!(
        d.commands(1)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm join")),
        "{:?}",
        d.commands(1)
    );

    d.assert_no_changes(file);
    let applied = repair_drift_made_by_hand(&d, file, applied);

    // Destroy from the state alone: the recorded plugins run around what they tear down.
    d.sealer_ok(&["destroy", "--cluster", "bed", "--auto-approve"]);
    let teardown: Vec<Vec<String>> = (0..2)
        .map(|i| {
            d.commands(i)
                .split_off(applied[i])
                .into_iter()
                .map(|(_, _, c)| c)
                .collect()
        })
        .collect();
    let at = |i: usize, prefix: &str| {
        teardown[i]
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("host {i}: no {prefix}: {:?}", teardown[i]))
    };
    assert_eq!(at(0, "plugin pre-uninstall"), 0, "{:?}", teardown[0]);
    assert_eq!(
        at(0, "plugin post-uninstall"),
        teardown[0].len() - 1,
        "{:?}",
        teardown[0]
    );
    for (i, log) in teardown.iter().enumerate() {
        let reset = at(i, "kubeadm reset");
        assert!(at(i, "plugin pre-clean-host") < reset, "{log:?}");
        assert!(at(i, "plugin post-clean-host") > reset, "{log:?}");
    }
    let worker_reset = d
        .commands(1)
        .split_off(applied[1])
        .into_iter()
        .find(|(_, _, c)| c.starts_with("kubeadm reset"))
        .unwrap();
    let pre_uninstall = d
        .commands(0)
        .split_off(applied[0])
        .into_iter()
        .find(|(_, _, c)| c.starts_with("plugin pre-uninstall"))
        .unwrap();
    assert!(
        pre_uninstall.1 <= worker_reset.0,
        "{pre_uninstall:?} {worker_reset:?}"
    );
    for (i, trees) in before.iter().enumerate() {
        for (tree, now) in trees.iter().zip(snapshot(i)) {
            let diff = tree_diff(tree, &now);
            assert!(
                diff.is_empty(),
                "host {i} differs after destroy:\n{}",
                diff.join("\n")
            );
        }
    }
}

/// Drift made by hand on the worker (its node deleted from the API, a rootfs file edited)
/// is found by `plan --refresh` (plain `plan` stays offline and sees nothing), repaired by
/// `apply --refresh` (a new join, the file synced again) and gone from the next refresh.
/// Returns the command counts after the repair.
fn repair_drift_made_by_hand(d: &Deploy, file: &str, applied: [usize; 2]) -> [usize; 2] {
    let worker = d.bed.host(1).hostname().to_string();
    d.bed
        .ssh_ok(0, &format!("rm -r /var/lib/fake-kube/nodes/{worker}"));
    d.bed.ssh_ok(
        1,
        "echo '# edited by hand' >> /var/lib/sealer/data/bed/rootfs/scripts/containerd.sh",
    );
    let logins = d.bed.client_logins(1);
    d.assert_no_changes(file);
    assert_eq!(d.bed.client_logins(1), logins, "plain plan stays offline");
    let plan = d.sealer(&["plan", "-f", file, "--refresh", "--detailed-exitcode"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("back from 2 hosts: 3 drifted."),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    for expected in [
        format!(
            "# kubernetes.worker.{ip} must be replaced (gone from its host: node {worker} is not in `kubectl get nodes`)",
            ip = d.bed.host(1).ip()
        ),
        format!(
            "# rootfs.{} will be updated in place (drifted on its host: 1 of its files changed since sealer wrote them: scripts/containerd.sh)",
            d.bed.host(1).ip()
        ),
        format!("# node_meta.{} must be replaced", d.bed.host(1).ip()),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
    assert!(d.bed.client_logins(1) > logins, "a refresh reads the hosts");
    let repaired = d.sealer(&["apply", "-f", file, "--refresh", "--auto-approve"]);
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    let worker_log = d.commands(1).split_off(applied[1]);
    assert!(
        worker_log
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm reset"))
            && worker_log
                .iter()
                .any(|(_, _, c)| c.starts_with("kubeadm join")),
        "the worker joins again: {worker_log:?}"
    );
    let refresh = d.sealer(&["plan", "-f", file, "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(
        refresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&refresh.stdout)
    );
    d.assert_no_changes(file);
    [d.commands(0).len(), d.commands(1).len()]
}

/// Plugins at the four teardown phases, each logging its phase where the stand-ins log
/// their commands.
fn teardown_plugins() -> String {
    ["pre-uninstall", "pre-clean-host", "post-clean-host", "post-uninstall"]
        .iter()
        .map(|phase| {
            format!(
                "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: log-{phase}}}\nspec:\n  type: SHELL\n  action: {phase}\n  data: |\n    mkdir -p /var/log/sealer-test\n    t=$(date +%s.%N)\n    echo \"$t $t 0 plugin {phase}\" >>/var/log/sealer-test/commands.log\n"
            )
        })
        .collect()
}

/// The paths whose presence, mode or content differ between two trees.
pub fn tree_diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    before: &std::collections::BTreeMap<K, V>,
    after: &std::collections::BTreeMap<K, V>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("- {k:?}")),
            Some(w) if w != v => out.push(format!("~ {k:?}: {v:?} -> {w:?}")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            out.push(format!("+ {k:?}"));
        }
    }
    out
}

/// `--json` events of an apply: (type, address) in the order they came.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn index_of(events: &[serde_json::Value], kind: &str, address: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind && e["address"] == address)
        .unwrap_or_else(|| panic!("no {kind} for {address}"))
}

#[test]
fn three_masters_three_workers_cni_and_two_apps() {
    let d = Deploy::new(TestBed::start(6));
    let file = d.clusterfile(&[0, 1, 2], &[3, 4, 5], "");
    let file = file.to_str().unwrap();
    let out = d.sealer_ok(&["apply", "-f", file, "--auto-approve", "--json"]);
    let ev = events(&out);
    assert_eq!(ev.first().unwrap()["type"], "plan_summary");
    assert_eq!(ev.last().unwrap()["type"], "apply_summary");
    assert_eq!(ev.last().unwrap()["failed"], 0);
    let ip = |i: usize| d.bed.host(i).ip().to_string();

    // Masters join one at a time, after init.
    let init_done = index_of(&ev, "step_done", "kubernetes.init");
    let m1_start = index_of(&ev, "step_start", &format!("kubernetes.master.{}", ip(1)));
    let m1_done = index_of(&ev, "step_done", &format!("kubernetes.master.{}", ip(1)));
    let m2_start = index_of(&ev, "step_start", &format!("kubernetes.master.{}", ip(2)));
    assert!(
        init_done < m1_start && m1_done < m2_start,
        "masters join one at a time"
    );
    // Workers join in parallel: all start before any of them is done.
    let worker_starts: Vec<usize> = (3..6)
        .map(|i| index_of(&ev, "step_start", &format!("kubernetes.worker.{}", ip(i))))
        .collect();
    let first_worker_done = (3..6)
        .map(|i| index_of(&ev, "step_done", &format!("kubernetes.worker.{}", ip(i))))
        .min()
        .unwrap();
    assert!(
        worker_starts.iter().all(|&s| s < first_worker_done),
        "workers join in parallel"
    );

    // Every host has the rootfs; only masters (HA registry) carry registry/.
    for i in 0..6 {
        let listing = d.bed.ssh_ok(i, "ls /var/lib/sealer/data/bed/rootfs");
        assert!(
            listing.contains("bin") && listing.contains("scripts"),
            "host {i}: {listing}"
        );
        assert_eq!(listing.contains("registry"), i < 3, "host {i}: {listing}");
        assert!(
            d.bed
                .ssh_ok(i, "cat /etc/hosts")
                .contains("apiserver.cluster.local")
        );
    }
    // Workers reach the three masters through the VIP: the one-shot IPVS rule (seautil
    // returns only with --run-once), then the lvscare static pod from the cluster registry
    // that keeps caring for it.
    for i in 3..6 {
        let seautil: Vec<String> = d
            .commands(i)
            .into_iter()
            .map(|(_, _, c)| c)
            .filter(|c| c.starts_with("seautil ipvs"))
            .collect();
        // One rule for the registries (before the join), one for the API servers.
        assert_eq!(seautil.len(), 2, "host {i}: {seautil:?}");
        assert!(
            seautil.iter().all(|c| c.ends_with(" --run-once")),
            "{seautil:?}"
        );
        // The registry domain: through the VIP to every HA registry, like the API.
        let hosts = d.bed.ssh_ok(i, "cat /etc/hosts");
        assert!(hosts.contains("\n10.103.97.2 sea.hub\n"), "{hosts}");
        let registries = d.bed.ssh_ok(i, "cat /etc/fake-ipvs/10.103.97.2:5000");
        assert_eq!(
            registries,
            format!("{}:5000\n{}:5000\n{}:5000\n", ip(0), ip(1), ip(2))
        );
        let reg_pod = d
            .bed
            .ssh_ok(i, "cat /etc/kubernetes/manifests/reg-lvscare.yaml");
        assert!(
            reg_pod.contains("    - 10.103.97.2:5000\n    - --health-path\n    - /\n"),
            "{reg_pod}"
        );
        let pod = d
            .bed
            .ssh_ok(i, "cat /etc/kubernetes/manifests/kube-lvscare.yaml");
        assert!(
            pod.contains("    image: sea.hub:5000/sealerio/lvscare:v1.1.3-beta.8\n"),
            "{pod}"
        );
        let mut args = String::from(
            "    - care\n    - --vs\n    - 10.103.97.2:6443\n    - --health-path\n    - /healthz\n    - --health-schem\n    - https\n",
        );
        for m in 0..3 {
            args.push_str(&format!("    - --rs\n    - {}:6443\n", ip(m)));
        }
        assert!(pod.contains(&args), "{args} not in:\n{pod}");
    }
    // Masters reach the API and their registry themselves.
    for i in 0..3 {
        let manifests = d.bed.ssh_ok(i, "ls /etc/kubernetes/manifests");
        assert!(!manifests.contains("lvscare"), "master {i}: {manifests}");
        let hosts = d.bed.ssh_ok(i, "cat /etc/hosts");
        assert!(hosts.contains(&format!("\n{} sea.hub\n", ip(i))), "{hosts}");
    }
    // The apps ran on master0 in launch order.
    let master0 = d.commands(0);
    let pos = |needle: &str| {
        master0
            .iter()
            .position(|(_, _, c)| c.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not run: {master0:?}"))
    };
    // calico.sh applies its DaemonSet from stdin; dashboard its files; metrics is a chart.
    assert!(
        pos("kubectl apply -f -") < pos("apps/dashboard/")
            && pos("apps/dashboard/") < pos("helm install metrics"),
        "{master0:?}"
    );
    // Node labels were applied through the API on master0.
    let labels = d
        .bed
        .ssh_ok(0, "cat /var/lib/fake-kube/nodes/node-3/labels");
    assert!(labels.contains("zone=a"), "{labels}");

    // A second plan finds nothing to do and connects to no host.
    let logins: Vec<usize> = (0..6).map(|i| d.bed.client_logins(i)).collect();
    d.assert_no_changes(file);
    let after: Vec<usize> = (0..6).map(|i| d.bed.client_logins(i)).collect();
    assert_eq!(logins, after, "plan opened a connection");

    // A refresh reads every resource back over SSH: as recorded, then what was undone by
    // hand on a worker (its kubelet kubeconfig) and in the API (a label).
    let refresh = |code: i32| {
        let out = d.sealer(&["plan", "-f", file, "--refresh-only", "--detailed-exitcode"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let text = refresh(0);
    assert!(
        text.contains("back from 6 hosts") && text.contains("No drift"),
        "{text}"
    );
    d.bed.ssh_ok(4, "rm /etc/kubernetes/kubelet.conf");
    d.bed.ssh_ok(
        5,
        "rm /etc/kubernetes/manifests/kube-lvscare.yaml /etc/kubernetes/manifests/reg-lvscare.yaml",
    );
    d.bed
        .ssh_ok(0, "sed -i /^zone=/d /var/lib/fake-kube/nodes/node-3/labels");
    let text = refresh(2);
    for expected in [
        format!(
            "- kubernetes.worker.{} (gone)\n      /etc/kubernetes/kubelet.conf is not there",
            ip(4)
        ),
        format!(
            "~ node_meta.{} (drifted)\n      label zone=a is missing",
            ip(3)
        ),
        format!(
            "~ kubernetes.worker.{} (drifted)\n      /etc/kubernetes/manifests/kube-lvscare.yaml is missing",
            ip(5)
        ),
        format!(
            "~ registry_client.{} (drifted)\n      /etc/kubernetes/manifests/reg-lvscare.yaml is missing",
            ip(5)
        ),
        "4 of ".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
}

fn addresses(ev: &[serde_json::Value], kind: &str) -> Vec<String> {
    ev.iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["address"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Scale up, scale down and an app change on one cluster, each applied from an edited
/// Clusterfile; a non-root host works through sudo.
#[test]
fn scale_up_scale_down_and_app_change() {
    let bed = TestBed::builder(8).sudo_user(&[5]).start();
    let d = Deploy::new(bed);
    let ip = |i: usize| d.bed.host(i).ip().to_string();
    // Host 5 is reached as `deploy` with passwordless sudo.
    let sudo_group = format!(
        "    - ips: [{}]\n      roles: [node]\n      ssh: {{user: deploy}}\n{}",
        ip(5),
        teardown_plugins()
    );
    let file = d.clusterfile(&[0, 1, 2], &[3, 4], &sudo_group);
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]);
    assert!(
        d.commands(5)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm join")),
        "the sudo host joined"
    );
    assert_eq!(
        d.bed.ssh_ok(5, "stat -c %U /etc/kubernetes").trim(),
        "root",
        "steps ran as root through sudo"
    );

    // Add two workers: only their resources run.
    let file = d.clusterfile(&[0, 1, 2], &[3, 4, 6, 7], &sudo_group);
    let file = file.to_str().unwrap().to_string();
    let ev = events(&d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]));
    let done = addresses(&ev, "step_done");
    assert!(!done.is_empty());
    for a in &done {
        assert!(
            a.ends_with(&ip(6)) || a.ends_with(&ip(7)),
            "only the new workers change: {a}"
        );
    }

    // Remove worker 4 and master 2: drained, reset, removed; workers' rule updated.
    let file = d.clusterfile(&[0, 1], &[3, 6, 7], &sudo_group);
    let file = file.to_str().unwrap().to_string();
    let ev = events(&d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]));
    let done = addresses(&ev, "step_done");
    for a in [
        format!("kubernetes.worker.{}", ip(4)),
        format!("kubernetes.master.{}", ip(2)),
        format!("host.{}", ip(4)),
    ] {
        assert!(done.contains(&a), "{a} not destroyed: {done:?}");
    }
    assert!(
        done.contains(&format!("kubernetes.worker.{}", ip(3))),
        "workers' endpoint rule updated: {done:?}"
    );
    let master0 = d.commands(0);
    assert!(
        master0
            .iter()
            .any(|(_, _, c)| c.starts_with("kubectl drain node-4")),
        "{master0:?}"
    );
    assert!(
        master0
            .iter()
            .any(|(_, _, c)| c.starts_with("kubectl delete node node-4")),
        "{master0:?}"
    );
    assert!(
        d.commands(4)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm reset -f"))
    );
    assert!(
        d.commands(2)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm reset -f"))
    );
    // The leaving hosts' clean-host plugins ran around their reset; nothing else did.
    for i in [2, 4] {
        let log: Vec<String> = d.commands(i).into_iter().map(|(_, _, c)| c).collect();
        let at = |prefix: &str| {
            log.iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("host {i}: no {prefix}: {log:?}"))
        };
        let reset = at("kubeadm reset");
        assert!(at("plugin pre-clean-host") < reset, "host {i}: {log:?}");
        assert!(at("plugin post-clean-host") > reset, "host {i}: {log:?}");
    }
    for i in [0, 1, 3, 6, 7] {
        let log = d.commands(i);
        assert!(
            !log.iter().any(|(_, _, c)| c.starts_with("plugin")),
            "host {i}: {log:?}"
        );
    }
    let rule = d
        .commands(3)
        .into_iter()
        .rev()
        .find(|(_, _, c)| c.starts_with("seautil ipvs"))
        .unwrap()
        .2;
    assert!(
        !rule.contains(&ip(2)) && rule.ends_with(" --run-once"),
        "the removed master left the workers' rule: {rule}"
    );
    let pod = d
        .bed
        .ssh_ok(3, "cat /etc/kubernetes/manifests/kube-lvscare.yaml");
    assert!(
        pod.contains(&format!("    - {}:6443\n", ip(1))) && !pod.contains(&ip(2)),
        "the removed master left the workers' lvscare pod:\n{pod}"
    );
    // Its registry left the registry VIP's rule and pod too.
    assert_eq!(
        d.bed.ssh_ok(3, "cat /etc/fake-ipvs/10.103.97.2:5000"),
        format!("{}:5000\n{}:5000\n", ip(0), ip(1))
    );
    let reg_pod = d
        .bed
        .ssh_ok(3, "cat /etc/kubernetes/manifests/reg-lvscare.yaml");
    assert!(!reg_pod.contains(&ip(2)), "{reg_pod}");

    // An app file change re-runs only that app.
    let app = "---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: apps}\nspec:\n  configs:\n    - name: dashboard\n      files:\n        - {path: 10-deployment.yaml, strategy: merge, data: \"spec: {replicas: 3}\"}\n";
    let file = d.clusterfile(&[0, 1], &[3, 6, 7], &format!("{sudo_group}{app}"));
    let file = file.to_str().unwrap().to_string();
    let ev = events(&d.sealer_ok(&["apply", "-f", &file, "--auto-approve", "--json"]));
    let done = addresses(&ev, "step_done");
    let apps: Vec<&String> = done.iter().filter(|a| a.starts_with("app.")).collect();
    assert_eq!(apps, [&"app.dashboard".to_string()], "{done:?}");
    d.assert_no_changes(&file);
}

/// A host killed mid-apply fails within the step timeout naming it; the other branches
/// finish; once it is back, apply resumes and converges.
#[test]
fn a_host_killed_mid_apply_fails_fast_and_apply_resumes() {
    let d = Deploy::new(TestBed::start(3));
    let victim = 2;
    // A plugin that waits on the victim before its runtime is installed: we kill it there.
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: slow}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: victim\n  data: |\n    touch /tmp/slow-started; sleep 30\n";
    let victim_group = format!(
        "    - ips: [{}]\n      roles: [node, victim]\n",
        d.bed.host(victim).ip()
    );
    let file = d.clusterfile(&[0], &[1], &format!("{victim_group}{plugin}"));
    let file = file.to_str().unwrap().to_string();
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let mut cmd = d.bed.command(&binary);
    cmd.args([
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--step-timeout",
        "20",
    ])
    .env("SEALER_HOME", d.sb.home())
    .env("HOME", d.sb.path(""))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while d.bed.ssh(victim, "test -f /tmp/slow-started").status.code() != Some(0) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the plugin never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.bed.kill(victim);
    let killed_at = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let failed_after = killed_at.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        failed_after < std::time::Duration::from_secs(25),
        "took {failed_after:?}"
    );
    let victim_ip = d.bed.host(victim).ip().to_string();
    assert!(
        stderr.contains(&format!("plugin.slow.pre-init-host.{victim_ip}"))
            && stderr.contains(&victim_ip),
        "{stderr}"
    );
    // The other branches finished: the worker joined, the apps ran.
    assert!(
        d.commands(1)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm join")),
        "{stderr}"
    );

    d.bed.restart(victim);
    // The plugin would wait again: make it quick now that the host is back.
    let plugin = plugin.replace("sleep 30", "true");
    let file = d.clusterfile(&[0], &[1], &format!("{victim_group}{plugin}"));
    let file = file.to_str().unwrap().to_string();
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    assert!(
        !plan.contains(&format!("host.{} will be created", d.bed.host(0).ip())),
        "finished steps are not redone:\n{plan}"
    );
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    assert!(
        d.commands(victim)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm join"))
    );
    d.assert_no_changes(&file);
}

/// `sealer apply PLANFILE` applies exactly the saved plan, and refuses it once stale.
#[test]
fn saved_plans_apply_exactly_and_go_stale() {
    let d = Deploy::new(TestBed::start(2));
    let file = d.clusterfile(&[0], &[1], "");
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&["plan", "-f", &file, "--out", "plan.bin"]);
    d.sealer_ok(&["plan", "-f", &file, "--out", "stale.bin"]);

    // An edited plan file never runs: apply makes the plan again and compares.
    let edited = d.sb.path("edited.bin");
    std::fs::copy(d.sb.path("plan.bin"), &edited).unwrap();
    let text = std::fs::read_to_string(&edited).unwrap();
    assert!(text.contains("bash application/apps/calico/calico.sh"));
    std::fs::write(
        &edited,
        text.replace(
            "bash application/apps/calico/calico.sh",
            "touch /root/x; bash application/apps/calico/calico.sh",
        ),
    )
    .unwrap();
    let err = d.sealer_refused(&["apply", "edited.bin"]);
    assert!(
        err.contains("edited.bin does not match the plan its inputs produce"),
        "{err}"
    );
    assert!(
        d.commands(0).is_empty(),
        "nothing ran on master0: {:?}",
        d.commands(0)
    );

    let out = d.sealer_ok(&["apply", "plan.bin", "--json"]);
    let ev = events(&out);
    let summary = ev.iter().find(|e| e["type"] == "plan_summary").unwrap();
    assert_eq!(
        summary["add"],
        ev.iter().filter(|e| e["type"] == "step_done").count()
    );
    let err = d.sealer_stale(&["apply", "stale.bin"]);
    assert!(
        err.contains("saved plan is stale: it was made for a new cluster"),
        "{err}"
    );

    // A plan with no changes goes stale like any other.
    d.sealer_ok(&["plan", "-f", &file, "--out", "noop.bin"]);
    let worker_meta = format!("node_meta.{}", d.bed.host(1).ip());
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--replace",
        &worker_meta,
        "--auto-approve",
    ]);
    let err = d.sealer_stale(&["apply", "noop.bin"]);
    assert!(
        err.contains("saved plan is stale: state serial is"),
        "{err}"
    );

    // A plan file of a changed Clusterfile is stale too.
    d.sealer_ok(&["plan", "-f", &file, "--out", "noop.bin"]);
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "\n# edited\n",
    )
    .unwrap();
    let err = d.sealer_stale(&["apply", "noop.bin"]);
    assert!(err.contains("changed since the plan was made"), "{err}");

    // A kubelet setting replaces kubernetes.init; kubeadm reset wipes etcd, so the plan
    // replaces the worker's join, the nodes' labels and every app too, and they come back.
    let file = d.clusterfile(
        &[0],
        &[1],
        "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 250\n",
    );
    let file = file.to_str().unwrap().to_string();
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    let worker_join = format!("kubernetes.worker.{}", d.bed.host(1).ip());
    for taken in [worker_join.as_str(), worker_meta.as_str(), "app.dashboard"] {
        assert!(
            plan.contains(&format!(
                "# {taken} must be replaced (replaced with kubernetes.init: kubeadm reset wipes etcd)"
            )),
            "{taken}:\n{plan}"
        );
    }
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    let objects = d
        .bed
        .ssh_ok(0, "find /var/lib/fake-kube/objects -name '*.yaml' | sort");
    assert!(
        objects.contains("/deployment/dashboard/dashboard.yaml"),
        "{objects}"
    );
    let nodes = d.bed.ssh_ok(0, "kubectl get nodes");
    assert_eq!(nodes.lines().count(), 3, "both nodes are back:\n{nodes}");
    d.assert_no_changes(&file);
}

/// Without the bed's keys in known_hosts, hosts are refused until the operator accepts them;
/// the accepted keys are pinned in the state.
#[test]
fn unknown_host_keys_are_refused_then_pinned() {
    let d = Deploy::new(TestBed::start(1));
    std::fs::remove_file(d.sb.path(".ssh/known_hosts")).unwrap();
    let file = d.clusterfile(&[0], &[], "");
    let file = file.to_str().unwrap().to_string();
    let out = d.sealer(&["apply", "-f", &file, "--auto-approve"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--accept-new-host-keys"), "{err}");
    d.sealer_ok(&[
        "apply",
        "-f",
        &file,
        "--auto-approve",
        "--accept-new-host-keys",
    ]);
    let shown = d.sealer_ok(&["state", "show", &format!("host.{}", d.bed.host(0).ip())]);
    assert!(
        shown.contains(d.bed.host(0).host_key_fingerprint()),
        "{shown}"
    );
}

/// `sealer run APP_IMAGE` installs an app image on the applied cluster; a later plan of a
/// Clusterfile that does not list it says it would remove it, and why.
#[test]
fn run_installs_an_app_image_on_the_cluster() {
    let d = Deploy::new(TestBed::start(2));
    let ctx = d.sb.write_tree(
        "web",
        &[
            ("Kubefile", "FROM scratch\nKUBEVERSION >=1.20\nAPP web local://web.yaml\nLAUNCH [\"web\"]\n"),
            ("web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: default\ndata: {a: b}\n"),
        ],
    );
    stdout_of(
        d.sb.sealer()
            .args(["build", "--type", "app-installer", "-t", "web:v1"])
            .arg(&ctx),
    );
    let file = d.clusterfile(&[0], &[1], "");
    let file = file.to_str().unwrap().to_string();
    d.sealer_ok(&["apply", "-f", &file, "--auto-approve"]);
    // Without a terminal nor -y it refuses, with a hint that names no saved plan (which
    // `run` does not take).
    let stderr = d.sealer_refused(&["run", "web:v1"]);
    assert!(
        stderr.ends_with(
            "error: refusing to apply without confirmation: stdin is not a terminal\n\
             hint: review the plan, then pass --auto-approve\n"
        ),
        "{stderr}"
    );
    let ev = events(&d.sealer_ok(&["run", "web:v1", "--auto-approve", "--json"]));
    assert_eq!(addresses(&ev, "step_done"), ["app.web"]);
    let applied = d.commands(0);
    assert!(
        applied
            .iter()
            .any(|(_, _, c)| c.contains("kubectl apply -f application/apps/web/web.yaml")),
        "{applied:?}"
    );
    assert!(
        d.bed
            .ssh_ok(0, "find /var/lib/fake-kube/objects -name web.yaml")
            .contains("web")
    );
    let plan = d.sealer_ok(&["plan", "-f", &file]);
    assert!(
        plan.contains("# app.web will be destroyed (installed by `sealer run`; list its image in Application spec.images to keep it)"),
        "{plan}"
    );
    // Running it again changes nothing.
    let out = d.sealer_ok(&["run", "web:v1", "--auto-approve", "--json"]);
    assert!(addresses(&events(&out), "step_done").is_empty(), "{out}");
    // Destroy from the state alone: no Clusterfile needed.
    d.sealer_ok(&["destroy", "--cluster", "bed", "--auto-approve"]);
    let list = d.sealer_ok(&["state", "list"]);
    assert!(
        list.starts_with("# cluster \"bed\" has no resources (state serial "),
        "{list}"
    );
    assert!(
        d.commands(1)
            .iter()
            .any(|(_, _, c)| c.starts_with("kubeadm reset -f"))
    );
}

/// Preflight asks every host before anything changes: a port taken and a hostname another
/// host has refuse the apply, both named with the host, and neither a host nor the state
/// changes. `sealer check` says the same alone; a skipped check finds nothing.
#[test]
fn preflight_names_a_taken_port_and_a_duplicate_hostname_and_changes_nothing() {
    let d = Deploy::new(TestBed::start(2));
    let (master, worker) = (d.bed.host(0), d.bed.host(1));
    // The worker takes master0's hostname and something listens on the kubelet's port there.
    d.bed.ssh_ok(
        1,
        &format!(
            "hostname {} && {{ python3 -c 'import socket, time; s = socket.socket(); s.bind((\"0.0.0.0\", 10250)); s.listen(); time.sleep(600)' </dev/null >/dev/null 2>&1 & echo $! > /root/listener.pid; }} && for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/10250) 2>/dev/null && exit 0; sleep 0.1; done; exit 1",
            master.hostname()
        ),
    );
    let dirs = [
        "/etc",
        "/usr/bin",
        "/usr/local",
        "/var/lib",
        "/var/log",
        "/root",
        "/opt",
    ];
    let snapshot = |i: usize| -> Vec<_> {
        dirs.iter()
            .map(|p| {
                let mut tree = d.bed.file_tree(i, p);
                tree.retain(|path, _| !path.starts_with("/var/lib/containers"));
                tree
            })
            .collect()
    };
    let before: Vec<_> = (0..2).map(snapshot).collect();
    let file = d.clusterfile(&[0], &[1], "");
    let file = file.to_str().unwrap();
    let port = "port 10250 is in use: the kubelet will listen on it";
    let hostname = format!(
        "hostname {} is also the hostname of {}",
        master.hostname(),
        master.ip()
    );

    let err = d.sealer_refused(&["apply", "-f", file, "--auto-approve"]);
    let worker_part = err
        .split_once(&format!("  {} (", worker.ip()))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no report for the worker:\n{err}"));
    assert!(
        worker_part.starts_with(&format!("{}; ", master.hostname())),
        "{err}"
    );
    assert!(worker_part.contains(port), "{err}");
    assert!(worker_part.contains(&hostname), "{err}");
    assert!(
        err.contains("`ss -ltnp 'sport = :10250'`"),
        "each finding has its hint:\n{err}"
    );
    assert!(
        err.contains("error: preflight failed: 3 problems on 2 hosts; nothing was changed"),
        "master0 shares the hostname too:\n{err}"
    );
    // Nothing ran on a host, and the state records nothing of the cluster.
    for (i, trees) in before.iter().enumerate() {
        for (tree, now) in trees.iter().zip(snapshot(i)) {
            let diff = tree_diff(tree, &now);
            assert!(diff.is_empty(), "host {i} changed:\n{}", diff.join("\n"));
        }
    }
    let state = d.sealer_refused(&["state", "list", "--cluster", "bed"]);
    assert!(state.contains("no cluster \"bed\""), "{state}");

    // `sealer check` alone: the same findings, as JSON too; a skipped check is not run.
    let out = d.sealer(&["check", "-f", file, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = report["hosts"].as_array().unwrap();
    let worker_report = hosts
        .iter()
        .find(|h| h["host"] == worker.ip().to_string())
        .unwrap();
    let found: Vec<&str> = worker_report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["ports", "hostname"], "{report:#}");
    let out = d.sealer(&["check", "-f", file, "--skip-check", "ports"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains(port) && text.contains(&hostname), "{text}");

    // Fixed by hand, the hosts pass.
    d.bed.ssh_ok(
        1,
        &format!(
            "hostname {} && kill $(cat /root/listener.pid) && rm /root/listener.pid && for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/10250) 2>/dev/null || exit 0; sleep 0.1; done; exit 1",
            worker.hostname()
        ),
    );
    let ok = d.sealer_ok(&["check", "-f", file]);
    assert!(ok.contains("No problems found."), "{ok}");
}
