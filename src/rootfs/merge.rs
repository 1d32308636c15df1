//! Merging extracted image trees into one: later trees win, path by path, as a later layer
//! does. Files are hard-linked from the caches (copied when the cache is on another
//! filesystem), so a rendered tree of gigabytes of registry data costs no copy.

use super::paths;
use crate::diag::{IoContext, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Copies the tree `src` over `dest`. Directory modes are recorded in `dir_modes` (by
/// relative path) and applied by the caller once everything is written.
pub fn merge_tree(src: &Path, dest: &Path, dir_modes: &mut BTreeMap<String, u32>) -> Result<()> {
    merge_dir(src, dest, "", dir_modes)
}

fn merge_dir(
    src: &Path,
    dest: &Path,
    rel: &str,
    dir_modes: &mut BTreeMap<String, u32>,
) -> Result<()> {
    let mut children: Vec<_> = fs::read_dir(src)
        .with_path("cannot list", src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_path("cannot list", src)?;
    children.sort();
    for name in children {
        let from = src.join(&name);
        let to = dest.join(&name);
        let name = name.to_string_lossy();
        let child_rel = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&from).with_path("cannot inspect", &from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if !paths::is_real_dir(&to) {
                paths::remove_any(&to)?;
                fs::create_dir(&to).with_path("cannot create", &to)?;
            }
            dir_modes.insert(child_rel.clone(), meta.permissions().mode() & 0o7777);
            merge_dir(&from, &to, &child_rel, dir_modes)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).with_path("cannot read", &from)?;
            paths::remove_any(&to)?;
            std::os::unix::fs::symlink(&target, &to).with_path("cannot create", &to)?;
        } else if kind.is_file() {
            paths::remove_any(&to)?;
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).with_path("cannot copy to", &to)?;
            }
        }
        // Extracted trees hold nothing else (extract refuses devices and fifos).
    }
    Ok(())
}
