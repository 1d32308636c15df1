//! `sealer plan`, `show`, `graph` and `state` through the real binary, on the test cluster
//! image, with snapshots of what reviewers read.
//!
//! Plans are diffed against a state. Until a scenario's apply runs, the state is seeded by
//! [`record_as_applied`]: it writes what a successful apply of a saved plan records, through
//! the state API the executor uses. Apply itself is tested on the SSH test bed.

use crate::support::{Sandbox, failure_of, repo_root, stdout_of};
use sealer::plan::Action;
use sealer::plan::saved::SavedPlan;
use sealer::resource::Recorded;
use sealer::state::StateStore;
use std::path::{Path, PathBuf};

const IMAGE: &str = "sealer-test/kubernetes:v1.22.15";

fn with_image() -> Sandbox {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "--platform", "linux/amd64", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    sb
}

struct Spec {
    masters: Vec<&'static str>,
    workers: Vec<String>,
    extra: &'static str,
}

impl Spec {
    fn three_by_three() -> Spec {
        Spec {
            masters: vec!["10.0.0.2", "10.0.0.3", "10.0.0.4"],
            workers: vec!["10.0.0.5".into(), "10.0.0.6".into(), "10.0.0.7".into()],
            extra: "",
        }
    }

    fn text(&self) -> String {
        let list = |ips: &[String]| ips.join(", ");
        let masters: Vec<String> = self.masters.iter().map(|s| s.to_string()).collect();
        format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  image: {IMAGE}\n  ssh:\n    user: root\n    passwd: hunter2-secret\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [node]\n      labels: {{zone: a}}\n{}",
            list(&masters),
            list(&self.workers),
            self.extra
        )
    }
}

fn write(sb: &Sandbox, spec: &Spec) -> PathBuf {
    let path = sb.path("Clusterfile");
    std::fs::write(&path, spec.text()).unwrap();
    path
}

