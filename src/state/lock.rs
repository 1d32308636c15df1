//! Cluster locks: one row per cluster name in the `locks` table, so that two sealers never
//! apply to one cluster at once and whoever waits learns who holds it; and under it an OS
//! advisory lock (`File::lock`) on `STATE.lock.CLUSTER`, which the kernel releases when the
//! holder dies, however it dies. A lock is taken atomically (the file lock, then the row
//! under a write transaction), waited for by polling, and released by deleting its own row
//! and closing the file. A row left by a process of this host that is gone, and whose file
//! lock is free, is taken over and reported; any other row is waited for, and only
//! `break_lock` (the operator's `sealer state unlock ID`) removes it.

use super::db::Shared;
use super::sql::vals;
use crate::{Error, Result};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting `lock` looks again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Who asks for a lock: the operation and the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// What the holder is doing: `apply`, `destroy`, `run`, ...
    pub operation: String,
    pub pid: u32,
    pub host: String,
}

impl LockHolder {
    /// This process on this host, doing `operation`.
    pub fn this_process(operation: &str) -> LockHolder {
        LockHolder {
            operation: operation.to_string(),
            pid: std::process::id(),
            host: host_name(),
        }
    }
}

/// A lock as recorded in the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Random; what `sealer state unlock ID` takes.
    pub id: String,
    pub operation: String,
    pub pid: u32,
    pub host: String,
    /// When it was taken, UTC, RFC 3339.
    pub since: String,
}

impl LockInfo {
    /// Whether the holder is known to be gone: it ran on this host and its process no longer
    /// exists (or is a zombie). A lock from another host, or from a system where this cannot
    /// be told, is never called stale.
    pub fn is_stale(&self) -> bool {
        self.host == host_name() && process_liveness(self.pid) == Liveness::Gone
    }
}

impl fmt::Display for LockInfo {
    /// `pid 1234 on host h since 2026-11-25T09:00:00Z (apply, lock ID abcd)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on host {} since {} ({}, lock ID {})",
            self.pid, self.host, self.since, self.operation, self.id
        )
    }
}

/// A held lock. Dropping it releases the lock (deletes its own row, by ID, so a lock that
/// was broken and taken by someone else meanwhile is left alone); [`StateLock::release`]
/// does the same and reports failure.
pub struct StateLock {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cluster: String,
    pub(crate) info: LockInfo,
    pub(crate) released: bool,
    /// The lock left by a holder that died, taken over by this one.
    pub(crate) took_over: Option<LockInfo>,
    /// What holds the lock for as long as this value lives; declared last so that it is let
    /// go after `Drop` removed the row.
    pub(crate) guard: Guard,
}

