//! `sealer save` and `sealer load`: standalone OCI image layouts, or archives of them
//! ([`super::archive`]), in and out of the store.

use super::layout::Layout;
use super::metadata::Platform;
use super::oci::{
    DOCKER_LIST_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Index, REF_NAME_ANNOTATION,
};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::diag::{Error, IoContext, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Writes `image`, named `name` in its index, as a standalone OCI layout at `out`, or as an
/// OCI archive (the layout in a tar) when `out` ends in `.tar`.
///
/// Either is assembled next to `out` and renamed into place, so `out` either does not exist
/// or holds a complete layout or archive.
pub fn save(store: &Store, name: &Reference, image: &Image, out: &Path) -> Result<()> {
    if !super::archive::names_archive(out) {
        return save_layout(store, name, image, out);
    }
    if out.is_dir() {
        return Err(Error::msg(format!("{} is a directory", out.display()))
            .hint("name the archive to write, e.g. -o image.tar"));
    }
    let staging = staging_path(out);
    let result = save_layout(store, name, image, &staging)
        .and_then(|()| super::archive::write(&staging, out));
    let _ = fs::remove_dir_all(&staging);
    result
}

fn save_layout(store: &Store, name: &Reference, image: &Image, dir: &Path) -> Result<()> {
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

/// Loads every image of the layout at `dir` into the store; returns their names. Errors
/// name `shown` (the archive a layout was unpacked from, else `dir`).
///
/// Every blob is verified (size and digest) before any name is added, so a corrupt layout
/// leaves the store's names untouched. `name` names an image the layout left unnamed. Of a
/// multi-platform index, the image of `platform` is loaded.
pub fn load(
    store: &Store,
    dir: &Path,
    shown: &Path,
    name: Option<&Reference>,
    platform: &Platform,
) -> Result<Vec<Reference>> {
    let source = Layout::open(dir)?;
    let index = source.read_foreign_index()?;
    if index.manifests.is_empty() {
        return Err(Error::msg(format!(
            "{}: the layout holds no image",
            shown.display()
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
            shown.display()
        ))
        .hint("load a layout holding one image with `sealer load -i DIR --name NAME:TAG`"));
    }
    let mut plan: Vec<(Reference, Image)> = Vec::new();
    for listed in one_per_name(&index.manifests, platform)
        .map_err(|e| e.context(format!("{}", shown.display())))?
    {
        let reference = match (listed.ref_name(), name) {
            (_, Some(n)) if index.manifests.len() == 1 => n.clone(),
            // Docker 25+'s `docker save` keeps the full name here and only the tag in
            // the OCI annotation.
            (Some(_), _) if listed.annotations.contains_key(CONTAINERD_NAME_ANNOTATION) => {
                parse_layout_name(&listed.annotations[CONTAINERD_NAME_ANNOTATION], shown)?
            }
            (Some(text), _) => parse_layout_name(text, shown)?,
            (None, _) => unreachable_name(shown)?,
        };
        let chosen;
        let entry = if listed.media_type == INDEX_MEDIA_TYPE
            || listed.media_type == DOCKER_LIST_MEDIA_TYPE
        {
            chosen = choose_platform(&source, listed, platform)
                .map_err(|e| e.context(format!("{}: {reference}", shown.display())))?;
            &chosen
        } else {
            listed
        };
        let image =
            Image::read(&source, entry).map_err(|e| e.context(format!("{}", shown.display())))?;
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

/// The image name containerd and Docker 25+ record in an OCI layout's index.
const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// The entries of a layout's index, one per name: several under one name, each for a
/// platform (what some tools write instead of a nested index), give the one of `platform`.
fn one_per_name<'a>(entries: &'a [Descriptor], platform: &Platform) -> Result<Vec<&'a Descriptor>> {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&Descriptor>> = Default::default();
    for entry in entries {
        if let Some(name) = entry.ref_name() {
            by_name.entry(name).or_default().push(entry);
        }
    }
    let mut out: Vec<&Descriptor> = Vec::new();
    for entry in entries {
        let Some(name) = entry.ref_name() else {
            out.push(entry);
            continue;
        };
        // Decided once, at the first entry of the name.
        let Some(same) = by_name.remove(name) else {
            continue;
        };
        if same.len() == 1 {
            out.push(entry);
            continue;
        }
        let platforms: Vec<&Platform> = same.iter().filter_map(|e| e.platform.as_ref()).collect();
        if platforms.len() != same.len() {
            return Err(Error::msg(format!(
                "the layout names {} images {name}, not all with a platform",
                same.len()
            )));
        }
        match same.iter().find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| platform_matches(p, platform))
        }) {
            Some(found) => out.push(found),
            None => return Err(no_image_for(platform, platforms.into_iter())),
        }
    }
    Ok(out)
}

fn platform_matches(offered: &Platform, wanted: &Platform) -> bool {
    offered.os == wanted.os
        && offered.architecture == wanted.architecture
        && (wanted.variant.is_none() || offered.variant == wanted.variant)
}

fn no_image_for<'a>(platform: &Platform, offered: impl Iterator<Item = &'a Platform>) -> Error {
    let mut offered: Vec<String> = offered.map(|p| p.to_string()).collect();
    offered.sort();
    offered.dedup();
    Error::msg(format!(
        "the multi-platform index has no image for {platform} (it has {})",
        if offered.is_empty() {
            "none with a platform".to_string()
        } else {
            offered.join(", ")
        }
    ))
    .hint("pass --platform OS/ARCH to load another platform's image")
}

/// The manifest of `platform` in the multi-platform index `listed` names.
fn choose_platform(
    source: &Layout,
    listed: &Descriptor,
    platform: &Platform,
) -> Result<Descriptor> {
    let bytes = source.read_document(&listed.digest)?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| Error::msg(format!("index {} is not valid: {e}", listed.digest)))?;
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform_matches(p, platform))
        })
        .cloned()
        .ok_or_else(|| {
            no_image_for(
                platform,
                index.manifests.iter().filter_map(|d| d.platform.as_ref()),
            )
        })
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
