//! The manifest of a rendered tree: every directory, file and symlink with what identifies
//! its content, and one digest for the whole tree.
//!
//! The digest is `sha256:` of a canonical listing, one line per entry in path order:
//! `D MODE "PATH"`, `F MODE SIZE SHA256 "PATH"`, `L "TARGET" "PATH"` (modes in octal,
//! strings JSON-quoted so any name is unambiguous). It depends on content, modes and names
//! only: not on mtimes, owners, or the order files were written in.

use crate::diag::{IoContext, Result};
use crate::image::layout::{digest_reader, sha256_digest};
use sealer_providers::sync::{EntryKind, ManifestEntry};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the tree's root, `/`-separated.
    pub path: String,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Dir {
        mode: u32,
    },
    File {
        /// Lowercase hex.
        sha256: String,
        size: u64,
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Sorted by path.
    pub entries: Vec<FileEntry>,
    /// `sha256:<hex>` of the canonical listing.
    pub digest: String,
}

impl Manifest {
    pub fn new(mut entries: Vec<FileEntry>) -> Manifest {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let digest = digest_of(&entries);
        Manifest { entries, digest }
    }

    /// Lists and hashes the tree at `root`.
    pub fn scan(root: &Path) -> Result<Manifest> {
        let mut entries = Vec::new();
        scan_dir(root, "", &mut entries)?;
        Ok(Manifest::new(entries))
    }

    /// The manifest without `prefix` (a directory: itself and everything under it), e.g.
    /// [`super::REGISTRY_DIR`] for hosts that run no registry.
    pub fn excluding(&self, prefix: &str) -> Manifest {
        let prefix = prefix.trim_end_matches('/');
        let under = |path: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        Manifest::new(
            self.entries
                .iter()
                .filter(|e| !under(&e.path))
                .cloned()
                .collect(),
        )
    }

    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entries as the sync of the providers crate takes them.
    pub fn sync_entries(&self) -> Vec<ManifestEntry> {
        self.entries
            .iter()
            .map(|e| ManifestEntry {
                path: e.path.clone(),
                kind: match &e.kind {
                    FileKind::Dir { mode } => EntryKind::Dir { mode: *mode },
                    FileKind::File { sha256, size, mode } => EntryKind::File {
                        sha256: sha256.clone(),
                        size: *size,
                        mode: *mode,
                    },
                    FileKind::Symlink { target } => EntryKind::Symlink {
                        target: target.clone(),
                    },
                },
            })
            .collect()
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn digest_of(entries: &[FileEntry]) -> String {
    let mut listing = String::new();
    for e in entries {
        let path = quoted(&e.path);
        let line = match &e.kind {
            FileKind::Dir { mode } => format!("D {mode:o} {path}\n"),
            FileKind::File { sha256, size, mode } => {
                format!("F {mode:o} {size} {sha256} {path}\n")
            }
            FileKind::Symlink { target } => format!("L {} {path}\n", quoted(target)),
        };
        listing.push_str(&line);
    }
    sha256_digest(listing.as_bytes())
}

fn scan_dir(dir: &Path, rel: &str, out: &mut Vec<FileEntry>) -> Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .with_path("cannot list", dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_path("cannot list", dir)?;
    children.sort();
    for name in children {
        let path = dir.join(&name);
        let Some(name) = name.to_str() else {
            return Err(crate::diag::Error::msg(format!(
                "{} is not a UTF-8 name",
                path.display()
            )));
        };
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).with_path("cannot inspect", &path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            out.push(FileEntry {
                path: child_rel.clone(),
                kind: FileKind::Dir { mode },
            });
            scan_dir(&path, &child_rel, out)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).with_path("cannot read", &path)?;
            let Some(target) = target.to_str() else {
                return Err(crate::diag::Error::msg(format!(
                    "{}: the symlink's target is not UTF-8",
                    path.display()
                )));
            };
            out.push(FileEntry {
                path: child_rel,
                kind: FileKind::Symlink {
                    target: target.to_string(),
                },
            });
        } else if kind.is_file() {
            let file = File::open(&path).with_path("cannot read", &path)?;
            let (digest, size) =
                digest_reader(io::BufReader::new(file)).with_path("cannot read", &path)?;
            out.push(FileEntry {
                path: child_rel,
                kind: FileKind::File {
                    sha256: digest.trim_start_matches("sha256:").to_string(),
                    size,
                    mode,
                },
            });
        }
    }
    Ok(())
}
