//! The plan is what runs, on the quickstart's cluster (one sandboxed local host): an edited
//! plan file never runs, a stale plan with no changes is refused like any other, and a
//! replacement of `kubernetes.init` shows (and applies) everything it takes with it.

use crate::support::{EXIT_STALE_PLAN, Sandbox, refused, repo_root, stdout_of, succeeded};
use std::path::{Path, PathBuf};

const IMAGE: &str = "example/demo-cluster:v1.22.15";

struct Quickstart {
    sb: Sandbox,
    clusterfile: PathBuf,
}

impl Quickstart {
    /// The quickstart's Clusterfile with its sandbox in this test's directory, and `extra`
    /// documents after it.
    fn new() -> Quickstart {
        let sb = Sandbox::new();
        stdout_of(
            sb.sealer()
                .args(["build", "-t", IMAGE])
                .arg(repo_root().join("examples/images/demo-cluster")),
        );
        let clusterfile = sb.path("Clusterfile");
        let q = Quickstart { sb, clusterfile };
        q.write("");
        q
    }

    fn write(&self, extra: &str) {
        let text = format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: quickstart\nspec:\n  image: {IMAGE}\n  ssh:\n    transport: local\n    sandbox: {}\n  hosts:\n    - ips: [127.0.0.1]\n      roles: [master]\n{extra}",
            self.sb.path("sandbox").display()
        );
        std::fs::write(&self.clusterfile, text).unwrap();
    }

    fn sealer(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.sb.sealer();
        cmd.current_dir(self.sb.path(""))
            .env("NO_COLOR", "1")
            .args(args);
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(&self.sealer(args), args)
    }

    /// stderr of a run that must fail with exit code 1.
    fn refused(&self, args: &[&str]) -> String {
        refused(&self.sealer(args), args)
    }

    fn file(&self) -> &str {
        self.clusterfile.to_str().unwrap()
    }

    /// A file the cluster's steps wrote to `/...` on the host.
    fn on_host(&self, path: &str) -> PathBuf {
        self.sb
            .path("sandbox/upper")
            .join(path.trim_start_matches('/'))
    }
}

/// Prefixes the first launch command of `address` in a saved plan file with `prefix`.
fn edit_launch_command(plan: &Path, address: &str, prefix: &str) {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap();
    let change = value["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no {address} in the plan"));
    for pointer in ["/desired/attributes/cmds/0", "/after/cmds/0"] {
        let cmd = change.pointer_mut(pointer).unwrap();
        *cmd = serde_json::json!(format!("{prefix}{}", cmd.as_str().unwrap()));
    }
    std::fs::write(plan, serde_json::to_vec(&value).unwrap()).unwrap();
}

#[test]
fn an_edited_plan_file_never_runs_and_the_plan_as_made_applies() {
    let q = Quickstart::new();
    q.ok(&["plan", "-f", q.file(), "--out", "plan.bin"]);
    std::fs::copy(q.sb.path("plan.bin"), q.sb.path("edited.bin")).unwrap();
    edit_launch_command(&q.sb.path("edited.bin"), "app.calico", "touch /root/x; ");

    let err = q.refused(&["apply", "edited.bin"]);
    assert!(
        err.contains(
            "edited.bin does not match the plan its inputs produce (change app.calico differs)"
        ),
        "{err}"
    );
    assert!(!err.contains("stale"), "an edit is not staleness: {err}");
    assert!(
        !q.on_host("/var/log/sealer-test/commands.log").exists(),
        "nothing may run"
    );
    let err = q.refused(&["state", "list", "--cluster", "quickstart"]);
    assert!(
        err.contains("no cluster \"quickstart\" in the state"),
        "{err}"
    );

    // The file as `plan` wrote it is re-derived byte for byte, and applies, also after it
    // moved with its Clusterfile (a CI artifact in another checkout): it names the
    // Clusterfile relative to itself.
    let moved = q.sb.path("moved");
    std::fs::create_dir(&moved).unwrap();
    for name in ["plan.bin", "Clusterfile"] {
        std::fs::rename(q.sb.path(name), moved.join(name)).unwrap();
    }
    q.ok(&["apply", "moved/plan.bin"]);
    assert!(!q.on_host("/root/x").exists());
    assert!(q.on_host("/etc/kubernetes/admin.conf").is_file());
}

#[test]
fn a_saved_plan_with_no_changes_is_stale_once_the_state_moves_on() {
    let q = Quickstart::new();
    q.ok(&["apply", "-f", q.file(), "--auto-approve"]);
    let plan = q.ok(&["plan", "-f", q.file(), "--out", "noop.bin"]);
    assert!(plan.contains("No changes."), "{plan}");
    q.ok(&[
        "apply",
        "-f",
        q.file(),
        "--replace",
        "node_meta.127.0.0.1",
        "--auto-approve",
    ]);
    let args = ["apply", "noop.bin"];
    let err = crate::support::refused_with(&q.sealer(&args), &args, EXIT_STALE_PLAN);
    assert!(
        err.contains("saved plan is stale: state serial is"),
        "{err}"
    );
}

