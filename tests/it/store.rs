//! The local store: images, inspect, tag, rmi, save, load.

use crate::support::{Sandbox, failure_of, stdout_of};
use std::path::{Path, PathBuf};

const RELEASE_NOTES_KUBEFILE: &str = r#"FROM scratch
KUBEVERSION 1.22 - 1.24
APP redis local://redis.yaml
APP nginx local://nginx.yaml
APPCMDS nginx ["kubectl apply -f nginx.yaml -n nginx-namespace"]
APP mysql local://charts/mysql/ local://values.yaml
APPCMDS mysql ["helm install mysql .", "-f values.yaml", "--set key=value"]
LABEL "created-by"="sealer.io"
CNI flannel local://flannel.yaml
CNI calico local://calico.sh
LAUNCH ["nginx", "mysql"]
"#;

fn release_notes_context(sb: &Sandbox) -> PathBuf {
    sb.write_tree(
        "ctx",
        &[
            ("Kubefile", RELEASE_NOTES_KUBEFILE),
            ("redis.yaml", "kind: Redis\n"),
            ("nginx.yaml", "kind: Nginx\n"),
            ("values.yaml", "key: value\n"),
            ("flannel.yaml", "kind: Flannel\n"),
            ("calico.sh", "echo calico\n"),
            ("charts/mysql/Chart.yaml", "name: mysql\n"),
            ("charts/mysql/values.yaml", "replicas: 1\n"),
            ("charts/mysql/templates/sts.yaml", "kind: StatefulSet\n"),
        ],
    )
}

/// Builds `tag`; returns its manifest digest (the build prints the image ID).
fn build(sb: &Sandbox, tag: &str, ctx: &Path) -> String {
    let id = stdout_of(sb.sealer().args(["build", "-t", tag]).arg(ctx));
    let image: serde_json::Value =
        serde_json::from_str(&stdout_of(sb.sealer().args(["inspect", tag]))).unwrap();
    assert_eq!(image["id"], id.trim(), "build prints the image ID");
    image["digest"].as_str().unwrap().to_string()
}

/// Hides digests, which change with the sealer version recorded in the metadata.
fn redact_digests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        let hex: String = rest[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        out.push_str(if hex.len() == 64 {
            "sha256:[digest]"
        } else {
            "sha256:"
        });
        rest = &rest[i + 7 + hex.len()..];
    }
    out.push_str(rest);
    out
}

