//! The SQLite file: opening it without ever mistaking a damaged or foreign file for an
//! empty state, creating it whole, connection settings, and SQLite errors turned into ours.
//!
//! This module and its siblings are the only code that uses rusqlite; nothing outside
//! `state` sees its types.

use super::schema;
use super::sql::{DbError, Query};
use crate::diag::{IoContext, io_error};
use crate::{Error, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a statement waits for another process's write transaction before failing.
/// Writes are single rows and take milliseconds; this only has to outlast a neighbour's
/// fsync or migration.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The size of the SQLite file header; a shorter file is truncated, not a database.
const SQLITE_HEADER_LEN: usize = 100;

/// The open database, shared by the store and the locks it hands out (a lock deletes its
/// row when dropped, possibly after the store itself was dropped).
pub(crate) struct Shared {
    /// The file; for PostgreSQL, the URL without its password (what messages name).
    pub(crate) path: PathBuf,
    conn: Conn,
}

/// The connection of either backend.
enum Conn {
    Sqlite(Mutex<Connection>),
    /// `None` only while [`Shared`] is dropped.
    Postgres(Mutex<Option<postgres::Client>>),
}

/// The client of a PostgreSQL connection (always there until the store is dropped).
fn client(
    conn: &mut Option<postgres::Client>,
) -> std::result::Result<&mut postgres::Client, DbError> {
    conn.as_mut()
        .ok_or_else(|| DbError::Column("the connection was closed".to_string()))
}

impl Drop for Shared {
    /// Closing a `postgres` client blocks on its runtime, which tokio refuses on a thread
    /// that runs async tasks, where a store may well be dropped.
    fn drop(&mut self) {
        if let Conn::Postgres(m) = &mut self.conn {
            let client = m
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            super::pg::blocking(|| drop(client));
        }
    }
}

/// A connection's mutex. A panic while it was held leaves the connection usable (an
/// unfinished transaction rolls back when dropped), so poisoning is not an error here.
fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// A PostgreSQL state, opened with [`super::pg::connect`] and checked.
    pub(crate) fn postgres(location: String, client: postgres::Client) -> Shared {
        Shared {
            path: PathBuf::from(location),
            conn: Conn::Postgres(Mutex::new(Some(client))),
        }
    }

    /// Takes the session advisory lock `key` if it is free (PostgreSQL only).
    pub(crate) fn advisory_try_lock(&self, key: i64) -> Result<bool> {
        self.advisory("SELECT pg_try_advisory_lock($1)", key)
    }

    /// Releases the session advisory lock `key` this connection holds.
    pub(crate) fn advisory_unlock(&self, key: i64) -> Result<()> {
        self.advisory("SELECT pg_advisory_unlock($1)", key)
            .map(|_| ())
    }

    /// Whether some session holds the advisory lock `key` (a bigint key is split into
    /// `classid`, its high 32 bits, and `objid`, its low ones, with `objsubid` 1).
    pub(crate) fn advisory_held(&self, key: i64) -> Result<bool> {
        let Conn::Postgres(m) = &self.conn else {
            return Ok(false);
        };
        let bits = key as u64;
        let (high, low) = ((bits >> 32) as i64, (bits & 0xffff_ffff) as i64);
        let sql = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory'
                   AND granted AND objsubid = 1 AND classid::bigint = $1 AND objid::bigint = $2)";
        super::pg::blocking(|| {
            Ok::<_, DbError>(client(&mut guard(m))?.query_one(sql, &[&high, &low])?)
        })
        .map(|r| r.get(0))
        .map_err(|e| self.err("cannot read the locks of", e))
    }

    fn advisory(&self, sql: &str, key: i64) -> Result<bool> {
        let Conn::Postgres(m) = &self.conn else {
            return Ok(false);
        };
        super::pg::blocking(|| Ok::<_, DbError>(client(&mut guard(m))?.query_one(sql, &[&key])?))
            .map(|r| r.get(0))
            .map_err(|e| self.err("cannot lock", e))
    }

    /// Whether this state lives in PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.conn, Conn::Postgres(_))
    }

    /// Turns a database error into ours, naming the state file.
    pub(crate) fn err(&self, action: &str, e: impl Into<DbError>) -> Error {
        match e.into() {
            DbError::Sqlite(e) => sql_error(&self.path, action, e),
            DbError::Postgres(e) => super::pg::pg_error(&self.path.to_string_lossy(), action, &e),
            DbError::Column(why) => Error::msg(format!(
                "state database {} is damaged: {action}: {why}",
                self.path.display()
            ))
            .hint(
                "restore the state from a backup; sealer never repairs or replaces a damaged state",
            ),
        }
    }

    /// Runs `f` in one read transaction: everything it reads is from the same version.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&dyn Query) -> Result<T>) -> Result<T> {
        match &self.conn {
            Conn::Sqlite(m) => {
                let mut conn = guard(m);
                let tx = conn.transaction().map_err(|e| self.err("cannot read", e))?;
                f(&*tx)
            }
            Conn::Postgres(m) => super::pg::blocking(|| {
                let mut conn = guard(m);
                let tx = client(&mut conn)
                    .and_then(super::pg::read_tx)
                    .map_err(|e| self.err("cannot read", e))?;
                let q = super::pg::PgTx(std::cell::RefCell::new(tx));
                let out = f(&q)?;
                q.0.into_inner()
                    .commit()
                    .map_err(|e| self.err("cannot read", e))?;
                Ok(out)
            }),
        }
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`: the write lock is taken first,
    /// so what `f` reads is not changed by another writer before it commits), and commits
    /// it. An error from `f` rolls everything back.
    pub(crate) fn write<T>(
        &self,
        begin: &str,
        commit: &str,
        f: impl FnOnce(&dyn Query) -> Result<T>,
    ) -> Result<T> {
        match &self.conn {
            Conn::Sqlite(m) => {
                let mut conn = guard(m);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| self.err(begin, e))?;
                let out = f(&*tx)?;
                tx.commit().map_err(|e| self.err(commit, e))?;
                Ok(out)
            }
            Conn::Postgres(m) => super::pg::blocking(|| {
                let mut conn = guard(m);
                let tx = client(&mut conn)
                    .and_then(super::pg::write_tx)
                    .map_err(|e| self.err(begin, e))?;
                let q = super::pg::PgTx(std::cell::RefCell::new(tx));
                let out = f(&q)?;
                q.0.into_inner().commit().map_err(|e| self.err(commit, e))?;
                Ok(out)
            }),
        }
    }

    /// After digests were rewritten: free pages of the file (from writes of a sealer without
    /// `secure_delete`) and the WAL still hold the old bytes. Rebuilds the file (once, in
    /// memory) and empties the WAL, so they leave the disk now. A reader in another process
    /// can keep the WAL from emptying: the next write's checkpoint does.
    /// PostgreSQL reclaims dead rows itself (autovacuum): nothing to do there.
    pub(crate) fn compact(&self, rewritten: bool) -> Result<()> {
        let Conn::Sqlite(m) = &self.conn else {
            return Ok(());
        };
        let conn = guard(m);
        if rewritten {
            conn.execute_batch("PRAGMA temp_store = MEMORY; VACUUM;")
                .map_err(|e| self.err("cannot compact", e))?;
        }
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }
}

/// Opens the state database at `path` if the file exists: `Ok(None)` only when it does not.
/// Anything else that is not a readable sealer state database is an error.
pub(crate) fn open_existing(path: &Path) -> Result<Option<Shared>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read state database", path, e)),
    };
    if meta.is_dir() {
        return Err(
            Error::msg(format!("state database {} is a directory", path.display()))
                .hint("pass the path of the state file with --state PATH"),
        );
    }
    check_header(path)?;
    // Without SQLITE_OPEN_CREATE: a file that vanished since the check must not be recreated
    // empty. READ_WRITE falls back to read-only when the file is write-protected, which is
    // enough for readers.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, "cannot open", e))?;
    configure(&conn, path)?;
    schema::check_and_migrate(&mut conn, path)?;
    Ok(Some(Shared {
        path: path.to_path_buf(),
        conn: Conn::Sqlite(Mutex::new(conn)),
    }))
}

/// Opens the state database at `path`, creating it (0600, missing parent directories 0700)
/// when it does not exist.
pub(crate) fn open_or_create(path: &Path) -> Result<Shared> {
    if !path.exists() {
        create(path)?;
    }
    let Some(shared) = open_existing(path)? else {
        return Err(Error::msg(format!(
            "state database {} disappeared while it was being opened",
            path.display()
        ))
        .hint("is another program removing it? retry"));
    };
    // WAL keeps readers (plan) from blocking the writer (apply). The mode is stored in the
    // file, so this only changes something for a file that was switched back by hand.
    if let Conn::Sqlite(m) = &shared.conn {
        let conn = guard(m);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| shared.err("cannot read the journal mode of", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            set_wal(&conn, path)?;
        }
    }
    Ok(shared)
}

/// Creates the database whole: a temporary file next to `path` is migrated, closed and
/// synced, then linked into place. So a file at `path` is always a complete sealer state
/// database, and one that is not (empty, garbage) was not made by sealer and is refused.
fn create(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Directories created here get 0700; an existing one keeps its mode here (`--state` may
    // name any directory; $SEALER_HOME is tightened by `home::open_home` when the store or the
    // credentials open it). The file itself is 0600 either way.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_path("cannot create directory", &dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.db".to_string());
    let suffix: String = super::ids::random_bytes::<4>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tmp = dir.join(format!(".{file_name}.new-{}-{suffix}", std::process::id()));
    let _cleanup = TempFiles(tmp.clone());

    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_path("cannot create", &tmp)?;
    // The mode given at creation is reduced by the umask; say it again to be sure.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .with_path("cannot set permissions of", &tmp)?;
    drop(file);

    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(&tmp, flags).map_err(|e| sql_error(&tmp, "cannot open", e))?;
    configure(&conn, &tmp)?;
    set_wal(&conn, &tmp)?;
    schema::initialize(&mut conn, &tmp)?;
    // Closing the last connection checkpoints the WAL into the file and removes it, so the
    // linked file alone holds everything.
    conn.close()
        .map_err(|(_, e)| sql_error(&tmp, "cannot close", e))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_path("cannot sync", &tmp)?;

    // A hard link never replaces a file: if another process created the state meanwhile,
    // that one wins and we open it.
    match fs::hard_link(&tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        // Some filesystems have no hard links; a rename is the next best thing, checked
        // just before so that an existing file is (almost certainly) never replaced.
        Err(_) if !path.exists() => {
            fs::rename(&tmp, path).with_path("cannot create state database", path)?
        }
        Err(_) => return Ok(()),
    }
    if let Ok(d) = fs::File::open(&dir) {
        // Makes the new name durable; failure only weakens durability, not correctness.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary database (and any WAL files SQLite left) on every path out of
/// [`create`]; after a successful link the state lives on under its real name.
struct TempFiles(PathBuf);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = fs::remove_file(PathBuf::from(p));
        }
    }
}

/// Refuses files that are not SQLite databases before SQLite sees them: SQLite reads an
/// empty file as an empty database, and "empty" must never stand for "damaged".
fn check_header(path: &Path) -> Result<()> {
    let mut header = Vec::with_capacity(SQLITE_HEADER_LEN);
    fs::File::open(path)
        .and_then(|f| f.take(SQLITE_HEADER_LEN as u64).read_to_end(&mut header))
        .with_path("cannot read state database", path)?;
    let restore = "restore the state from a backup, or pass the right file with --state PATH; \
                   sealer never overwrites it";
    if header.is_empty() {
        return Err(Error::msg(format!(
            "state database {} is empty: it is not a SQLite database",
            path.display()
        ))
        .hint("sealer creates its state database whole, so an empty file was truncated or made by something else")
        .hint(restore));
    }
    if !header.starts_with(SQLITE_MAGIC) {
        return Err(Error::msg(format!(
            "state database {} is not a SQLite database",
            path.display()
        ))
        .hint(restore));
    }
    if header.len() < SQLITE_HEADER_LEN {
        return Err(Error::msg(format!(
            "state database {} is truncated ({} bytes)",
            path.display(),
            header.len()
        ))
        .hint(restore));
    }
    Ok(())
}

/// Per-connection settings. `synchronous=FULL`: every committed step must survive a power
/// cut, which matters more than speed (a step takes seconds, an fsync milliseconds).
/// `secure_delete`: what a write replaces or deletes (a digest rewritten by `rekey`, a
/// removed resource) is overwritten with zeros, not left in free pages of the file.
fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, "cannot configure", e))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;",
    )
    .map_err(|e| sql_error(path, "cannot configure", e))?;
    Ok(())
}

fn set_wal(conn: &Connection, path: &Path) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "cannot switch to WAL mode", e))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "state database {}: cannot switch to WAL mode (SQLite kept {mode})",
            path.display()
        ))
        .hint("put the state on a local filesystem: WAL needs shared memory, which network filesystems often lack"))
    }
}

/// A SQLite error as ours: what was done, to which file, why, and what to do.
pub(crate) fn sql_error(path: &Path, action: &str, e: rusqlite::Error) -> Error {
    let code = e.sqlite_error_code();
    if let Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) = code {
        // Whatever was being done, what the user needs to know is that the file is damaged.
        return Error::msg(format!("state database {} is damaged: {e}", path.display())).hint(
            "restore the state from a backup; sealer never repairs or replaces a damaged state",
        );
    }
    let err = Error::msg(format!("state database {}: {action}: {e}", path.display()));
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            err.hint("another sealer process is writing this state; retry when it has finished")
        }
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => err
            .hint("check the permissions of the state file and of its directory (SQLite writes -wal and -shm files next to it)"),
        Some(ErrorCode::DiskFull) => err.hint("free some disk space, then retry"),
        _ => err,
    }
}
