//! The plan is what runs, on the quickstart's cluster (one sandboxed local host): an edited
//! plan file never runs, a stale plan with no changes is refused like any other, and a
//! replacement of `kubernetes.init` shows (and applies) everything it takes with it.

use crate::support::{EXIT_STALE_PLAN, Sandbox, refused, repo_root, stdout_of, succeeded};
use std::collections::BTreeMap;
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
    let kubeadm_yaml = q.on_host("/etc/kubernetes/kubeadm.yaml");
    let given = std::fs::read(&kubeadm_yaml).unwrap();
    std::fs::write(&kubeadm_yaml, "edited: true\n").unwrap();
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
    // What a host held is no input a saved plan can be made again from.
    let err = q.refused(&["plan", "-f", q.file(), "--refresh", "--out", "x.bin"]);
    assert!(err.contains("cannot be used with"), "{err}");

    record_and_repair_drift(&q, &kubeadm_yaml, &given, &upper, &tampered);
}

/// After the drift above: `apply --refresh-only` records it without touching the host;
/// the offline plan then repairs what a step can repair and refuses to re-initialize the
/// control plane behind the operator's back; once that is fixed by hand and recorded, apply
/// repairs the rest, and the next refresh finds nothing.
fn record_and_repair_drift(
    q: &Quickstart,
    kubeadm_yaml: &Path,
    given: &[u8],
    upper: &Path,
    tampered: &BTreeMap<PathBuf, Vec<u8>>,
) {
    let args = ["apply", "-f", q.file(), "--refresh-only"];
    let err = q.refused(&args);
    assert!(err.contains("without confirmation"), "{err}");
    let out = q.sealer(&["apply", "-f", q.file(), "--refresh-only", "--auto-approve"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    for expected in [
        "The state will record:\n\n  app.dashboard drifted\n  app.metrics gone\n  kubernetes.init drifted\n",
        "Refresh: 5 to record drifted, 0 to clear; no host will change.",
        "Refresh recorded (state serial",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    assert!(
        tree(upper) == *tampered,
        "a refresh-only apply wrote on the host"
    );
    let listed = q.ok(&["state", "list", "--cluster", "quickstart"]);
    assert!(
        listed.contains("app.metrics (gone, recorded by a refresh)\n"),
        "{listed}"
    );

    let err = q.refused(&["plan", "-f", q.file()]);
    assert!(
        err.contains("kubernetes.init: drifted on its host (recorded by a refresh at state serial"),
        "{err}"
    );
    assert!(err.contains("pass `--replace kubernetes.init`"), "{err}");

    std::fs::write(kubeadm_yaml, given).unwrap();
    let out = q.sealer(&["apply", "-f", q.file(), "--refresh-only", "-y"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("kubernetes.init as recorded again (drift cleared)"),
        "{said}"
    );
    let out = q.sealer(&["plan", "-f", q.file(), "--detailed-exitcode"]);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{plan}");
    assert!(
        plan.contains(
            "# app.metrics will be updated in place (gone from its host (recorded by a refresh at state serial"
        ),
        "{plan}"
    );
    assert!(plan.contains("4 to change, 0 to destroy"), "{plan}");
    q.ok(&["apply", "-f", q.file(), "-y"]);
    let text = refresh(q, 0);
    assert!(text.contains("No drift"), "{text}");
    let listed = q.ok(&["state", "list", "--cluster", "quickstart"]);
    assert!(!listed.contains("recorded by a refresh"), "{listed}");
    let history = q.ok(&["state", "history", "--cluster", "quickstart"]);
    assert!(
        history.contains("drift recorded: app.dashboard, app.metrics, kubernetes.init"),
        "{history}"
    );
    assert!(
        history.contains("drift cleared: kubernetes.init"),
        "{history}"
    );
}

/// The quickstart's resources compiled by the library with digests keyed by `key`.
fn compiled(
    q: &Quickstart,
    key: &sealer::clusterfile::DigestKey,
) -> Vec<sealer::resource::Desired> {
    let home = q.sb.home();
    let settings = sealer::ops::Settings {
        state_path: home.join("state.db"),
        home,
        user_home: None,
        max_unpacked: sealer::limits::UNPACKED_DEFAULT,
        relay_min: sealer::limits::RELAY_MIN_DEFAULT,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pull = |reference: sealer::image::Reference, _| async move {
        Err(sealer::Error::msg(format!(
            "{reference} is not in the store"
        )))
    };
    runtime
        .block_on(sealer::ops::compile(&settings, &q.clusterfile, key, pull))
        .unwrap()
        .resources
}

/// Turns the state into what an older sealer wrote: every attribute as `legacy` has it
/// (plain SHA-256 digests), in resources and history, in a version-1 database. Returns the
/// plain digests it wrote.
fn downgrade(db: &Path, legacy: &[sealer::resource::Desired]) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut plain = Vec::new();
    for desired in legacy {
        let text: String = conn
            .query_row(
                "SELECT attributes FROM resources WHERE address = ?1",
                [&desired.address],
                |r| r.get(0),
            )
            .unwrap();
        let mut attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        for (key, old) in &desired.attributes {
            let Some(now) = attributes.get(key) else {
                continue;
            };
            let leaves = |v: &serde_json::Value| -> Vec<String> {
                match v {
                    serde_json::Value::String(s) => vec![s.clone()],
                    serde_json::Value::Object(m) => m
                        .values()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let current = leaves(now);
            plain.extend(
                leaves(old)
                    .into_iter()
                    .filter(|s| s.len() >= 12 && !current.contains(s)),
            );
            attributes.insert(key.clone(), old.clone());
        }
        let text = serde_json::to_string(&attributes).unwrap();
        conn.execute(
            "UPDATE resources SET attributes = ?1 WHERE address = ?2",
            [&text, &desired.address],
        )
        .unwrap();
        conn.execute(
            "UPDATE history SET attributes = ?1 WHERE address = ?2 AND attributes IS NOT NULL",
            [&text, &desired.address],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE resources DROP COLUMN drift;
         ALTER TABLE clusters DROP COLUMN digests_keyed; ALTER TABLE history DROP COLUMN command;
         DROP TABLE digest_key; PRAGMA user_version = 1;",
    )
    .unwrap();
    plain.sort();
    plain.dedup();
    plain
}

fn holds(path: &Path, needle: &str) -> bool {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path.to_path_buf(), wal].iter().any(|p| {
        std::fs::read(p)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn a_state_of_an_older_sealer_plans_no_change_and_apply_leaves_no_plain_digest() {
    let q = Quickstart::new();
    let password = "legacy-registry-pw-7f3c";
    q.write(&format!(
        "  env: [Greeting=hello]\n  registry:\n    localRegistry:\n      username: admin\n      password: {password}\n---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {{name: db}}\nspec:\n  path: etc/db.yaml\n  data: |\n    pool: 5\n"
    ));
    q.ok(&["apply", "-f", q.file(), "--auto-approve"]);
    let db = q.sb.home().join("state.db");
    let legacy = compiled(&q, &sealer::clusterfile::DigestKey::legacy());
    let plain = downgrade(&db, &legacy);
    let password_digest = sealer::clusterfile::Secret::new(password)
        .digest(&sealer::clusterfile::DigestKey::legacy());
    assert!(
        plain.contains(&password_digest),
        "the downgrade wrote the plain password digest: {plain:?}"
    );
    assert!(holds(&db, &password_digest));

    // Read through the key the migration made: the same cluster, no change, and no plain
    // digest in what the plan writes.
    let text = q.ok(&["plan", "-f", q.file(), "--out", "p.bin"]);
    assert!(text.contains("No changes."), "{text}");
    let json = q.ok(&["plan", "-f", q.file(), "--json"]);
    let saved = std::fs::read_to_string(q.sb.path("p.bin")).unwrap();
    for digest in &plain {
        assert!(!json.contains(digest), "{digest} in the plan JSON");
        assert!(!saved.contains(digest), "{digest} in the saved plan");
    }

    // Apply rewrites what it recorded, resources and history, and still changes nothing.
    let applied = q.ok(&["apply", "p.bin"]);
    assert!(!applied.contains("error"), "{applied}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    for digest in &plain {
        let rows: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM resources WHERE instr(attributes, ?1) > 0)
                  + (SELECT count(*) FROM history WHERE instr(attributes, ?1) > 0)",
                [digest],
                |r| r.get(0),
            )
            .unwrap();
        let which: Vec<String> = conn
            .prepare("SELECT address || ' ' || attributes FROM resources WHERE instr(attributes, ?1) > 0")
            .unwrap()
            .query_map([digest], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, 0, "{digest} is still in a row: {which:?}");
    }
    for digest in &plain {
        assert!(!holds(&db, digest), "{digest} is still in the state's file");
    }
    let keyed: i64 = conn
        .query_row("SELECT digests_keyed FROM clusters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(keyed, 1);
    drop(conn);
    let text = q.ok(&["plan", "-f", q.file()]);
    assert!(text.contains("No changes."), "{text}");
}

#[test]
fn the_same_password_has_another_digest_in_another_state() {
    let q = Quickstart::new();
    q.write("  registry:\n    localRegistry:\n      username: admin\n      password: same-pw\n");
    let digest = |state: &str| -> String {
        let json = q.ok(&["plan", "-f", q.file(), "--state", state, "--out", "x.bin"]);
        drop(json);
        let saved = std::fs::read_to_string(q.sb.path("x.bin")).unwrap();
        let at = saved
            .find("\"password\":\"hmac-sha256:")
            .expect("a keyed password digest");
        saved[at..at + 90].to_string()
    };
    let (a, b) = (digest("a.db"), digest("b.db"));
    assert_ne!(a, b, "two states key the same password differently");
    assert_eq!(
        a,
        digest("a.db"),
        "one state keys it the same way every time"
    );
}

#[test]
fn state_history_says_who_changed_what_and_state_rm_forgets_only_what_nothing_needs() {
    let q = Quickstart::new();
    q.ok(&["apply", "-f", q.file(), "--auto-approve"]);
    let history = q.ok(&["state", "history"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("SERIAL   TIME"), "{history}");
    assert!(
        lines[1].contains("apply") && lines[1].ends_with("cluster state created"),
        "{history}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" apply ")
            && l.contains("kubernetes.init")
            && l.ends_with("created")),
        "{history}"
    );

    // Refused as a whole: other resources depend on kubernetes.init.
    let err = q.refused(&["state", "rm", "kubernetes.init", "node_meta.127.0.0.1"]);
    assert!(
        err.contains("depend on what you remove; nothing was removed"),
        "{err}"
    );
    assert!(
        err.contains("hint: forget them too: sealer state rm"),
        "{err}"
    );
    let err = q.refused(&["state", "rm", "host.10.9.9.9"]);
    assert!(
        err.contains("no resource host.10.9.9.9 in the state"),
        "{err}"
    );
    let list = q.ok(&["state", "list"]);
    assert!(list.contains("node_meta.127.0.0.1\n"), "{list}");

    let out = q.sealer(&["state", "rm", "node_meta.127.0.0.1"]);
    let said = succeeded(&out, &["state", "rm"]);
    drop(said);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing on the hosts changed"), "{stderr}");
    assert!(!q.ok(&["state", "list"]).contains("node_meta.127.0.0.1"));
    let plan = q.ok(&["plan", "-f", q.file()]);
    assert!(
        plan.contains("# node_meta.127.0.0.1 will be created"),
        "{plan}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&q.ok(&["state", "history", "--json"])).unwrap();
    let last = json.as_array().unwrap().last().unwrap();
    assert_eq!(last["command"], "state rm");
    assert_eq!(last["operation"], "remove");
    assert_eq!(last["address"], "node_meta.127.0.0.1");
    assert_eq!(last["summary"], "removed");
}

#[test]
fn a_newcomers_slips_get_hints_and_the_words_fit() {
    let q = Quickstart::new();
    let err = q.refused(&["validate", "-f", "nope.yaml"]);
    assert!(
        err.contains("error: no Clusterfile at nope.yaml\nhint: pass the file with -f PATH"),
        "{err}"
    );
    let err = q.refused(&["apply", q.file()]);
    assert!(
        err.contains("hint: it looks like a Clusterfile: apply it with `sealer apply -f "),
        "{err}"
    );
    let out = q.sealer(&["apply", "-f", q.file(), "-y"]);
    succeeded(&out, &["apply", "-y"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\nApply complete: "), "{stderr}");
    assert!(stderr.trim_end().ends_with(" steps done."), "{stderr}");
    let out = q.sealer(&["destroy", "-f", q.file(), "--yes"]);
    succeeded(&out, &["destroy", "--yes"]);
    let list = q.ok(&["state", "list"]);
    assert!(
        list.starts_with("# cluster \"quickstart\" has no resources (state serial "),
        "{list}"
    );
}
