//! Extraction (layer order, whiteouts, refused escapes, the cache) from images built in a
//! temp store, and rendering (Configs, app files, templates, determinism) from temp trees.

use super::config::{Processed, process};
use super::*;
use crate::clusterfile::{self, Env, ProcessStep};
use crate::image::layout::sha256_digest;
use crate::image::oci::{
    ContainerConfig, Descriptor, ImageConfig, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    Manifest as OciManifest, RootFs,
};
use crate::image::{Image, Store};
use crate::limits::UNPACKED_DEFAULT;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};

// ---- images in a temp store ----

enum Member<'a> {
    File(&'a str, &'a str, u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
}

/// A tar+gzip layer. Names are written raw into the header, so hostile ones get through.
fn layer(members: &[Member<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for member in members {
        let mut header = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match member {
            Member::File(name, content, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (name, content.as_bytes())
            }
            Member::Dir(name, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                (name, b"")
            }
            Member::Symlink(name, target) | Member::Hardlink(name, target) => {
                let kind = if matches!(member, Member::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                header.set_entry_type(kind);
                header.set_mode(0o777);
                let field = &mut header.as_old_mut().linkname;
                field[..target.len()].copy_from_slice(target.as_bytes());
                (name, b"")
            }
            Member::Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o644);
                (name, b"")
            }
        };
        let field = &mut header.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

struct Home {
    dir: tempfile::TempDir,
    store: Store,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Home { dir, store }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn image(&self, layers: &[Vec<u8>]) -> Image {
        let layout = self.store.layout();
        let layers: Vec<Descriptor> = layers
            .iter()
            .map(|bytes| {
                let digest = layout.write_blob(bytes).unwrap();
                Descriptor::new(LAYER_MEDIA_TYPE, digest, bytes.len() as u64)
            })
            .collect();
        let config = ImageConfig {
            created: None,
            author: None,
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            config: ContainerConfig::default(),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            },
        };
        let config = serde_json::to_vec(&config).unwrap();
        let config = Descriptor::new(
            crate::image::oci::CONFIG_MEDIA_TYPE,
            layout.write_blob(&config).unwrap(),
            config.len() as u64,
        );
        let manifest = OciManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config,
            layers,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let descriptor = Descriptor::new(
            MANIFEST_MEDIA_TYPE,
            layout.write_blob(&bytes).unwrap(),
            bytes.len() as u64,
        );
        Image::read(layout, &descriptor).unwrap()
    }

    fn cache_entries(&self) -> Vec<String> {
        let dir = self.path().join("cache/rootfs");
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn layers_apply_in_order_with_whiteouts_and_opaque_dirs() {
    let home = Home::new();
    let base = layer(&[
        Member::Dir("a/", 0o755),
        Member::File("a/keep", "keep", 0o644),
        Member::File("a/gone", "gone", 0o644),
        Member::Dir("a/sub/", 0o755),
        Member::File("a/sub/deep", "deep", 0o644),
        Member::Dir("b/", 0o755),
        Member::File("b/old", "old", 0o644),
        Member::Dir("b/kept-dir/", 0o755),
        Member::File("b/kept-dir/lower", "lower", 0o644),
        Member::File("c", "file", 0o644),
        Member::File("bin/tool", "#!/bin/sh\n", 0o750),
        Member::Symlink("bin/alias", "tool"),
        Member::Hardlink("bin/hard", "bin/tool"),
    ]);
    let top = layer(&[
        Member::File("a/.wh.gone", "", 0o644),
        Member::File("a/.wh.sub", "", 0o644),
        // The layer's own entries come before its opaque marker: they must survive it.
        Member::File("b/new", "new", 0o600),
        Member::File("b/kept-dir/upper", "upper", 0o644),
        Member::File("b/.wh..wh..opq", "", 0o644),
        Member::Dir("c/", 0o700),
        Member::File("c/child", "child", 0o644),
        Member::Dir("ro/", 0o555),
        Member::File("ro/file", "r", 0o444),
    ]);
    let image = home.image(&[base, top]);
    let root = extract(&home.store, &image, UNPACKED_DEFAULT).unwrap();
    assert_eq!(
        root,
        home.path()
            .join("cache/rootfs")
            .join(image.digest().trim_start_matches("sha256:"))
    );

    let manifest = Manifest::scan(&root).unwrap();
    let paths: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "a",
            "a/keep",
            "b",
            "b/kept-dir",
            "b/kept-dir/upper",
            "b/new",
            "bin",
            "bin/alias",
            "bin/hard",
            "bin/tool",
            "c",
            "c/child",
            "ro",
            "ro/file"
        ]
    );
    assert_eq!(read(&root.join("bin/hard")), "#!/bin/sh\n");
    assert_eq!(mode_of(&root.join("bin/tool")), 0o750);
    assert_eq!(mode_of(&root.join("b/new")), 0o600);
    assert_eq!(mode_of(&root.join("c")), 0o700);
    assert_eq!(mode_of(&root.join("ro")), 0o555);
    assert_eq!(
        fs::read_link(root.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(home.cache_entries().len(), 1, "no temp dir left");

    // A complete cache is reused as it is.
    fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("marker"), "").unwrap();
    assert_eq!(
        extract(&home.store, &image, UNPACKED_DEFAULT).unwrap(),
        root
    );
    assert!(root.join("marker").exists());
}

#[test]
fn entries_that_escape_the_root_are_refused() {
    let cases: Vec<(Vec<Member<'_>>, &str)> = vec![
        (vec![Member::File("../evil", "x", 0o644)], "goes up"),
        (vec![Member::File("a/../../evil", "x", 0o644)], "goes up"),
        (vec![Member::File("/etc/evil", "x", 0o644)], "absolute"),
        (vec![Member::Symlink("s", "../outside")], "points outside"),
        (vec![Member::Symlink("d/s", "x/../../..")], "points outside"),
        (vec![Member::Symlink("s", "/etc/passwd")], "points outside"),
        (vec![Member::Hardlink("h", "../outside")], "hard link"),
        (vec![Member::Hardlink("h", "/etc/passwd")], "hard link"),
        (vec![Member::Fifo("f")], "Fifo"),
    ];
    for (members, why) in cases {
        let home = Home::new();
        let image = home.image(&[layer(&members)]);
        let err = extract(&home.store, &image, UNPACKED_DEFAULT)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{why}: {err}");
        assert!(
            home.cache_entries().is_empty(),
            "{why}: nothing left behind"
        );
    }
}

#[test]
fn whiteouts_of_dot_dot_dot_or_nothing_are_refused_and_delete_nothing() {
    for (entry, hidden) in [
        (".wh...", "\"..\""),
        ("a/.wh...", "\"..\""),
        (".wh..", "\".\""),
        (".wh.", "\"\""),
    ] {
        let home = Home::new();
        // Another image's tree next to this one, in the cache the whiteout would remove.
        let sibling = cache_dir(&home.store).join("rootfs/other-image");
        fs::create_dir_all(&sibling).unwrap();
        fs::write(sibling.join("kept"), "kept").unwrap();
        let image = home.image(&[
            layer(&[Member::Dir("a/", 0o755), Member::File("a/f", "f", 0o644)]),
            layer(&[Member::File(entry, "", 0o644)]),
        ]);
        let err = extract(&home.store, &image, UNPACKED_DEFAULT)
            .unwrap_err()
            .to_string();
        let layer = &image.manifest.layers[1].digest;
        assert!(
            err.contains(&format!("cannot unpack layer {layer} of image")),
            "{entry}: {err}"
        );
        assert!(
            err.contains(&format!("whiteout {entry} hides {hidden}")),
            "{entry}: {err}"
        );
        assert_eq!(read(&sibling.join("kept")), "kept", "{entry}");
        assert_eq!(home.cache_entries(), ["other-image"], "{entry}");
    }
}

#[test]
fn an_image_that_unpacks_past_the_limit_stops_there_and_leaves_nothing() {
    let limit = crate::limits::MIB;
    let zeros = "\0".repeat(600 * 1024);
    let big = "\0".repeat(3 << 20);
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        // One file larger than the limit: refused from its header, before it is written.
        (
            vec![layer(&[Member::File("big", &big, 0o644)])],
            "entry big (3145728 bytes): the image unpacks to more than 1 MiB",
        ),
        // Each layer under the limit, both together over it.
        (
            vec![
                layer(&[Member::File("a", &zeros, 0o644)]),
                layer(&[Member::File("b", &zeros, 0o644)]),
            ],
            "the image unpacks to more than 1 MiB",
        ),
    ];
    for (layers, want) in cases {
        let home = Home::new();
        let image = home.image(&layers);
        let err = extract(&home.store, &image, limit).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(want), "{text}");
        assert!(text.contains("(SEALER_MAX_UNPACKED)"), "{text}");
        let hint = &err.diagnostics()[0].hints;
        assert!(hint[0].contains("SEALER_MAX_UNPACKED=2MiB"), "{hint:?}");
        assert!(
            home.cache_entries().is_empty(),
            "{want}: nothing left behind"
        );
        // The same image under the default limit unpacks.
        extract(&home.store, &image, UNPACKED_DEFAULT).unwrap();
    }
}

