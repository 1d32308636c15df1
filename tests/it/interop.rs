//! Interoperability with the rest of the OCI world: skopeo moves what sealer saves, pushes
//! and loads without changing a byte; and an image Go Sealer 0.9.0 built loads and inspects.

use crate::registry::{Transcript, app, app_names, build_web, digest_of, images, inspect, sha256};
use crate::support::registry::{Registry, SKOPEO, require_tool};
use crate::support::{Sandbox, fixture};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs skopeo, failing the test with its stderr when it fails; returns stdout.
pub(crate) fn skopeo(args: &[&str]) -> Vec<u8> {
    require_tool(SKOPEO, "skopeo");
    let out = Command::new(SKOPEO)
        .args(args)
        // Keep the user's registry credentials out of it.
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SKOPEO}: {e}"));
    assert!(
        out.status.success(),
        "skopeo {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("JSON file")
}

/// The `org.opencontainers.image.ref.name` of a one-image layout.
fn layout_ref_name(dir: &Path) -> String {
    let index = read_json(&dir.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    manifests[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_else(|| panic!("no ref name in {index}"))
        .to_string()
}

/// Builds `web:v1`, saves it to a layout and copies that to `registry` as `x/y:v1` with
/// skopeo. Returns (sandbox, build digest, layout dir, remote name).
fn skopeo_push_saved_layout(registry: &Registry) -> (Sandbox, String, std::path::PathBuf, String) {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let layout = sb.path("layout");
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&layout));
    // `sealer save` names the image in index.json exactly as the store does; skopeo's
    // `oci:DIR:REF` addresses it by that name.
    let ref_name = layout_ref_name(&layout);
    assert_eq!(ref_name, "web:v1");
    let remote = registry.image("x/y:v1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{ref_name}", path_str(&layout)),
        &format!("docker://{remote}"),
    ]);
    (sb, digest, layout, remote)
}

#[test]
fn sealer_pulls_what_skopeo_copied_from_a_saved_layout() {
    let registry = Registry::anonymous();
    let (_sb, digest, _layout, remote) = skopeo_push_saved_layout(&registry);

    let fresh = Sandbox::new();
    let mut t = Transcript::default();
    assert_eq!(
        digest_of(&t.ok(fresh.sealer().args(["pull", &remote]))),
        digest
    );
    let image = inspect(&fresh, &remote);
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(app_names(&image), ["web"]);
    assert_eq!(
        app(&image, "web")["launchCmd"],
        "kubectl apply -f application/apps/web/web.yaml"
    );
}

#[test]
fn skopeo_sees_our_manifest_bytes_and_labels() {
    let registry = Registry::anonymous();
    let (sb, digest, layout, remote) = skopeo_push_saved_layout(&registry);
    let docker = format!("docker://{remote}");

    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &docker]);
    assert_eq!(
        sha256(&raw),
        digest,
        "skopeo must carry our manifest unchanged"
    );
    let hex = digest.trim_start_matches("sha256:");
    let ours = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(raw, ours, "byte-identical manifests");
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let local = inspect(&sb, "web:v1");
    let info: Value = serde_json::from_slice(&skopeo(&["inspect", "--tls-verify=false", &docker]))
        .expect("skopeo inspect prints JSON");
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!(info["Labels"]["io.example/owner"], "team-a", "{info:#}");
    assert_eq!(info["Os"], "linux");
    let our_layers: Vec<&Value> = local["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let their_layers: Vec<&Value> = info["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(their_layers, our_layers);

    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &docker,
    ]);
    assert_eq!(sha256(&config), local["id"].as_str().unwrap());
}

#[test]
fn sealer_loads_what_skopeo_copied_out_of_the_registry() {
    let registry = Registry::anonymous();
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let remote = registry.image("apps/web:v1");
    t.ok(sb.sealer().args(["tag", "web:v1", &remote]));
    t.ok(sb.sealer().args(["push", &remote]));

    let dir = sb.path("from-skopeo");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{remote}"),
        &format!("oci:{}:v1", path_str(&dir)),
    ]);
    assert_eq!(
        layout_ref_name(&dir),
        "v1",
        "skopeo names the image by its tag only"
    );

    let fresh = Sandbox::new();
    let loaded = t.ok(fresh
        .sealer()
        .args(["load", "-i"])
        .arg(&dir)
        .args(["--name", "loaded/web:v1"]));
    assert_eq!(loaded.trim(), "loaded loaded/web:v1");
    assert_eq!(
        images(&fresh),
        vec![("loaded/web:v1".to_string(), digest.clone())]
    );
    let image = inspect(&fresh, "loaded/web:v1");
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(app_names(&image), ["web"]);
    assert_eq!(app(&image, "web")["files"], json!(["web.yaml"]));
    assert_eq!(image["labels"]["io.example/owner"], "team-a");
}

