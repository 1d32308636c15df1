//! The local image store: an OCI layout under `$SEALER_HOME/images` whose `index.json`
//! names images with `org.opencontainers.image.ref.name` annotations.
//!
//! Locking: blob writers (build, pull, load) hold `gc.lock` shared while their blobs are not
//! yet referenced by the index; garbage collection holds it exclusively, so it never deletes
//! a blob a writer is about to tag. Every read-modify-write of `index.json` holds
//! `index.lock` exclusively.

use super::layout::Layout;
use super::metadata::ImageMetadata;
use super::oci::{
    DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, ImageConfig, Index, MANIFEST_MEDIA_TYPE, Manifest,
    REF_NAME_ANNOTATION,
};
use super::reference::Reference;
use crate::diag::{Error, IoContext, Result};
use crate::home::FILE_MODE;
use crate::limits::STALE_TEMP_AGE;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

pub struct Store {
    layout: Layout,
}

/// An image read from a layout: its manifest, config and Sealer metadata.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// `None` for an OCI image that is not a Sealer Image.
    pub metadata: Option<ImageMetadata>,
}

impl Image {
    /// The manifest digest (what registries and `@sha256:` references name).
    pub fn digest(&self) -> &str {
        &self.manifest_descriptor.digest
    }

    /// The image ID: the config digest, as Docker and Sealer show it.
    pub fn id(&self) -> &str {
        &self.manifest.config.digest
    }

    /// Total compressed size of config and layers.
    pub fn size(&self) -> u64 {
        self.manifest.blobs().map(|d| d.size).sum()
    }

    /// Reads an image out of any layout, verifying manifest and config digests.
    pub fn read(layout: &Layout, descriptor: &Descriptor) -> Result<Image> {
        let bytes = layout.read_document(&descriptor.digest)?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("manifest {} is not valid: {e}", descriptor.digest)))?;
        let media_type = manifest
            .media_type
            .as_deref()
            .unwrap_or(descriptor.media_type.as_str());
        if media_type != MANIFEST_MEDIA_TYPE && media_type != DOCKER_MANIFEST_MEDIA_TYPE {
            return Err(Error::msg(format!(
                "manifest {} has unsupported media type {media_type}",
                descriptor.digest
            )));
        }
        let config_bytes = layout.read_document(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            Error::msg(format!(
                "image config {} is not valid: {e}",
                manifest.config.digest
            ))
        })?;
        let metadata = ImageMetadata::from_annotations(&manifest.annotations)?;
        Ok(Image {
            manifest_descriptor: descriptor.clone(),
            manifest,
            config,
            metadata,
        })
    }
}

/// A held lock; released on drop.
pub struct LockGuard {
    _file: File,
}

