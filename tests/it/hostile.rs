//! Hostile input (security review, issue 12): registries, images and Kubefiles made to have
//! sealer hold or write far more than they are, or write where it must not. One regression
//! test per finding; where the finding was memory, sealer runs under an address-space limit
//! that an unbounded read would blow, so the test cannot pass by having memory to spare.

use crate::registry::sha256;
use crate::support::http::{Request, Server};
use crate::support::{Sandbox, repo_root};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The memory sealer gets where memory is the point: well above what a pull or a build needs
/// (tens of MiB), far below what the unbounded versions took (gigabytes).
const MEMORY_LIMIT: u64 = 256 << 20;

/// How a hostile registry answers one path.
#[derive(Clone)]
enum Answer {
    /// A whole body with its `Content-Length`.
    Body(&'static str, Vec<u8>),
    /// `fill` bytes without end (up to `cap`, so a test of broken code ends too), with a
    /// `Content-Length` if given, else delimited by the connection's close.
    Endless {
        content_type: &'static str,
        fill: u8,
        length: Option<u64>,
        cap: u64,
    },
}

/// A registry that answers `/v2/` as docker-registry does, and `/v2/evil/...` from a table;
/// it records every path asked for and how many bytes its endless answers got out.
struct HostileRegistry {
    server: Server,
    requests: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
}

impl HostileRegistry {
    fn start(routes: BTreeMap<String, Answer>) -> HostileRegistry {
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let sent: Arc<AtomicU64> = Arc::default();
        let server = {
            let (requests, sent) = (requests.clone(), sent.clone());
            Server::start_raw(move |request: &Request, stream: &mut TcpStream| {
                requests.lock().unwrap().push(request.path.clone());
                let answer = match request.path.as_str() {
                    "/v2/" => Answer::Body("application/json", b"{}".to_vec()),
                    path => match routes.get(path) {
                        Some(answer) => answer.clone(),
                        None => {
                            let _ = write_head(stream, "404 Not Found", "text/plain", Some(0));
                            return;
                        }
                    },
                };
                match answer {
                    Answer::Body(content_type, body) => {
                        let length = body.len() as u64;
                        if write_head(stream, "200 OK", content_type, Some(length)).is_ok() {
                            let _ = stream.write_all(&body);
                        }
                    }
                    Answer::Endless {
                        content_type,
                        fill,
                        length,
                        cap,
                    } => {
                        if write_head(stream, "200 OK", content_type, length).is_err() {
                            return;
                        }
                        let chunk = vec![fill; 64 * 1024];
                        // Ends when sealer hangs up (the write fails) or at the cap.
                        while sent.load(Ordering::SeqCst) < cap {
                            if stream.write_all(&chunk).is_err() {
                                return;
                            }
                            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        }
                    }
                }
            })
        };
        HostileRegistry {
            server,
            requests,
            sent,
        }
    }

    fn image(&self, tag: &str) -> String {
        format!("{}/evil:{tag}", self.server.addr())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    length: Option<u64>,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n"
    );
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

/// A small valid image config, and its descriptor.
fn config() -> (Vec<u8>, serde_json::Value) {
    let bytes = json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}
    })
    .to_string()
    .into_bytes();
    let descriptor =
        json!({"mediaType": OCI_CONFIG, "digest": sha256(&bytes), "size": bytes.len()});
    (bytes, descriptor)
}

fn manifest(config: &serde_json::Value, layers: &[serde_json::Value]) -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
        .to_string()
        .into_bytes()
}

/// The `.tmp-*` files of the store's blob directory.
fn store_temps(sb: &Sandbox) -> Vec<String> {
    let dir = sb.home().join("images/blobs/sha256");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

fn stderr_of_failed(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} should fail with exit 1 (a signal means it blew the memory limit):\n{stderr}"
    );
    stderr
}

