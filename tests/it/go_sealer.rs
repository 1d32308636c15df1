//! Cluster images Go Sealer 0.9.0, 0.9.3 and 0.10 built take part in plans whole: their
//! rootfs `etc/kubeadm.yml` and `plugins/*.yaml` (which no annotation of ours records) are
//! read from the unpacked image, under the Clusterfile's, as deploy.md orders them.

use crate::support::{Sandbox, failure_of, fixture, stdout_of};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const VERSIONS: [&str; 3] = ["0.9.0", "0.9.3", "0.10"];

fn layout(version: &str) -> std::path::PathBuf {
    fixture(&format!("go-sealer-cluster-{version}"))
}

fn reference(version: &str) -> String {
    format!("sealerio/kubernetes:v1.22.15-go{version}")
}

/// A two-host Clusterfile on `image`, followed by `extra` documents.
fn clusterfile(sb: &Sandbox, image: &str, extra: &str) -> std::path::PathBuf {
    let path = sb.path("Clusterfile");
    std::fs::write(
        &path,
        format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  image: {image}\n  ssh:\n    user: root\n    passwd: x\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n    - ips: [10.0.0.3]\n      roles: [node]\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn plan_json(sb: &Sandbox, file: &Path) -> Value {
    let text = stdout_of(sb.sealer().args(["plan", "--json", "-f"]).arg(file));
    serde_json::from_str(&text).unwrap()
}

fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change for {address} in {plan:#}"))
}

fn kubeadm_docs(plan: &Value) -> Vec<Value> {
    let text = change(plan, "kubernetes.init")["after"]["kubeadm_config"]
        .as_str()
        .unwrap()
        .to_string();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {docs:#?}"))
}

#[test]
fn their_kubeadm_defaults_and_plugins_are_planned() {
    for version in VERSIONS {
        let sb = Sandbox::new();
        stdout_of(sb.sealer().args(["load", "-i"]).arg(layout(version)));
        // Each version's annotation shape reads the same.
        let image: Value = serde_json::from_str(&stdout_of(
            sb.sealer().args(["inspect", &reference(version)]),
        ))
        .unwrap();
        assert_eq!(image["type"], "kube-installer", "{version}");
        assert_eq!(
            image["applications"][0]["files"],
            serde_json::json!(["calico.sh"])
        );
        assert_eq!(
            image["applications"][0]["launchCmd"], "cd application/apps/calico/ && bash calico.sh",
            "{version}"
        );
        let file = clusterfile(&sb, &reference(version), "");
        let plan = plan_json(&sb, &file);

        let docs = kubeadm_docs(&plan);
        let cluster = doc(&docs, "ClusterConfiguration");
        assert_eq!(cluster["imageRepository"], "sea.hub:5000", "{version}");
        assert_eq!(cluster["networking"]["dnsDomain"], "cluster.local");
        assert_eq!(
            cluster["apiServer"]["extraArgs"]["feature-gates"],
            "TTLAfterFinished=true,EphemeralContainers=true"
        );
        assert_eq!(doc(&docs, "KubeProxyConfiguration")["mode"], "ipvs");

        // Each plugin at its phase: post-install once, pre-init-host on every host.
        let untaint = change(&plan, "plugin.untaint-master.post-install");
        assert_eq!(
            untaint["after"]["data"],
            "kubectl taint node --all node-role.kubernetes.io/master- || true\n"
        );
        assert_eq!(untaint["after"]["scope"], serde_json::json!(["master"]));
        for ip in ["10.0.0.2", "10.0.0.3"] {
            let check = change(&plan, &format!("plugin.check-hosts.pre-init-host.{ip}"));
            assert_eq!(check["after"]["data"], "test -d /etc\n");
        }
        assert!(
            change(&plan, "plugin.untaint-master.post-install")["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == "kubernetes.worker.10.0.0.3"),
            "post-install runs after the joins"
        );
    }
}

#[test]
fn what_the_clusterfile_says_wins_over_their_rootfs() {
    let sb = Sandbox::new();
    stdout_of(sb.sealer().args(["load", "-i"]).arg(layout("0.9.3")));
    let extra = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nimageRepository: registry.corp:5000\nnetworking: {dnsDomain: corp.local}\n\
---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: untaint-master}\nspec:\n  type: SHELL\n  action: post-install\n  data: echo mine\n";
    let plan = plan_json(&sb, &clusterfile(&sb, &reference("0.9.3"), extra));
    let docs = kubeadm_docs(&plan);
    let cluster = doc(&docs, "ClusterConfiguration");
    assert_eq!(cluster["imageRepository"], "registry.corp:5000");
    assert_eq!(cluster["networking"]["dnsDomain"], "corp.local");
    // What the Clusterfile leaves alone stays the image's; sealer's own values win over both.
    assert_eq!(
        cluster["apiServer"]["extraArgs"]["feature-gates"],
        "TTLAfterFinished=true,EphemeralContainers=true"
    );
    assert_eq!(cluster["networking"]["podSubnet"], "100.64.0.0/10");
    assert_eq!(
        change(&plan, "plugin.untaint-master.post-install")["after"]["data"],
        "echo mine"
    );
}

#[test]
fn a_broken_plugin_or_kubeadm_file_in_their_rootfs_is_an_error_naming_it() {
    // Rebuild the 0.10 image with a bad plugin phase and an oversized kubeadm.yml.
    let sb = Sandbox::new();
    let dir = sb.path("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("make-go-sealer-cluster-fixtures.sh");
    let original = std::fs::read_to_string(fixture("make-go-sealer-cluster-fixtures.sh")).unwrap();
    let broken = original.replace("'  action: pre-init-host'", "'  action: pre-lunch'");
    assert_ne!(broken, original);
    std::fs::write(&script, &broken).unwrap();
    run_script(&script);
    stdout_of(
        sb.sealer()
            .args(["load", "-i"])
            .arg(dir.join("go-sealer-cluster-0.10")),
    );
    let file = clusterfile(&sb, &reference("0.10"), "");
    let err = failure_of(sb.sealer().args(["plan", "-f"]).arg(&file));
    assert!(
        err.starts_with(&format!(
            "{}:plugins/check.yaml:7:11: error:",
            reference("0.10")
        )),
        "{err}"
    );

    let huge = original.replace(
        "> \"$root/etc/kubeadm.yml\"",
        "> \"$root/etc/kubeadm.yml\"\n  head -c 1048577 /dev/zero | tr '\\0' '#' >> \"$root/etc/kubeadm.yml\"",
    );
    assert_ne!(huge, original);
    std::fs::write(&script, &huge).unwrap();
    run_script(&script);
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["load", "-i"])
            .arg(dir.join("go-sealer-cluster-0.10")),
    );
    let file = clusterfile(&sb, &reference("0.10"), "");
    let err = failure_of(sb.sealer().args(["validate", "-f"]).arg(&file));
    assert!(
        err.contains("etc/kubeadm.yml is larger than 1 MiB"),
        "{err}"
    );
}

fn run_script(script: &Path) {
    let out = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_fixtures_are_what_their_script_makes() {
    // The committed layouts must match the script, so editing one without the other fails.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("make-go-sealer-cluster-fixtures.sh");
    std::fs::copy(fixture("make-go-sealer-cluster-fixtures.sh"), &script).unwrap();
    run_script(&script);
    for version in VERSIONS {
        let made = dir.path().join(format!("go-sealer-cluster-{version}"));
        let committed = layout(version);
        for rel in ["oci-layout", "index.json"] {
            assert_eq!(
                std::fs::read(made.join(rel)).unwrap(),
                std::fs::read(committed.join(rel)).unwrap(),
                "{version}: {rel} differs from what the script writes"
            );
        }
    }
}

#[test]
fn an_image_built_on_theirs_inherits_their_kubeadm_defaults_and_plugins() {
    let sb = Sandbox::new();
    stdout_of(sb.sealer().args(["load", "-i"]).arg(layout("0.9.3")));
    let ctx = sb.write_tree(
        "child",
        &[(
            "Kubefile",
            &format!("FROM {}\nLABEL team=a\n", reference("0.9.3")),
        )],
    );
    stdout_of(
        sb.sealer()
            .args(["build", "--platform", "linux/amd64", "-t", "child:v1"])
            .arg(&ctx),
    );
    let plan = plan_json(&sb, &clusterfile(&sb, "child:v1", ""));
    let docs = kubeadm_docs(&plan);
    assert_eq!(
        doc(&docs, "ClusterConfiguration")["imageRepository"],
        "sea.hub:5000"
    );
    change(&plan, "plugin.untaint-master.post-install");
}