#[test]
fn a_kubelet_change_shows_and_applies_everything_kubeadm_reset_takes() {
    let q = Quickstart::new();
    q.ok(&["apply", "-f", q.file(), "--auto-approve"]);
    let deployment = "/var/lib/fake-kube/objects/deployment/dashboard/dashboard.yaml";
    assert!(q.on_host(deployment).is_file());

    q.write(
        "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 250\n",
    );
    let plan = q.ok(&["plan", "-f", q.file(), "--out", "kubelet.bin"]);
    for app in ["app.calico", "app.dashboard", "app.metrics"] {
        assert!(
            plan.contains(&format!(
                "# {app} must be replaced (replaced with kubernetes.init: kubeadm reset wipes etcd) [disruptive]"
            )),
            "{app}:\n{plan}"
        );
    }
    assert!(
        plan.contains("node_meta.127.0.0.1 must be replaced (replaced with kubernetes.init"),
        "{plan}"
    );
    let warnings = plan.split("Warning: ").nth(1).expect("a warning block");
    assert!(
        warnings.contains("  - app.dashboard must be replaced"),
        "{plan}"
    );

    // The configuration kubeadm gets is the one the plan shows, byte for byte.
    let json: serde_json::Value =
        serde_json::from_str(&q.ok(&["show", "kubelet.bin", "--json"])).unwrap();
    let shown = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "kubernetes.init")
        .unwrap()["after"]["kubeadm_config"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(shown.contains("maxPods: 250"), "{shown}");

    q.ok(&["apply", "kubelet.bin"]);
    let applied = std::fs::read_to_string(q.on_host("/etc/kubernetes/kubeadm.yaml")).unwrap();
    assert_eq!(applied, shown);
    assert!(
        q.on_host(deployment).is_file(),
        "the apps' objects are back after the reset"
    );
    let plan = q.ok(&["plan", "-f", q.file(), "--detailed-exitcode"]);
    assert!(plan.contains("No changes."), "{plan}");
}

/// Every file under `dir` with its bytes, except the stand-ins' command log.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("var/log/sealer-test") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// `plan --refresh-only --detailed-exitcode`, which must exit `code`: its stdout.
fn refresh(q: &Quickstart, code: i32) -> String {
    let out = q.sealer(&[
        "plan",
        "-f",
        q.file(),
        "--refresh-only",
        "--detailed-exitcode",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(code), "{text}");
    text
}

#[test]
fn refresh_only_reads_every_resource_back_changes_nothing_and_names_what_drifted() {
    let q = Quickstart::new();
    q.ok(&["apply", "-f", q.file(), "--auto-approve"]);
    let state = q.ok(&["state", "list", "--cluster", "quickstart"]);
    let upper = q.sb.path("sandbox/upper");
    let before = tree(&upper);

    let text = refresh(&q, 0);
    assert!(
        text.contains("No drift: the 9 resources read back are as the state records them."),
        "{text}"
    );
    assert!(
        text.contains("Not checked (nothing on a host tells whether they still hold): app.calico"),
        "{text}"
    );
    assert!(tree(&upper) == before, "a refresh wrote on the host");
    assert_eq!(q.ok(&["state", "list", "--cluster", "quickstart"]), state);

    // Drift made by hand, one per kind that can see it.
    let api = q.on_host("/var/lib/fake-kube");
    std::fs::remove_file(api.join("objects/deployment/dashboard/dashboard.yaml")).unwrap();
    std::fs::remove_dir_all(api.join("helm/default/metrics")).unwrap();
    let labels = std::fs::read_dir(api.join("nodes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("labels");
    std::fs::write(&labels, "").unwrap();
    let script = q.on_host("/var/lib/sealer/data/quickstart/rootfs/scripts/containerd.sh");
    let mut bytes = std::fs::read(&script).unwrap();
    bytes.extend_from_slice(b"# edited\n");
    std::fs::write(&script, bytes).unwrap();
    std::fs::write(q.on_host("/etc/kubernetes/kubeadm.yaml"), "edited: true\n").unwrap();
    let tampered = tree(&upper);

    let text = refresh(&q, 2);
    for expected in [
        "~ app.dashboard (drifted)\n      objects of 10-deployment.yaml: Error from server (NotFound)",
        "- app.metrics (gone)\n      release metrics is not installed",
        "~ kubernetes.init (drifted)\n      /etc/kubernetes/kubeadm.yaml is not the configuration kubeadm init was given",
        "~ node_meta.127.0.0.1 (drifted)\n      label node-role.kubernetes.io/master= is missing",
        "~ rootfs.127.0.0.1 (drifted)\n      1 of its files changed since sealer wrote them: scripts/containerd.sh",
        "5 of 10 resources drifted, 0 could not be read.",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(tree(&upper) == tampered, "a refresh wrote on the host");
    assert_eq!(q.ok(&["state", "list", "--cluster", "quickstart"]), state);

    let json: serde_json::Value =
        serde_json::from_str(&q.ok(&["plan", "-f", q.file(), "--refresh-only", "--json"])).unwrap();
    assert_eq!(json["drifted"], 5);
    let found: Vec<(&str, &str)> = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["address"].as_str().unwrap(), r["found"].as_str().unwrap()))
        .collect();
    assert!(found.contains(&("app.metrics", "gone")), "{found:?}");
    assert!(
        found.contains(&("host.127.0.0.1", "as_recorded")),
        "{found:?}"
    );

    let err = q.refused(&["plan", "-f", q.file(), "--refresh-only", "--out", "x.bin"]);
    assert!(err.contains("cannot be used with"), "{err}");
}