#[test]
fn an_endless_manifest_stops_at_the_manifest_limit() {
    let routes = BTreeMap::from([
        // No Content-Length: only the connection's close would end it.
        (
            "/v2/evil/manifests/endless".to_string(),
            Answer::Endless {
                content_type: OCI_MANIFEST,
                fill: b' ',
                length: None,
                cap: 8 << 30,
            },
        ),
        // A 300 MB manifest, announced: refused before its body is read.
        (
            "/v2/evil/manifests/huge".to_string(),
            Answer::Endless {
                content_type: OCI_MANIFEST,
                fill: b' ',
                length: Some(300_000_000),
                cap: 300_000_000,
            },
        ),
    ]);
    let registry = HostileRegistry::start(routes);
    let sb = Sandbox::new();
    for tag in ["endless", "huge"] {
        let image = registry.image(tag);
        let out = sb
            .sealer_within(MEMORY_LIMIT)
            .args(["pull", &image])
            .output()
            .unwrap();
        let err = stderr_of_failed(&out, "a pull of an endless manifest");
        assert!(err.contains(&format!("cannot pull {image}")), "{err}");
        assert!(err.contains("larger than 4 MiB"), "{err}");
        assert!(err.contains("the limit of a manifest"), "{err}");
    }
    // sealer hung up soon after the limit; the rest was never sent.
    let sent = registry.sent.load(Ordering::SeqCst);
    assert!(sent < 256 << 20, "{sent} bytes were sent");
    assert!(store_temps(&sb).is_empty());
}

#[test]
fn a_blob_streamed_past_its_declared_size_stops_and_leaves_no_temp_file() {
    let (config_bytes, config) = config();
    let layer_digest = sha256(b"what the layer should have been");
    let layer = json!({"mediaType": OCI_LAYER, "digest": layer_digest, "size": 13_000});
    let routes = BTreeMap::from([
        (
            "/v2/evil/manifests/v1".to_string(),
            Answer::Body(OCI_MANIFEST, manifest(&config, &[layer])),
        ),
        (
            format!("/v2/evil/blobs/{}", sha256(&config_bytes)),
            Answer::Body(OCI_CONFIG, config_bytes.clone()),
        ),
        (
            format!("/v2/evil/blobs/{layer_digest}"),
            Answer::Endless {
                content_type: "application/octet-stream",
                fill: 0,
                length: None,
                cap: 256 << 20,
            },
        ),
    ]);
    let registry = HostileRegistry::start(routes);
    let sb = Sandbox::new();
    // A temp file a killed pull left two hours ago goes with the next pull.
    sb.sealer().arg("images").assert().success();
    let stale = sb.home().join("images/blobs/sha256/.tmp-4194304-0");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::create(&stale)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let image = registry.image("v1");
    let out = sb.sealer().args(["pull", &image]).output().unwrap();
    let err = stderr_of_failed(&out, "a pull of an oversized blob");
    assert!(err.contains(&format!("cannot pull {image}")), "{err}");
    assert!(
        err.contains(&format!(
            "blob {layer_digest} is larger than its manifest declares: 13000 bytes declared"
        )),
        "{err}"
    );
    assert_eq!(store_temps(&sb), Vec::<String>::new());
    let sent = registry.sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "sealer read on: {sent} bytes were sent");
    let images = sb.sealer().args(["images", "-q"]).output().unwrap();
    assert!(images.stdout.is_empty(), "a failed pull names nothing");
}

