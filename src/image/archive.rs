//! Image archives, the tar files `sealer save -o FILE.tar` writes and `sealer load -i
//! FILE.tar` reads, as Sealer's `save`/`load` do:
//!
//! - an **OCI archive**: an OCI image layout in a tar (what `sealer save`, `skopeo copy ...
//!   oci-archive:` and Docker 25+'s `docker save` write);
//! - a **docker archive**: `manifest.json` listing each image's config, layers and
//!   `RepoTags` (what `docker save` before 25 and `skopeo copy ... docker-archive:` write),
//!   turned here into an OCI layout: the config and the layers are kept byte for byte (an
//!   uncompressed layer stays an `application/vnd.oci.image.layer.v1.tar` layer, so the
//!   config's diff IDs still name it).
//!
//! An archive is unpacked into a temp directory before it is read, bounded: what it unpacks
//! to is metered against the unpacked-size limit, at most [`MAX_ENTRIES`] entries, and no
//! entry may leave the directory (absolute paths, `..`). Links are never made on disk: a
//! symbolic or hard link whose target stays inside the archive is kept as an alias (docker
//! archives link `ID/layer.tar` to the layer file), one that leaves it is refused, and
//! devices and fifos are refused.

use super::layout::Layout;
use super::oci::{
    CONFIG_MEDIA_TYPE, Descriptor, Index, MANIFEST_MEDIA_TYPE, Manifest, REF_NAME_ANNOTATION,
};
use crate::diag::{Error, IoContext, Result};
use crate::limits::{DOCUMENT_MAX, format_size};
use crate::rootfs::budget::{Budget, Metered};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead as _, Read};
use std::path::{Component, Path, PathBuf};

/// Entries an archive may hold. An image layout has a few per image (its blobs); a docker
/// archive a few per layer.
pub const MAX_ENTRIES: usize = 100_000;

const UNCOMPRESSED_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `sealer save` writes an archive at `path` (a name ending in `.tar`) rather than a
/// layout directory. (`sealer load` reads an archive from anything that is not a directory.)
pub fn names_archive(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tar")
}

/// Writes the layout at `layout_dir` as a tar at `out`: entries sorted, owner 0:0, mtime 0,
/// so the same image gives the same bytes. Written to a temp name and renamed into place.
pub fn write(layout_dir: &Path, out: &Path) -> Result<()> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive.tar".into());
    let tmp = out.with_file_name(format!(".{name}.sealer-tmp-tar-{}", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp).with_path("cannot create", &tmp)?;
        let mut builder = tar::Builder::new(io::BufWriter::new(file));
        let mut paths = Vec::new();
        collect(layout_dir, "", &mut paths)?;
        for (rel, is_dir) in paths {
            let path = layout_dir.join(&rel);
            let mut header = tar::Header::new_ustar();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            if is_dir {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{rel}/"), io::empty())
                    .with_path("cannot write", &tmp)?;
            } else {
                let source = File::open(&path).with_path("cannot read", &path)?;
                let size = source.metadata().with_path("cannot read", &path)?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                builder
                    .append_data(&mut header, &rel, io::BufReader::new(source))
                    .with_path("cannot write", &tmp)?;
            }
        }
        let writer = builder.into_inner().with_path("cannot write", &tmp)?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_path("cannot write", &tmp)?;
        file.sync_all().with_path("cannot write", &tmp)?;
        fs::rename(&tmp, out).with_path("cannot create", out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Files and directories under `dir`, relative, sorted, directories before their content.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, bool)>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_path("cannot read", dir)?
        .collect::<io::Result<_>>()
        .with_path("cannot read", dir)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry
            .file_type()
            .with_path("cannot read", &entry.path())?
            .is_dir()
        {
            out.push((rel.clone(), true));
            collect(&entry.path(), &format!("{rel}/"), out)?;
        } else {
            out.push((rel, false));
        }
    }
    Ok(())
}

/// An archive that is not a (whole) tar: most often a file that is not an image archive,
/// or one cut short by a copy.
fn broken_tar(message: String) -> Error {
    Error::msg(message).hint(
        "`sealer load` reads an archive made by `sealer save` or `docker save` (a tar, gzipped or not), or an OCI layout directory",
    )
}

/// Unpacks the archive `file` (a tar, or a gzip-compressed tar) into the empty directory
/// `into`, and returns the OCI layout it holds: the archive's own (an OCI archive), or one
/// made in `into/oci` from a docker archive.
pub fn unpack(file: &Path, into: &Path, max_unpacked: u64) -> Result<PathBuf> {
    let shown = file.display();
    let tree = into.join("archive");
    fs::create_dir(&tree).with_path("cannot create", &tree)?;
    let budget = Budget::new(max_unpacked);
    let source = File::open(file).with_path("cannot read", file)?;
    let mut reader = io::BufReader::new(source);
    let gzip = reader
        .fill_buf()
        .with_path("cannot read", file)?
        .starts_with(&GZIP_MAGIC);
    let decompressed: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut metered = Metered {
        inner: decompressed,
        budget: &budget,
    };
    let result = unpack_tar(&mut metered, &tree, &budget, MAX_ENTRIES);
    if let Some(over) = budget.exceeded() {
        return Err(over.context(format!("{shown}")));
    }
    let links = result.map_err(|e| e.context(format!("{shown}")))?;
    if tree.join("oci-layout").is_file() {
        return Ok(tree);
    }
    if tree.join("manifest.json").is_file() {
        let layout = into.join("oci");
        from_docker_archive(&tree, &links, &layout).map_err(|e| e.context(format!("{shown}")))?;
        return Ok(layout);
    }
    Err(Error::msg(format!(
        "{shown} is neither an OCI archive (no oci-layout) nor a docker archive (no manifest.json)"
    ))
    .hint("load what `sealer save`, `docker save` or `skopeo copy ... oci-archive:FILE` wrote"))
}