fn plan(sb: &Sandbox, file: &Path, extra: &[&str]) -> String {
    let out = sb
        .sealer()
        .arg("plan")
        .arg("-f")
        .arg(file)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Digests change with the sealer version recorded in images, and keyed ones (an env key's
/// 12 hex digits among them) with the key of each test's new state: hide them.
fn redact(text: &str) -> String {
    let text = redact_env_digests(text);
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        let hex: String = rest[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        out.push_str("sha256:");
        if hex.len() >= 12 {
            out.push_str("[digest]");
        } else {
            out.push_str(&hex);
        }
        rest = &rest[i + 7 + hex.len()..];
    }
    out.push_str(rest);
    // A state's lineage is random: the Markdown comment shows its first 8 hex digits.
    match out.find("· lineage `") {
        Some(i) => {
            let start = i + "· lineage `".len();
            out.replace_range(start..(start + 8).min(out.len()), "[lineage]");
            out
        }
        None => out,
    }
}

/// `"0123456789ab"` (an env key's keyed digest) → `"[env digest]"`.
fn redact_env_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digest = after.len() > 12
            && after.as_bytes()[12] == b'"'
            && after[..12]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if digest {
            out.push_str("\"[env digest]\"");
            rest = &after[13..];
        } else {
            out.push('"');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Records a saved plan as applied: what the executor commits step by step.
fn record_as_applied(sb: &Sandbox, plan_file: &Path) {
    let saved = SavedPlan::read(plan_file).unwrap();
    let store = StateStore::open_or_create(&sb.home().join("state.db")).unwrap();
    let name = &saved.plan.cluster;
    if store.cluster(name).unwrap().is_none() {
        store.create_cluster(name).unwrap();
    }
    for change in &saved.plan.changes {
        match change.action {
            Action::Delete => {
                store.remove(name, &change.address).unwrap();
            }
            _ => {
                let desired = change.desired.as_ref().unwrap();
                let computed = desired
                    .computed
                    .iter()
                    .map(|k| (k.clone(), serde_json::json!("x86_64")))
                    .collect();
                store
                    .commit(name, &Recorded::applied(desired, computed))
                    .unwrap();
            }
        }
    }
}

fn apply_state(sb: &Sandbox, spec: &Spec) {
    let file = write(sb, spec);
    let out = sb.path("seed.bin");
    plan(sb, &file, &["--out", out.to_str().unwrap()]);
    record_as_applied(sb, &out);
}

#[test]
fn a_new_three_by_three_cluster_with_cni_and_two_apps() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let text = plan(&sb, &file, &[]);
    assert!(text.starts_with("Cluster \"prod\" has no state yet: this plan creates it.\n"));
    assert!(!text.contains("hunter2"), "secrets never show");
    assert!(
        text.contains("+ password      = (sensitive value)"),
        "{text}"
    );
    insta::assert_snapshot!(redact(&text));
    // Deterministic: the same inputs give byte-identical output.
    assert_eq!(text, plan(&sb, &file, &[]));
}

#[test]
fn an_applied_cluster_has_no_changes_and_detailed_exitcode_says_so() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let file = write(&sb, &Spec::three_by_three());
    let out = sb
        .sealer()
        .args(["plan", "--detailed-exitcode", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "No changes. Cluster \"prod\" matches the configuration.\n"
    );
    let mut spec = Spec::three_by_three();
    spec.workers.push("10.0.0.8".into());
    let file = write(&sb, &spec);
    let out = sb
        .sealer()
        .args(["plan", "--detailed-exitcode", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scale_up_by_two_workers_plans_only_their_resources() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let mut spec = Spec::three_by_three();
    spec.workers
        .extend(["10.0.0.8".to_string(), "10.0.0.9".to_string()]);
    let text = plan(&sb, &write(&sb, &spec), &[]);
    for line in text.lines().filter(|l| l.starts_with("  # ")) {
        assert!(
            line.contains("10.0.0.8") || line.contains("10.0.0.9"),
            "only the new workers change: {line}"
        );
    }
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn scale_down_by_one_worker_and_one_master() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let mut spec = Spec::three_by_three();
    spec.masters.retain(|m| *m != "10.0.0.4");
    spec.workers.retain(|w| w != "10.0.0.7");
    let text = plan(&sb, &write(&sb, &spec), &[]);
    assert!(text.contains(
        "# kubernetes.master.10.0.0.4 will be destroyed (removed from configuration) [disruptive]"
    ));
    assert!(text.contains(
        "# kubernetes.worker.10.0.0.7 will be destroyed (removed from configuration) [disruptive]"
    ));
    assert!(text.contains(
        "# kubernetes.worker.10.0.0.5 will be updated in place (masters changed (10.0.0.4 left): the VIP's IPVS rule and kube-lvscare.yaml are rewritten)"
    ));
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn removing_master0_is_a_plan_error() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let mut spec = Spec::three_by_three();
    spec.masters.remove(0);
    let file = write(&sb, &spec);
    let err = failure_of(sb.sealer().args(["plan", "-f"]).arg(&file));
    assert_eq!(
        err,
        format!(
            "{}:11:13: error: master0 cannot change: the cluster was initialised on 10.0.0.2, \
             but the first master is now 10.0.0.3\n\
             11 |     - ips: [10.0.0.3, 10.0.0.4]\n   |             ^\n\
             hint: 10.0.0.2 holds the cluster's certificates (kubeadm init ran there): master0 \
             is the first host with the role master\n\
             hint: put 10.0.0.2 back as the first master; to start over on other hosts, \
             `sealer destroy` the cluster first\n",
            file.display()
        )
    );
    // Still listed, but no longer first.
    spec.masters = vec!["10.0.0.3", "10.0.0.2", "10.0.0.4"];
    let err = failure_of(sb.sealer().args(["plan", "-f"]).arg(write(&sb, &spec)));
    assert!(
        err.contains(":11:13: error: master0 cannot change")
            && err.ends_with(
                "hint: list 10.0.0.2 first among the masters; other masters may come and go after it\n"
            ),
        "{err}"
    );
}

#[test]
fn an_app_file_change_updates_only_that_app() {
    let sb = with_image();
    let app = "---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: apps}\nspec:\n  configs:\n    - name: dashboard\n      files:\n        - {path: 10-deployment.yaml, strategy: merge, data: \"spec: {replicas: 1}\"}\n";
    let app2 = app.replace("replicas: 1", "replicas: 3");
    let mut spec = Spec::three_by_three();
    spec.extra = Box::leak(app.to_string().into_boxed_str());
    apply_state(&sb, &spec);
    spec.extra = Box::leak(app2.into_boxed_str());
    let text = plan(&sb, &write(&sb, &spec), &[]);
    let changed: Vec<&str> = text.lines().filter(|l| l.starts_with("  # ")).collect();
    assert_eq!(
        changed,
        [
            "  # rootfs.10.0.0.2 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # rootfs.10.0.0.3 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # rootfs.10.0.0.4 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # rootfs.10.0.0.5 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # rootfs.10.0.0.6 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # rootfs.10.0.0.7 will be updated in place (content changed: Application config dashboard file 10-deployment.yaml changed)",
            "  # app.dashboard will be updated in place (files changed: 10-deployment.yaml (by Application config dashboard))",
        ]
    );
    // The merge data itself, as a diff, under the app's overrides.
    assert!(
        text.contains("- spec: {replicas: 1}\n") && text.contains("+ spec: {replicas: 3}\n"),
        "{text}"
    );
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn a_changed_kubeadm_setting_replaces_with_its_reason() {
    let sb = with_image();
    let kubeadm = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking: {dnsDomain: cluster.local}\n";
    let mut spec = Spec::three_by_three();
    spec.extra = kubeadm;
    apply_state(&sb, &spec);
    spec.extra = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking: {dnsDomain: corp.local}\n";
    let text = plan(&sb, &write(&sb, &spec), &[]);
    assert!(text.contains(
        "# kubernetes.init must be replaced (attribute kubeadm_config changed) [disruptive]"
    ));
    assert!(
        text.contains(
            "          -   dnsDomain: cluster.local\n          +   dnsDomain: corp.local\n"
        ),
        "{text}"
    );
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn an_incompatible_app_image_is_a_plan_error() {
    let sb = with_image();
    let ctx = sb.write_tree(
        "app",
        &[
            (
                "Kubefile",
                "FROM scratch\nKUBEVERSION >=1.24\nAPP web local://web.yaml\nLAUNCH [\"web\"]\n",
            ),
            ("web.yaml", "kind: Web\n"),
        ],
    );
    stdout_of(
        sb.sealer()
            .args(["build", "--type", "app-installer", "-t", "web:v1"])
            .arg(&ctx),
    );
    let mut spec = Spec::three_by_three();
    spec.extra = "---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: apps}\nspec:\n  images: [web:v1]\n";
    let err = failure_of(sb.sealer().args(["plan", "-f"]).arg(write(&sb, &spec)));
    insta::assert_snapshot!(err.replace(&sb.path("").display().to_string(), "[sandbox]/"));
}

#[test]
fn a_tainted_resource_is_replaced() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let store = StateStore::open_existing(&sb.home().join("state.db"))
        .unwrap()
        .unwrap();
    store.taint("prod", "container_runtime.10.0.0.6").unwrap();
    let text = plan(&sb, &write(&sb, &Spec::three_by_three()), &[]);
    insta::assert_snapshot!(redact(&text));
    let list = stdout_of(sb.sealer().args(["state", "list"]));
    assert!(
        list.contains("container_runtime.10.0.0.6 (tainted)\n"),
        "{list}"
    );
}

#[test]
fn target_limits_the_plan_to_a_resource_and_its_dependencies() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let text = plan(&sb, &file, &["--target", "kubernetes.master.10.0.0.3"]);
    let addresses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  # "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert!(addresses.contains(&"kubernetes.init"));
    assert!(addresses.contains(&"kubernetes.master.10.0.0.3"));
    assert!(
        !addresses
            .iter()
            .any(|a| a.contains("10.0.0.5") || a.starts_with("app.")),
        "{addresses:?}"
    );
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn json_is_valid_and_saved_plans_show_the_same_plan() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let json_text = plan(&sb, &file, &["--json"]);
    let value: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("state-schema/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!json_text.contains("hunter2"));

    let saved = sb.path("plan.bin");
    let human = plan(&sb, &file, &["--out", saved.to_str().unwrap()]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&saved).unwrap().contains("hunter2"));
    let shown = stdout_of(sb.sealer().arg("show").arg(&saved).env("NO_COLOR", "1"));
    assert_eq!(shown, human);
    let shown_json = stdout_of(sb.sealer().args(["show", "--json"]).arg(&saved));
    assert_eq!(shown_json, json_text);
    let md = stdout_of(
        sb.sealer()
            .args(["show", "--format", "markdown"])
            .arg(&saved),
    );
    assert!(
        md.starts_with("### sealer plan for cluster `prod` (new cluster): Plan: "),
        "{md}"
    );
}

#[test]
fn a_plan_with_errors_still_prints_json() {
    let sb = with_image();
    let mut spec = Spec::three_by_three();
    spec.extra = "  appNames: [nope]\n";
    let file = write(&sb, &spec);
    let out = sb
        .sealer()
        .args(["plan", "--json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = value["errors"].as_array().unwrap();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown app nope"),
        "{value}"
    );
    assert_eq!(value["cluster"], "prod");
    assert_eq!(errors[0]["file"], file.display().to_string());
    assert!(errors[0]["line"].as_u64().unwrap() > 1, "{value}");
    assert_fits_schema(&value);
}

/// Fails unless `value` is valid against `state-schema/plan.schema.json`.
fn assert_fits_schema(value: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("state-schema/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{value:#}");
}

/// Every plan JSON sealer prints, made, targeted, replacing, destroying, saved and shown,
/// and failed (located, and before the cluster's name is known), fits the schema.
#[test]
fn every_plan_json_fits_the_schema() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let json_of = |args: &[&str]| -> serde_json::Value {
        let out = sb.sealer().args(args).output().unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let f = file.to_str().unwrap();
    let saved = sb.path("p.bin");
    plan(&sb, &file, &["--out", saved.to_str().unwrap()]);
    let targeted = json_of(&["plan", "--json", "-f", f, "--target", "kubernetes.init"]);
    assert_eq!(targeted["targets"], serde_json::json!(["kubernetes.init"]));
    for value in [
        json_of(&["plan", "--json", "-f", f]),
        targeted,
        json_of(&["plan", "--json", "-f", f, "--destroy"]),
        json_of(&["show", "--json", saved.to_str().unwrap()]),
        json_of(&["plan", "--json", "-f", "/nonexistent/Clusterfile"]),
    ] {
        assert_fits_schema(&value);
    }
    let missing = json_of(&["plan", "--json", "-f", "/nonexistent/Clusterfile"]);
    assert_eq!(missing["cluster"], serde_json::Value::Null);
    assert_eq!(missing["sealer_version"], env!("CARGO_PKG_VERSION"));
    apply_state(&sb, &Spec::three_by_three());
    let replaced = json_of(&["plan", "--json", "-f", f, "--replace", "node_meta.10.0.0.5"]);
    assert_eq!(
        replaced["replace"],
        serde_json::json!(["node_meta.10.0.0.5"])
    );
    assert_fits_schema(&replaced);
}

#[test]
fn graph_prints_dot() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let dot = stdout_of(sb.sealer().args(["graph", "-f"]).arg(&file));
    assert!(dot.starts_with("digraph \"prod\" {"));
    assert!(dot.contains("\"kubernetes.master.10.0.0.3\" -> \"kubernetes.master.10.0.0.4\";"));
    assert!(dot.contains("\"app.calico\" -> \"app.dashboard\";"));
}

#[test]
fn markdown_of_a_two_thousand_host_plan_fits_one_comment() {
    let sb = with_image();
    let spec = Spec {
        masters: vec!["10.0.0.2"],
        workers: (0..2000)
            .map(|i| format!("10.1.{}.{}", i / 250, i % 250 + 1))
            .collect(),
        extra: "",
    };
    let md = plan(&sb, &write(&sb, &spec), &["--format", "markdown"]);
    assert!(md.len() <= 65_000, "{}", md.len());
    assert!(md.contains("more changes not shown"));
    insta::assert_snapshot!(redact(&md));
}

/// Plans never connect: a plan of a cluster on real SSH hosts, run from outside their
/// network, succeeds and no host sees a login.
#[test]
fn a_plan_opens_no_connection() {
    let bed = crate::support::testbed::TestBed::start(2);
    let sb = with_image();
    let key = bed.client_key_path();
    let text = format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: bed\nspec:\n  image: {IMAGE}\n  ssh:\n    pk: {}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n    - ips: [{}]\n      roles: [node]\n",
        key.display(),
        bed.host(0).ip(),
        bed.host(1).ip()
    );
    let file = sb.path("Clusterfile");
    std::fs::write(&file, text).unwrap();
    let out = plan(&sb, &file, &[]);
    assert!(out.contains(&format!("# host.{} will be created", bed.host(0).ip())));
    for i in 0..2 {
        assert_eq!(bed.client_logins(i), 0, "host {i} saw a login");
    }
}

/// Plugins shipped in an image's plugins/ take part in the plan; a bad one is a located error.
#[test]
fn image_plugins_are_planned_at_their_phase() {
    let sb = with_image();
    let plugin = "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: from-image}\nspec:\n  type: SHELL\n  action: post-install\n  data: echo hi\n";
    let ctx = sb.write_tree(
        "child",
        &[
            (
                "Kubefile",
                &format!("FROM {IMAGE}\nCOPY plugins/ plugins/\n"),
            ),
            ("plugins/p.yaml", plugin),
        ],
    );
    stdout_of(
        sb.sealer()
            .args(["build", "--platform", "linux/amd64", "-t", "child:v1"])
            .arg(&ctx),
    );
    let text = Spec::three_by_three().text().replace(IMAGE, "child:v1");
    let file = sb.path("Clusterfile");
    std::fs::write(&file, text).unwrap();
    let out = plan(&sb, &file, &[]);
    assert!(
        out.contains("  # plugin.from-image.post-install will be created"),
        "{out}"
    );

    let bad = sb.write_tree(
        "bad",
        &[
            (
                "Kubefile",
                &format!("FROM {IMAGE}\nCOPY plugins/ plugins/\n"),
            ),
            (
                "plugins/p.yaml",
                &plugin.replace("post-install", "post-lunch"),
            ),
        ],
    );
    stdout_of(
        sb.sealer()
            .args(["build", "--platform", "linux/amd64", "-t", "child:v1"])
            .arg(&bad),
    );
    let err = failure_of(sb.sealer().args(["plan", "-f"]).arg(&file));
    assert!(
        err.starts_with("child:v1:plugins/p.yaml:6:11: error:"),
        "{err}"
    );
}

/// A saved plan made against another state of the cluster (another lineage) is refused
/// before anything runs.
#[test]
fn a_saved_plan_from_another_state_is_refused() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let mut spec = Spec::three_by_three();
    spec.workers.push("10.0.0.8".into());
    let file = write(&sb, &spec);
    let saved = sb.path("scale.bin");
    plan(&sb, &file, &["--out", saved.to_str().unwrap()]);
    // The state is recreated (a restored backup of another cluster, a fresh state file...).
    std::fs::remove_file(sb.home().join("state.db")).unwrap();
    let _ = std::fs::remove_file(sb.home().join("state.db-wal"));
    let _ = std::fs::remove_file(sb.home().join("state.db-shm"));
    apply_state(&sb, &Spec::three_by_three());
    write(&sb, &spec);
    let out = sb.sealer().arg("apply").arg(&saved).output().unwrap();
    assert_eq!(out.status.code(), Some(crate::support::EXIT_STALE_PLAN));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("saved plan is for another state: its lineage is "),
        "{err}"
    );
}

