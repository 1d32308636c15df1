//! Content-addressed sync of a local tree to a host, over any [`Transport`].
//!
//! ## Protocol
//! 1. **Probe** (one command, nothing sent): print `ROOT/.sealer-manifest` (what the last
//!    complete sync put there, see [`manifest`]) and list what is really under ROOT with one
//!    `find -printf` pass (type, mode, size, mtime, symlink target; excluded prefixes pruned).
//! 2. **Plan** (locally, [`plan`]): an entry is left alone only when the manifest records it
//!    with the same digest, mode and size *and* the host still has it that way: same type,
//!    mode and size, and for a file the mtime the sync gave it. The manifest is only a
//!    cache: a file deleted, truncated, edited or chmod-ed on the host no longer matches its
//!    recorded stat and is sent again. No hashing happens on the host; an edit that keeps
//!    size and mtime (`touch -d` back) goes unnoticed, which is the price of a probe that
//!    costs one `find`. Entries the manifest lists and the tree no longer has are deleted.
//!    When nothing differs, the sync ends here: an unchanged tree sends 0 bytes.
//! 3. **Send** (one command): the changed entries as ONE tar stream on stdin, built in a temp
//!    file (never in memory) with every file's mtime set to the sync's time. The script
//!    extracts it (`tar -xp`, which unlinks what it replaces and never writes through a symlink), deletes what is gone, then writes the new manifest to a temp
//!    name and renames it over the old one. The manifest travels as a delta (lines to drop
//!    and add) that the host applies to its own copy, and the host installs the result only
//!    if its SHA-256 is the one computed here. A sync killed before the rename leaves the
//!    old manifest, whose stats no longer match what was half-written, so the next sync
//!    sends those files again.
//!
//! A directory on the host where a file must go is removed first, by an extra command run
//! only then. Excluded prefixes (e.g. `registry/` on hosts without a registry) are outside
//! the sync, as with rsync's `--exclude`: not sent, not listed, not deleted, and their lines
//! in the manifest are kept. Paths may hold any character but NUL (spaces, quotes,
//! newlines): the script interpolates only ROOT, quoted; tar carries the names, and lists
//! travel NUL-separated. Hosts need GNU tar, findutils, grep and coreutils.

mod archive;
mod check;
pub mod manifest;
mod plan;
mod probe;
pub mod relay;

pub use check::TreeCheck;

