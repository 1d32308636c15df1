//! The schema: numbered SQL migrations from `state-schema/migrations/`, applied in order at
//! open inside one transaction, and the checks that keep this binary away from files it
//! does not understand. `PRAGMA user_version` is the number of the last migration applied.

use super::db::sql_error;
use crate::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// One migration: `sql` moves a database from `version - 1` to `version`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order, numbered from 1 without gaps. Released ones are never edited
/// (`state-schema/README.md`): databases out there already ran them.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../state-schema/migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_digest_key",
        sql: include_str!("../../state-schema/migrations/0002_digest_key.sql"),
    },
    Migration {
        version: 3,
        name: "0003_drift",
        sql: include_str!("../../state-schema/migrations/0003_drift.sql"),
    },
];

/// `PRAGMA application_id` of a sealer state database ("SEAL"), set by the first migration.
pub(crate) const APPLICATION_ID: i64 = 0x5345_414c;

/// The schema version this binary writes and understands.
pub fn current_version() -> u32 {
    latest(MIGRATIONS)
}

fn latest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |m| m.version)
}

/// Migrates a database that sealer just created (still version 0) to the current schema.
pub(crate) fn initialize(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate(conn, path, MIGRATIONS)
}

/// Checks that an existing file is a sealer state database this binary understands and
/// that is not damaged, then brings an older schema up to date.
pub(crate) fn check_and_migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    check_and_migrate_with(conn, path, MIGRATIONS)
}

pub(crate) fn check_and_migrate_with(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<()> {
    let (application_id, version) = identity(conn, path)?;
    if application_id != APPLICATION_ID {
        return Err(Error::msg(format!(
            "{} is a SQLite database but not a sealer state database",
            path.display()
        ))
        .hint("pass the path of the sealer state with --state PATH; sealer leaves this file untouched"));
    }
    // Checked before anything else touches the file: a newer schema may mean anything, and
    // the only safe thing to do with it is nothing.
    let known = latest(migrations);
    if version > known {
        return Err(newer_error(path, version, known));
    }
    quick_check(conn, path)?;
    if version < known {
        migrate(conn, path, migrations)?;
    }
    Ok(())
}

/// The application ID and schema version from the file header.
fn identity(conn: &Connection, path: &Path) -> Result<(i64, u32)> {
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "cannot read", e))?;
    Ok((application_id, user_version(conn, path)?))
}

fn user_version(conn: &Connection, path: &Path) -> Result<u32> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "cannot read the schema version of", e))?;
    // user_version is a signed 32-bit header field; a negative one is from nothing we wrote
    // and, like a future one, is left alone.
    u32::try_from(version).map_err(|_| {
        Error::msg(format!(
            "state database {} has schema version {version}, which no sealer writes",
            path.display()
        ))
        .hint("restore the state from a backup; sealer leaves this file untouched")
    })
}

fn newer_error(path: &Path, version: u32, known: u32) -> Error {
    Error::msg(format!(
        "state database {} has schema version {version}, newer than this sealer understands ({known})",
        path.display()
    ))
    .hint("upgrade sealer to the release that wrote this state; this one leaves the file untouched")
}

/// `PRAGMA quick_check`: catches truncated and overwritten pages, so that a damaged state
/// is reported when opened rather than read as fewer resources than it has.
fn quick_check(conn: &Connection, path: &Path) -> Result<()> {
    let problems: Vec<String> = match (|| {
        let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })() {
        Ok(problems) => problems,
        Err(e) => return Err(sql_error(path, "cannot check", e)),
    };
    if let [only] = problems.as_slice()
        && only == "ok"
    {
        return Ok(());
    }
    // SQLite's report is several lines per row; each becomes a context line.
    let mut diagnostic = crate::Diagnostic::error(format!(
        "state database {} is damaged: the integrity check failed",
        path.display()
    ));
    for line in problems
        .iter()
        .flat_map(|p| p.lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("***"))
        .take(5)
    {
        diagnostic = diagnostic.note(line.to_string());
    }
    Err(Error::from(diagnostic)
        .hint("restore the state from a backup; sealer never repairs or replaces a damaged state"))
}

/// Applies every migration newer than the file's version, all in one transaction together
/// with the new `user_version`: a process killed midway leaves the old schema, whole.
pub(crate) fn migrate(conn: &mut Connection, path: &Path, migrations: &[Migration]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error(path, "cannot start migrating", e))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let from = user_version(&tx, path)?;
    let known = latest(migrations);
    if from > known {
        return Err(newer_error(path, from, known));
    }
    for migration in migrations.iter().filter(|m| m.version > from) {
        tx.execute_batch(migration.sql).map_err(|e| {
            sql_error(
                path,
                &format!("schema migration {} failed", migration.name),
                e,
            )
        })?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(|e| sql_error(path, "cannot record the schema version in", e))?;
    }
    tx.commit()
        .map_err(|e| sql_error(path, "cannot commit the schema migration of", e))
}
