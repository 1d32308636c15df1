//! `sealer save -o FILE.tar` and `sealer load -i FILE.tar`: OCI archives and docker
//! archives, as Sealer, skopeo and Docker write them, and multi-platform indexes.

use crate::interop::{path_str, skopeo};
use crate::registry::{Transcript, app_names, build_web, digest_of, inspect, web_context};
use crate::support::Sandbox;
use crate::support::registry::Registry;
use serde_json::{Value, json};
use std::path::Path;

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn save_writes_an_oci_archive_that_load_skopeo_and_a_second_save_agree_on() {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let archive = sb.path("web.tar");
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&archive));
    assert!(archive.is_file(), "a tar file, not a directory");
    let first = std::fs::read(&archive).unwrap();
    // Reproducible: saving again writes the same bytes (over the old file).
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&archive));
    assert_eq!(std::fs::read(&archive).unwrap(), first);

    let mut names: Vec<String> = tar::Archive::new(first.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert!(names.contains(&"oci-layout".to_string()), "{names:?}");
    assert!(names.contains(&"index.json".to_string()), "{names:?}");

    let fresh = Sandbox::new();
    let loaded = t.ok(fresh.sealer().args(["load", "-i"]).arg(&archive));
    assert_eq!(loaded.trim(), "loaded web:v1");
    let image = inspect(&fresh, "web:v1");
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(app_names(&image), ["web"]);

    // skopeo reads it as an oci-archive, with our manifest.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", path_str(&archive)),
    ]);
    assert_eq!(crate::registry::sha256(&raw), digest);

    // A directory output still writes a layout.
    let dir = sb.path("layout");
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&dir));
    assert!(dir.join("oci-layout").is_file());
}