use crate::quote::quote;
use crate::transport::{Exec, ExecOutput, Stdin, Transport, TransportError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where the host keeps the manifest of the last complete sync, in ROOT.
pub const MANIFEST_FILE: &str = ".sealer-manifest";
/// The manifest being written; renamed over [`MANIFEST_FILE`] when complete.
pub const MANIFEST_TMP: &str = ".sealer-manifest.tmp";
/// The control files of a sync (delete lists, manifest delta), extracted with the tar.
pub const CONTROL_DIR: &str = ".sealer-sync.tmp";
/// A line the send script prints right after extracting (tests cut the script there).
pub const EXTRACTED_MARK: &str = "# sealer-sync: extracted";

/// One entry of the tree to sync, with a path relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// `sha256`: lowercase hex of the content; `mode`: permission bits.
    File {
        sha256: String,
        size: u64,
        mode: u32,
    },
    Symlink {
        target: String,
    },
    Dir {
        mode: u32,
    },
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Path prefixes outside this sync (`registry` or `registry/`: that directory and
    /// everything under it).
    pub exclude: Vec<String>,
    /// Per command.
    pub timeout: Duration,
    /// Where the tar stream is built (default: the system's temp dir).
    pub temp_dir: Option<PathBuf>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            exclude: Vec::new(),
            timeout: Duration::from_secs(600),
            temp_dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Files and symlinks sent.
    pub files_sent: usize,
    /// Content bytes of the files sent.
    pub bytes_sent: u64,
    /// Files and symlinks removed from the host.
    pub files_deleted: usize,
    /// Bytes of the whole stream (tar headers and control files included); 0 when nothing
    /// differed.
    pub stream_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncErrorKind {
    /// The entries or the local tree are not usable.
    Local,
    /// The host could not be reached or the connection broke.
    Transport,
    /// A remote command failed.
    Remote,
}

#[derive(Debug, Clone)]
pub struct SyncError {
    pub host: String,
    pub kind: SyncErrorKind,
    pub message: String,
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: sync: {}", self.host, self.message)
    }
}

impl std::error::Error for SyncError {}

impl From<TransportError> for SyncError {
    fn from(e: TransportError) -> Self {
        SyncError {
            host: e.host,
            kind: SyncErrorKind::Transport,
            message: e.message,
        }
    }
}

/// Makes `remote_root` on the host hold exactly `entries` of `local_root` (minus excluded
/// prefixes), sending only what differs. See the module docs for the protocol.
pub async fn sync<T: Transport>(
    transport: &T,
    local_root: &Path,
    entries: &[ManifestEntry],
    remote_root: &str,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let (entries, remote, excluded) = survey(transport, entries, remote_root, options).await?;
    let mtime = now_seconds();
    let plan = plan::plan(&entries, &remote, &excluded, mtime);
    send_direct(
        transport,
        local_root,
        &entries,
        &plan,
        remote_root,
        options,
        mtime,
    )
    .await
}

/// The seconds since the epoch: the mtime files sent now get.
fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks the options and entries, and probes the host: the inputs of [`plan::plan`].
async fn survey<T: Transport>(
    transport: &T,
    entries: &[ManifestEntry],
    remote_root: &str,
    options: &SyncOptions,
) -> Result<(Vec<ManifestEntry>, probe::Remote, Vec<String>), SyncError> {
    let host = transport.host().to_string();
    let error = |kind: SyncErrorKind, message: String| SyncError {
        host: host.clone(),
        kind,
        message,
    };
    let excluded: Vec<String> = options
        .exclude
        .iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = excluded.iter().find(|p| !manifest::is_clean_relative(p)) {
        return Err(error(
            SyncErrorKind::Local,
            format!("exclude prefix {bad:?} is not a clean relative path"),
        ));
    }
    let entries = prepare(entries, &excluded).map_err(|m| error(SyncErrorKind::Local, m))?;
    let probe = run(
        transport,
        Exec::new(probe::script(remote_root, &excluded), options.timeout),
        "reading the remote manifest",
    )
    .await?;
    let remote = probe::parse(&probe.stdout).map_err(|m| {
        error(
            SyncErrorKind::Remote,
            format!("unexpected output of the probe: {m}"),
        )
    })?;
    Ok((entries, remote, excluded))
}

/// What a plan sends, before anything is sent.
fn report_of(plan: &plan::Plan<'_>) -> SyncReport {
    SyncReport {
        files_sent: plan.files_sent(),
        bytes_sent: plan.bytes_sent(),
        files_deleted: plan.delete.len(),
        stream_bytes: 0,
    }
}

/// Removes the directories on the host where files must go (tar cannot replace them).
async fn pre_delete<T: Transport>(
    transport: &T,
    plan: &plan::Plan<'_>,
    remote_root: &str,
    options: &SyncOptions,
) -> Result<(), SyncError> {
    if plan.pre_delete.is_empty() {
        return Ok(());
    }
    let script = format!(
        "set -eu\ncd -- {}\nxargs -0 -r rm -rf --\n",
        quote(remote_root)
    );
    let list = nul_joined(&plan.pre_delete);
    run(
        transport,
        Exec::new(script, options.timeout).with_stdin(Stdin::Bytes(list)),
        "removing directories that files replace",
    )
    .await?;
    Ok(())
}

/// Builds the archive of `contents` in a temp file (blocking I/O, off the async threads);
/// the file lives as long as the returned handle.
async fn build_archive(
    host: &str,
    local_root: &Path,
    contents: archive::Contents,
    mtime: i64,
    options: &SyncOptions,
) -> Result<(tempfile::NamedTempFile, u64), SyncError> {
    let error = |message: String| SyncError {
        host: host.to_string(),
        kind: SyncErrorKind::Local,
        message,
    };
    let temp_dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let archive_file = tempfile::Builder::new()
        .prefix("sealer-sync-")
        .suffix(".tar")
        .tempfile_in(&temp_dir)
        .map_err(|e| {
            error(format!(
                "cannot create a temp file in {}: {e}",
                temp_dir.display()
            ))
        })?;
    let file = archive_file.reopen().map_err(|e| {
        error(format!(
            "cannot open {}: {e}",
            archive_file.path().display()
        ))
    })?;
    let root = local_root.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || archive::write(file, &root, &contents, mtime))
        .await
        .map_err(|e| error(format!("building the archive: {e}")))?
        .map_err(error)?;
    Ok((archive_file, bytes))
}