#[test]
fn tar_headers_the_reader_keeps_in_memory_have_a_limit_of_their_own() {
    // A GNU long name of 2 MiB: the tar reader would hold it whole, at any size.
    let name = "d/".repeat(1 << 20) + "f";
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(0);
    builder
        .append_data(&mut header, &name, std::io::empty())
        .unwrap();
    let bomb = builder.into_inner().unwrap().finish().unwrap();
    let home = Home::new();
    let image = home.image(&[bomb]);
    let err = extract(&home.store, &image, UNPACKED_DEFAULT)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("take more than 1 MiB, the limit of one entry's headers"),
        "{err}"
    );
    assert!(home.cache_entries().is_empty());
}

#[test]
fn files_under_a_lower_symlink_replace_it_instead_of_following_it() {
    let home = Home::new();
    let outside = home.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let image = home.image(&[
        layer(&[Member::Dir("real/", 0o755), Member::Symlink("etc", "real")]),
        layer(&[
            Member::File("etc/passwd", "mine", 0o644),
            Member::File("real/.wh.nothing", "", 0o644),
        ]),
    ]);
    let root = extract(&home.store, &image, UNPACKED_DEFAULT).unwrap();
    assert!(paths::is_real_dir(&root.join("etc")));
    assert_eq!(read(&root.join("etc/passwd")), "mine");
    assert!(!root.join("real/passwd").exists());
}