/// A state file that cannot be read is an error for plan and apply, never "no state", and it
/// is left exactly as it was.
#[test]
fn a_corrupt_state_file_is_an_error_and_is_not_touched() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let state = sb.home().join("state.db");
    let garbage = b"SQLite format 3\0this is not a database any more".repeat(40);
    std::fs::write(&state, &garbage).unwrap();
    for args in [
        vec!["plan", "-f"],
        vec!["apply", "--auto-approve", "-f"],
        vec!["state", "list", "--state"],
    ] {
        let target = if args[0] == "state" {
            state.clone()
        } else {
            file.clone()
        };
        let err = failure_of(sb.sealer().args(&args).arg(&target));
        assert!(
            err.contains(&state.display().to_string()),
            "{args:?}: {err}"
        );
        assert!(!err.contains("has no state yet"), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&state).unwrap(),
            garbage,
            "{args:?} changed the file"
        );
    }
}

/// Everything a reviewer or a machine reads of one plan, run from `cwd` with `home` as HOME.
fn plan_outputs(sb: &Sandbox, cwd: &Path, home: &Path, file: &Path) -> Vec<(String, Vec<u8>)> {
    let run = |args: &[&str]| {
        let out = sb
            .sealer()
            .current_dir(cwd)
            .env("HOME", home)
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} from {}: {}",
            cwd.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let file = file.to_str().unwrap();
    let saved = home.join("plan.bin");
    let saved = saved.to_str().unwrap();
    vec![
        ("plan".into(), run(&["plan", "-f", file])),
        ("plan --json".into(), run(&["plan", "--json", "-f", file])),
        (
            "plan --out".into(),
            run(&["plan", "-f", file, "--out", saved]),
        ),
        ("saved plan".into(), std::fs::read(saved).unwrap()),
        ("show --json".into(), run(&["show", "--json", saved])),
        ("graph".into(), run(&["graph", "-f", file])),
    ]
}

