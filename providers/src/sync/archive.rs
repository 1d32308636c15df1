//! The tar stream of one sync, written to a temp file (streamed to the host from there):
//! the entries to send with every ancestor directory in front of them, then the control
//! files the remote script reads.
//!
//! Ancestor directory headers matter: GNU tar replaces a symlink that stands where a
//! directory member goes, so a file is never written through a symlink the host made.

use super::manifest::escape;
use super::plan::{ManifestUpdate, Plan, ancestors};
use super::{CONTROL_DIR, EntryKind, ManifestEntry};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use tar::{EntryType, Header};

/// Writes the archive of `plan` into `out`; returns its length in bytes.
pub fn write(
    out: File,
    local_root: &Path,
    entries: &[ManifestEntry],
    plan: &Plan<'_>,
    mtime: i64,
) -> Result<u64, String> {
    let by_path: BTreeMap<&str, &EntryKind> =
        entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
    // Ancestors the entries do not list (the caller should list them) get a plain 0755.
    let implicit = EntryKind::Dir { mode: 0o755 };
    // Everything to write, by path: parents sort before their children.
    let mut members: BTreeMap<&str, &EntryKind> = BTreeMap::new();
    for entry in &plan.send {
        for dir in ancestors(&entry.path) {
            members.insert(dir, by_path.get(dir).copied().unwrap_or(&implicit));
        }
        members.insert(&entry.path, &entry.kind);
    }

    let mtime = u64::try_from(mtime).unwrap_or(0);
    let mut builder = tar::Builder::new(io::BufWriter::new(out));
    let fail = |what: &str, path: &str, e: io::Error| format!("{what} {path:?}: {e}");
    for (path, kind) in &members {
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

    let nul_joined = |paths: &[String]| {
        let mut bytes = Vec::new();
        for p in paths {
            bytes.extend_from_slice(p.as_bytes());
            bytes.push(0);
        }
        bytes
    };
    let mut control: Vec<(&str, Vec<u8>)> = vec![
        ("delete", nul_joined(&plan.delete)),
        ("rmdirs", nul_joined(&plan.rmdirs)),
    ];
    match &plan.manifest {
        ManifestUpdate::Full(text) => control.push(("manifest", text.clone().into_bytes())),
        ManifestUpdate::Delta { drop, add, .. } => {
            control.push(("drop", super::manifest::render(drop).into_bytes()));
            control.push(("add", super::manifest::render(add).into_bytes()));
        }
    }
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Directory);
    header.set_mode(0o700);
    header.set_mtime(mtime);
    header.set_size(0);
    builder
        .append_data(&mut header, CONTROL_DIR, io::empty())
        .map_err(|e| fail("cannot archive", CONTROL_DIR, e))?;
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
