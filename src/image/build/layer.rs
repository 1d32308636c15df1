//! The rootfs delta of a build, and its reproducible `tar+gzip` layer: entries sorted by
//! path, mtime 0, uid/gid 0, modes 0755/0644, gzip without name or time.

use crate::diag::{Error, IoContext, Result};
use crate::image::layout::{HashingWriter, Layout, hex};
use crate::image::oci::{Descriptor, LAYER_MEDIA_TYPE};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// The OCI whiteout that hides everything a lower layer had in a directory.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File {
        source: PathBuf,
        executable: bool,
        size: u64,
    },
    /// `.wh..wh..opq` inside a directory that replaces the base image's content.
    Opaque,
}

/// Files of the new layer keyed by rootfs-relative path (`bin/kubeadm`).
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// Adds a file (and its parent directories); returns the entry it replaced, if a file.
    pub fn add_file(
        &mut self,
        path: &str,
        source: PathBuf,
        executable: bool,
        size: u64,
    ) -> Option<PathBuf> {
        self.add_parents(path);
        let old = self.entries.insert(
            path.to_string(),
            Entry::File {
                source,
                executable,
                size,
            },
        );
        match old {
            Some(Entry::File { source, .. }) => Some(source),
            _ => None,
        }
    }

    pub fn add_dir(&mut self, path: &str) {
        if path.is_empty() {
            return;
        }
        self.add_parents(path);
        self.entries.entry(path.to_string()).or_insert(Entry::Dir);
    }

    /// Marks `dir` as replacing the base image's directory of the same path.
    pub fn add_opaque(&mut self, dir: &str) {
        self.add_dir(dir);
        self.entries
            .insert(format!("{dir}/{OPAQUE_WHITEOUT}"), Entry::Opaque);
    }

    /// Removes everything under `dir` (a redefined app), keeping the directory itself.
    pub fn clear_dir(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        self.entries
            .retain(|path, entry| !path.starts_with(&prefix) || matches!(entry, Entry::Opaque));
    }

    pub fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || matches!(self.entries.get(path), Some(Entry::Dir))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the content of the file at `path` comes from, if the layer has that file.
    pub fn file_source(&self, path: &str) -> Option<&PathBuf> {
        match self.entries.get(path) {
            Some(Entry::File { source, .. }) => Some(source),
            _ => None,
        }
    }

    /// Files directly or indirectly under `dir`, relative to it, sorted.
    pub fn files_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File { .. }))
            .filter_map(|(p, _)| p.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    fn add_parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            self.entries.entry(parent.to_string()).or_insert(Entry::Dir);
            at += i + 1;
        }
    }
}

/// A written layer: its descriptor, diff ID and the digest of every file in it.
#[derive(Debug)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: String,
    pub file_digests: BTreeMap<String, String>,
}

/// Writes `tree` as a gzip-compressed tar blob into `layout`.
pub fn write_layer(layout: &Layout, tree: &Tree) -> Result<Layer> {
    let blob = layout.blob_writer()?;
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(blob, flate2::Compression::default());
    let mut builder = tar::Builder::new(HashingWriter::new(gz));
    let mut file_digests = BTreeMap::new();
    let tar_err = |e: io::Error| {
        Error::msg(format!(
            "cannot write layer: {}",
            crate::diag::io_reason(&e)
        ))
    };
    for (path, entry) in &tree.entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match entry {
            Entry::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{path}/"), io::empty())
                    .map_err(tar_err)?;
            }
            Entry::Opaque => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(tar_err)?;
            }
            Entry::File {
                source,
                executable,
                size,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(*size);
                let file = File::open(source).with_path("cannot read", source)?;
                let mut reader = DigestReader::new(file.take(*size));
                builder
                    .append_data(&mut header, path, &mut reader)
                    .map_err(|e| {
                        Error::msg(format!(
                            "cannot add {} to the layer: {}",
                            source.display(),
                            crate::diag::io_reason(&e)
                        ))
                    })?;
                if reader.count != *size {
                    return Err(Error::msg(format!(
                        "{} changed while the image was being built",
                        source.display()
                    ))
                    .hint("build again once nothing writes to the build context"));
                }
                file_digests.insert(path.clone(), reader.digest());
            }
        }
    }
    let hashing = builder.into_inner().map_err(tar_err)?;
    let (gz, diff_id, _) = hashing.finish();
    let mut blob = gz.finish().map_err(tar_err)?;
    blob.flush().map_err(tar_err)?;
    let (digest, size) = blob.commit()?;
    Ok(Layer {
        descriptor: Descriptor::new(LAYER_MEDIA_TYPE, digest, size),
        diff_id,
        file_digests,
    })
}

struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