const GO_FIXTURE: &str = "go-sealer-0.9";
const GO_REF_NAME: &str = "sealerio/go-app:v0.9.0";

#[test]
fn loads_an_image_go_sealer_0_9_built() {
    let layout = fixture(GO_FIXTURE);
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(layout_ref_name(&layout), GO_REF_NAME);

    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let loaded = t.ok(sb.sealer().args(["load", "-i"]).arg(&layout));
    assert_eq!(loaded.trim(), format!("loaded {GO_REF_NAME}"));
    let image = inspect(&sb, GO_REF_NAME);
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(image["type"], "app-installer");
    assert_eq!(image["platform"], "linux/amd64");

    // launchfiles read as files; each app's launch command resolved by the image's own rules.
    assert_eq!(app_names(&image), ["calico", "nginx", "redis"]);
    let calico = app(&image, "calico");
    assert_eq!(calico["type"], "shell");
    assert_eq!(calico["files"], json!(["calico.sh"]));
    assert_eq!(
        calico["launchCmd"],
        "bash application/apps/calico/calico.sh"
    );
    let nginx = app(&image, "nginx");
    assert_eq!(nginx["type"], "kube");
    assert_eq!(nginx["files"], json!(["deploy.yaml", "svc.yaml"]));
    assert_eq!(
        nginx["launchCmd"],
        "kubectl apply -f application/apps/nginx/deploy.yaml && \
         kubectl apply -f application/apps/nginx/svc.yaml"
    );
    let redis = app(&image, "redis");
    assert_eq!(redis["files"], json!(["redis.yaml"]));
    assert_eq!(
        redis["launchCmd"],
        "cd application/apps/redis/ && kubectl apply -f redis.yaml -n redis"
    );
    assert_eq!(
        image["launch"]["app_names"],
        json!(["calico", "nginx", "redis"])
    );
    assert_eq!(
        image["launch"]["appConfigs"],
        json!([{"name": "redis", "launch": {"cmds": ["kubectl apply -f redis.yaml -n redis"]}}])
    );

    // Labels as stored, plus the folded CNI list.
    assert_eq!(
        image["labels"]["cluster.alpha.sealer.io/kube-cni-calico"],
        "true"
    );
    assert_eq!(
        image["labels"]["cluster.alpha.sealer.io/kube-cni"],
        "[\"calico\"]"
    );
    assert_eq!(image["labels"]["created-by"], "sealer.io");
    assert_eq!(
        image["containerImages"],
        json!([{
            "image": "docker.io/calico/cni:v3.24.1",
            "appName": "calico",
            "platform": {"architecture": "amd64", "os": "linux"}
        }])
    );

    // --name renames it; the bytes stay Go Sealer's.
    t.ok(sb
        .sealer()
        .args(["load", "-i"])
        .arg(&layout)
        .args(["--name", "go/app:renamed"]));
    assert_eq!(inspect(&sb, "go/app:renamed")["digest"], digest.as_str());

    // Through a registry and back, unchanged.
    let registry = Registry::anonymous();
    let remote = registry.image("go/app:v0.9.0");
    t.ok(sb.sealer().args(["tag", GO_REF_NAME, &remote]));
    assert_eq!(
        digest_of(&t.ok(sb.sealer().args(["push", &remote]))),
        digest
    );
    let fresh = Sandbox::new();
    assert_eq!(
        digest_of(&t.ok(fresh.sealer().args(["pull", &remote]))),
        digest
    );
    assert_eq!(
        app(&inspect(&fresh, &remote), "redis")["launchCmd"],
        redis["launchCmd"]
    );
}

#[test]
fn the_go_sealer_fixture_is_what_its_script_makes() {
    // The committed layout must match the script, so editing one without the other fails.
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("make-go-sealer-fixture.sh");
    let copy = dir.path().join("make-go-sealer-fixture.sh");
    std::fs::copy(&script, &copy).unwrap();
    let out = Command::new("bash")
        .arg(&copy)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = dir.path().join(GO_FIXTURE);
    let committed = fixture(GO_FIXTURE);
    for rel in ["oci-layout", "index.json"] {
        assert_eq!(
            std::fs::read(made.join(rel)).unwrap(),
            std::fs::read(committed.join(rel)).unwrap(),
            "{rel} differs from what make-go-sealer-fixture.sh writes"
        );
    }
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&made), names(&committed));
}
