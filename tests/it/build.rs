//! `sealer build`: examples, reproducibility, sources, inheritance and bad input.

use crate::support::http::HttpServer;
use crate::support::{Sandbox, failure_of, repo_root, stdout_of};
use serde_json::Value;

fn inspect(sb: &Sandbox, name: &str) -> Value {
    let text = stdout_of(sb.sealer().args(["inspect", name]));
    serde_json::from_str(&text).expect("inspect prints JSON")
}

fn app<'a>(image: &'a Value, name: &str) -> &'a Value {
    image["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name} in {image:#}"))
}

fn build(sb: &Sandbox, tag: &str, context: &std::path::Path) -> String {
    stdout_of(sb.sealer().args(["build", "-t", tag]).arg(context))
        .trim()
        .to_string()
}

fn image_names(sb: &Sandbox) -> String {
    stdout_of(sb.sealer().args(["images", "-q"]))
}

#[test]
fn every_example_image_builds() {
    let sb = Sandbox::new();
    let examples = repo_root().join("examples/images");
    let mut built = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Kubefile").is_file() {
            continue;
        }
        let name = format!("example-{}:v1", dir.file_name().unwrap().to_string_lossy());
        let digest = build(&sb, &name, &dir);
        assert!(digest.starts_with("sha256:"), "{digest}");
        let shown = stdout_of(sb.sealer().arg("images"));
        assert!(
            shown.contains(&digest["sha256:".len()..][..12]),
            "the ID build printed is the one `sealer images` shows: {shown}"
        );
        let image = inspect(&sb, &name);
        assert_eq!(image["id"], digest.as_str(), "build prints the image ID");
        built += 1;
    }
    assert!(
        built >= 4,
        "expected at least 4 example images, built {built}"
    );

    let kube = inspect(&sb, "example-kube-app:v1");
    assert_eq!(app(&kube, "nginx")["type"], "kube");
    assert_eq!(
        app(&kube, "nginx")["launchCmd"],
        "kubectl apply -f application/apps/nginx/00-namespace.yaml && kubectl apply -f application/apps/nginx/10-deployment.yaml"
    );
    assert_eq!(
        kube["labels"]["app.alpha.sealer.io/supported-kube-version"],
        ">=1.22, <1.31"
    );

    let helm = inspect(&sb, "example-helm-app:v1");
    assert_eq!(app(&helm, "redis")["type"], "helm");
    assert_eq!(
        app(&helm, "redis")["launchCmd"],
        "helm install redis application/apps/redis/"
    );

    let shell = inspect(&sb, "example-shell-app:v1");
    assert_eq!(
        app(&shell, "backup")["launchCmd"],
        "cd application/apps/backup/ && bash install.sh --schedule '0 3 * * *'"
    );
    assert_eq!(app(&shell, "backup")["env"]["RETENTION_DAYS"], "14");
    assert_eq!(
        shell["launch"]["app_names"],
        serde_json::json!(["backup-rbac", "backup"])
    );
    assert_eq!(shell["env"]["BACKUP_BUCKET"], "s3://backups");
    // Our keys are camelCase; `launch` keeps the keys of Sealer's metadata as Go Sealer's
    // inspect prints them (`app_names` next to `appConfigs`), so its readers read ours.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&shell),
        [
            "name",
            "id",
            "digest",
            "type",
            "labels",
            "applications",
            "launch",
            "env",
            "containerImages",
            "platform",
            "layers"
        ]
    );
    assert_eq!(keys(&shell["launch"]), ["cmds", "app_names", "appConfigs"]);
    assert_eq!(
        keys(app(&shell, "backup")),
        ["name", "files", "version", "cmds", "env", "launchCmd"]
    );

    let cluster = inspect(&sb, "example-cluster-image:v1");
    assert_eq!(cluster["type"], "kube-installer");
    assert_eq!(
        cluster["labels"]["cluster.alpha.sealer.io/kube-cni"],
        "[\"calico\"]"
    );
    assert_eq!(
        cluster["labels"]["cluster.alpha.sealer.io/cluster-runtime-version"],
        "v1.22.15"
    );
}