#[test]
fn a_manifest_with_an_invalid_digest_is_refused_before_any_blob_request() {
    let (_, config) = config();
    let escaping = format!("sha256:../../../../../../tmp/{}", "0".repeat(40));
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let routes = BTreeMap::from([
        (
            "/v2/evil/manifests/escaping".to_string(),
            Answer::Body(
                OCI_MANIFEST,
                manifest(
                    &config,
                    &[json!({"mediaType": OCI_LAYER, "digest": escaping, "size": 10})],
                ),
            ),
        ),
        (
            "/v2/evil/manifests/sha512".to_string(),
            Answer::Body(
                OCI_MANIFEST,
                manifest(
                    &config,
                    &[json!({"mediaType": OCI_LAYER, "digest": sha512, "size": 10})],
                ),
            ),
        ),
    ]);
    // A config is read whole: one declared larger than a document may be is not fetched.
    let mut huge_config = config.clone();
    huge_config["size"] = json!(5 << 20);
    let routes = routes.into_iter().chain([(
        "/v2/evil/manifests/huge-config".to_string(),
        Answer::Body(OCI_MANIFEST, manifest(&huge_config, &[])),
    )]);
    let registry = HostileRegistry::start(routes.collect());
    let sb = Sandbox::new();

    let out = sb
        .sealer()
        .args(["pull", &registry.image("huge-config")])
        .output()
        .unwrap();
    let err = stderr_of_failed(&out, "a pull of a 5 MiB config");
    assert!(
        err.contains("declares 5242880 bytes, over the 4 MiB limit of an image config"),
        "{err}"
    );

    let out = sb
        .sealer()
        .args(["pull", &registry.image("escaping")])
        .output()
        .unwrap();
    let err = stderr_of_failed(&out, "a pull naming a path as a digest");
    assert!(err.contains("invalid digest \"sha256:../../"), "{err}");
    assert!(err.contains("64 lowercase hex digits"), "{err}");

    let out = sb
        .sealer()
        .args(["pull", &registry.image("sha512")])
        .output()
        .unwrap();
    let err = stderr_of_failed(&out, "a pull naming a sha512 digest");
    assert!(
        err.contains("digest algorithm sha512 is not supported"),
        "{err}"
    );

    let requests = registry.requests();
    assert!(
        requests.iter().all(|p| !p.contains("/blobs/")),
        "no blob may be asked for: {requests:?}"
    );
    assert!(!Path::new("/tmp").join("0".repeat(40)).exists());
}

#[test]
fn a_doubling_arg_chain_is_a_located_error_not_gigabytes() {
    // Each ARG doubles the last: A39 would be 2^39 bytes (the build grew to 24 GB).
    let mut kubefile = String::from("FROM scratch\nARG A0=x\n");
    for i in 1..=39 {
        kubefile.push_str(&format!("ARG A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
    }
    kubefile.push_str("LABEL k=${A39}\n");
    let sb = Sandbox::new();
    let ctx = sb.write_tree("ctx", &[("Kubefile", &kubefile)]);
    let started = std::time::Instant::now();
    let out = sb
        .sealer_within(MEMORY_LIMIT)
        .args(["build", "-t", "bomb:v1"])
        .arg(&ctx)
        .output()
        .unwrap();
    let err = stderr_of_failed(&out, "a build of a doubling ARG chain");
    // A20 is 1 MiB; A21 (line 23, its value at column 9) would be 2 MiB.
    let want = format!(
        "{}:23:9: error: this value expands to more than 1 MiB, the limit of a value after ${{...}} substitution",
        ctx.join("Kubefile").display()
    );
    assert_eq!(err.lines().next(), Some(want.as_str()), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "one error: {err}");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let images = sb.sealer().args(["images", "-q"]).output().unwrap();
    assert!(images.stdout.is_empty(), "the build names nothing");
}

// ---- hostile images, unpacked by an apply ----

const CLUSTER_IMAGE: &str = "example/demo-cluster:v1.22.15";

/// A tar+gzip layer of `(name, content)` files. Names go raw into the header, so hostile
/// ones get through.
fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_cksum();
        tar.append(&header, *content).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The demo cluster image with `layer` on top, loaded into the sandbox's store as `name`:
/// built, saved, its manifest and config given the layer, loaded back.
fn cluster_image_with(sb: &Sandbox, name: &str, (layer, diff_id): (Vec<u8>, String)) {
    sb.sealer()
        .args(["build", "-t", CLUSTER_IMAGE])
        .arg(repo_root().join("examples/images/demo-cluster"))
        .assert()
        .success();
    let dir = sb.path(&format!("layout-{}", sha256(name.as_bytes())));
    sb.sealer()
        .args(["save", CLUSTER_IMAGE, "-o"])
        .arg(&dir)
        .assert()
        .success();
    let blobs = dir.join("blobs/sha256");
    let blob = |digest: &str| blobs.join(digest.trim_start_matches("sha256:"));
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blob(&digest), bytes).unwrap();
        digest
    };
    let read_json = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let mut index = read_json(&dir.join("index.json"));
    let mut manifest = read_json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(diff_id));
    let config = config.to_string().into_bytes();
    manifest["config"]["digest"] = json!(put(&config));
    manifest["config"]["size"] = json!(config.len());
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"mediaType": OCI_LAYER, "digest": put(&layer), "size": layer.len()}));
    let manifest = manifest.to_string().into_bytes();
    let entry = &mut index["manifests"][0];
    entry["digest"] = json!(put(&manifest));
    entry["size"] = json!(manifest.len());
    entry["annotations"]["org.opencontainers.image.ref.name"] = json!(name);
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    sb.sealer()
        .args(["load", "-i"])
        .arg(&dir)
        .assert()
        .success();
}

