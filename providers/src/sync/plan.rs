//! What a sync must do, from the local entries and the probe: a pure function, so every
//! decision is testable without a host.
//!
//! An entry is left alone only when the remote manifest records exactly it (digest, mode,
//! size) and the host still has it as recorded (type, mode, size, and for files the mtime
//! the sync gave them). Anything else is sent again. Entries the old manifest lists and the
//! tree no longer has are deleted, when the host still has them as we left them.

use super::manifest::{self, Recorded, RecordedKind};
use super::probe::{Remote, Seen};
use super::{EntryKind, ManifestEntry};
use std::collections::{BTreeMap, BTreeSet};

/// How the host gets its next manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestUpdate {
    /// The whole text (no trusted manifest on the host).
    Full(String),
    /// Lines to drop from and add to the host's manifest; `expected` is the result, which
    /// the host checks before installing it.
    Delta {
        drop: Vec<String>,
        add: Vec<String>,
        expected: String,
    },
}

#[derive(Debug)]
pub struct Plan<'a> {
    /// Entries to put in the tar, sorted by path.
    pub send: Vec<&'a ManifestEntry>,
    /// Directories on the host where a file or symlink must go: removed before extracting.
    pub pre_delete: Vec<String>,
    /// Files and symlinks to remove after extracting.
    pub delete: Vec<String>,
    /// Directories to remove (if empty) after that, deepest first.
    pub rmdirs: Vec<String>,
    pub manifest: ManifestUpdate,
    /// Nothing differs: no second command is needed.
    pub noop: bool,
}

impl Plan<'_> {
    pub fn files_sent(&self) -> usize {
        self.send
            .iter()
            .filter(|e| !matches!(e.kind, EntryKind::Dir { .. }))
            .count()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.send
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

/// `path` is `prefix` or lies under it.
pub fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The proper ancestors of a path, nearest last: `a/b/c` → `a`, `a/b`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn unchanged(entry: &ManifestEntry, old: Option<&Recorded>, seen: Option<&Seen>) -> bool {
    let (Some(old), Some(seen)) = (old, seen) else {
        return false;
    };
    match (&entry.kind, &old.kind) {
        (
            EntryKind::File { sha256, size, mode },
            RecordedKind::File {
                sha256: old_sha,
                size: old_size,
                mode: old_mode,
            },
        ) => {
            sha256 == old_sha
                && size == old_size
                && mode & 0o7777 == *old_mode
                && seen.kind == 'f'
                && seen.mode == *old_mode
                && seen.size == *size
                && seen.mtime == old.mtime
        }
        (EntryKind::Symlink { target }, RecordedKind::Symlink { target_sha256 }) => {
            manifest::sha256_hex(target.as_bytes()) == *target_sha256
                && seen.kind == 'l'
                && seen.target == *target
        }
        (EntryKind::Dir { mode }, RecordedKind::Dir { mode: old_mode }) => {
            mode & 0o7777 == *old_mode && seen.kind == 'd' && seen.mode == *old_mode
        }
        _ => false,
    }
}

/// `entries`: sorted, clean, closed under ancestors, excluded ones already removed.
/// `mtime`: the modification time files sent now get (and the manifest records).
pub fn plan<'a>(
    entries: &'a [ManifestEntry],
    remote: &Remote,
    excluded: &[String],
    mtime: i64,
) -> Plan<'a> {
    let local: BTreeMap<&str, &ManifestEntry> =
        entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let host_symlink = |path: &str| remote.seen.get(path).is_some_and(|s| s.kind == 'l');
    // Behind a symlink the host made, a path is not where we think: never touch it there.
    let behind_symlink = |path: &str| ancestors(path).any(host_symlink);

    let mut send = Vec::new();
    let mut pre_delete = Vec::new();
    let mut add = Vec::new();
    let mut drop = Vec::new();
    for entry in entries {
        let old = remote.manifest.as_ref().and_then(|m| m.get(&entry.path));
        let seen = remote.seen.get(&entry.path);
        if unchanged(entry, old, seen) {
            continue;
        }
        let file_mtime = match entry.kind {
            EntryKind::File { .. } => mtime,
            _ => 0,
        };
        add.push(manifest::line_of(entry, file_mtime));
        if let Some(old) = old {
            drop.push(old.line.clone());
        }
        let is_dir = matches!(entry.kind, EntryKind::Dir { .. });
        if !is_dir && seen.is_some_and(|s| s.kind == 'd') && !behind_symlink(&entry.path) {
            // tar cannot put a file where a non-empty directory is.
            pre_delete.push(entry.path.clone());
        }
        send.push(entry);
    }

    let mut delete = Vec::new();
    let mut rmdirs = Vec::new();
    if let Some(old_manifest) = &remote.manifest {
        let replaced: BTreeSet<&str> = pre_delete.iter().map(String::as_str).collect();
        for (path, old) in old_manifest {
            if local.contains_key(path.as_str()) || excluded.iter().any(|p| is_under(path, p)) {
                continue;
            }
            drop.push(old.line.clone());
            // Gone with an ancestor that is now a file, or replaced, or behind a symlink.
            let blocked = ancestors(path).any(|a| {
                replaced.contains(a)
                    || host_symlink(a)
                    || local
                        .get(a)
                        .is_some_and(|e| !matches!(e.kind, EntryKind::Dir { .. }))
            });
            let seen_kind = remote.seen.get(path).map(|s| s.kind);
            match (&old.kind, seen_kind) {
                _ if blocked => {}
                (RecordedKind::File { .. }, Some('f'))
                | (RecordedKind::Symlink { .. }, Some('l')) => {
                    delete.push(path.clone());
                }
                (RecordedKind::Dir { .. }, Some('d')) => rmdirs.push(path.clone()),
                // Not there, or the host made something else of it: not ours to remove.
                _ => {}
            }
        }
    }
    rmdirs.sort_by(|a, b| b.cmp(a));

    let manifest = match &remote.manifest {
        None => {
            let mut lines = add;
            lines.sort();
            ManifestUpdate::Full(manifest::render(&lines))
        }
        Some(old_manifest) => {
            let dropped: BTreeSet<&str> = drop.iter().map(String::as_str).collect();
            let mut lines: Vec<String> = old_manifest
                .values()
                .map(|r| r.line.clone())
                .filter(|l| !dropped.contains(l.as_str()))
                .chain(add.iter().cloned())
                .collect();
            lines.sort();
            add.sort();
            drop.sort();
            ManifestUpdate::Delta {
                drop,
                add,
                expected: manifest::render(&lines),
            }
        }
    };
    let noop = send.is_empty()
        && delete.is_empty()
        && rmdirs.is_empty()
        && matches!(&manifest, ManifestUpdate::Delta { drop, add, .. } if drop.is_empty() && add.is_empty());
    Plan {
        send,
        pre_delete,
        delete,
        rmdirs,
        manifest,
        noop,
    }
}