/// Link path → the path it names, both relative to the archive's root.
type Links = BTreeMap<PathBuf, PathBuf>;

fn unpack_tar(
    reader: &mut dyn Read,
    root: &Path,
    budget: &Budget,
    max_entries: usize,
) -> Result<Links> {
    let mut links = Links::new();
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive
        .entries()
        .map_err(|e| broken_tar(format!("not a tar archive: {e}")))?;
    let mut count = 0usize;
    while let Some(entry) = budget.next_entry(&mut entries) {
        let mut entry = entry.map_err(|e| broken_tar(format!("broken tar archive: {e}")))?;
        count += 1;
        if count > max_entries {
            return Err(Error::msg(format!(
                "the archive has more than {max_entries} entries, the most sealer reads"
            )));
        }
        let raw = entry
            .path()
            .map_err(|e| broken_tar(format!("broken tar archive: {e}")))?
            .into_owned();
        let shown = raw.display().to_string();
        let rel = inside(&raw).ok_or_else(|| {
            Error::msg(format!("entry {shown:?} escapes the archive"))
                .hint("an image archive holds relative paths without `..`")
        })?;
        let path = root.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if rel.as_os_str().is_empty() {
                    continue;
                }
                fs::create_dir_all(&path).with_path("cannot create", &path)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(Error::msg(format!("entry {shown:?} is not a file name")));
                }
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > budget.remaining() {
                    return Err(budget.over_total_at(&shown, size));
                }
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).with_path("cannot create", parent)?;
                }
                let mut out = File::create(&path).with_path("cannot create", &path)?;
                io::copy(&mut entry, &mut out)
                    .map_err(|e| broken_tar(format!("broken tar archive: entry {shown}: {e}")))?;
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let target = entry
                    .link_name()
                    .map_err(|e| broken_tar(format!("broken tar archive: {e}")))?
                    .unwrap_or_default()
                    .into_owned();
                // A symbolic link is relative to its directory; a hard link to the root.
                let base = match kind {
                    tar::EntryType::Symlink => rel.parent().unwrap_or(Path::new("")).to_path_buf(),
                    _ => PathBuf::new(),
                };
                let resolved = resolve_link(&base, &target).ok_or_else(|| {
                    Error::msg(format!(
                        "entry {shown:?} links to {:?}, outside the archive",
                        target.display().to_string()
                    ))
                })?;
                links.insert(rel, resolved);
            }
            other => {
                return Err(Error::msg(format!(
                    "entry {shown:?} is a {}: an image archive holds files and directories only",
                    kind_name(other)
                )));
            }
        }
        io::copy(&mut entry, &mut io::sink())
            .map_err(|e| broken_tar(format!("broken tar archive: {e}")))?;
    }
    Ok(links)
}

/// `target` read from the directory `base` (both relative to the root), or `None` when it
/// is absolute or climbs out of the root.
fn resolve_link(base: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = base
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    for component in target.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}

/// `path` as a relative path without `.` or `..`, or `None` when it would leave the root.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// One image of a docker archive's `manifest.json`.
#[derive(serde::Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Makes an OCI layout at `layout_dir` of the images of the docker archive unpacked at
/// `tree`, named by their `RepoTags`.
fn from_docker_archive(tree: &Path, links: &Links, layout_dir: &Path) -> Result<()> {
    let manifest_path = tree.join("manifest.json");
    let bytes = read_document(&manifest_path, "manifest.json")?;
    let entries: Vec<DockerEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::msg(format!("manifest.json is not a docker archive's: {e}")))?;
    if entries.is_empty() {
        return Err(Error::msg("manifest.json lists no image"));
    }
    let layout = Layout::create(layout_dir)?;
    let mut index = Index::default();
    for entry in entries {
        let config_path = member(tree, links, &entry.config)?;
        let config = read_document(&config_path, &entry.config)?;
        let config_digest = layout.write_blob(&config)?;
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let path = member(tree, links, layer)?;
            let mut file = File::open(&path).with_path("cannot read", &path)?;
            let mut magic = [0u8; 2];
            let gzip = file.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
            let mut file = File::open(&path).with_path("cannot read", &path)?;
            let mut writer = layout.blob_writer()?;
            io::copy(&mut file, &mut writer).with_path("cannot read", &path)?;
            let (digest, size) = writer.commit()?;
            let media_type = if gzip {
                GZIP_LAYER_MEDIA_TYPE
            } else {
                UNCOMPRESSED_LAYER_MEDIA_TYPE
            };
            layers.push(Descriptor::new(media_type, digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            config: Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, config.len() as u64),
            layers,
            annotations: Default::default(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::msg(format!("cannot encode a manifest: {e}")))?;
        let digest = layout.write_blob(&manifest_bytes)?;
        let descriptor = Descriptor::new(MANIFEST_MEDIA_TYPE, digest, manifest_bytes.len() as u64);
        let tags = entry.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            index.manifests.push(descriptor.clone());
        }
        for tag in tags {
            let mut named = descriptor.clone();
            named.annotations.insert(REF_NAME_ANNOTATION.into(), tag);
            index.manifests.push(named);
        }
    }
    layout.write_index(&index)
}

