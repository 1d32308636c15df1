//! The quickstart's cluster (examples/quickstart/Clusterfile): applied onto this machine
//! through the sandboxed `local` transport, it converges, and nothing outside its sandbox
//! changes.

use crate::support::{Sandbox, repo_root, stdout_of};
use std::collections::BTreeMap;
use std::path::Path;

const IMAGE: &str = "example/demo-cluster:v1.22.15";

/// What the cluster's steps would write on an unconfined machine: path → content (files),
/// entry names (directories) or absence.
fn fingerprint() -> BTreeMap<&'static str, String> {
    let watched = [
        "/etc/hosts",
        "/etc/kubernetes",
        "/etc/sealer",
        "/etc/containerd",
        "/etc/crictl.yaml",
        "/root/.kube",
        "/var/lib/sealer",
        "/var/lib/fake-kube",
        "/var/log/sealer-test",
        "/usr/local/bin/containerd",
    ];
    watched
        .into_iter()
        .map(|p| {
            let path = Path::new(p);
            let seen = if path.is_dir() {
                let mut names: Vec<String> = std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                format!("dir {names:?}")
            } else if path.exists() {
                format!("file {:?}", std::fs::read(path).unwrap())
            } else {
                "absent".to_string()
            };
            (p, seen)
        })
        .collect()
}

#[test]
fn the_quickstart_cluster_applies_inside_its_sandbox_and_nowhere_else() {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    let clusterfile = repo_root().join("examples/quickstart/Clusterfile");
    // The Clusterfile's sandbox is relative to the directory sealer runs in.
    let run = |args: &[&str]| {
        let mut cmd = sb.sealer();
        cmd.current_dir(sb.dir.path()).args(args);
        cmd
    };
    let before = fingerprint();

    stdout_of(&mut run(&[
        "apply",
        "-f",
        clusterfile.to_str().unwrap(),
        "--auto-approve",
    ]));

    assert_eq!(fingerprint(), before, "the apply wrote outside its sandbox");
    let upper = sb.path(".quickstart/sandbox/upper");
    assert!(upper.join("etc/kubernetes/admin.conf").is_file());
    assert!(upper.join("root/.kube/config").is_file());
    let hosts = std::fs::read_to_string(upper.join("etc/hosts")).unwrap();
    assert!(
        hosts.contains("127.0.0.1 apiserver.cluster.local"),
        "{hosts}"
    );
    assert!(hosts.contains("127.0.0.1 sea.hub"), "{hosts}");
    assert!(
        upper
            .join("var/lib/sealer/data/quickstart/rootfs/scripts/init-kube.sh")
            .is_file()
    );
    let log = std::fs::read_to_string(upper.join("var/log/sealer-test/commands.log")).unwrap();
    for ran in [
        " kubeadm init --config /etc/kubernetes/kubeadm.yaml",
        " helm install metrics",
    ] {
        assert!(log.contains(ran), "{ran} not in\n{log}");
    }

    // The state records the sandbox absolute, so a destroy from elsewhere finds it.
    let host = stdout_of(&mut run(&[
        "state",
        "show",
        "host.127.0.0.1",
        "--cluster",
        "quickstart",
    ]));
    let sandbox = sb.path(".quickstart/sandbox");
    assert!(host.contains(&*sandbox.to_string_lossy()), "{host}");
    let plan = stdout_of(&mut run(&["plan", "-f", clusterfile.to_str().unwrap()]));
    assert!(plan.contains("No changes."), "{plan}");

    stdout_of(sb.sealer().current_dir(repo_root()).args([
        "destroy",
        "--cluster",
        "quickstart",
        "--auto-approve",
    ]));
    assert!(!upper.join("etc/kubernetes/admin.conf").exists());
    assert!(!upper.join("var/lib/sealer/data/quickstart/rootfs").exists());
    let list = stdout_of(&mut run(&["state", "list", "--cluster", "quickstart"]));
    assert_eq!(list.trim(), "");
    assert_eq!(
        fingerprint(),
        before,
        "the destroy wrote outside its sandbox"
    );
}

#[test]
fn a_sandbox_on_a_host_reached_over_ssh_is_refused_at_its_line() {
    let sb = Sandbox::new();
    let dir = sb.write_tree(
        "cf",
        &[(
            "Clusterfile",
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: example/demo-cluster:v1.22.15\n  ssh: {passwd: x, sandbox: /tmp/x}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n",
        )],
    );
    let out = sb
        .sealer()
        .args(["validate", "-f"])
        .arg(dir.join("Clusterfile"))
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("Clusterfile:6:") && err.contains("sandbox needs transport: local"),
        "{err}"
    );
}