#[test]
fn builds_are_reproducible() {
    let a = Sandbox::new();
    let b = Sandbox::new();
    let ctx = repo_root().join("examples/images/shell-app");
    let first = build(&a, "x:1", &ctx);
    let second = build(&a, "x:2", &ctx);
    let elsewhere = build(&b, "y:1", &ctx);
    assert_eq!(first, second);
    assert_eq!(first, elsewhere);
    let stamped = stdout_of(
        a.sealer()
            .args(["build", "--timestamp", "-t", "x:3"])
            .arg(&ctx),
    );
    assert_ne!(stamped.trim(), first, "--timestamp records the build time");
}

#[test]
fn http_sources_are_downloaded() {
    let server = HttpServer::start(vec![
        ("/files/setup.sh", 200, b"echo installed\n".to_vec()),
        ("/missing.sh", 404, b"nope".to_vec()),
    ]);
    let sb = Sandbox::new();
    let kubefile = format!(
        "FROM scratch\nAPP web {}\nLAUNCH [\"web\"]\n",
        server.url("/files/setup.sh")
    );
    let ctx = sb.write_tree("ctx", &[("Kubefile", &kubefile)]);
    build(&sb, "web:v1", &ctx);
    let image = inspect(&sb, "web:v1");
    assert_eq!(app(&image, "web")["type"], "shell");
    assert_eq!(app(&image, "web")["files"], serde_json::json!(["setup.sh"]));

    let kubefile = format!("FROM scratch\nAPP web {}\n", server.url("/missing.sh"));
    let ctx = sb.write_tree("ctx404", &[("Kubefile", &kubefile)]);
    let err = failure_of(sb.sealer().args(["build", "-t", "bad:v1"]).arg(&ctx));
    assert!(
        err.contains("Kubefile:2:9: error: app web: cannot download"),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
    assert!(!image_names(&sb).contains("bad:v1"));
}

#[test]
fn unreachable_http_source_is_a_located_error() {
    let sb = Sandbox::new();
    // Port 9 (discard) on loopback: nothing listens there.
    let ctx = sb.write_tree(
        "ctx",
        &[(
            "Kubefile",
            "FROM scratch\nAPP web http://127.0.0.1:9/a.sh\n",
        )],
    );
    let err = failure_of(sb.sealer().args(["build", "-t", "bad:v1"]).arg(&ctx));
    let first = err.lines().next().unwrap();
    assert!(first.ends_with("Kubefile:2:9: error: app web: cannot download http://127.0.0.1:9/a.sh: error sending request for url (http://127.0.0.1:9/a.sh): client error (Connect): tcp connect error: Connection refused") || first.contains("Connection refused"), "{err}");
    assert!(first.contains("Kubefile:2:9: error:"), "{err}");
}

/// Each bad Kubefile gives a located one-line error, exit 1, and no image.
#[test]
fn bad_input_is_a_located_error_and_writes_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            "FROM scratch\nFOO bar\n",
            "Kubefile:2:1: error: unknown instruction FOO",
        ),
        (
            "FROM scratch\nRUN make\n",
            "Kubefile:2:1: error: RUN is not supported: prepare files in the build context and COPY them",
        ),
        (
            "FROM scratch\nAPP a local://a.yaml\nLAUNCH [\"a\", \"b\"]\n",
            "Kubefile:3:15: error: LAUNCH names unknown app b",
        ),
        (
            "FROM scratch\nKUBEVERSION\n",
            "Kubefile:2:1: error: KUBEVERSION needs a constraint",
        ),
        ("FROM scratch\nKUBEVERSION 1.22 -1.24\n", "Kubefile:2:"),
        (
            "FROM scratch\nAPP a local://../outside.yaml\n",
            "Kubefile:2:7: error: app a: ../outside.yaml leaves the build context (..)",
        ),
        (
            "FROM scratch\nCOPY /etc/passwd etc/\n",
            "Kubefile:2:6: error: COPY: /etc/passwd is an absolute path: sources are relative to the build context",
        ),
        (
            "FROM scratch\nAPP a local://link.yaml\n",
            "Kubefile:2:7: error: app a: link.yaml leaves the build context",
        ),
        (
            "FROM scratch\nAPP a local://nope.yaml\n",
            "Kubefile:2:7: error: app a: nope.yaml does not exist in the build context",
        ),
        (
            "FROM scratch\nAPP a ftp://x/a.yaml\n",
            "Kubefile:2:7: error: app a: unsupported source \"ftp://x/a.yaml\"",
        ),
        (
            "FROM scratch\nAPP a local://a.yaml local://b.txt\n",
            "Kubefile:2:1: error: app a: cannot detect its type (files: a.yaml, b.txt): add APPCMDS a [...]",
        ),
        (
            "FROM scratch\nAPPCMDS z [\"x\"]\n",
            "Kubefile:2:1: error: APPCMDS for unknown app z",
        ),
        (
            "# a base that cannot be pulled is located at its FROM\n\nFROM   not-in-store:v1\n",
            "Kubefile:3:8: error: base image not-in-store:v1 is not in the local store and cannot be pulled:",
        ),
        (
            "FROM scratch\nARG NAME=../x\nAPP ${NAME} local://a.yaml\n",
            "Kubefile:3:5: error: invalid app name \"../x\"",
        ),
    ];
    let sb = Sandbox::new();
    let outside = sb.write_tree("outside", &[("secret.yaml", "x: 1")]);
    for (i, (kubefile, want)) in cases.iter().enumerate() {
        let ctx = sb.write_tree(
            &format!("ctx{i}"),
            &[("Kubefile", kubefile), ("a.yaml", "a: 1"), ("b.txt", "b")],
        );
        std::os::unix::fs::symlink(outside.join("secret.yaml"), ctx.join("link.yaml")).unwrap();
        std::fs::write(sb.path("outside.yaml"), "x: 1").unwrap();
        let err = failure_of(sb.sealer().args(["build", "-t", "bad:v1"]).arg(&ctx));
        let first = err.lines().next().unwrap_or_default();
        let shown = first.replace(&format!("{}/", ctx.display()), "");
        assert!(
            shown.starts_with(want),
            "case {i}: want {want:?}\n got {err}"
        );
        assert!(!err.contains("panicked"), "case {i}: {err}");
    }
    assert_eq!(image_names(&sb), "", "no half-written image is visible");
}