#[test]
fn a_corrupt_layer_is_refused() {
    let home = Home::new();
    let mut image = home.image(&[layer(&[Member::File("a", "a", 0o644)])]);
    let blob = home
        .store
        .layout()
        .blob_path(&image.manifest.layers[0].digest)
        .unwrap();
    // Valid gzip and tar, but not the content the digest names.
    fs::write(&blob, layer(&[Member::File("a", "b", 0o644)])).unwrap();
    image.manifest.layers[0].size = fs::metadata(&blob).unwrap().len();
    let err = extract(&home.store, &image, UNPACKED_DEFAULT)
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupt blob"), "{err}");
}

// ---- process steps ----

fn steps(text: &str) -> Vec<ProcessStep> {
    text.split('|')
        .map(|s| match s {
            "value" => ProcessStep::Value,
            "toJson" => ProcessStep::ToJson,
            "toBase64" => ProcessStep::ToBase64,
            "toSecret" => ProcessStep::ToSecret,
            other => panic!("{other}"),
        })
        .collect()
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn process_steps_apply_left_to_right() {
    let data = "config:\n  username: root\n  passwd: xxx\nport: 5000\n";
    // Sealer's documented example: each value to JSON, then to base64.
    let json = r#"{"username":"root","passwd":"xxx"}"#;
    assert_eq!(
        process(data, &steps("value|toJson|toBase64")).unwrap(),
        Processed::Values(vec![
            ("config".into(), yaml::Yaml::string(b64(json))),
            ("port".into(), yaml::Yaml::string(b64("5000"))),
        ])
    );
    assert_eq!(
        process(data, &steps("toJson")).unwrap(),
        Processed::Text(format!(r#"{{"config":{json},"port":5000}}"#))
    );
    assert_eq!(
        process(data, &steps("toJson|toBase64")).unwrap(),
        Processed::Text(b64(&format!(r#"{{"config":{json},"port":5000}}"#)))
    );
    assert_eq!(
        process("a: x\n", &steps("toBase64")).unwrap(),
        Processed::Text(b64("a: x\n"))
    );
    assert_eq!(
        process("a: x\n", &[]).unwrap(),
        Processed::Text("a: x\n".into())
    );
    // `value` alone rewrites data as a mapping; a string from toJson stays a string.
    assert_eq!(
        process("a: {b: 1}\n", &steps("value|toJson")).unwrap(),
        Processed::Values(vec![("a".into(), yaml::Yaml::string(r#"{"b":1}"#))])
    );
}

#[test]
fn to_secret_encodes_each_value_exactly_once() {
    let secret = |p: &str| process("user: root\npass: s3cr3t\n", &steps(p)).unwrap();
    let expected = Processed::Secret(vec![
        ("user".into(), b64("root")),
        ("pass".into(), b64("s3cr3t")),
    ]);
    assert_eq!(secret("value|toSecret"), expected);
    assert_eq!(secret("toSecret"), expected);
    assert_eq!(secret("value|toBase64|toSecret"), expected);
    assert_eq!(
        process("c: {a: 1}\n", &steps("value|toJson|toBase64|toSecret")).unwrap(),
        Processed::Secret(vec![("c".into(), b64(r#"{"a":1}"#))])
    );
    for (data, p, why) in [
        ("a: 1\n", "toSecret|value", "last step"),
        (
            "a: {b: 1}\n",
            "value|toBase64",
            "put toJson before toBase64",
        ),
        (
            "a: {b: 1}\n",
            "value|toSecret",
            "put toJson before toSecret",
        ),
        ("- a\n", "value", "not a mapping"),
        ("a: 1\n", "toBase64|toSecret", "value|toBase64|toSecret"),
    ] {
        let err = process(data, &steps(p)).unwrap_err();
        assert!(err.contains(why), "{p}: {err}");
    }
}

// ---- rendering ----

/// A tree on disk from (path, content) pairs; a path ending in `/` is a directory.
fn tree(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (path, content) in files {
        let p = dir.join(path);
        if path.ends_with('/') {
            fs::create_dir_all(&p).unwrap();
        } else {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut f = fs::File::create(&p).unwrap();
            f.write_all(content.as_bytes()).unwrap();
        }
    }
    dir.to_path_buf()
}

const NGINX: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  k1: v1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n";

struct Scene {
    home: tempfile::TempDir,
    trees: Vec<PathBuf>,
}

fn scene() -> Scene {
    let home = tempfile::tempdir().unwrap();
    let cluster_image = tree(
        &home.path().join("img1"),
        &[
            ("etc/kubeadm.yml", "kind: ClusterConfiguration\n"),
            (
                "etc/registry.yml.tmpl",
                "url: {{ .RegistryURL }}\nauth: {{ .Auth | b64enc }}\n",
            ),
            ("manifests/sub/x.yaml.tmpl", "{{- .RegistryURL -}}\n"),
            ("scripts/run.sh.tmpl", "not rendered: {{ .Nope }}\n"),
            ("application/apps/nginx/nginx.yaml", NGINX),
            (
                "application/apps/nginx/secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  old: b2xk\n",
            ),
            ("registry/docker/registry/v2/token", "t"),
            ("images/", ""),
            ("etc/list.yaml", "- x\n"),
        ],
    );
    fs::set_permissions(
        cluster_image.join("etc/registry.yml.tmpl"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let app_image = tree(
        &home.path().join("img2"),
        &[
            (
                "application/apps/redis/values.yaml",
                "replicas: 1\nimage: {tag: '7'}\n",
            ),
            (
                "etc/kubeadm.yml",
                "kind: ClusterConfiguration\n# from the app image\n",
            ),
        ],
    );
    Scene {
        trees: vec![cluster_image, app_image],
        home,
    }
}

const CLUSTER: &str = "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: prod}\nspec:\n  image: sealer-test/kubernetes:v1.22.15\n  ssh: {passwd: x}\n  hosts: [{ips: [10.0.0.2], roles: [master]}]\n";

fn clusterfile(extra: &str) -> clusterfile::Clusterfile {
    let text = format!("{CLUSTER}{extra}");
    clusterfile::parse(Path::new("Clusterfile"), &text).unwrap_or_else(|e| panic!("{}", e.render()))
}

fn env() -> Env {
    let mut env = Env::new();
    env.insert_scalar("RegistryURL", "sea.hub:5000");
    env.insert_scalar("Auth", "u:p");
    env
}

fn render_with(scene: &Scene, cf: &clusterfile::Clusterfile) -> Result<Rendered> {
    let env = env();
    render(
        scene.home.path(),
        &RenderInput::from_clusterfile(cf, &scene.trees, &env),
    )
}

const CONFIGS: &str = "---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: mysql}
spec:
  path: etc/mysql.yaml
  data: |
    mysql-user: root
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: nginx-ns}
spec:
  appName: nginx
  path: nginx.yaml
  strategy: merge
  data: |
    metadata: {namespace: web}
    data: {k2: v2}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: encoded}
spec:
  path: etc/encoded.yaml
  process: value|toJson|toBase64
  data: |
    config: {username: root}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: creds}
spec:
  appName: nginx
  path: secret.yaml
  process: value|toSecret
  data: |
    password: s3cr3t
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: tmpl}
spec:
  path: etc/from-config.yaml.tmpl
  data: |
    registry: {{ .RegistryURL }}
---
apiVersion: sealer.io/v2
kind: Application
metadata: {name: apps}
spec:
  configs:
    - name: redis
      files:
        - {path: values.yaml, strategy: merge, data: 'image: {tag: \"7.2\"}'}
        - {path: conf/redis.conf, data: 'maxmemory 1gb'}
";

#[test]
fn render_merges_images_then_configs_files_and_templates() {
    let scene = scene();
    let cf = clusterfile(CONFIGS);
    let rendered = render_with(&scene, &cf).unwrap();
    let root = &rendered.root;
    assert_eq!(*root, scene.home.path().join("cache/rendered/prod"));
    let text = |p: &str| read(&root.join(p));

    assert_eq!(
        text("etc/kubeadm.yml"),
        "kind: ClusterConfiguration\n# from the app image\n",
        "later images win"
    );
    assert_eq!(text("etc/mysql.yaml"), "mysql-user: root\n");
    // merge: into every document, keys added and overridden.
    let nginx = yaml::parse(&text("application/apps/nginx/nginx.yaml")).unwrap();
    assert_eq!(nginx.len(), 2);
    for doc in &nginx {
        let json = doc.as_ref().unwrap().to_json();
        assert_eq!(json["metadata"]["namespace"], "web");
        assert_eq!(json["data"]["k2"], "v2");
    }
    assert_eq!(
        nginx[0].as_ref().unwrap().to_json()["data"]["k1"],
        "v1",
        "{}",
        text("application/apps/nginx/nginx.yaml")
    );
    assert_eq!(
        text("etc/encoded.yaml"),
        format!("config: {}\n", b64(r#"{"username":"root"}"#))
    );
    let secret = yaml::parse(&text("application/apps/nginx/secret.yaml")).unwrap();
    let secret = secret[0].as_ref().unwrap().to_json();
    assert_eq!(secret["data"]["old"], "b2xk");
    assert_eq!(secret["data"]["password"], b64("s3cr3t"));
    assert_eq!(secret["metadata"]["name"], "s");
    let values = yaml::parse(&text("application/apps/redis/values.yaml")).unwrap();
    assert_eq!(
        values[0].as_ref().unwrap().to_json(),
        serde_json::json!({"replicas": 1, "image": {"tag": "7.2"}})
    );
    assert_eq!(
        text("application/apps/redis/conf/redis.conf"),
        "maxmemory 1gb"
    );

    // Templates: rendered next to themselves, with the template's mode.
    assert_eq!(
        text("etc/registry.yml"),
        format!("url: sea.hub:5000\nauth: {}\n", b64("u:p"))
    );
    assert_eq!(mode_of(&root.join("etc/registry.yml")), 0o600);
    assert_eq!(text("manifests/sub/x.yaml"), "sea.hub:5000");
    assert_eq!(text("etc/from-config.yaml"), "registry: sea.hub:5000\n");
    assert!(
        !root.join("scripts/run.sh").exists(),
        "only etc/, charts/, manifests/"
    );

    // The image caches are never written through the hard links.
    assert_eq!(
        read(&scene.trees[0].join("application/apps/nginx/nginx.yaml")),
        NGINX
    );

    assert!(
        rendered
            .manifest
            .get("registry/docker/registry/v2/token")
            .is_some()
    );
    assert!(rendered.manifest.get("images").is_some());
    assert!(rendered.without_registry.get("registry").is_none());
    assert!(
        rendered
            .without_registry
            .entries
            .iter()
            .all(|e| !e.path.starts_with("registry"))
    );
    assert_ne!(rendered.manifest.digest, rendered.without_registry.digest);
    let left: Vec<String> = fs::read_dir(scene.home.path().join("cache/rendered"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["prod"], "no temp or old trees left");
}

#[test]
fn the_same_inputs_give_the_same_digest() {
    let scene = scene();
    let cf = clusterfile(CONFIGS);
    let first = render_with(&scene, &cf).unwrap();
    // Rebuilt from scratch: a stray file in the last rendered tree is gone.
    fs::write(first.root.join("stray"), "x").unwrap();
    let second = render_with(&scene, &cf).unwrap();
    assert_eq!(first.manifest, second.manifest);
    assert!(!second.root.join("stray").exists());

    // Another home, another cluster name: same content, same digest.
    let other = self::scene();
    let env = env();
    let mut input = RenderInput::from_clusterfile(&cf, &other.trees, &env);
    input.cluster = "staging";
    let third = render(other.home.path(), &input).unwrap();
    assert_eq!(third.manifest.digest, first.manifest.digest);

    // One changed Config: one changed file, another digest.
    let changed = clusterfile(&CONFIGS.replace("mysql-user: root", "mysql-user: admin"));
    let fourth = render_with(&scene, &changed).unwrap();
    assert_ne!(fourth.manifest.digest, first.manifest.digest);
    let differing: Vec<&str> = fourth
        .manifest
        .entries
        .iter()
        .filter(|e| first.manifest.get(&e.path) != Some(*e))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(differing, ["etc/mysql.yaml"]);

    // A mode is content too.
    fs::set_permissions(
        scene.trees[1].join("etc/kubeadm.yml"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let fifth = render_with(&scene, &cf).unwrap();
    assert_ne!(fifth.manifest.digest, first.manifest.digest);
}

#[test]
fn render_errors_point_at_the_config_or_template() {
    let scene = scene();
    // A template with a missing key names the file, line and key.
    let cf = clusterfile(
        "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: t}\nspec:\n  path: charts/c/values.yaml.tmpl\n  data: |\n    a: 1\n    b: {{ .Missing }}\n",
    );
    let err = render_with(&scene, &cf).unwrap_err().to_string();
    assert!(
        err.contains("charts/c/values.yaml.tmpl:2:1") && err.contains("`Missing`"),
        "{err}"
    );
    let err = {
        let cf = clusterfile(
            "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: t}\nspec:\n  path: etc/x.tmpl\n  data: '{{ if .RegistryURL }}x{{ end }}'\n",
        );
        render_with(&scene, &cf).unwrap_err().to_string()
    };
    assert!(err.contains("unsupported template syntax"), "{err}");

    // A Config for an app no image has.
    let cf = clusterfile(
        "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: m}\nspec:\n  appName: mysql\n  path: a.yaml\n  data: 'a: 1'\n",
    );
    let err = render_with(&scene, &cf).unwrap_err().to_string();
    assert!(
        err.contains("Clusterfile:14:9") && err.contains("no app mysql"),
        "{err}"
    );

    // Merging into a file that does not exist writes it; into a list, fails.
    let merge = |path: &str| {
        clusterfile(&format!(
            "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {{name: m}}\nspec:\n  path: {path}\n  strategy: merge\n  data: 'a: 1'\n"
        ))
    };
    let rendered = render_with(&scene, &merge("etc/new.yaml")).unwrap();
    assert_eq!(read(&rendered.root.join("etc/new.yaml")), "a: 1");
    let err = render_with(&scene, &merge("etc/list.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot merge into document 1 of etc/list.yaml: it is a list, not a mapping"),
        "{err}"
    );

    // Nothing is left half-built, and the last good tree stays.
    let left: Vec<String> = fs::read_dir(scene.home.path().join("cache/rendered"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["prod"]);
}

#[test]
fn configs_never_write_through_symlinks() {
    let scene = scene();
    let outside = scene.home.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink("../etc", scene.trees[1].join("application/apps/redis/link")).unwrap();
    symlink(
        "values.yaml",
        scene.trees[1].join("application/apps/redis/v.yaml"),
    )
    .unwrap();
    for path in ["link/x.yaml", "v.yaml"] {
        let cf = clusterfile(&format!(
            "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {{name: s}}\nspec:\n  appName: redis\n  path: {path}\n  data: 'a: 1'\n"
        ));
        let err = render_with(&scene, &cf).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{path}: {err}");
    }
    assert!(
        !scene
            .home
            .path()
            .join("cache/rendered/prod/etc/x.yaml")
            .exists()
    );
}

#[test]
fn sync_entries_carry_the_manifest() {
    let scene = scene();
    let rendered = render_with(&scene, &clusterfile("")).unwrap();
    let entries = rendered.without_registry.sync_entries();
    assert_eq!(entries.len(), rendered.without_registry.entries.len());
    let kubeadm = entries
        .iter()
        .find(|e| e.path == "etc/kubeadm.yml")
        .unwrap();
    let bytes = fs::read(rendered.root.join("etc/kubeadm.yml")).unwrap();
    assert_eq!(
        kubeadm.kind,
        sealer_providers::sync::EntryKind::File {
            sha256: sha256_digest(&bytes)
                .trim_start_matches("sha256:")
                .to_string(),
            size: bytes.len() as u64,
            mode: 0o644,
        }
    );
}
