//! The probe: one command that prints the remote manifest and a listing of what is really
//! under ROOT (`find -printf`: type, mode, size, mtime, path, symlink target), so the plan
//! can check the manifest against the host without hashing anything there.

use super::manifest::{self, Recorded};
use super::{CONTROL_DIR, MANIFEST_FILE, MANIFEST_TMP};
use crate::quote::quote;
use std::collections::BTreeMap;

/// What `find` saw at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `find`'s `%y`: `f`, `d`, `l`, or another type letter.
    pub kind: char,
    /// Permission bits (`%m`).
    pub mode: u32,
    pub size: u64,
    /// Whole seconds of `%T@`.
    pub mtime: i64,
    /// `%l`: the target of a symlink.
    pub target: String,
}

/// The remote side, as the probe found it.
#[derive(Debug, Default)]
pub struct Remote {
    /// `None`: no manifest, or one we cannot trust (then everything is sent).
    pub manifest: Option<BTreeMap<String, Recorded>>,
    /// Every path under ROOT except excluded and reserved ones.
    pub seen: BTreeMap<String, Seen>,
}

/// `find -path` takes a glob: escape its metacharacters so a prefix matches only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn script(root: &str, excluded: &[String]) -> String {
    let mut prune = vec![
        format!("./{MANIFEST_FILE}"),
        format!("./{MANIFEST_TMP}"),
        format!("./{CONTROL_DIR}"),
    ];
    prune.extend(excluded.iter().map(|p| format!("./{}", glob_escape(p))));
    let prune: Vec<String> = prune
        .iter()
        .map(|p| format!("-path {}", quote(p)))
        .collect();
    format!(
        "set -eu\n\
         root={root}\n\
         m=\"$root/{MANIFEST_FILE}\"\n\
         if [ -f \"$m\" ] && [ ! -L \"$m\" ]; then\n\
         \x20 printf 'manifest %s\\n' \"$(wc -c < \"$m\")\"\n\
         \x20 cat -- \"$m\"\n\
         else\n\
         \x20 printf 'absent\\n'\n\
         fi\n\
         if [ -d \"$root\" ]; then\n\
         \x20 cd -- \"$root\"\n\
         \x20 find . -mindepth 1 \\( {} \\) -prune -o -printf '%y %m %s %T@ %P\\0%l\\0'\n\
         fi\n",
        prune.join(" -o "),
        root = quote(root),
    )
}

/// Parses the probe's output; an error means the output is not what the script prints.
pub fn parse(out: &[u8]) -> Result<Remote, String> {
    let newline = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&out[..newline]).map_err(|_| "header is not UTF-8")?;
    let mut rest = &out[newline + 1..];
    let mut remote = Remote::default();
    if let Some(len) = header.strip_prefix("manifest ") {
        let len: usize = len.trim().parse().map_err(|_| "bad manifest length")?;
        if len > rest.len() {
            return Err("truncated manifest".into());
        }
        // A manifest that is not UTF-8 or not well-formed is simply not trusted.
        remote.manifest = std::str::from_utf8(&rest[..len])
            .ok()
            .and_then(manifest::parse);
        rest = &rest[len..];
    } else if header != "absent" {
        return Err(format!("unexpected header {header:?}"));
    }
    let mut fields = rest.split(|&b| b == 0);
    while let Some(record) = fields.next() {
        if record.is_empty() {
            // The split after the last NUL.
            break;
        }
        let target = fields.next().ok_or("listing record without target")?;
        // Our paths are UTF-8; anything else under ROOT is the host's, and of no interest.
        let Ok(record) = std::str::from_utf8(record) else {
            continue;
        };
        let target = String::from_utf8_lossy(target).into_owned();
        let mut parts = record.splitn(5, ' ');
        let mut next = || {
            parts
                .next()
                .ok_or_else(|| format!("short record {record:?}"))
        };
        let kind = next()?.chars().next().unwrap_or('?');
        let mode = u32::from_str_radix(next()?, 8).map_err(|_| "bad mode")?;
        let size = next()?.parse().map_err(|_| "bad size")?;
        let mtime = next()?;
        let mtime = mtime
            .split('.')
            .next()
            .unwrap_or(mtime)
            .parse()
            .map_err(|_| "bad mtime")?;
        let path = next()?.to_string();
        remote.seen.insert(
            path,
            Seen {
                kind,
                mode,
                size,
                mtime,
                target,
            },
        );
    }
    Ok(remote)
}