impl Store {
    /// Opens (creating if needed) the store of `$SEALER_HOME`: its directories 0700 (made so,
    /// or tightened), its new files 0600.
    pub fn open(home: &Path) -> Result<Store> {
        let root = home.join("images");
        crate::home::open_home(home)?;
        for dir in [root.clone(), root.join("blobs"), root.join("blobs/sha256")] {
            crate::home::private_dir(&dir)?;
        }
        // Two first uses racing must not both write an empty index over a fresh tag.
        let lock_path = root.join("index.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(&lock_path)
            .with_path("cannot open lock file", &lock_path)?;
        lock.lock().with_path("cannot lock", &lock_path)?;
        let layout = Layout::create_with(&root, FILE_MODE)?;
        Ok(Store { layout })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path: PathBuf = self.layout.root().join(name);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(&path)
            .with_path("cannot open lock file", &path)
    }

    /// Taken by anything that writes blobs before tagging them (build, pull, load). Temp
    /// files killed writers left are removed here, so they go with the next write.
    pub fn writer_lock(&self) -> Result<LockGuard> {
        let file = self.lock_file("gc.lock")?;
        file.lock_shared()
            .with_path("cannot lock", &self.layout.root().join("gc.lock"))?;
        self.layout.remove_stale_temps(STALE_TEMP_AGE);
        Ok(LockGuard { _file: file })
    }

    fn index_lock(&self) -> Result<LockGuard> {
        let file = self.lock_file("index.lock")?;
        file.lock()
            .with_path("cannot lock", &self.layout.root().join("index.lock"))?;
        Ok(LockGuard { _file: file })
    }

    /// Every named image, sorted by name.
    pub fn list(&self) -> Result<Vec<(Reference, Descriptor)>> {
        let index = self.layout.read_index()?;
        let mut out = Vec::new();
        for entry in index.manifests {
            let Some(name) = entry.ref_name() else {
                continue;
            };
            // A name we cannot parse was not written by us; skip it rather than fail `images`.
            if let Ok(reference) = Reference::parse(name) {
                out.push((reference, entry));
            }
        }
        out.sort_by_key(|a| a.0.to_string());
        Ok(out)
    }

    /// The stored name closest to `reference` when it looks like a typo of it, for "did you
    /// mean" (a name that is not in the store is otherwise looked for in a registry).
    pub fn nearest_name(&self, reference: &Reference) -> Option<String> {
        let names: Vec<String> = self
            .list()
            .ok()?
            .into_iter()
            .map(|(r, _)| r.to_string())
            .collect();
        let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
        let wanted = reference.to_string();
        crate::clusterfile::suggest::closest(&wanted, &candidates)
            .filter(|near| *near != wanted)
            .map(str::to_string)
    }

    /// Finds an image by name, by manifest digest, or by a unique prefix (≥ 4 hex digits) of
    /// its ID.
    pub fn find(&self, name: &str) -> Result<Option<(Reference, Image)>> {
        let entries = self.list()?;
        if let Ok(reference) = Reference::parse(name) {
            for (r, d) in &entries {
                if *r == reference {
                    return Ok(Some((r.clone(), Image::read(&self.layout, d)?)));
                }
            }
            // `name@sha256:...` or a bare name whose digest is in the store.
            if let Some(digest) = reference.digest() {
                for (r, d) in &entries {
                    if d.digest == digest && r.name() == reference.name() {
                        return Ok(Some((reference.clone(), Image::read(&self.layout, d)?)));
                    }
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found: Option<(Reference, Image)> = None;
            for (r, d) in &entries {
                let manifest_match = d.digest.trim_start_matches("sha256:").starts_with(hex);
                let image = Image::read(&self.layout, d)?;
                let id_match = image.id().trim_start_matches("sha256:").starts_with(hex);
                if manifest_match || id_match {
                    if let Some((_, other)) = &found
                        && other.digest() != image.digest()
                    {
                        return Err(Error::msg(format!("ambiguous image ID prefix {name}"))
                            .hint("use more digits, or the image name"));
                    }
                    found = Some((r.clone(), image));
                }
            }
            return Ok(found);
        }
        Ok(None)
    }

    /// Like [`Store::find`], with an error naming the image when it is absent.
    pub fn get(&self, name: &str) -> Result<(Reference, Image)> {
        self.find(name)?.ok_or_else(|| {
            let error = Error::msg(format!("no image {name} in the local store"));
            let near = Reference::parse(name)
                .ok()
                .and_then(|r| self.nearest_name(&r));
            match near {
                Some(near) => error.hint(format!("did you mean {near}?")),
                None => error,
            }
            .hint("`sealer images` lists the local images; `sealer pull NAME` fetches one")
        })
    }

    /// Names `manifest` as `reference`, replacing what the name pointed to before.
    pub fn tag(&self, reference: &Reference, manifest: &Descriptor) -> Result<()> {
        let _guard = self.index_lock()?;
        let mut index = self.layout.read_index()?;
        let name = reference.to_string();
        index
            .manifests
            .retain(|d| d.ref_name() != Some(name.as_str()));
        let mut entry =
            Descriptor::new(&manifest.media_type, manifest.digest.clone(), manifest.size);
        entry.platform = manifest.platform.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), name);
        index.manifests.push(entry);
        sort_index(&mut index);
        self.layout.write_index(&index)
    }

    /// Removes a name. Returns whether it existed.
    pub fn untag(&self, reference: &Reference) -> Result<bool> {
        let _guard = self.index_lock()?;
        let mut index = self.layout.read_index()?;
        let name = reference.to_string();
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| d.ref_name() != Some(name.as_str()));
        if index.manifests.len() == before {
            return Ok(false);
        }
        self.layout.write_index(&index)?;
        Ok(true)
    }

    /// Deletes blobs no named image references. Returns the bytes freed.
    pub fn gc(&self) -> Result<u64> {
        let gc_file = self.lock_file("gc.lock")?;
        gc_file
            .lock()
            .with_path("cannot lock", &self.layout.root().join("gc.lock"))?;
        let _index = self.index_lock()?;
        let index = self.layout.read_index()?;
        let mut keep = BTreeSet::new();
        for entry in &index.manifests {
            keep.insert(entry.digest.clone());
            // A manifest we cannot read keeps what we know of it; never delete on doubt.
            if let Ok(image) = Image::read(&self.layout, entry) {
                for blob in image.manifest.blobs() {
                    keep.insert(blob.digest.clone());
                }
            } else {
                return Err(Error::msg(format!(
                    "cannot read manifest {} of the store; not collecting garbage",
                    entry.digest
                )));
            }
        }
        self.layout.remove_blobs_except(&keep)
    }
}

fn sort_index(index: &mut Index) {
    index.manifests.sort_by(|a, b| {
        a.ref_name()
            .cmp(&b.ref_name())
            .then(a.digest.cmp(&b.digest))
    });
}
