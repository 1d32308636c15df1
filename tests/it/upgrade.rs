//! Kubernetes upgrades on the SSH test bed: the test cluster image at the next minor
//! version (its stand-in binaries at v1.23.17, as a real image of that version carries the
//! real ones) applied over a running v1.22.15 cluster of one master and two workers.

use crate::apply::{Deploy, IMAGE};
use crate::reliability::run_killed_when;
use crate::support::testbed::TestBed;
use crate::support::{repo_root, stdout_of};
use std::path::Path;

const NEXT: &str = "sealer-test/kubernetes:v1.23.17";

/// Copies `from` into `to`, with every `v1.22.15` in a file's text made `v1.23.17`.
fn copy_at_next_version(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_at_next_version(&entry.path(), &target);
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => text.replace("v1.22.15", "v1.23.17").into_bytes(),
            Err(e) => e.into_bytes(),
        };
        std::fs::write(&target, bytes).unwrap();
        let mode = entry.metadata().unwrap().permissions();
        std::fs::set_permissions(&target, mode).unwrap();
    }
}

#[test]
fn an_upgrade_keeps_the_apps_drains_one_worker_at_a_time_and_resumes_after_a_kill() {
    let d = Deploy::new(TestBed::start(3));
    let file = d.clusterfile(&[0], &[1, 2], "");
    let file = file.to_str().unwrap();
    d.sealer_ok(&["apply", "-f", file, "--auto-approve"]);
    let applied = d.commands(0).len();

    let context = d.sb.path("next-image");
    copy_at_next_version(&repo_root().join("examples/images/demo-cluster"), &context);
    stdout_of(d.sb.sealer().args(["build", "-t", NEXT]).arg(&context));
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, text.replace(IMAGE, NEXT)).unwrap();

    let out = d.sealer(&["plan", "-f", file, "--detailed-exitcode"]);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{plan}");
    let worker = |i: usize| format!("kubernetes.worker.{}", d.bed.host(i).ip());
    for expected in [
        "# kubernetes.init will be updated in place (upgrade Kubernetes v1.22.15 -> v1.23.17: `kubeadm upgrade apply` on master0)".to_string(),
        format!(
            "# {} will be updated in place (upgrade Kubernetes v1.22.15 -> v1.23.17: drained, `kubeadm upgrade node`, kubelet restarted, uncordoned)",
            worker(1)
        ),
    ] {
        assert!(plan.contains(&expected), "{expected:?} not in:\n{plan}");
    }
    assert!(!plan.contains("must be replaced"), "{plan}");
    assert!(
        plan.contains("0 to add") && plan.contains("0 to destroy"),
        "{plan}"
    );

    // Killed as the first worker's upgrade starts; the next apply resumes.
    let events = run_killed_when(&d, &["apply", "-f", file, "--auto-approve"], |line| {
        line.contains("\"type\":\"step_start\"") && line.contains("kubernetes.worker.")
    });
    assert!(
        events
            .iter()
            .any(|(kind, address)| kind == "step_done" && address == "kubernetes.init"),
        "{events:?}"
    );
    let out = d.sealer(&["plan", "-f", file]);
    let resumed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !resumed.contains("kubernetes.init"),
        "master0 is done: {resumed}"
    );
    assert!(resumed.contains(&worker(2)), "{resumed}");
    d.sealer_ok(&["apply", "-f", file, "--auto-approve"]);
    d.assert_no_changes(file);

    for i in 0..3 {
        assert_eq!(
            d.bed.ssh_ok(i, "kubeadm version -o short").trim(),
            "v1.23.17",
            "host {i} has the new binaries"
        );
    }
    let api = "/var/lib/fake-kube";
    assert_eq!(
        d.bed
            .ssh_ok(
                0,
                &format!(
                    "awk '$1 == \"kubernetesVersion:\" {{print $2}}' {api}/kubeadm-config.yaml"
                )
            )
            .trim(),
        "v1.23.17"
    );
    assert!(
        d.bed
            .ssh_ok(0, "cat /etc/kubernetes/manifests/kube-apiserver.yaml")
            .contains("kube-apiserver:v1.23.17")
    );
    // The apps' objects are still there: an upgrade is not a reinstall.
    d.bed.ssh_ok(
        0,
        &format!("test -f {api}/objects/deployment/dashboard/dashboard.yaml && test -d {api}/helm/default/metrics"),
    );

    // On master0, in order: the control plane first, then each worker drained and
    // uncordoned before the next one is drained (the killed run's drain comes again).
    let log: Vec<String> = d
        .commands(0)
        .split_off(applied)
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    let upgrade_apply = log
        .iter()
        .position(|c| c.starts_with("kubeadm upgrade apply v1.23.17"))
        .unwrap_or_else(|| panic!("{log:?}"));
    let mut cordoned: Option<String> = None;
    let mut uncordoned = Vec::new();
    for (i, c) in log.iter().enumerate() {
        if let Some(node) = c.strip_prefix("kubectl drain ") {
            let node = node.split(' ').next().unwrap().to_string();
            assert!(i > upgrade_apply, "{log:?}");
            assert!(
                cordoned.is_none() || cordoned.as_ref() == Some(&node),
                "two workers drained at once: {log:?}"
            );
            cordoned = Some(node);
        } else if let Some(node) = c.strip_prefix("kubectl uncordon ") {
            assert_eq!(cordoned.as_deref(), Some(node), "{log:?}");
            cordoned = None;
            uncordoned.push(node.to_string());
        }
    }
    assert_eq!(cordoned, None, "{log:?}");
    uncordoned.sort();
    let mut workers = vec![
        d.bed.host(1).hostname().to_string(),
        d.bed.host(2).hostname().to_string(),
    ];
    workers.sort();
    assert_eq!(uncordoned, workers, "{log:?}");
}
