//! Reading a synced tree back: does the host still hold what the last complete sync wrote?
//! The same probe as a sync (one `find`, nothing hashed on the host), compared with the
//! host's own manifest instead of a local tree, so it needs nothing but the host. An edit
//! that keeps a file's size and mtime goes unnoticed, as it does for the sync.

use super::manifest::{RecordedKind, sha256_hex};
use super::plan::is_under;
use super::probe::{Remote, Seen};

/// What the host holds under a synced root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeCheck {
    /// Nothing at the root.
    Absent,
    /// Something is there, but no manifest: no sync ever finished there.
    Unrecorded,
    /// The manifest's entries the host no longer has as written (`changed`: there, but of
    /// another type, mode, size or mtime; `missing`: not there). Both empty: as written.
    Checked {
        changed: Vec<String>,
        missing: Vec<String>,
    },
}

/// Compares the host's listing with its manifest; `excluded` prefixes were not probed.
pub fn compare(remote: &Remote, excluded: &[String]) -> TreeCheck {
    let Some(manifest) = &remote.manifest else {
        return if remote.seen.is_empty() {
            TreeCheck::Absent
        } else {
            TreeCheck::Unrecorded
        };
    };
    let mut changed = Vec::new();
    let mut missing = Vec::new();
    for (path, recorded) in manifest {
        if excluded.iter().any(|p| is_under(path, p)) {
            continue;
        }
        let Some(seen) = remote.seen.get(path) else {
            missing.push(path.clone());
            continue;
        };
        if !as_written(&recorded.kind, recorded.mtime, seen) {
            changed.push(path.clone());
        }
    }
    TreeCheck::Checked { changed, missing }
}

fn as_written(kind: &RecordedKind, mtime: i64, seen: &Seen) -> bool {
    match kind {
        RecordedKind::File { size, mode, .. } => {
            seen.kind == 'f' && seen.mode == *mode && seen.size == *size && seen.mtime == mtime
        }
        RecordedKind::Symlink { target_sha256 } => {
            seen.kind == 'l' && sha256_hex(seen.target.as_bytes()) == *target_sha256
        }
        RecordedKind::Dir { mode } => seen.kind == 'd' && seen.mode == *mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::manifest;
    use std::collections::BTreeMap;

    fn seen(kind: char, mode: u32, size: u64, mtime: i64, target: &str) -> Seen {
        Seen {
            kind,
            mode,
            size,
            mtime,
            target: target.to_string(),
        }
    }

    fn remote(lines: &[String], seen_list: &[(&str, Seen)]) -> Remote {
        Remote {
            manifest: manifest::parse(&manifest::render(lines)),
            seen: seen_list
                .iter()
                .map(|(p, s)| (p.to_string(), s.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn lines() -> Vec<String> {
        let digest = manifest::sha256_hex(b"hello\n");
        let link = manifest::sha256_hex(b"a.txt");
        let mut lines = vec![
            format!("- 40755 0 0 dir"),
            format!("{digest} 100644 6 1700000000 dir/a.txt"),
            format!("{link} 120777 5 0 dir/link"),
            format!("{digest} 100644 6 1700000000 registry/blob"),
        ];
        lines.sort();
        lines
    }

    #[test]
    fn a_tree_as_written_has_no_findings() {
        let r = remote(
            &lines(),
            &[
                ("dir", seen('d', 0o755, 4096, 1, "")),
                ("dir/a.txt", seen('f', 0o644, 6, 1_700_000_000, "")),
                ("dir/link", seen('l', 0o777, 5, 1, "a.txt")),
                ("registry/blob", seen('f', 0o644, 6, 1_700_000_000, "")),
            ],
        );
        assert_eq!(
            compare(&r, &[]),
            TreeCheck::Checked {
                changed: vec![],
                missing: vec![]
            }
        );
    }

    #[test]
    fn edited_retargeted_and_removed_entries_are_found_and_excluded_ones_are_not() {
        let r = remote(
            &lines(),
            &[
                ("dir", seen('d', 0o700, 4096, 1, "")),
                ("dir/a.txt", seen('f', 0o644, 6, 1_700_000_001, "")),
                ("dir/link", seen('l', 0o777, 5, 1, "b.txt")),
            ],
        );
        assert_eq!(
            compare(&r, &["registry".to_string()]),
            TreeCheck::Checked {
                changed: vec!["dir".into(), "dir/a.txt".into(), "dir/link".into()],
                missing: vec![]
            }
        );
        let r = remote(&lines(), &[("dir", seen('d', 0o755, 4096, 1, ""))]);
        assert_eq!(
            compare(&r, &[]),
            TreeCheck::Checked {
                changed: vec![],
                missing: vec![
                    "dir/a.txt".into(),
                    "dir/link".into(),
                    "registry/blob".into()
                ]
            }
        );
    }

    #[test]
    fn no_manifest_is_absent_or_unrecorded() {
        assert_eq!(compare(&Remote::default(), &[]), TreeCheck::Absent);
        let r = Remote {
            manifest: None,
            seen: BTreeMap::from([("x".to_string(), seen('f', 0o644, 1, 1, ""))]),
        };
        assert_eq!(compare(&r, &[]), TreeCheck::Unrecorded);
    }
}