/// A file of the archive a `manifest.json` names, through links (a few: a cycle ends);
/// names that leave the archive are refused.
fn member(tree: &Path, links: &Links, name: &str) -> Result<PathBuf> {
    let mut rel = inside(Path::new(name))
        .filter(|r| !r.as_os_str().is_empty())
        .ok_or_else(|| {
            Error::msg(format!(
                "manifest.json names {name:?}, which is outside the archive"
            ))
        })?;
    for _ in 0..8 {
        match links.get(&rel) {
            Some(target) => rel = target.clone(),
            None => break,
        }
    }
    let path = tree.join(rel);
    if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
        return Err(Error::msg(format!(
            "manifest.json names {name:?}, which the archive does not hold"
        )));
    }
    Ok(path)
}

fn read_document(path: &Path, shown: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(DOCUMENT_MAX + 1).read_to_end(&mut bytes))
        .with_path("cannot read", path)?;
    if bytes.len() as u64 > DOCUMENT_MAX {
        return Err(Error::msg(format!(
            "{shown} is larger than {}, the limit of a manifest or an image config",
            format_size(DOCUMENT_MAX)
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // set_path refuses `..`: write the name bytes as a hostile archive would.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn unpack_bytes(bytes: &[u8], limit: u64) -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.tar");
        fs::write(&file, bytes).unwrap();
        let into = dir.path().join("into");
        fs::create_dir(&into).unwrap();
        unpack(&file, &into, limit).map(|_| ())
    }

    #[test]
    fn entries_that_escape_or_are_links_are_refused() {
        for (name, kind, why) in [
            ("../evil", tar::EntryType::Regular, "escapes the archive"),
            ("/etc/evil", tar::EntryType::Regular, "escapes the archive"),
            (
                "a/../../evil",
                tar::EntryType::Regular,
                "escapes the archive",
            ),
            (
                "link",
                tar::EntryType::Symlink,
                "links to \"/etc\", outside the archive",
            ),
            (
                "a/link",
                tar::EntryType::Symlink,
                "links to \"/etc\", outside the archive",
            ),
            ("fifo", tar::EntryType::Fifo, "is a fifo"),
        ] {
            let err = unpack_bytes(&tar_of(&[(name, kind, b"x")]), 1 << 20)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
    }

    #[test]
    fn an_archive_past_the_limit_or_of_neither_kind_is_refused() {
        let big = vec![0u8; 4096];
        let err = unpack_bytes(&tar_of(&[("f", tar::EntryType::Regular, &big)]), 2048)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the limit of an unpacked image"), "{err}");
        let err = unpack_bytes(&tar_of(&[("f", tar::EntryType::Regular, b"x")]), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither an OCI archive"), "{err}");
    }

    #[test]
    fn entries_past_the_limit_and_links_inside_are_handled() {
        let bytes = tar_of(&[
            ("a", tar::EntryType::Regular, b"1"),
            ("b", tar::EntryType::Regular, b"2"),
            ("c", tar::EntryType::Regular, b"3"),
        ]);
        let root = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 20);
        let err = unpack_tar(&mut bytes.as_slice(), root.path(), &budget, 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more than 2 entries, the most sealer reads"),
            "{err}"
        );

        // A link inside the archive is an alias, never a link on disk.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_link_name("../layer.tar").unwrap();
        header.set_path("id/layer.tar").unwrap();
        header.set_cksum();
        builder.append(&header, io::empty()).unwrap();
        let bytes = builder.into_inner().unwrap();
        let root = tempfile::tempdir().unwrap();
        let links = unpack_tar(&mut bytes.as_slice(), root.path(), &budget, 10).unwrap();
        assert_eq!(
            links.get(Path::new("id/layer.tar")),
            Some(&PathBuf::from("layer.tar"))
        );
        assert!(!root.path().join("id/layer.tar").exists());
    }

    #[test]
    fn a_docker_archive_naming_a_file_outside_it_is_refused() {
        let manifest = br#"[{"Config":"../../etc/passwd","RepoTags":["a:b"],"Layers":[]}]"#;
        let err = unpack_bytes(
            &tar_of(&[("manifest.json", tar::EntryType::Regular, manifest)]),
            1 << 20,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("outside the archive"), "{err}");
    }
}