#[test]
fn load_reads_oci_and_docker_archives_skopeo_wrote() {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let layout = sb.path("layout");
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&layout));
    let source = format!("oci:{}:web:v1", path_str(&layout));
    let original = inspect(&sb, "web:v1");

    let oci = sb.path("skopeo-oci.tar");
    skopeo(&[
        "copy",
        &source,
        &format!("oci-archive:{}:apps/web:v2", path_str(&oci)),
    ]);
    let fresh = Sandbox::new();
    let loaded = t.ok(fresh.sealer().args(["load", "-i"]).arg(&oci));
    assert_eq!(loaded.trim(), "loaded apps/web:v2");
    let image = inspect(&fresh, "apps/web:v2");
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(app_names(&image), ["web"]);

    // A docker archive has no manifest annotations (so no Sealer metadata survives it), but
    // its config and layers do: the image ID is the one we built.
    let docker = sb.path("skopeo-docker.tar");
    skopeo(&[
        "copy",
        &source,
        &format!("docker-archive:{}:apps/web:v3", path_str(&docker)),
    ]);
    let loaded = t.ok(fresh.sealer().args(["load", "-i"]).arg(&docker));
    assert_eq!(loaded.trim(), "loaded apps/web:v3");
    let image = inspect(&fresh, "apps/web:v3");
    assert_eq!(image["id"], original["id"]);
    assert_eq!(image["labels"]["io.example/owner"], "team-a");
    assert_eq!(image["platform"], original["platform"]);

    // Docker 25+ writes an OCI archive naming the image by its tag only, with the full name
    // in containerd's annotation.
    let docker25 = sb.path("docker25");
    t.ok(sb.sealer().args(["save", "web:v1", "-o"]).arg(&docker25));
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(docker25.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["annotations"] = json!({
        "io.containerd.image.name": "docker.io/apps/web:v4",
        "org.opencontainers.image.ref.name": "v4",
    });
    std::fs::write(
        docker25.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let docker25_tar = sb.path("docker25.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&docker25_tar).unwrap());
    builder.append_dir_all(".", &docker25).unwrap();
    builder.finish().unwrap();
    drop(builder);
    let loaded = t.ok(fresh.sealer().args(["load", "-i"]).arg(&docker25_tar));
    assert_eq!(loaded.trim(), "loaded apps/web:v4");
    assert_eq!(inspect(&fresh, "apps/web:v4")["digest"], digest.as_str());

    let out = sb.path("missing.tar");
    let err = t.fails(fresh.sealer().args(["load", "-i"]).arg(&out));
    assert!(err.contains("does not exist"), "{err}");
    let junk = sb.path("junk.tar");
    std::fs::write(
        &junk,
        b"not a tar at all, just text that is long enough to be read",
    )
    .unwrap();
    let err = t.fails(fresh.sealer().args(["load", "-i"]).arg(&junk));
    assert!(err.contains("junk.tar"), "{err}");
}

/// A layout whose index.json names one multi-platform index holding `images` (`nested`),
/// or lists the images under one name, each with its platform.
fn multi_platform_layout(dir: &Path, name: &str, images: &[(&Path, &str)], nested: bool) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut manifests = Vec::new();
    for (layout, arch) in images {
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), blobs.join(entry.file_name())).unwrap();
        }
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let mut m = index["manifests"][0].clone();
        m.as_object_mut().unwrap().remove("annotations");
        m["platform"] = json!({"os": "linux", "architecture": arch});
        if !nested {
            m["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        manifests.push(m);
    }
    if !nested {
        let top = json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        return;
    }
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let digest = crate::registry::sha256(&nested);
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &nested).unwrap();
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn a_multi_platform_index_loads_this_machines_image_or_the_one_asked_for() {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let ctx = web_context(&sb);
    let mut digests = std::collections::BTreeMap::new();
    let mut layouts = Vec::new();
    for arch in ["amd64", "arm64"] {
        let name = format!("web-{arch}:v1");
        let id = digest_of(
            &t.ok(sb
                .sealer()
                .args(["build", "--platform", &format!("linux/{arch}"), "-t", &name])
                .arg(&ctx)),
        );
        let image = inspect(&sb, &name);
        assert_eq!(image["id"], id.as_str(), "build prints the image ID");
        digests.insert(arch, image["digest"].as_str().unwrap().to_string());
        let layout = sb.path(&format!("layout-{arch}"));
        t.ok(sb.sealer().args(["save", &name, "-o"]).arg(&layout));
        layouts.push((layout, arch));
    }
    assert_ne!(digests["amd64"], digests["arm64"]);
    let multi = sb.path("multi");
    let images: Vec<(&Path, &str)> = layouts.iter().map(|(p, a)| (p.as_path(), *a)).collect();
    multi_platform_layout(&multi, "apps/web:v1", &images, true);

    let host = Sandbox::new();
    let loaded = t.ok(host.sealer().args(["load", "-i"]).arg(&multi));
    assert_eq!(loaded.trim(), "loaded apps/web:v1");
    if let Some(digest) = digests.get(host_arch()) {
        assert_eq!(inspect(&host, "apps/web:v1")["digest"], digest.as_str());
    }

    for arch in ["amd64", "arm64"] {
        let other = Sandbox::new();
        t.ok(other
            .sealer()
            .args(["load", "--platform", &format!("linux/{arch}"), "-i"])
            .arg(&multi));
        let image = inspect(&other, "apps/web:v1");
        assert_eq!(image["digest"], digests[arch].as_str());
        assert_eq!(image["platform"], format!("linux/{arch}"));
    }

    let err = t.fails(
        Sandbox::new()
            .sealer()
            .args(["load", "--platform", "linux/s390x", "-i"])
            .arg(&multi),
    );
    assert!(
        err.contains("the multi-platform index has no image for linux/s390x (it has linux/amd64, linux/arm64)"),
        "{err}"
    );
    assert!(err.contains("--platform"), "{err}");

    // The same images listed flat under one name, each with its platform.
    let flat = sb.path("flat");
    multi_platform_layout(&flat, "apps/web:v1", &images, false);
    let other = Sandbox::new();
    t.ok(other
        .sealer()
        .args(["load", "--platform", "linux/arm64", "-i"])
        .arg(&flat));
    assert_eq!(
        inspect(&other, "apps/web:v1")["digest"],
        digests["arm64"].as_str()
    );
    let err = t.fails(
        Sandbox::new()
            .sealer()
            .args(["load", "--platform", "linux/riscv64", "-i"])
            .arg(&flat),
    );
    assert!(err.contains("no image for linux/riscv64"), "{err}");

    // Through a registry: skopeo pushes the index, pull picks a platform the same way.
    let registry = Registry::anonymous();
    let remote = registry.image("apps/web:multi");
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:apps/web:v1", path_str(&multi)),
        &format!("docker://{remote}"),
    ]);
    for arch in ["amd64", "arm64"] {
        let other = Sandbox::new();
        let pulled =
            t.ok(other
                .sealer()
                .args(["pull", "--platform", &format!("linux/{arch}"), &remote]));
        assert_eq!(digest_of(&pulled), digests[arch]);
    }

    // The same index in an archive.
    let archive = sb.path("multi.tar");
    let file = std::fs::File::create(&archive).unwrap();
    let mut builder = tar::Builder::new(file);
    builder.append_dir_all(".", &multi).unwrap();
    builder.finish().unwrap();
    let other = Sandbox::new();
    t.ok(other
        .sealer()
        .args(["load", "--platform", "linux/arm64", "-i"])
        .arg(&archive));
    assert_eq!(
        inspect(&other, "apps/web:v1")["digest"],
        digests["arm64"].as_str()
    );
}

#[test]
fn an_archive_entry_that_escapes_is_refused_and_nothing_lands_outside() {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let archive = sb.path("evil.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(4);
    header.set_mode(0o644);
    // `set_path` refuses `..`; a hostile archive writes the bytes itself.
    let name = b"../../../../evil-from-archive";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    builder.append(&header, &b"evil"[..]).unwrap();
    builder.finish().unwrap();
    drop(builder);
    // What a load killed midway left (its PID is past any pid_max) goes with the next load.
    let cache = sb.home().join("cache");
    let stale = cache.join(".tmp-load-4194305-AbC123");
    std::fs::create_dir_all(stale.join("archive")).unwrap();
    let err = t.fails(sb.sealer().args(["load", "-i"]).arg(&archive));
    assert!(!stale.exists(), "a dead load's temp directory is removed");
    assert!(
        err.contains("entry \"../../../../evil-from-archive\" escapes the archive"),
        "{err}"
    );
    for dir in [sb.path(""), sb.home(), cache.clone()] {
        assert!(!dir.join("evil-from-archive").exists());
    }
    // The temp directory went with the failed load.
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