fn blob_count(sb: &Sandbox) -> usize {
    std::fs::read_dir(sb.home().join("images/blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn inspect_prints_the_documented_json() {
    let sb = Sandbox::new();
    let ctx = release_notes_context(&sb);
    // The platform is fixed so the snapshot does not depend on the machine.
    stdout_of(
        sb.sealer()
            .args([
                "build",
                "--platform",
                "linux/amd64",
                "-t",
                "release-notes:v1",
            ])
            .arg(&ctx),
    );
    let text = stdout_of(sb.sealer().args(["inspect", "release-notes:v1"]));
    let text = text.replace(env!("CARGO_PKG_VERSION"), "[version]");
    insta::assert_snapshot!(redact_digests(&text));
}

#[test]
fn images_lists_and_tag_adds_a_name() {
    let sb = Sandbox::new();
    let ctx = release_notes_context(&sb);
    let digest = build(&sb, "app:v1", &ctx);
    stdout_of(
        sb.sealer()
            .args(["tag", "app:v1", "127.0.0.1:5000/team/app:v2"]),
    );
    let table = stdout_of(sb.sealer().arg("images"));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("127.0.0.1:5000/team/app:v2"),
        "{table}"
    );
    assert!(lines[2].starts_with("app:v1"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(sb.sealer().args(["images", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|i| i["digest"] == digest.as_str())
    );
    // The ID prefix finds the image too.
    let id = json[0]["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")[..12]
        .to_string();
    let by_id: serde_json::Value =
        serde_json::from_str(&stdout_of(sb.sealer().args(["inspect", &id]))).unwrap();
    assert_eq!(by_id["digest"], digest.as_str());
}

#[test]
fn rmi_removes_the_name_and_unused_blobs_only() {
    let sb = Sandbox::new();
    let ctx = release_notes_context(&sb);
    build(&sb, "app:v1", &ctx);
    stdout_of(sb.sealer().args(["tag", "app:v1", "app:v2"]));
    let before = blob_count(&sb);
    let out = stdout_of(sb.sealer().args(["rmi", "app:v1"]));
    assert_eq!(out, "untagged app:v1:latest\n".replace(":v1:latest", ":v1"));
    assert_eq!(blob_count(&sb), before, "app:v2 still uses every blob");
    stdout_of(sb.sealer().args(["inspect", "app:v2"]));
    stdout_of(sb.sealer().args(["rmi", "app:v2"]));
    assert_eq!(blob_count(&sb), 0, "no image is left, so no blob is");
    let err = failure_of(sb.sealer().args(["rmi", "app:v2"]));
    assert!(
        err.starts_with("error: no image app:v2 in the local store"),
        "{err}"
    );
}

#[test]
fn inspect_of_a_missing_image_says_what_to_do() {
    let sb = Sandbox::new();
    let err = failure_of(sb.sealer().args(["inspect", "nope:v1"]));
    assert_eq!(
        err,
        "error: no image nope:v1 in the local store\nhint: `sealer images` lists the local images; `sealer pull NAME` fetches one\n"
    );
}

#[test]
fn save_and_load_round_trip_into_another_store() {
    let a = Sandbox::new();
    let ctx = release_notes_context(&a);
    let digest = build(&a, "registry.example.com/apps/notes:v1", &ctx);
    let layout = a.path("layout");
    a.sealer()
        .args(["save", "registry.example.com/apps/notes:v1", "-o"])
        .arg(&layout)
        .assert()
        .success();
    for file in ["oci-layout", "index.json"] {
        assert!(layout.join(file).is_file(), "{file} missing");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "registry.example.com/apps/notes:v1"
    );

    let b = Sandbox::new();
    let out = stdout_of(b.sealer().args(["load", "-i"]).arg(&layout));
    assert_eq!(out, "loaded registry.example.com/apps/notes:v1\n");
    let image: serde_json::Value = serde_json::from_str(&stdout_of(
        b.sealer()
            .args(["inspect", "registry.example.com/apps/notes:v1"]),
    ))
    .unwrap();
    assert_eq!(image["digest"], digest.as_str());

    let err = failure_of(
        a.sealer()
            .args(["save", "registry.example.com/apps/notes:v1", "-o"])
            .arg(&layout),
    );
    assert!(err.contains("exists and is not empty"), "{err}");
}

#[test]
fn a_corrupt_layout_is_refused_and_loads_nothing() {
    let a = Sandbox::new();
    let ctx = release_notes_context(&a);
    build(&a, "notes:v1", &ctx);
    let layout = a.path("layout");
    a.sealer()
        .args(["save", "notes:v1", "-o"])
        .arg(&layout)
        .assert()
        .success();
    let image: serde_json::Value =
        serde_json::from_str(&stdout_of(a.sealer().args(["inspect", "notes:v1"]))).unwrap();
    let layer = image["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = layout.join("blobs/sha256").join(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let b = Sandbox::new();
    let err = failure_of(b.sealer().args(["load", "-i"]).arg(&layout));
    assert!(err.starts_with("error: corrupt blob "), "{err}");
    assert!(err.contains(&layer), "names the blob: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(stdout_of(b.sealer().args(["images", "-q"])), "");

    let err = failure_of(b.sealer().args(["load", "-i"]).arg(a.path("ctx")));
    assert!(err.contains("is not an OCI image layout"), "{err}");
}

/// skopeo's `oci:DIR:v1` names an image only by its tag; loading it needs `--name`.
#[test]
fn a_tag_only_layout_name_needs_a_name_flag() {
    let a = Sandbox::new();
    let ctx = release_notes_context(&a);
    let digest = build(&a, "notes:v1", &ctx);
    let layout = a.path("layout");
    a.sealer()
        .args(["save", "notes:v1", "-o"])
        .arg(&layout)
        .assert()
        .success();
    let index_path = layout.join("index.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(&index_path, index.replace("\"notes:v1\"", "\"v1\"")).unwrap();

    let b = Sandbox::new();
    let err = failure_of(b.sealer().args(["load", "-i"]).arg(&layout));
    assert!(err.contains("named only \"v1\""), "{err}");
    assert!(
        err.contains("hint: name it with `sealer load -i DIR --name NAME:TAG`"),
        "{err}"
    );
    let out = stdout_of(
        b.sealer()
            .args(["load", "-i"])
            .arg(&layout)
            .args(["--name", "notes:v2"]),
    );
    assert_eq!(out, "loaded notes:v2\n");
    let image: serde_json::Value =
        serde_json::from_str(&stdout_of(b.sealer().args(["inspect", "notes:v2"]))).unwrap();
    assert_eq!(image["digest"], digest.as_str());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_store_is_private_and_an_older_ones_directories_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    // What an older sealer made under umask 022: 0755 directories, a 0644 blob.
    let blobs = sb.home().join("images/blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for dir in [
        sb.home(),
        sb.home().join("images"),
        sb.home().join("images/blobs"),
        blobs.clone(),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(blobs.join("0".repeat(64)), "old").unwrap();

    build(&sb, "notes:v1", &release_notes_context(&sb));

    for dir in ["", "images", "images/blobs", "images/blobs/sha256"] {
        assert_eq!(mode(&sb.home().join(dir)), 0o700, "$SEALER_HOME/{dir}");
    }
    let written: Vec<PathBuf> = files_under(&sb.home().join("images"))
        .into_iter()
        .filter(|p| !p.ends_with("0".repeat(64)))
        .collect();
    assert!(
        written.len() >= 6,
        "index, layout, locks, blobs: {written:?}"
    );
    for file in written {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
