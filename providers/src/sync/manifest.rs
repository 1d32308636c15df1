//! The remote manifest, `ROOT/.sealer-manifest`: what the last complete sync put on the host.
//!
//! One line per entry, `SHA256 MODE SIZE MTIME PATH`:
//! - `SHA256`: hex digest of a file's content or of a symlink's target; `-` for a directory;
//! - `MODE`: the `st_mode` in octal, type bits included (`100644`, `120777`, `40755`);
//! - `SIZE`: bytes of content (of the target, for a symlink), `0` for a directory;
//! - `MTIME`: the modification time (seconds) the sync gave a file, `0` otherwise;
//! - `PATH`: relative to ROOT, the rest of the line, with `\` written `\\`, newline `\n`
//!   and carriage return `\r` so that every entry stays on one line.
//!
//! Lines are sorted bytewise (as `LC_ALL=C sort` does), so the host can rebuild the next
//! manifest from a delta and both sides agree on its exact bytes.

use super::{EntryKind, ManifestEntry};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;

/// One parsed line of a remote manifest, with its raw text kept for the delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub line: String,
    pub kind: RecordedKind,
    pub mtime: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedKind {
    File {
        sha256: String,
        size: u64,
        mode: u32,
    },
    Symlink {
        target_sha256: String,
    },
    Dir {
        mode: u32,
    },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

pub fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            _ => return None,
        }
    }
    Some(out)
}

/// Whether `path` is a clean relative path: no empty, `.` or `..` component, no leading or
/// trailing `/`, no NUL. Paths from a host are checked too: a tampered manifest must never
/// make us delete outside the root.
pub fn is_clean_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The manifest line of an entry synced (or kept) with modification time `mtime`.
pub fn line_of(entry: &ManifestEntry, mtime: i64) -> String {
    let path = escape(&entry.path);
    match &entry.kind {
        EntryKind::File { sha256, size, mode } => {
            format!(
                "{sha256} {:o} {size} {mtime} {path}",
                S_IFREG | (mode & 0o7777)
            )
        }
        EntryKind::Symlink { target } => format!(
            "{} {:o} {} 0 {path}",
            sha256_hex(target.as_bytes()),
            S_IFLNK | 0o777,
            target.len()
        ),
        EntryKind::Dir { mode } => format!("- {:o} 0 0 {path}", S_IFDIR | (mode & 0o7777)),
    }
}

/// Parses a manifest; `None` when any line is malformed (the caller then trusts nothing in
/// it and sends everything).
pub fn parse(text: &str) -> Option<BTreeMap<String, Recorded>> {
    let mut out = BTreeMap::new();
    // Every line ends in a newline; a raw carriage return was never written by us. Both are
    // checked so that a kept line is byte-for-byte what the host holds.
    let Some(body) = text.strip_suffix('\n') else {
        return text.is_empty().then_some(out);
    };
    for line in body.split('\n') {
        if line.contains('\r') {
            return None;
        }
        let mut fields = line.splitn(5, ' ');
        let (sha, mode, size, mtime, path) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let mode = u32::from_str_radix(mode, 8).ok()?;
        let size: u64 = size.parse().ok()?;
        let mtime: i64 = mtime.parse().ok()?;
        let path = unescape(path)?;
        if !is_clean_relative(&path) {
            return None;
        }
        let is_hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        let kind = match mode & S_IFMT {
            S_IFREG if is_hex => RecordedKind::File {
                sha256: sha.to_string(),
                size,
                mode: mode & 0o7777,
            },
            S_IFLNK if is_hex => RecordedKind::Symlink {
                target_sha256: sha.to_string(),
            },
            S_IFDIR if sha == "-" => RecordedKind::Dir {
                mode: mode & 0o7777,
            },
            _ => return None,
        };
        let recorded = Recorded {
            line: line.to_string(),
            kind,
            mtime,
        };
        if out.insert(path, recorded).is_some() {
            return None;
        }
    }
    Some(out)
}

/// The manifest text of sorted lines, each ending in a newline.
pub fn render(lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_hostile_paths() {
        let entries = [
            ManifestEntry {
                path: "a b/it's \"x\"\nnew\\line\r".into(),
                kind: EntryKind::File {
                    sha256: "ab".repeat(32),
                    size: 3,
                    mode: 0o4755,
                },
            },
            ManifestEntry {
                path: "l".into(),
                kind: EntryKind::Symlink {
                    target: "a b".into(),
                },
            },
            ManifestEntry {
                path: "a b".into(),
                kind: EntryKind::Dir { mode: 0o700 },
            },
        ];
        let mut lines: Vec<String> = entries.iter().map(|e| line_of(e, 42)).collect();
        lines.sort();
        let text = render(&lines);
        assert_eq!(text.lines().count(), 3, "{text}");
        let parsed = parse(&text).unwrap();
        let file = &parsed["a b/it's \"x\"\nnew\\line\r"];
        assert_eq!(file.mtime, 42);
        assert_eq!(
            file.kind,
            RecordedKind::File {
                sha256: "ab".repeat(32),
                size: 3,
                mode: 0o4755
            }
        );
        assert_eq!(parsed["a b"].kind, RecordedKind::Dir { mode: 0o700 });
        assert!(matches!(parsed["l"].kind, RecordedKind::Symlink { .. }));
    }

    #[test]
    fn tampered_manifests_are_not_trusted() {
        let sha = "0".repeat(64);
        for bad in [
            format!("{sha} 100644 1 0 ../../etc/passwd"),
            format!("{sha} 100644 1 0 /etc/passwd"),
            format!("{sha} 100644 1 0 a//b"),
            format!("{sha} 100644 x 0 a"),
            format!("{sha} 100644 1 0 a\\q"),
            "zz 100644 1 0 a".to_string(),
            format!("{sha} 100644 1 0"),
            format!("{sha} 100644 1 0 a\n{sha} 100644 1 0 a"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
        assert_eq!(parse("").map(|m| m.len()), Some(0));
    }
}