/// Sends what `plan` says from this machine: the changed entries as one tar stream.
async fn send_direct<T: Transport>(
    transport: &T,
    local_root: &Path,
    entries: &[ManifestEntry],
    plan: &plan::Plan<'_>,
    remote_root: &str,
    options: &SyncOptions,
    mtime: i64,
) -> Result<SyncReport, SyncError> {
    let mut report = report_of(plan);
    if plan.noop {
        return Ok(report);
    }
    pre_delete(transport, plan, remote_root, options).await?;
    let contents = archive::Contents::of(entries, plan);
    let (archive_file, bytes) =
        build_archive(transport.host(), local_root, contents, mtime, options).await?;
    report.stream_bytes = bytes;
    let exec = Exec::new(send_script(remote_root, &plan.manifest), options.timeout)
        .with_stdin(Stdin::File(archive_file.path().to_path_buf()));
    run(transport, exec, "sending files").await?;
    // The temp file lives until here: the transport streamed it.
    drop(archive_file);
    Ok(report)
}

/// Reads a synced tree back (nothing is sent or changed): whether `remote_root` still
/// holds what the last complete sync wrote there, `excluded` prefixes aside.
pub async fn check<T: Transport>(
    transport: &T,
    remote_root: &str,
    excluded: &[String],
    timeout: Duration,
) -> Result<TreeCheck, SyncError> {
    let excluded: Vec<String> = excluded
        .iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| manifest::is_clean_relative(p))
        .collect();
    let probe = run(
        transport,
        Exec::new(probe::script(remote_root, &excluded), timeout),
        "reading the remote manifest",
    )
    .await?;
    let remote = probe::parse(&probe.stdout).map_err(|m| SyncError {
        host: transport.host().to_string(),
        kind: SyncErrorKind::Remote,
        message: format!("unexpected output of the probe: {m}"),
    })?;
    Ok(check::compare(&remote, &excluded))
}

/// Checks the entries and completes them: sorted, excluded ones removed, every ancestor
/// directory listed (a plain 0755 when the caller did not list it).
fn prepare(entries: &[ManifestEntry], excluded: &[String]) -> Result<Vec<ManifestEntry>, String> {
    let mut by_path = std::collections::BTreeMap::new();
    for entry in entries {
        if !manifest::is_clean_relative(&entry.path) {
            return Err(format!("{:?} is not a clean relative path", entry.path));
        }
        let top = entry.path.split('/').next().unwrap_or_default();
        if [MANIFEST_FILE, MANIFEST_TMP, CONTROL_DIR].contains(&top) {
            return Err(format!("{:?} is a name the sync reserves", entry.path));
        }
        if let EntryKind::File { sha256, .. } = &entry.kind
            && !(sha256.len() == 64
                && sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            return Err(format!("{:?}: {sha256:?} is not a SHA-256", entry.path));
        }
        if excluded.iter().any(|p| plan::is_under(&entry.path, p)) {
            continue;
        }
        if by_path.insert(entry.path.clone(), entry.clone()).is_some() {
            return Err(format!("{:?} is listed twice", entry.path));
        }
    }
    let listed: Vec<String> = by_path.keys().cloned().collect();
    for path in &listed {
        for dir in plan::ancestors(path) {
            match by_path.get(dir).map(|e| &e.kind) {
                Some(EntryKind::Dir { .. }) => {}
                Some(_) => {
                    return Err(format!(
                        "{path:?} is under {dir:?}, which is not a directory"
                    ));
                }
                None => {
                    by_path.insert(
                        dir.to_string(),
                        ManifestEntry {
                            path: dir.to_string(),
                            kind: EntryKind::Dir { mode: 0o755 },
                        },
                    );
                }
            }
        }
    }
    Ok(by_path.into_values().collect())
}