/// `sealer apply` of a one-host cluster of `image` on the sandboxed local transport: the
/// image is unpacked before any step runs. Returns the failed apply's stderr.
fn apply_fails(sb: &Sandbox, image: &str, env: &[(&str, &str)]) -> String {
    let dir = sb.write_tree(
        "cluster",
        &[(
            "Clusterfile",
            &format!(
                "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {{name: hostile}}\nspec:\n  image: {image}\n  ssh: {{transport: local, sandbox: sandbox}}\n  hosts:\n    - ips: [127.0.0.1]\n      roles: [master]\n"
            ),
        )],
    );
    let mut cmd = sb.sealer();
    cmd.args(["apply", "--auto-approve", "-f"])
        .arg(dir.join("Clusterfile"))
        .envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let err = stderr_of_failed(&out, "an apply of a hostile image");
    assert!(
        !dir.join("sandbox").exists(),
        "no step ran, so no sandbox was made"
    );
    err
}

/// The entries of `$SEALER_HOME/cache/rootfs`, sorted.
fn rootfs_cache(sb: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sb.home().join("cache/rootfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_whiteout_of_dot_dot_is_refused_and_the_cache_survives() {
    let sb = Sandbox::new();
    cluster_image_with(&sb, "hostile/whiteout:v1", layer(&[(".wh...", b"")]));
    // Another image's unpacked tree, in the directory `.wh...` names from inside a tree.
    let sibling = sb.home().join("cache/rootfs/another-image");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("kept"), "kept").unwrap();

    let err = apply_fails(&sb, "hostile/whiteout:v1", &[]);
    assert!(err.contains("cannot unpack layer sha256:"), "{err}");
    assert!(
        err.contains(
            "entry refused: whiteout .wh... hides \"..\", which is not a name in its directory"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(sibling.join("kept")).unwrap(),
        "kept"
    );
    assert_eq!(
        rootfs_cache(&sb),
        ["another-image"],
        "no partial tree is left"
    );
}

#[test]
fn a_layer_that_inflates_past_the_unpacked_limit_is_refused_and_removed() {
    let sb = Sandbox::new();
    // 64 MiB of zeros: some 64 KiB of gzip.
    let zeros = vec![0u8; 64 << 20];
    let bomb = layer(&[("zeros", &zeros)]);
    assert!(bomb.0.len() < 1 << 20, "{} bytes", bomb.0.len());
    cluster_image_with(&sb, "hostile/bomb:v1", bomb);

    let err = apply_fails(&sb, "hostile/bomb:v1", &[("SEALER_MAX_UNPACKED", "16MiB")]);
    assert!(err.contains("cannot unpack layer sha256:"), "{err}");
    assert!(
        err.contains(
            "entry zeros (67108864 bytes): the image unpacks to more than 16 MiB, \
             the limit of an unpacked image (SEALER_MAX_UNPACKED)"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: if the image is trusted, raise the limit: SEALER_MAX_UNPACKED=32MiB"),
        "{err}"
    );
    assert_eq!(
        rootfs_cache(&sb),
        Vec::<String>::new(),
        "the partial tree is removed"
    );

    // The limit is a setting read once, before anything runs: a value that is not a size
    // is an error, never the default in silence.
    let out = sb
        .sealer()
        .arg("images")
        .env("SEALER_MAX_UNPACKED", "lots")
        .output()
        .unwrap();
    let err = stderr_of_failed(&out, "a command with SEALER_MAX_UNPACKED=lots");
    assert!(
        err.starts_with("error: SEALER_MAX_UNPACKED: \"lots\" is not a size"),
        "{err}"
    );
}
