//! The tar stream of one sync, written to a temp file (streamed to the host from there):
//! the entries to send with every ancestor directory in front of them, then the control
//! files the remote script reads.
//!
//! Ancestor directory headers matter: GNU tar replaces a symlink that stands where a
//! directory member goes, so a file is never written through a symlink the host made.

use super::manifest::escape;
use super::plan::{ManifestUpdate, Plan, ancestors};
use super::{CONTROL_DIR, EntryKind, ManifestEntry, nul_joined};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use tar::{EntryType, Header};

/// What the archive holds, owned, so that it can be written on a blocking thread.
pub struct Contents {
    /// The entries to send and their ancestor directories, by path: parents sort before
    /// their children.
    pub members: BTreeMap<String, EntryKind>,
    pub delete: Vec<String>,
    pub rmdirs: Vec<String>,
    pub manifest: ManifestUpdate,
    /// More control files, by name under the control directory (a relayed sync's file
    /// list, digests, modes and receive script).
    pub extra_control: Vec<(String, Vec<u8>)>,
}

impl Contents {
    pub fn of(entries: &[ManifestEntry], plan: &Plan<'_>) -> Contents {
        let by_path: BTreeMap<&str, &EntryKind> =
            entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        // Ancestors the entries do not list get a plain 0755 (the sync lists them all).
        let implicit = EntryKind::Dir { mode: 0o755 };
        let mut members = BTreeMap::new();
        for entry in &plan.send {
            for dir in ancestors(&entry.path) {
                let kind = by_path.get(dir).copied().unwrap_or(&implicit);
                members.insert(dir.to_string(), kind.clone());
            }
            members.insert(entry.path.clone(), entry.kind.clone());
        }
        Contents {
            members,
            delete: plan.delete.clone(),
            rmdirs: plan.rmdirs.clone(),
            manifest: plan.manifest.clone(),
            extra_control: Vec::new(),
        }
    }

    /// The same without the regular files: what the operator sends when a seeder sends
    /// the files (directories, symlinks and control files only).
    pub fn without_files(mut self) -> Contents {
        self.members
            .retain(|_, kind| !matches!(kind, EntryKind::File { .. }));
        self
    }
}

/// Writes the archive into `out`; returns its length in bytes. Files are read from
/// `local_root`.
pub fn write(out: File, local_root: &Path, contents: &Contents, mtime: i64) -> Result<u64, String> {
    let mtime = u64::try_from(mtime).unwrap_or(0);
    let mut builder = tar::Builder::new(io::BufWriter::new(out));
    let fail = |what: &str, path: &str, e: io::Error| format!("{what} {path:?}: {e}");
    for (path, kind) in &contents.members {
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        match kind {
            EntryKind::Dir { mode } => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(mode & 0o7777);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(|e| fail("cannot archive", path, e))?;
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder
                    .append_link(&mut header, path, target)
                    .map_err(|e| fail("cannot archive", path, e))?;
            }
            EntryKind::File { size, mode, .. } => {
                let source = local_root.join(path);
                let meta =
                    std::fs::symlink_metadata(&source).map_err(|e| fail("cannot read", path, e))?;
                if !meta.is_file() || meta.len() != *size {
                    return Err(format!(
                        "{} changed since its manifest was made (expected a file of {size} bytes)",
                        source.display()
                    ));
                }
                let file = File::open(&source).map_err(|e| fail("cannot read", path, e))?;
                header.set_entry_type(EntryType::Regular);
                header.set_mode(mode & 0o7777);
                header.set_size(*size);
                // `take` keeps the archive well-formed even if the file grows meanwhile.
                builder
                    .append_data(&mut header, path, file.take(*size))
                    .map_err(|e| fail("cannot archive", path, e))?;
            }
        }
    }

    let mut control: Vec<(&str, Vec<u8>)> = vec![
        ("delete", nul_joined(&contents.delete)),
        ("rmdirs", nul_joined(&contents.rmdirs)),
    ];
    match &contents.manifest {
        ManifestUpdate::Full(text) => control.push(("manifest", text.clone().into_bytes())),
        ManifestUpdate::Delta { drop, add, .. } => {
            control.push(("drop", super::manifest::render(drop).into_bytes()));
            control.push(("add", super::manifest::render(add).into_bytes()));
        }
    }
    let mut subdirs: Vec<&str> = Vec::new();
    for (name, bytes) in &contents.extra_control {
        if let Some((dir, _)) = name.split_once('/')
            && !subdirs.contains(&dir)
        {
            subdirs.push(dir);
        }
        control.push((name.as_str(), bytes.clone()));
    }
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Directory);
    header.set_mode(0o700);
    header.set_mtime(mtime);
    header.set_size(0);
    builder
        .append_data(&mut header, CONTROL_DIR, io::empty())
        .map_err(|e| fail("cannot archive", CONTROL_DIR, e))?;
    for dir in subdirs {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o700);
        header.set_mtime(mtime);
        header.set_size(0);
        let path = format!("{CONTROL_DIR}/{dir}");
        builder
            .append_data(&mut header, &path, io::empty())
            .map_err(|e| fail("cannot archive", &path, e))?;
    }
    for (name, bytes) in control {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_size(bytes.len() as u64);
        let path = format!("{CONTROL_DIR}/{name}");
        builder
            .append_data(&mut header, &path, bytes.as_slice())
            .map_err(|e| fail("cannot archive", &escape(&path), e))?;
    }
    let file = builder
        .into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| format!("cannot write the archive: {e}"))?;
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| format!("cannot write the archive: {e}"))
}