fn nul_joined(paths: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for p in paths {
        bytes.extend_from_slice(p.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// The start of every script that receives a tar on stdin into ROOT: into ROOT, the last
/// sync's control files and half-written manifest gone, the stream extracted.
fn extract_script(root: &str) -> String {
    format!(
        "set -eu\n\
         root={root}\n\
         mkdir -p -- \"$root\"\n\
         cd -- \"$root\"\n\
         ctl={CONTROL_DIR}\n\
         rm -rf -- \"$ctl\" {MANIFEST_TMP}\n\
         tar -xpf - --no-same-owner\n",
        root = quote(root),
    )
}

/// The script that extracts the stream, deletes what is gone and installs the manifest.
fn send_script(root: &str, update: &plan::ManifestUpdate) -> String {
    format!(
        "{extract}{EXTRACTED_MARK}\n{finish}",
        extract = extract_script(root),
        finish = finish_script(update),
    )
}

/// The end of a send, in ROOT with `$ctl` extracted: deletes what is gone, installs the
/// manifest if it comes out as computed, removes the control files.
fn finish_script(update: &plan::ManifestUpdate) -> String {
    let manifest = match update {
        plan::ManifestUpdate::Full(text) => format!(
            "mv -f -- \"$ctl/manifest\" {MANIFEST_TMP}\n\
             expected={}\n",
            manifest::sha256_hex(text.as_bytes())
        ),
        plan::ManifestUpdate::Delta { expected, .. } => format!(
            "{{ if [ -f {MANIFEST_FILE} ]; then LC_ALL=C grep -vxFf \"$ctl/drop\" {MANIFEST_FILE} || true; fi\n\
             \x20 cat -- \"$ctl/add\"; }} | LC_ALL=C sort > {MANIFEST_TMP}\n\
             expected={}\n",
            manifest::sha256_hex(expected.as_bytes())
        ),
    };
    format!(
        "xargs -0 -r rm -rf -- < \"$ctl/delete\"\n\
         xargs -0 -r rmdir -- < \"$ctl/rmdirs\" 2>/dev/null || true\n\
         {manifest}\
         if ! printf '%s  %s\\n' \"$expected\" {MANIFEST_TMP} | sha256sum -c --status; then\n\
         \x20 rm -f -- {MANIFEST_TMP}\n\
         \x20 echo 'the manifest on the host changed during the sync; not installing the new one' >&2\n\
         \x20 exit 3\n\
         fi\n\
         mv -f -- {MANIFEST_TMP} {MANIFEST_FILE}\n\
         rm -rf -- \"$ctl\"\n"
    )
}

/// Runs a command; a non-zero exit is an error with the tail of its stderr.
async fn run<T: Transport>(
    transport: &T,
    exec: Exec,
    doing: &str,
) -> Result<ExecOutput, SyncError> {
    let out = transport.exec(&exec, None).await?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(SyncError {
        host: transport.host().to_string(),
        kind: SyncErrorKind::Remote,
        message: format!("{doing} failed ({}): {}", out.status, tail.join("\n")),
    })
}

#[cfg(test)]
mod tests;