#[test]
fn from_a_local_sealer_image_inherits_apps_labels_and_appcmds() {
    let sb = Sandbox::new();
    let base = sb.write_tree(
        "base",
        &[
            (
                "Kubefile",
                "FROM scratch\nKUBEVERSION >=1.22\nLABEL team=infra\nENV A=1\nAPP redis local://redis.yaml\nAPP tool local://tool/\nAPPCMDS tool [\"bash run.sh\"]\nLAUNCH [\"redis\"]\n",
            ),
            ("redis.yaml", "kind: Redis"),
            ("tool/run.sh", "echo run"),
            ("tool/conf.txt", "c"),
        ],
    );
    build(&sb, "base:v1", &base);
    let child = sb.write_tree(
        "child",
        &[
            (
                "Kubefile",
                "FROM base:v1\nENV B=2\nAPP redis local://redis-v2.yaml\nAPP web local://web.yaml\nLAUNCH [\"tool\", \"web\"]\n",
            ),
            ("redis-v2.yaml", "kind: Redis2"),
            ("web.yaml", "kind: Web"),
        ],
    );
    build(&sb, "child:v1", &child);
    let image = inspect(&sb, "child:v1");
    assert_eq!(image["labels"]["team"], "infra");
    assert!(
        image["labels"]
            .get("app.alpha.sealer.io/supported-kube-version")
            .is_none(),
        "KUBEVERSION is not inherited: {image:#}"
    );
    assert_eq!(
        app(&image, "tool")["launchCmd"],
        "cd application/apps/tool/ && bash run.sh"
    );
    assert_eq!(
        app(&image, "redis")["files"],
        serde_json::json!(["redis-v2.yaml"])
    );
    assert_eq!(app(&image, "web")["type"], "kube");
    assert_eq!(
        image["launch"]["app_names"],
        serde_json::json!(["tool", "web"])
    );
    assert_eq!(image["env"], serde_json::json!({"A": "1", "B": "2"}));
    let base_layers = inspect(&sb, "base:v1")["layers"].as_array().unwrap().len();
    assert_eq!(image["layers"].as_array().unwrap().len(), base_layers + 1);

    // LAUNCH is not inherited: a child without LAUNCH launches nothing by itself.
    let quiet = sb.write_tree("quiet", &[("Kubefile", "FROM base:v1\nLABEL x=y\n")]);
    build(&sb, "quiet:v1", &quiet);
    assert_eq!(
        inspect(&sb, "quiet:v1")["launch"]["app_names"],
        serde_json::json!([])
    );
}