/// What holds a cluster's lock, besides its row.
pub(crate) enum Guard {
    /// SQLite: the OS advisory lock on `STATE.lock.CLUSTER`, released by the kernel when
    /// the file is closed, however the holder dies.
    File(#[allow(dead_code)] std::fs::File),
    /// PostgreSQL: a session advisory lock with this key, released by the server when the
    /// holder's connection ends, however it ends.
    Advisory(i64),
}

/// The PostgreSQL advisory lock key of a cluster's lock: the first 8 bytes of a SHA-256 of
/// its name (a collision would only make two clusters wait for each other).
pub(crate) fn advisory_key(cluster: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("sealer cluster lock\0{cluster}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl StateLock {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock a dead holder left, which this one replaced (for the CLI to say so).
    pub fn took_over(&self) -> Option<&LockInfo> {
        self.took_over.as_ref()
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Releases the lock now, reporting an error that `Drop` would have to swallow.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        let deleted = delete_own_row(&self.shared, &self.info.id);
        let unlocked = self.let_go();
        deleted.and(unlocked)
    }

    /// Releases the PostgreSQL advisory lock (a file lock goes with the file).
    fn let_go(&self) -> Result<()> {
        match self.guard {
            Guard::File(_) => Ok(()),
            Guard::Advisory(key) => self.shared.advisory_unlock(key),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if !self.released {
            // Nothing to report to from here; a row left behind is a stale lock, which the
            // next `lock` names and `break_lock` clears.
            let _ = delete_own_row(&self.shared, &self.info.id);
            let _ = self.let_go();
        }
    }
}

impl fmt::Debug for StateLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateLock")
            .field("cluster", &self.cluster)
            .field("info", &self.info)
            .finish()
    }
}

fn delete_own_row(shared: &Shared, id: &str) -> Result<()> {
    let action = "cannot release the lock in";
    shared.write(action, action, |q| {
        q.execute("DELETE FROM locks WHERE id = ?1", vals![id])
            .map_err(|e| shared.err(action, e))
    })?;
    Ok(())
}

/// The error of a `lock` that found the cluster locked by someone else.
pub(crate) fn locked_error(cluster: &str, holder: &LockInfo, waited: Duration) -> Error {
    let stale = holder.is_stale();
    let mut message = format!("state of cluster {cluster:?} is locked by {holder}");
    if stale {
        message.push_str(": the process is gone: the lock is stale");
    }
    let mut diagnostic = crate::Diagnostic::error(message);
    if !waited.is_zero() {
        diagnostic = diagnostic.note(format!("waited {} for the lock", humanize(waited)));
    }
    let unlock = format!("sealer state unlock {}", holder.id);
    let error = Error::from(diagnostic);
    if stale {
        error.hint(format!(
            "process {} no longer runs on this host; remove its lock with `{unlock}`, then retry",
            holder.pid
        ))
    } else {
        error
            .hint("wait for that sealer to finish, or wait longer with --lock-timeout DURATION")
            .hint(format!(
                "if that process is gone, remove the lock with `{unlock}`"
            ))
    }
}

fn humanize(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// What can be told about a process from its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Gone,
    /// No way to tell (no `/proc`, or it cannot be read): treated as alive.
    Unknown,
}

/// Looks the process up in `/proc` (Linux). A zombie counts as gone: it has exited and
/// will never release anything, it only waits for its parent to read its status.
pub(crate) fn process_liveness(pid: u32) -> Liveness {
    if pid == 0 || !Path::new("/proc/self/stat").exists() {
        return Liveness::Unknown;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat_state(&stat) {
            Some('Z' | 'X' | 'x') => Liveness::Gone,
            Some(_) => Liveness::Alive,
            None => Liveness::Unknown,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Gone,
        Err(_) => Liveness::Unknown,
    }
}

/// The state letter of a `/proc/PID/stat` line: `PID (COMM) STATE ...`, where COMM may hold
/// spaces and parentheses, hence the last `)`.
pub(crate) fn stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// This machine's host name, as recorded in locks: the kernel's, else `/etc/hostname`,
/// else `$HOSTNAME`, else `unknown`.
pub(crate) fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The file whose OS lock stands for the cluster's lock: next to the state database.
pub(crate) fn lock_file_path(db: &Path, cluster: &str) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".lock.{cluster}"));
    db.with_file_name(name)
}

/// Opens (creating it, 0600) the cluster's lock file.
pub(crate) fn open_lock_file(db: &Path, cluster: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = lock_file_path(db, cluster);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| crate::diag::io_error("cannot open the lock file", &path, e))
}

/// Whether another process holds the OS lock of `file` now.
pub(crate) fn held_elsewhere(file: &std::fs::File) -> bool {
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32) -> LockInfo {
        LockInfo {
            id: "8f1c2a".into(),
            operation: "apply".into(),
            pid,
            host: host.into(),
            since: "2026-11-25T09:00:00Z".into(),
        }
    }

    /// A holder on another host may be alive: wait, or unlock once it is known gone.
    #[test]
    fn a_lock_held_elsewhere_says_how_to_wait_or_unlock() {
        let error = locked_error(
            "prod",
            &holder("ci-runner-7.invalid", 4242),
            Duration::from_secs(30),
        );
        insta::assert_snapshot!(error.render(), @r#"
        error: state of cluster "prod" is locked by pid 4242 on host ci-runner-7.invalid since 2026-11-25T09:00:00Z (apply, lock ID 8f1c2a)
          waited 30.0s for the lock
        hint: wait for that sealer to finish, or wait longer with --lock-timeout DURATION
        hint: if that process is gone, remove the lock with `sealer state unlock 8f1c2a`
        "#);
    }

    /// A holder of this host whose process is gone: the lock is stale, unlock it.
    #[test]
    fn a_stale_lock_says_to_unlock_it() {
        // Above the kernel's largest pid_max (2^22): no process has it.
        let gone = 4_194_305;
        let error = locked_error("prod", &holder(&host_name(), gone), Duration::ZERO);
        let text = error.render().replace(&host_name(), "HOST");
        insta::assert_snapshot!(text, @r#"
        error: state of cluster "prod" is locked by pid 4194305 on host HOST since 2026-11-25T09:00:00Z (apply, lock ID 8f1c2a): the process is gone: the lock is stale
        hint: process 4194305 no longer runs on this host; remove its lock with `sealer state unlock 8f1c2a`, then retry
        "#);
    }
}
