//! The rootfs a cluster's hosts receive: images unpacked, merged, configured, rendered.
//!
//! - [`extract`]: an image's layers unpacked once into `$SEALER_HOME/cache/rootfs/<hex>/`
//!   (OCI whiteouts applied; entries escaping the tree refused).
//! - [`render`]: the cluster's tree in `$SEALER_HOME/cache/rendered/<cluster>/`, rebuilt each
//!   time from the extracted images: merged in order, then Clusterfile `Config` documents,
//!   Application `files`, and `*.tmpl` templates applied ([`config`], [`template`]).
//! - [`Manifest`]: every entry of a rendered tree with its digest, and the tree's digest
//!   (the `rootfs.<ip>` attribute); converted to the providers' sync entries.
//!
//! Architecture invariant: the rendered tree hard-links files of the extracted caches, so
//! nothing here ever writes into an existing file: every write removes the path first and
//! creates a new file (see [`paths`]).

pub mod app_files;
pub(crate) mod budget;
pub mod config;
mod extract;
pub mod manifest;
mod merge;
mod paths;
mod render;
pub mod shipped;
pub mod template;
pub mod yaml;

#[cfg(test)]
mod tests;

pub use extract::{cache_dir, extract};
pub use manifest::{FileEntry, FileKind, Manifest};
pub use render::{REGISTRY_DIR, RenderInput, Rendered, render};

use crate::diag::{IoContext, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const TMP_PREFIX: &str = ".tmp-";
const OLD_PREFIX: &str = ".old-";

/// A directory being built next to where it will live; removed on drop unless persisted.
struct TempDir {
    path: PathBuf,
    persisted: bool,
}

fn unique_name(dir: &Path, prefix: &str, label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{prefix}{label}-{}-{n}", std::process::id()))
}

impl TempDir {
    fn create(dir: &Path, label: &str) -> Result<TempDir> {
        let path = unique_name(dir, TMP_PREFIX, label);
        fs::create_dir(&path).with_path("cannot create", &path)?;
        Ok(TempDir {
            path,
            persisted: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `dest`, which must not exist.
    fn persist(mut self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest).with_path("cannot move into place", dest)?;
        self.persisted = true;
        Ok(())
    }

    /// Renames the directory to `dest`, replacing what is there. The old tree is first moved
    /// aside, so `dest` is always either the old tree or the new one (a crash in between
    /// leaves no `dest`, which the next render builds again).
    fn persist_replacing(self, dest: &Path, label: &str) -> Result<()> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let old = unique_name(dir, OLD_PREFIX, label);
        let had_old = match fs::rename(dest, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(crate::diag::io_error("cannot move aside", dest, e)),
        };
        self.persist(dest)?;
        if had_old {
            remove_tree(&old);
        }
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.persisted {
            remove_tree(&self.path);
        }
    }
}

/// Best-effort removal of a tree, read-only directories included.
fn remove_tree(path: &Path) {
    fn open_up(path: &Path) {
        if paths::is_real_dir(path) {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
            if let Ok(children) = fs::read_dir(path) {
                for child in children.flatten() {
                    open_up(&child.path());
                }
            }
        }
    }
    if fs::remove_dir_all(path).is_err() {
        open_up(path);
        let _ = fs::remove_dir_all(path);
    }
}

/// Removes temp and set-aside trees left in `dir` by sealer processes that are gone
/// (killed mid-unpack); the PID is part of their name.
pub(crate) fn stale_temps_removed(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(TMP_PREFIX)
            .or_else(|| name.strip_prefix(OLD_PREFIX))
        else {
            continue;
        };
        let pid = rest.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            remove_tree(&entry.path());
        }
    }
}
