//! `sealer save` and `sealer load`: standalone OCI image layouts in and out of the store.

use super::layout::Layout;
use super::oci::{Descriptor, INDEX_MEDIA_TYPE, Index, REF_NAME_ANNOTATION};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::diag::{Error, IoContext, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Writes `image` as a standalone OCI layout at `dir`, named `name` in its index.
///
/// The layout is assembled next to `dir` and renamed into place, so `dir` either does not
/// exist or holds a complete layout.
pub fn save(store: &Store, name: &Reference, image: &Image, dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .with_path("cannot read", dir)?
            .next()
            .is_none();
        if !empty {
            return Err(
                Error::msg(format!("{} exists and is not empty", dir.display()))
                    .hint("save into a new directory"),
            );
        }
        fs::remove_dir(dir).with_path("cannot replace", dir)?;
    }
    let staging = staging_path(dir);
    let result = (|| {
        let layout = Layout::create(&staging)?;
        layout.copy_blob_from(store.layout(), &image.manifest_descriptor)?;
        for blob in image.manifest.blobs() {
            layout.copy_blob_from(store.layout(), blob)?;
        }
        let mut entry = image.manifest_descriptor.clone();
        entry.annotations.clear();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
        layout.write_index(&Index {
            manifests: vec![entry],
            ..Index::default()
        })?;
        fs::rename(&staging, dir).with_path("cannot create", dir)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn staging_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "layout".into());
    dir.with_file_name(format!(".{name}.sealer-tmp-{}", std::process::id()))
}

/// Loads every image of the layout at `dir` into the store; returns their names.
///
/// Every blob is verified (size and digest) before any name is added, so a corrupt layout
/// leaves the store's names untouched. `name` names an image the layout left unnamed.
pub fn load(store: &Store, dir: &Path, name: Option<&Reference>) -> Result<Vec<Reference>> {
    let source = Layout::open(dir)?;
    let index = source.read_foreign_index()?;
    if index.manifests.is_empty() {
        return Err(Error::msg(format!(
            "{}: the layout holds no image",
            dir.display()
        )));
    }
    let unnamed = index
        .manifests
        .iter()
        .filter(|d| d.ref_name().is_none())
        .count();
    if unnamed > 0 && (name.is_none() || index.manifests.len() > 1) {
        return Err(Error::msg(format!(
            "{}: the layout has an image without a name (org.opencontainers.image.ref.name)",
            dir.display()
        ))
        .hint("load a layout holding one image with `sealer load -i DIR --name NAME:TAG`"));
    }
    let mut plan: Vec<(Reference, Image)> = Vec::new();
    for entry in &index.manifests {
        if entry.media_type == INDEX_MEDIA_TYPE {
            return Err(Error::msg(format!(
                "{}: multi-platform indexes are not supported (entry {})",
                dir.display(),
                entry.digest
            )));
        }
        let reference = match (entry.ref_name(), name) {
            (_, Some(n)) if index.manifests.len() == 1 => n.clone(),
            (Some(text), _) => parse_layout_name(text, dir)?,
            (None, _) => unreachable_name(dir)?,
        };
        let image =
            Image::read(&source, entry).map_err(|e| e.context(format!("{}", dir.display())))?;
        for blob in image.manifest.blobs() {
            source.verify_blob(blob)?;
        }
        plan.push((reference, image));
    }
    let _writer = store.writer_lock()?;
    for (_, image) in &plan {
        store
            .layout()
            .copy_blob_from(&source, &image.manifest_descriptor)?;
        for blob in image.manifest.blobs() {
            store.layout().copy_blob_from(&source, blob)?;
        }
    }
    let mut names = Vec::new();
    for (reference, image) in plan {
        let mut descriptor: Descriptor = image.manifest_descriptor.clone();
        descriptor.annotations.clear();
        descriptor.platform = Some(image.config.platform());
        store.tag(&reference, &descriptor)?;
        names.push(reference);
    }
    Ok(names)
}

/// skopeo's `oci:DIR:TAG` writes just the tag (`v1`) as the name. Such a name is not a
/// reference of its own, so say what to do instead of guessing a repository: a name without
/// a tag or digest separator is refused (`sealer save` always writes `NAME:TAG`).
fn parse_layout_name(text: &str, dir: &Path) -> Result<Reference> {
    let last = text.rsplit('/').next().unwrap_or(text);
    if !last.contains(':') && !last.contains('@') {
        return Err(Error::msg(format!(
            "{}: the image is named only {text:?} in index.json, which is a tag without a repository",
            dir.display()
        ))
        .hint("name it with `sealer load -i DIR --name NAME:TAG`"));
    }
    Reference::parse(text).map_err(|e| {
        e.context(format!("{}: image name in index.json", dir.display()))
            .hint("name it with `sealer load -i DIR --name NAME:TAG`")
    })
}

fn unreachable_name(dir: &Path) -> Result<Reference> {
    Err(Error::msg(format!(
        "{}: an image has no name",
        dir.display()
    )))
}