/// A plan depends on the Clusterfile, the images and the state only: not on the directory
/// sealer runs in nor on HOME. Relative `sandbox` and `pk` are anchored at the Clusterfile's
/// directory; `~` stays as written until apply.
#[test]
fn a_plan_is_the_same_from_any_directory_and_home() {
    let sb = with_image();
    let cf_dir = sb.write_tree(
        "project",
        &[
            (
                "Clusterfile",
                &format!(
                    "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: pure\nspec:\n  image: {IMAGE}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n      ssh: {{transport: local, sandbox: ./state/../sandbox}}\n    - ips: [10.0.0.3]\n      roles: [node]\n      ssh: {{pk: keys/id_ed25519}}\n    - ips: [10.0.0.4]\n      roles: [node]\n      ssh: {{pk: ~/.ssh/id_ed25519}}\n"
                ),
            ),
            ("keys/id_ed25519", "key\n"),
        ],
    );
    // Two operators' homes, each with the `~` key validation looks for.
    let home_a = sb.write_tree("home-a", &[(".ssh/id_ed25519", "key a\n")]);
    let home_b = sb.write_tree("home-b", &[(".ssh/id_ed25519", "key b\n")]);
    let elsewhere = sb.write_tree("elsewhere/deeper", &[]);

    // From the Clusterfile's directory by its relative name, and from elsewhere by its
    // absolute path.
    let a = plan_outputs(&sb, &cf_dir, &home_a, Path::new("Clusterfile"));
    let b = plan_outputs(&sb, &elsewhere, &home_b, &cf_dir.join("Clusterfile"));
    for ((what, a), (_, b)) in a.iter().zip(&b) {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "{what} differs"
        );
    }
    let json = String::from_utf8_lossy(&a[1].1);
    let sandbox = cf_dir.join("sandbox");
    let key = cf_dir.join("keys/id_ed25519");
    for anchored in [sandbox.to_str().unwrap(), key.to_str().unwrap()] {
        assert!(
            json.contains(&format!("\"{anchored}\"")),
            "{anchored}: {json}"
        );
    }
    assert!(json.contains("\"~/.ssh/id_ed25519\""), "{json}");
    assert!(
        !json.contains("home-a") && !json.contains("elsewhere"),
        "{json}"
    );

    // Applied from one place, the cluster matches from the other.
    record_as_applied(&sb, &home_a.join("plan.bin"));
    let after = plan_outputs(&sb, &elsewhere, &home_b, &cf_dir.join("Clusterfile"));
    assert_eq!(
        String::from_utf8_lossy(&after[0].1),
        "No changes. Cluster \"pure\" matches the configuration.\n"
    );
}