#[test]
fn a_base_that_is_not_a_sealer_image_is_refused() {
    let sb = Sandbox::new();
    let layout = sb.path("plain");
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("tests/fixtures/mk-plain-oci.sh"))
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_of(
        sb.sealer()
            .args(["load", "-i"])
            .arg(&layout)
            .args(["--name", "plain:v1"]),
    );
    let ctx = sb.write_tree("ctx", &[("Kubefile", "FROM plain:v1\n")]);
    let err = failure_of(sb.sealer().args(["build", "-t", "x:v1"]).arg(&ctx));
    assert!(
        err.contains("Kubefile:1:6: error: plain:v1 is not a Sealer Image"),
        "{err}"
    );
}

/// ARG values are substituted in an APP's name (kubefile.md), and in LAUNCH's, with
/// --build-arg winning over the default.
#[test]
fn an_app_name_takes_arg_values() {
    let sb = Sandbox::new();
    let ctx = sb.write_tree(
        "ctx",
        &[
            (
                "Kubefile",
                "FROM scratch\nARG APPNAME=web\nAPP ${APPNAME} local://app.yaml\nAPPCMDS web [\"kubectl apply -f app.yaml\"]\nLAUNCH [\"$APPNAME\"]\n",
            ),
            ("app.yaml", "kind: ConfigMap\n"),
        ],
    );
    stdout_of(sb.sealer().args(["build", "-t", "t:web"]).arg(&ctx));
    let image = inspect(&sb, "t:web");
    assert_eq!(image["applications"][0]["name"], "web");
    assert_eq!(
        image["applications"][0]["files"],
        serde_json::json!(["app.yaml"])
    );
    assert_eq!(image["launch"]["app_names"], serde_json::json!(["web"]));

    let ctx = sb.write_tree(
        "ctx2",
        &[
            (
                "Kubefile",
                "FROM scratch\nARG APPNAME=web\nAPP ${APPNAME} local://app.yaml\n",
            ),
            ("app.yaml", "kind: ConfigMap\n"),
        ],
    );
    stdout_of(
        sb.sealer()
            .args(["build", "-t", "t:api", "--build-arg", "APPNAME=api"])
            .arg(&ctx),
    );
    assert_eq!(inspect(&sb, "t:api")["applications"][0]["name"], "api");
}

#[test]
fn build_args_arch_platform_labels_and_type() {
    let sb = Sandbox::new();
    let ctx = sb.write_tree(
        "ctx",
        &[
            (
                "Kubefile",
                "ARG VERSION=v1\nFROM scratch\nARG VERSION\nARG CHANNEL=stable\nLABEL version=$VERSION channel=${CHANNEL} keep='$HOME'\nCOPY bin/${ARCH}/tool bin/\nCMDS [\"echo $VERSION\"]\n",
            ),
            ("bin/arm64/tool", "arm"),
            ("bin/amd64/tool", "x86"),
        ],
    );
    stdout_of(
        sb.sealer()
            .args([
                "build",
                "-t",
                "t:arm",
                "--platform",
                "linux/arm64",
                "--build-arg",
                "CHANNEL=beta",
            ])
            .args(["--label", "extra=1", "--type", "app-installer"])
            .arg(&ctx),
    );
    let image = inspect(&sb, "t:arm");
    assert_eq!(image["platform"], "linux/arm64");
    assert_eq!(image["type"], "app-installer");
    assert_eq!(image["labels"]["version"], "v1");
    assert_eq!(image["labels"]["channel"], "beta");
    assert_eq!(image["labels"]["keep"], "$HOME");
    assert_eq!(image["labels"]["extra"], "1");
    // Deploy-time commands are not substituted.
    assert_eq!(
        image["launch"]["cmds"],
        serde_json::json!(["echo $VERSION"])
    );

    let out = sb
        .sealer()
        .args(["build", "-t", "t:x", "--build-arg", "UNUSED=1"])
        .arg(&ctx)
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("warning: build argument UNUSED was not used"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_1() {
    let sb = Sandbox::new();
    sb.sealer().args(["build"]).assert().code(1);
    sb.sealer().args(["no-such-command"]).assert().code(1);
    sb.sealer().args(["--help"]).assert().code(0);
}