/// Validating and planning need no secret: a private key that is not on this machine (the
/// PR job of a CI workflow) is fine until apply, which is refused at the `pk` value before
/// anything runs or is recorded.
#[test]
fn plan_needs_no_private_key_and_apply_names_the_missing_one() {
    let sb = with_image();
    let mut spec = Spec::three_by_three();
    spec.extra = "";
    let text = spec.text().replace(
        "    passwd: hunter2-secret\n",
        "    pk: ~/.ssh/id_missing\n",
    );
    let file = sb.path("Clusterfile");
    std::fs::write(&file, text).unwrap();
    stdout_of(sb.sealer().arg("validate").arg("-f").arg(&file));
    let shown = plan(&sb, &file, &[]);
    assert!(shown.contains("Plan: "), "{shown}");
    let out = sb
        .sealer()
        .args(["apply", "--auto-approve", "-f"])
        .arg(&file)
        .env("HOME", sb.path(""))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let missing = sb.path(".ssh/id_missing");
    let headline = format!(
        "{}:9:9: error: private key `~/.ssh/id_missing` ({}): No such file or directory\n",
        file.display(),
        missing.display()
    );
    assert!(err.contains(&headline), "{err}");
    let listed = sb.sealer().args(["state", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("prod"),
        "a refused apply recorded the cluster"
    );
}

/// An env key and a Config document change: the reasons name them, the Config's text shows
/// as a diff, and a secret in it never shows (not in the plan, not in its JSON).
#[test]
fn an_env_and_config_change_name_their_cause_and_diff_without_secrets() {
    let sb = with_image();
    let config = "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: db}\nspec:\n  path: etc/db.yaml\n  data: |\n    user: admin\n    password: hunter2-secret\n    pool: 5\n";
    let mut spec = Spec::three_by_three();
    spec.extra = Box::leak(format!("  env: [Greeting=hello]\n{config}").into_boxed_str());
    apply_state(&sb, &spec);
    let edited = config.replace("pool: 5", "pool: 10");
    spec.extra =
        Box::leak(format!("  env: [Greeting=hello, Farewell=bye]\n{edited}").into_boxed_str());
    let file = write(&sb, &spec);
    let text = plan(&sb, &file, &[]);
    assert!(
        text.contains("# rootfs.10.0.0.2 will be updated in place (content changed: Config db changed, env Farewell added)"),
        "{text}"
    );
    assert!(
        text.contains("# app.calico will be updated in place (env: Farewell added)"),
        "{text}"
    );
    assert!(
        text.contains("- pool: 5\n") && text.contains("+ pool: 10\n"),
        "{text}"
    );
    assert!(text.contains("password: (sensitive value)"), "{text}");
    let json = plan(&sb, &file, &["--json"]);
    for shown in [&text, &json] {
        assert!(!shown.contains("hunter2"), "a secret leaked:\n{shown}");
    }
    insta::assert_snapshot!(redact(&text));
}

/// The pull-request comment of a targeted plan that replaces a worker: provenance, the
/// partial-plan warning, the replacement asked for, the summary by type, the disruptive
/// changes, destroys and replacements first.
#[test]
fn markdown_of_a_targeted_replacement() {
    let sb = with_image();
    apply_state(&sb, &Spec::three_by_three());
    let file = write(&sb, &Spec::three_by_three());
    let md = plan(
        &sb,
        &file,
        &[
            "--format",
            "markdown",
            "--target",
            "kubernetes.worker.10.0.0.5",
            "--replace",
            "kubernetes.worker.10.0.0.5",
        ],
    );
    assert!(md.contains("**Partial plan**"), "{md}");
    insta::assert_snapshot!(redact(&md));
}

#[test]
fn a_new_app_image_shows_how_each_app_file_changes_with_secrets_masked() {
    let sb = with_image();
    let build = |web: &str, token: &str| {
        let secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: web}}\ndata:\n  token: {token}\n"
        );
        let ctx = sb.write_tree(
            "web",
            &[
                (
                    "Kubefile",
                    "FROM scratch\nAPP web local://manifests\nLAUNCH [\"web\"]\n",
                ),
                ("manifests/web.yaml", web),
                ("manifests/secret.yaml", &secret),
            ],
        );
        stdout_of(
            sb.sealer()
                .args(["build", "--type", "app-installer", "-t", "web:v1"])
                .arg(&ctx),
        );
    };
    let web = "kind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - image: sea.hub:5000/web:1.0\n";
    build(web, "b2xkLXRva2Vu");
    let mut spec = Spec::three_by_three();
    spec.extra = "---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: apps}\nspec:\n  images: [web:v1]\n";
    apply_state(&sb, &spec);
    build(&web.replace("web:1.0", "web:1.1"), "bmV3LXRva2Vu");
    let text = plan(&sb, &write(&sb, &spec), &[]);
    assert!(
        text.contains("# app.web will be updated in place (image web:v1@sha256:"),
        "{text}"
    );
    assert!(
        text.contains("-         - image: sea.hub:5000/web:1.0\n")
            && text.contains("+         - image: sea.hub:5000/web:1.1\n"),
        "the manifest's change is a diff: {text}"
    );
    for token in ["b2xkLXRva2Vu", "bmV3LXRva2Vu"] {
        assert!(!text.contains(token), "a Secret's data is shown: {text}");
    }
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn validate_json_counts_hosts_and_resources() {
    let sb = with_image();
    let file = write(&sb, &Spec::three_by_three());
    let out = sb
        .sealer()
        .args(["validate", "--json", "-f"])
        .arg(&file)
        .assert()
        .success();
    let value: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(value["cluster"], "prod");
    assert_eq!(value["hosts"], 6);
    assert!(value["resources"].as_u64().unwrap() > 6, "{value}");
    assert_eq!(value["errors"], serde_json::json!([]));
}
