//! The state store: what sealer knows about each cluster it manages, in one SQLite file
//! (`$SEALER_HOME/state.db`, or `--state PATH`), or in a PostgreSQL database
//! ([`StateStore::open_or_create_postgres`]; `pg.rs`), both behind the same queries
//! (`sql.rs`) and the same guarantees.
//!
//! Per cluster (by name) the state holds a **lineage** (a UUID v4 made when the cluster's
//! state is created), a **serial** (incremented by every write, creation included), every
//! resource as a [`Recorded`], the **applied configuration** (opaque JSON the engine keeps,
//! e.g. the images `sealer run` installed), optional encrypted secrets, and the **history**:
//! one [`StateVersion`] per write, a delta log of what changed.
//!
//! Guarantees:
//! - Every write is one SQLite transaction (`BEGIN IMMEDIATE`): the row, the serial bump and
//!   the history row commit together, with `synchronous=FULL`, so a process killed at any
//!   point leaves the old state or the new one, never a mix, and a committed step survives a
//!   power cut.
//! - "No state" is only ever a missing file or a missing cluster. A file that exists but is
//!   unreadable, not SQLite, not sealer's, damaged (`PRAGMA quick_check`), or from a newer
//!   sealer is an error naming it, and is never modified or replaced.
//! - Secrets never appear in clear: sensitive attributes must be digests (a commit that
//!   carries anything else is refused), and the optional secrets are sealed with the
//!   operator's [`StateKey`].
//!
//! Writers must hold the cluster's lock ([`StateStore::lock`]) for the whole operation;
//! the write methods do not check it, because the executor takes it once per apply.
//!
//! All calls block on SQLite (and `lock` sleeps while it waits): async callers run them on a
//! blocking thread. A `StateStore` is `Send + Sync`; calls are serialized internally.

mod copy;
mod db;
mod ids;
mod lock;
mod pg;
mod pg_tls;
mod rows;
mod schema;
mod secrets;
mod sql;
#[cfg(test)]
mod tests;

pub use copy::CopiedCluster;
pub use lock::{LockHolder, LockInfo, StateLock};
pub use schema::current_version as schema_version;
pub use secrets::{Secret, StateKey};

use crate::resource::Recorded;
use crate::{Error, Result};
use db::Shared;
use rows::ResourceRow;
use sql::{DbError, Query, Row, vals};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The PostgreSQL URL `--state` gave (`postgres://...` or `postgresql://...`), if it is
/// one rather than a file: [`StateStore::open_existing`] and
/// [`StateStore::open_or_create`] open that database then.
pub fn postgres_url(path: &Path) -> Option<&str> {
    path.to_str()
        .filter(|p| p.starts_with("postgres://") || p.starts_with("postgresql://"))
}

/// How messages name the state `--state` gave: the file, or the URL without its password.
pub fn display_location(path: &Path) -> String {
    match postgres_url(path) {
        Some(url) => pg::redact(url),
        None => path.display().to_string(),
    }
}

/// The file name of the state under `$SEALER_HOME`.
pub const STATE_FILE_NAME: &str = "state.db";

/// An open state database.
pub struct StateStore {
    shared: Arc<Shared>,
    /// The sealer command its writes are for, recorded in their history rows.
    command: Option<String>,
}

/// One line of `sealer state list`-style overviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub name: String,
    pub lineage: String,
    pub serial: u64,
    /// How many resources the state records for it.
    pub resources: usize,
    /// UTC, RFC 3339.
    pub updated_at: String,
}

/// Everything the state knows about one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    pub name: String,
    pub lineage: String,
    pub serial: u64,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// UTC, RFC 3339.
    pub updated_at: String,
    /// Keyed by address.
    pub resources: BTreeMap<String, Recorded>,
    /// What [`StateStore::set_applied_config`] stored last; `None` until then.
    pub applied_config: Option<serde_json::Value>,
    /// Whether its digests are keyed with [`StateStore::digest_key`]; `false` for a cluster
    /// an older sealer recorded, until [`StateStore::rekey`] rewrites them.
    pub digests_keyed: bool,
}

/// What one write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The cluster's state was created (serial 1).
    Create,
    /// A finished step recorded its resource (ready).
    Commit,
    /// A resource was marked tainted (its step failed midway; the next plan replaces it).
    Taint,
    /// A destroyed resource left the state.
    Remove,
    /// The applied configuration was set.
    Config,
    /// An encrypted secret was stored (its value is not in the history).
    Secret,
    /// `apply --refresh-only` recorded what it found on the hosts (drift set or cleared).
    Refresh,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Commit => "commit",
            Operation::Taint => "taint",
            Operation::Remove => "remove",
            Operation::Config => "config",
            Operation::Secret => "secret",
            Operation::Refresh => "refresh",
        }
    }

    pub fn parse(text: &str) -> Option<Operation> {
        [
            Operation::Create,
            Operation::Commit,
            Operation::Taint,
            Operation::Remove,
            Operation::Config,
            Operation::Secret,
            Operation::Refresh,
        ]
        .into_iter()
        .find(|op| op.as_str() == text)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a cluster's history: the write that produced `serial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateVersion {
    pub serial: u64,
    /// UTC, RFC 3339.
    pub at: String,
    pub operation: Operation,
    /// The resource's address (`commit`, `taint`, `remove`), or the secret's name (`secret`).
    pub address: Option<String>,
    /// `commit` (and `taint` of a resource committed tainted): the new attributes;
    /// `config`: the new applied configuration.
    pub attributes: Option<serde_json::Value>,
    /// The sealer command that made it; `None` for writes of an older sealer.
    pub command: Option<String>,
}

/// The cluster row a write works on.
struct ClusterRow {
    id: i64,
    lineage: String,
    /// As stored; checked before use.
    serial: i64,
}

/// What a write puts in its history row.
struct LogEntry {
    address: Option<String>,
    attributes: Option<String>,
}

/// `clusters` columns of an overview: name, lineage, serial, updated_at, resource count.
type SummaryRow = (String, String, i64, String, i64);
/// `history` columns: serial, at, operation, address, attributes.
type HistoryRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl StateStore {
    /// Opens the state for reading (plan, show, `state list`). `Ok(None)` when the file does
    /// not exist, and then it is not created. A file that exists but cannot be read, is not
    /// a SQLite database, is not sealer's, fails `PRAGMA quick_check` or has a newer schema
    /// is an error, never "no state".
    ///
    /// A file with an older schema is migrated (one transaction; content and serials are
    /// unchanged). The returned store can write too: an apply to an existing cluster may
    /// open it this way.
    pub fn open_existing(path: &Path) -> Result<Option<StateStore>> {
        if let Some(url) = postgres_url(path) {
            return StateStore::open_existing_postgres(url);
        }
        Ok(db::open_existing(path)?.map(|shared| StateStore {
            shared: Arc::new(shared),
            command: None,
        }))
    }

    /// Opens the state for writing, creating the file (0600; missing parent directories
    /// 0700) when it does not exist. An existing file is checked as in
    /// [`StateStore::open_existing`] and never replaced.
    pub fn open_or_create(path: &Path) -> Result<StateStore> {
        if let Some(url) = postgres_url(path) {
            return StateStore::open_or_create_postgres(url);
        }
        Ok(StateStore {
            shared: Arc::new(db::open_or_create(path)?),
            command: None,
        })
    }

    /// Opens the PostgreSQL state at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`;
    /// without a password in the URL, `PGPASSWORD` gives it) for reading: `Ok(None)` when
    /// the database holds no sealer state, and then nothing is created in it. A database
    /// with other tables and no sealer schema, or a newer schema, is an error; an older
    /// schema is migrated, in one transaction.
    pub fn open_existing_postgres(url: &str) -> Result<Option<StateStore>> {
        pg::blocking(|| StateStore::open_existing_postgres_now(url))
    }

    fn open_existing_postgres_now(url: &str) -> Result<Option<StateStore>> {
        let (mut client, location) = pg::connect(url)?;
        if !pg::check_and_migrate(&mut client, &location, false)? {
            return Ok(None);
        }
        Ok(Some(StateStore {
            shared: Arc::new(db::Shared::postgres(location, client)),
            command: None,
        }))
    }

    /// Opens the PostgreSQL state at `url` for writing, creating the schema (and the digest
    /// key) in an empty database. Checked as in [`StateStore::open_existing_postgres`].
    pub fn open_or_create_postgres(url: &str) -> Result<StateStore> {
        pg::blocking(|| StateStore::open_or_create_postgres_now(url))
    }

    fn open_or_create_postgres_now(url: &str) -> Result<StateStore> {
        let (mut client, location) = pg::connect(url)?;
        pg::check_and_migrate(&mut client, &location, true)?;
        Ok(StateStore {
            shared: Arc::new(db::Shared::postgres(location, client)),
            command: None,
        })
    }

    /// The same store, recording `command` (`apply`, `destroy`, ...) with every write it
    /// makes from now on (`sealer state history`).
    pub fn for_command(mut self, command: &str) -> StateStore {
        self.command = Some(command.to_string());
        self
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Every cluster the state knows, by name.
    pub fn clusters(&self) -> Result<Vec<ClusterSummary>> {
        let shared = &self.shared;
        let rows = shared.read(|q| {
            q.rows(
                "SELECT c.name, c.lineage, c.serial, c.updated_at,
                        (SELECT count(*) FROM resources r WHERE r.cluster_id = c.id)
                 FROM clusters c ORDER BY c.name",
                &[],
            )
            .and_then(|rows| rows.iter().map(summary_row).collect::<Result<Vec<_>, _>>())
            .map_err(|e| shared.err("cannot read", e))
        })?;
        rows.into_iter()
            .map(|(name, lineage, serial, updated_at, count)| {
                let serial = self.checked_serial(&name, serial)?;
                self.check_lineage(&name, &lineage)?;
                Ok(ClusterSummary {
                    name,
                    lineage,
                    serial,
                    resources: usize::try_from(count).unwrap_or(0),
                    updated_at,
                })
            })
            .collect()
    }

    /// The state of cluster `name`; `None` when the state has no record of it (a new
    /// cluster). A damaged record is an error.
    pub fn cluster(&self, name: &str) -> Result<Option<ClusterState>> {
        let shared = &self.shared;
        // One read transaction: the cluster row and its resources from the same version.
        shared.read(|q| {
            let read = |e| shared.err("cannot read", e);
            let head = q
                .row(
                    "SELECT id, lineage, serial, created_at, updated_at, applied_config, digests_keyed
                     FROM clusters WHERE name = ?1",
                    vals![name],
                )
                .map_err(read)?;
            let Some(head) = head else {
                return Ok(None);
            };
            let (id, lineage, serial, created_at, updated_at, config, digests_keyed) = (|| {
                Ok::<_, DbError>((
                    head.int(0)?,
                    head.text(1)?,
                    head.int(2)?,
                    head.text(3)?,
                    head.text(4)?,
                    head.opt_text(5)?,
                    head.flag(6)?,
                ))
            })()
            .map_err(read)?;
            let serial = self.checked_serial(name, serial)?;
            self.check_lineage(name, &lineage)?;
            let applied_config = match config {
                None => None,
                Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                    self.damaged(name, &format!("its applied configuration is not JSON: {e}"))
                })?),
            };
            let rows = read_resources(q, id).map_err(read)?;
            let mut resources = BTreeMap::new();
            for row in rows {
                let address = row.address.clone();
                let recorded = row.decode().map_err(|why| {
                    self.damaged(name, &format!("resource {address} is damaged: {why}"))
                })?;
                resources.insert(address, recorded);
            }
            Ok(Some(ClusterState {
                name: name.to_string(),
                lineage,
                serial,
                created_at,
                updated_at,
                resources,
                applied_config,
                digests_keyed,
            }))
        })
    }

    /// Creates the state of a new cluster: a fresh lineage, serial 1, no resources. An
    /// error if the state already has a cluster of that name.
    pub fn create_cluster(&self, name: &str) -> Result<ClusterState> {
        if name.is_empty() {
            return Err(Error::msg("a cluster name cannot be empty"));
        }
        let lineage = ids::new_lineage()?;
        let shared = &self.shared;
        let now = shared.write("cannot write", "cannot commit to", |q| {
            let existing = q
                .row(
                    "SELECT lineage, serial FROM clusters WHERE name = ?1",
                    vals![name],
                )
                .and_then(|row| row.map(|r| Ok((r.text(0)?, r.int(1)?))).transpose())
                .map_err(|e| shared.err("cannot read", e))?;
            if let Some((lineage, serial)) = existing {
                return Err(Error::msg(format!(
                    "the state already has a cluster named {name:?} (lineage {lineage}, serial {serial})"
                ))
                .hint("choose another cluster name, or destroy that cluster first"));
            }
            let now = q
                .now()
                .map_err(|e| shared.err("cannot read the time from", e))?;
            insert_cluster(q, name, &lineage, &now, &self.command)
                .map_err(|e| shared.err("cannot write", e))?;
            Ok(now)
        })?;
        Ok(ClusterState {
            name: name.to_string(),
            lineage,
            serial: 1,
            created_at: now.clone(),
            updated_at: now,
            resources: BTreeMap::new(),
            applied_config: None,
            digests_keyed: true,
        })
    }

    /// The key of this state's digests (`clusterfile::DigestKey`), made with the database.
    pub fn digest_key(&self) -> Result<crate::clusterfile::DigestKey> {
        let shared = &self.shared;
        let action = "cannot read the digest key from";
        let key: Vec<u8> = shared.read(|q| {
            q.row("SELECT key FROM digest_key WHERE id = 1", &[])
                .and_then(|row| {
                    row.ok_or_else(|| DbError::Column("the digest key is missing".to_string()))?
                        .blob(0)
                })
                .map_err(|e| shared.err(action, e))
        })?;
        let key: [u8; 32] = key.try_into().map_err(|_| {
            Error::msg(format!(
                "state database {} is damaged: its digest key is not 32 bytes",
                shared.path.display()
            ))
        })?;
        Ok(crate::clusterfile::DigestKey::new(key))
    }

    /// Rewrites the digests an older sealer recorded for `cluster` (resources and history,
    /// through `rewrite`, which says whether it changed anything) and marks the cluster keyed,
    /// in one transaction. The serial stays: the state says the same thing, in keyed digests.
    /// Returns how many rows changed.
    pub fn rekey(
        &self,
        cluster: &str,
        rewrite: impl Fn(&str, &mut crate::resource::Attributes) -> bool,
    ) -> Result<usize> {
        let shared = &self.shared;
        let changed = shared.write("cannot write", "cannot commit to", |q| {
            let run = || -> Result<Result<usize>, DbError> {
                let Some(id) = q
                    .row("SELECT id FROM clusters WHERE name = ?1", vals![cluster])?
                    .map(|r| r.int(0))
                    .transpose()?
                else {
                    return Ok(Ok(0));
                };
                let mut changed = 0;
                for (select, update) in [
                    (
                        "SELECT address, attributes, address FROM resources WHERE cluster_id = ?1",
                        "UPDATE resources SET attributes = ?1 WHERE cluster_id = ?2 AND address = ?3",
                    ),
                    (
                        "SELECT address, attributes, serial FROM history
                         WHERE cluster_id = ?1 AND attributes IS NOT NULL AND address IS NOT NULL",
                        "UPDATE history SET attributes = ?1 WHERE cluster_id = ?2 AND serial = ?3",
                    ),
                ] {
                    for row in q.rows(select, vals![id])? {
                        let (address, text, key) = (row.text(0)?, row.text(1)?, row.value(2)?);
                        // A history row of an `applied_config` write is not a resource's
                        // attributes; only objects are rewritten.
                        let Ok(mut attributes) =
                            serde_json::from_str::<crate::resource::Attributes>(&text)
                        else {
                            continue;
                        };
                        if rewrite(&address, &mut attributes) {
                            let text = match serde_json::to_string(&attributes) {
                                Ok(text) => text,
                                Err(e) => return Ok(Err(Error::msg(e.to_string()))),
                            };
                            q.execute(update, &[sql::Value::Text(text), sql::Value::Int(id), key])?;
                            changed += 1;
                        }
                    }
                }
                q.execute(
                    "UPDATE clusters SET digests_keyed = 1 WHERE id = ?1",
                    vals![id],
                )?;
                Ok(Ok(changed))
            };
            run().map_err(|e| shared.err("cannot write", e))?
        })?;
        shared.compact(changed > 0)?;
        Ok(changed)
    }

    /// Records one finished step: inserts or replaces the resource at `resource.address`.
    /// Returns the new serial. A record with status `tainted` is how a step that failed
    /// midway on a resource not yet in the state is recorded (history operation `taint`).
    ///
    /// Refused when an attribute marked sensitive is not a digest: the state never holds a
    /// secret in clear.
    pub fn commit(&self, cluster: &str, resource: &Recorded) -> Result<u64> {
        let row = ResourceRow::encode(resource).map_err(|why| {
            Error::msg(why)
                .hint("this is a bug in sealer: values must be hashed before they reach the state")
        })?;
        let operation = match resource.status {
            crate::resource::Status::Ready => Operation::Commit,
            crate::resource::Status::Tainted => Operation::Taint,
        };
        self.write(cluster, operation, |q, c, serial| {
            insert_resource(q, c.id, &row, serial)
                .map_err(|e| self.shared.err("cannot write", e))?;
            Ok(LogEntry {
                address: Some(row.address.clone()),
                attributes: Some(row.attributes.clone()),
            })
        })
    }

    /// Records an adopted cluster (`sealer import`) in one transaction: its state created
    /// (serial 1, unless the state has it already with no resources), then each resource
    /// committed as its own history row (serials 2, 3, ...), so `sealer state history`
    /// shows what was imported. Nothing is written when any of it fails. Returns the new
    /// serial. Refused when the state records resources for the cluster: an import never
    /// overwrites what sealer knows.
    pub fn import_cluster(&self, name: &str, resources: &[Recorded]) -> Result<u64> {
        if name.is_empty() {
            return Err(Error::msg("a cluster name cannot be empty"));
        }
        let mut rows = Vec::new();
        for resource in resources {
            rows.push(ResourceRow::encode(resource).map_err(|why| {
                Error::msg(why).hint(
                    "this is a bug in sealer: values must be hashed before they reach the state",
                )
            })?);
        }
        let shared = &self.shared;
        shared.write("cannot write", "cannot commit to", |q| {
            let now = q
                .now()
                .map_err(|e| shared.err("cannot read the time from", e))?;
            let existing = find_cluster(q, name).map_err(|e| shared.err("cannot read", e))?;
            let (id, mut serial) = match existing {
                Some(c) => {
                    let recorded = q
                        .row(
                            "SELECT COUNT(*) FROM resources WHERE cluster_id = ?1",
                            vals![c.id],
                        )
                        .and_then(|row| row.map(|r| r.int(0)).transpose())
                        .map_err(|e| shared.err("cannot read", e))?
                        .unwrap_or(0);
                    if recorded > 0 {
                        return Err(Error::msg(format!(
                            "the state already records cluster {name:?} ({recorded} resources, serial {})",
                            c.serial
                        ))
                        .hint("`sealer plan` shows how the cluster differs from the Clusterfile; import into another state with --state"));
                    }
                    (c.id, self.checked_serial(name, c.serial)?)
                }
                None => {
                    let lineage = ids::new_lineage()?;
                    let id = insert_cluster(q, name, &lineage, &now, &self.command)
                        .map_err(|e| shared.err("cannot write", e))?;
                    (id, 1)
                }
            };
            for row in &rows {
                serial = serial.checked_add(1).ok_or_else(|| {
                    self.damaged(name, "its serial cannot be incremented any further")
                })?;
                insert_resource(q, id, row, serial)
                    .and_then(|()| {
                        q.execute(
                            "INSERT INTO history (cluster_id, serial, at, operation, address, attributes, command)
                             VALUES (?1, ?2, ?3, 'commit', ?4, ?5, ?6)",
                            vals![id, to_sql_serial(serial), &now, &row.address, &row.attributes, &self.command],
                        )
                        .map(|_| ())
                    })
                    .map_err(|e| shared.err("cannot write", e))?;
            }
            q.execute(
                "UPDATE clusters SET serial = ?2, updated_at = ?3 WHERE id = ?1",
                vals![id, to_sql_serial(serial), &now],
            )
            .map_err(|e| shared.err("cannot write", e))?;
            Ok(serial)
        })
    }

    /// Marks a recorded resource tainted (its step failed midway; the next plan replaces
    /// it). Returns the new serial. An error if the state has no such resource.
    pub fn taint(&self, cluster: &str, address: &str) -> Result<u64> {
        self.write(cluster, Operation::Taint, |q, c, serial| {
            let changed = q
                .execute(
                    "UPDATE resources SET status = 'tainted', updated_serial = ?3
                     WHERE cluster_id = ?1 AND address = ?2",
                    vals![c.id, address, to_sql_serial(serial)],
                )
                .map_err(|e| self.shared.err("cannot write", e))?;
            if changed == 0 {
                return Err(no_resource(cluster, address));
            }
            Ok(LogEntry {
                address: Some(address.to_string()),
                attributes: None,
            })
        })
    }

    /// Records what a refresh found: each address's drift (`None` clears it), in one write.
    /// Returns the new serial. An error if the state has no such resource.
    pub fn record_drift(
        &self,
        cluster: &str,
        marks: &BTreeMap<String, Option<crate::resource::Drift>>,
    ) -> Result<u64> {
        let mut column = BTreeMap::new();
        for (address, drift) in marks {
            let text = rows::drift_column(drift.as_ref())
                .map_err(|e| Error::msg(format!("cannot encode the drift of {address}: {e}")))?;
            column.insert(address.clone(), text);
        }
        self.write(cluster, Operation::Refresh, |q, c, serial| {
            let mut log = serde_json::Map::new();
            for (address, text) in &column {
                let changed = q
                    .execute(
                        "UPDATE resources SET drift = ?3, updated_serial = ?4
                         WHERE cluster_id = ?1 AND address = ?2",
                        vals![c.id, address, text, to_sql_serial(serial)],
                    )
                    .map_err(|e| self.shared.err("cannot write", e))?;
                if changed == 0 {
                    return Err(no_resource(cluster, address));
                }
                let value = match text {
                    Some(t) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
                    None => serde_json::Value::Null,
                };
                log.insert(address.clone(), value);
            }
            Ok(LogEntry {
                address: None,
                attributes: Some(serde_json::Value::Object(log).to_string()),
            })
        })
    }

    /// Removes a destroyed resource from the state. Returns the new serial. An error if the
    /// state has no such resource.
    pub fn remove(&self, cluster: &str, address: &str) -> Result<u64> {
        self.write(cluster, Operation::Remove, |q, c, _| {
            let changed = q
                .execute(
                    "DELETE FROM resources WHERE cluster_id = ?1 AND address = ?2",
                    vals![c.id, address],
                )
                .map_err(|e| self.shared.err("cannot write", e))?;
            if changed == 0 {
                return Err(no_resource(cluster, address));
            }
            Ok(LogEntry {
                address: Some(address.to_string()),
                attributes: None,
            })
        })
    }

    /// Stores the applied configuration (opaque to the state). Returns the new serial.
    pub fn set_applied_config(&self, cluster: &str, config: &serde_json::Value) -> Result<u64> {
        let text = serde_json::to_string(config)
            .map_err(|e| Error::msg(format!("cannot encode the applied configuration: {e}")))?;
        self.write(cluster, Operation::Config, |q, c, _| {
            q.execute(
                "UPDATE clusters SET applied_config = ?2 WHERE id = ?1",
                vals![c.id, &text],
            )
            .map_err(|e| self.shared.err("cannot write", e))?;
            Ok(LogEntry {
                address: None,
                attributes: Some(text.clone()),
            })
        })
    }

    /// Every write to the cluster's state, oldest first (serials 1, 2, ...). An error if the
    /// state has no such cluster.
    pub fn history(&self, cluster: &str) -> Result<Vec<StateVersion>> {
        let shared = &self.shared;
        let rows = shared.read(|q| {
            let c = find_cluster(q, cluster)
                .map_err(|e| shared.err("cannot read", e))?
                .ok_or_else(|| no_cluster(cluster))?;
            q.rows(
                "SELECT serial, at, operation, address, attributes, command FROM history
                 WHERE cluster_id = ?1 ORDER BY serial",
                vals![c.id],
            )
            .and_then(|rows| rows.iter().map(history_row).collect::<Result<Vec<_>, _>>())
            .map_err(|e| shared.err("cannot read", e))
        })?;
        rows.into_iter()
            .map(|(serial, at, operation, address, attributes, command)| {
                let serial = self.checked_serial(cluster, serial)?;
                let operation = Operation::parse(&operation).ok_or_else(|| {
                    self.damaged(
                        cluster,
                        &format!("history entry {serial} has unknown operation {operation:?}"),
                    )
                })?;
                let attributes = match attributes {
                    None => None,
                    Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                        self.damaged(
                            cluster,
                            &format!("history entry {serial} holds invalid JSON: {e}"),
                        )
                    })?),
                };
                Ok(StateVersion {
                    serial,
                    at,
                    operation,
                    address,
                    attributes,
                    command,
                })
            })
            .collect()
    }

    /// Takes the cluster's lock for `holder`, waiting up to `timeout` (polling every
    /// 100 ms) while someone else holds it. The lock is released when the returned
    /// [`StateLock`] is dropped. The cluster does not have to exist yet (a first apply locks
    /// before it creates the cluster's state).
    ///
    /// When the wait runs out: `state of cluster "c" is locked by pid 1234 on host h since
    /// ... (apply, lock ID abcd)`, with `: the process is gone: the lock is stale` when the
    /// holder ran on this host and has exited. A lock whose holder died on this host (its
    /// process gone and the OS lock it held released by the kernel) is taken over, and
    /// [`StateLock::took_over`] says whose it was; nothing else is taken over.
    pub fn lock(&self, cluster: &str, holder: &LockHolder, timeout: Duration) -> Result<StateLock> {
        let id = ids::new_lock_id()?;
        let start = Instant::now();
        if self.shared.is_postgres() {
            return self.lock_postgres(cluster, holder, &id, start, timeout);
        }
        let file = lock::open_lock_file(&self.shared.path, cluster)?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    let path = lock::lock_file_path(&self.shared.path, cluster);
                    return Err(crate::diag::io_error("cannot lock", &path, e));
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                // Who holds it is in the row; a holder between taking the file and
                // writing the row is named as soon as it wrote it.
                return Err(match self.current_lock(cluster)? {
                    Some(current) => lock::locked_error(cluster, &current, waited),
                    None => Error::msg(format!(
                        "state of cluster {cluster:?} is locked by a process of this machine that holds {}",
                        lock::lock_file_path(&self.shared.path, cluster).display()
                    ))
                    .hint("a sealer is starting, or its lock was removed with `sealer state unlock` while it still runs: wait for it, or wait longer with --lock-timeout DURATION"),
                });
            }
            std::thread::sleep(lock::POLL_INTERVAL.min(timeout - waited));
        }
        loop {
            match self.try_lock(cluster, holder, &id, false)? {
                Ok((info, took_over)) => {
                    return Ok(StateLock {
                        shared: Arc::clone(&self.shared),
                        cluster: cluster.to_string(),
                        info,
                        released: false,
                        took_over,
                        guard: lock::Guard::File(file),
                    });
                }
                Err(current) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(lock::locked_error(cluster, &current, waited));
                    }
                    std::thread::sleep(lock::POLL_INTERVAL.min(timeout - waited));
                }
            }
        }
    }

    /// PostgreSQL: the cluster's session advisory lock, then the row saying who holds it.
    /// Whoever held the advisory lock before is gone (the server let it go with their
    /// session), so a row found under it is a dead holder's and is taken over.
    fn lock_postgres(
        &self,
        cluster: &str,
        holder: &LockHolder,
        id: &str,
        start: Instant,
        timeout: Duration,
    ) -> Result<StateLock> {
        let key = lock::advisory_key(cluster);
        loop {
            if self.shared.advisory_try_lock(key)? {
                let taken = match self.try_lock(cluster, holder, id, true) {
                    Ok(Ok(taken)) => taken,
                    // Not reached: with `replace_any` any row is replaced.
                    Ok(Err(current)) => {
                        let _ = self.shared.advisory_unlock(key);
                        return Err(lock::locked_error(cluster, &current, start.elapsed()));
                    }
                    Err(e) => {
                        let _ = self.shared.advisory_unlock(key);
                        return Err(e);
                    }
                };
                let (info, took_over) = taken;
                return Ok(StateLock {
                    shared: Arc::clone(&self.shared),
                    cluster: cluster.to_string(),
                    info,
                    released: false,
                    took_over,
                    guard: lock::Guard::Advisory(key),
                });
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(match self.current_lock(cluster)? {
                    Some(current) => lock::locked_error(cluster, &current, waited),
                    None => Error::msg(format!(
                        "state of cluster {cluster:?} is locked by a sealer that has not written who it is yet"
                    ))
                    .hint("a sealer is starting, or its lock row was removed with `sealer state unlock` while it still runs: wait for it, or wait longer with --lock-timeout DURATION"),
                });
            }
            std::thread::sleep(lock::POLL_INTERVAL.min(timeout - waited));
        }
    }

    /// One attempt, holding the OS lock (or the advisory lock): `Ok(Ok((taken, row taken
    /// over)))`, or `Ok(Err(current holder))`. A row of this host whose process is gone is
    /// the lock of a holder that died (it held the OS lock, now ours): it is replaced; with
    /// `replace_any`, any row is.
    #[allow(clippy::type_complexity)]
    fn try_lock(
        &self,
        cluster: &str,
        holder: &LockHolder,
        id: &str,
        replace_any: bool,
    ) -> Result<Result<(LockInfo, Option<LockInfo>), LockInfo>> {
        let shared = &self.shared;
        let action = "cannot lock";
        shared.write(action, action, |q| {
            let mut took_over = None;
            if let Some(current) = read_lock(q, cluster).map_err(|e| shared.err("cannot read", e))? {
                if !replace_any && !current.is_stale() {
                    return Ok(Err(current));
                }
                q.execute("DELETE FROM locks WHERE id = ?1", vals![&current.id])
                    .map_err(|e| shared.err(action, e))?;
                took_over = Some(current);
            }
            let since = q
                .now()
                .map_err(|e| shared.err("cannot read the time from", e))?;
            q.execute(
                "INSERT INTO locks (cluster, id, operation, pid, host, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                vals![cluster, id, &holder.operation, holder.pid, &holder.host, &since],
            )
            .map_err(|e| shared.err(action, e))?;
            let info = LockInfo {
                id: id.to_string(),
                operation: holder.operation.clone(),
                pid: holder.pid,
                host: holder.host.clone(),
                since,
            };
            Ok(Ok((info, took_over)))
        })
    }

    /// Removes every lock row of this process (a process that aborts, whose `StateLock`
    /// will not be dropped, releases its locks this way before it exits).
    pub fn release_locks_of_this_process(&self) -> Result<usize> {
        let shared = &self.shared;
        let me = LockHolder::this_process("");
        let action = "cannot release the locks in";
        let removed = shared.write(action, action, |q| {
            q.execute(
                "DELETE FROM locks WHERE pid = ?1 AND host = ?2",
                vals![me.pid, &me.host],
            )
            .map_err(|e| shared.err(action, e))
        })?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// The lock of an operation running now on the cluster, if any: its row, held by a
    /// live process (the OS lock is taken, or the holder runs on another host).
    pub fn running(&self, cluster: &str) -> Result<Option<LockInfo>> {
        let Some(current) = self.current_lock(cluster)? else {
            return Ok(None);
        };
        if self.shared.is_postgres() {
            let held = self.shared.advisory_held(lock::advisory_key(cluster))?;
            return Ok(held.then_some(current));
        }
        if current.host != lock::host_name() {
            return Ok(Some(current));
        }
        // Read-only, as plans are: no lock file means no holder ever took it on this host.
        let path = lock::lock_file_path(&self.shared.path, cluster);
        match std::fs::File::open(&path) {
            Ok(file) => Ok(lock::held_elsewhere(&file).then_some(current)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::diag::io_error("cannot read the lock file", &path, e)),
        }
    }

    /// Removes the cluster's lock if its ID is `lock_id` (what `sealer state unlock ID`
    /// does), whoever holds it, and returns what it removed. The ID must match so that a
    /// lock taken since the operator looked is not removed by mistake.
    pub fn break_lock(&self, cluster: &str, lock_id: &str) -> Result<LockInfo> {
        let shared = &self.shared;
        let action = "cannot unlock";
        shared.write(action, action, |q| {
            let Some(current) = read_lock(q, cluster).map_err(|e| shared.err("cannot read", e))?
            else {
                return Err(Error::msg(format!(
                    "state of cluster {cluster:?} is not locked"
                )));
            };
            if current.id != lock_id {
                return Err(Error::msg(format!(
                    "lock ID {lock_id} is not the lock of cluster {cluster:?}: it is locked by {current}"
                ))
                .hint(format!(
                    "`sealer state unlock {}` removes that lock, if it is the one you mean",
                    current.id
                )));
            }
            q.execute("DELETE FROM locks WHERE id = ?1", vals![lock_id])
                .map_err(|e| shared.err(action, e))?;
            Ok(current)
        })
    }

    /// Who holds the cluster's lock, if anyone.
    pub fn current_lock(&self, cluster: &str) -> Result<Option<LockInfo>> {
        let shared = &self.shared;
        shared.read(|q| read_lock(q, cluster).map_err(|e| shared.err("cannot read", e)))
    }

    /// Stores a secret, sealed with `key`. Without a key this is an error: nothing secret is
    /// kept in the state unless the operator set `SEALER_STATE_KEY`. Returns the new serial;
    /// the history records the name, never the value.
    pub fn put_secret(
        &self,
        cluster: &str,
        name: &str,
        value: &str,
        key: Option<&StateKey>,
    ) -> Result<u64> {
        let Some(key) = key else {
            return Err(Error::msg(format!(
                "not storing secret {name:?} of cluster {cluster:?}: without {} the state keeps nothing secret",
                StateKey::ENV
            ))
            .hint(secrets::generate_hint()));
        };
        if name.is_empty() {
            return Err(Error::msg("a secret name cannot be empty"));
        }
        self.write(cluster, Operation::Secret, |q, c, _| {
            let aad = secrets::associated_data(&c.lineage, name);
            let (nonce, ciphertext) = key.seal(&aad, value.as_bytes())?;
            q.execute(
                "INSERT INTO secrets (cluster_id, name, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (cluster_id, name) DO UPDATE SET
                   nonce = excluded.nonce, ciphertext = excluded.ciphertext",
                vals![c.id, name, &nonce[..], ciphertext],
            )
            .map_err(|e| self.shared.err("cannot write", e))?;
            Ok(LogEntry {
                address: Some(name.to_string()),
                attributes: None,
            })
        })
    }

    /// Reads a secret stored with [`StateStore::put_secret`]; `None` when there is none by
    /// that name. An error if it exists but `key` is missing or is not the key it was sealed
    /// with.
    pub fn get_secret(
        &self,
        cluster: &str,
        name: &str,
        key: Option<&StateKey>,
    ) -> Result<Option<Secret>> {
        let shared = &self.shared;
        let (c, sealed) = shared.read(|q| {
            let read = |e| shared.err("cannot read", e);
            let c = find_cluster(q, cluster)
                .map_err(read)?
                .ok_or_else(|| no_cluster(cluster))?;
            let sealed = q
                .row(
                    "SELECT nonce, ciphertext FROM secrets WHERE cluster_id = ?1 AND name = ?2",
                    vals![c.id, name],
                )
                .and_then(|row| row.map(|r| Ok((r.blob(0)?, r.blob(1)?))).transpose())
                .map_err(read)?;
            Ok((c, sealed))
        })?;
        let Some((nonce, ciphertext)) = sealed else {
            return Ok(None);
        };
        let Some(key) = key else {
            return Err(Error::msg(format!(
                "secret {name:?} of cluster {cluster:?} is encrypted in the state, and {} is not set",
                StateKey::ENV
            ))
            .hint(format!("set {} to the key it was stored with", StateKey::ENV)));
        };
        let aad = secrets::associated_data(&c.lineage, name);
        let clear = key.open(&aad, &nonce, &ciphertext).ok_or_else(|| {
            Error::msg(format!(
                "cannot decrypt secret {name:?} of cluster {cluster:?}: {} is not the key it was stored with, or the stored value was changed",
                StateKey::ENV
            ))
        })?;
        let text = String::from_utf8(clear)
            .map_err(|_| self.damaged(cluster, &format!("secret {name:?} is not UTF-8 text")))?;
        Ok(Some(Secret::new(text)))
    }

    /// One write: the change `apply` makes, the serial bump and the history row, in one
    /// `BEGIN IMMEDIATE` transaction. Returns the new serial.
    fn write(
        &self,
        cluster: &str,
        operation: Operation,
        apply: impl FnOnce(&dyn Query, &ClusterRow, u64) -> Result<LogEntry>,
    ) -> Result<u64> {
        let shared = &self.shared;
        shared.write("cannot write", "cannot commit to", |q| {
            let c = find_cluster(q, cluster)
                .map_err(|e| shared.err("cannot read", e))?
                .ok_or_else(|| no_cluster(cluster))?;
            let serial = self.checked_serial(cluster, c.serial)?;
            let serial = serial.checked_add(1).ok_or_else(|| {
                self.damaged(cluster, "its serial cannot be incremented any further")
            })?;
            // Any error from here on rolls everything back.
            let entry = apply(q, &c, serial)?;
            let now = q
                .now()
                .map_err(|e| shared.err("cannot read the time from", e))?;
            let record = || -> Result<(), DbError> {
                q.execute(
                    "UPDATE clusters SET serial = ?2, updated_at = ?3 WHERE id = ?1",
                    vals![c.id, to_sql_serial(serial), &now],
                )?;
                q.execute(
                    "INSERT INTO history (cluster_id, serial, at, operation, address, attributes, command)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    vals![
                        c.id,
                        to_sql_serial(serial),
                        &now,
                        operation.as_str(),
                        &entry.address,
                        &entry.attributes,
                        &self.command
                    ],
                )?;
                Ok(())
            };
            record().map_err(|e| shared.err("cannot write", e))?;
            Ok(serial)
        })
    }

    fn checked_serial(&self, cluster: &str, serial: i64) -> Result<u64> {
        u64::try_from(serial)
            .map_err(|_| self.damaged(cluster, &format!("its serial {serial} is negative")))
    }

    fn check_lineage(&self, cluster: &str, lineage: &str) -> Result<()> {
        if ids::is_lineage(lineage) {
            Ok(())
        } else {
            Err(self.damaged(cluster, &format!("its lineage {lineage:?} is not a UUID")))
        }
    }

    /// A damaged cluster record: an error, never read as less than it is.
    fn damaged(&self, cluster: &str, why: &str) -> Error {
        Error::msg(format!(
            "state database {}: the record of cluster {cluster:?} is damaged: {why}",
            self.shared.path.display()
        ))
        .hint("restore the state from a backup; sealer does not guess what a damaged record meant")
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.shared.path)
            .finish()
    }
}

fn find_cluster(q: &dyn Query, name: &str) -> Result<Option<ClusterRow>, DbError> {
    q.row(
        "SELECT id, lineage, serial FROM clusters WHERE name = ?1",
        vals![name],
    )?
    .map(|r| {
        Ok(ClusterRow {
            id: r.int(0)?,
            lineage: r.text(1)?,
            serial: r.int(2)?,
        })
    })
    .transpose()
}

fn summary_row(r: &Row) -> Result<SummaryRow, DbError> {
    Ok((r.text(0)?, r.text(1)?, r.int(2)?, r.text(3)?, r.int(4)?))
}

fn history_row(r: &Row) -> Result<HistoryRow, DbError> {
    Ok((
        r.int(0)?,
        r.text(1)?,
        r.text(2)?,
        r.opt_text(3)?,
        r.opt_text(4)?,
        r.opt_text(5)?,
    ))
}

fn read_resources(q: &dyn Query, cluster_id: i64) -> Result<Vec<ResourceRow>, DbError> {
    q.rows(
        "SELECT address, resource_type, host, attributes, sensitive, status, depends_on,
                drift, updated_serial
         FROM resources WHERE cluster_id = ?1 ORDER BY address",
        vals![cluster_id],
    )?
    .iter()
    .map(|r| {
        Ok(ResourceRow {
            address: r.text(0)?,
            resource_type: r.text(1)?,
            host: r.opt_text(2)?,
            attributes: r.text(3)?,
            sensitive: r.text(4)?,
            status: r.text(5)?,
            depends_on: r.text(6)?,
            drift: r.opt_text(7)?,
            updated_serial: r.int(8)?,
        })
    })
    .collect()
}

fn read_lock(q: &dyn Query, cluster: &str) -> Result<Option<LockInfo>, DbError> {
    q.row(
        "SELECT id, operation, pid, host, since FROM locks WHERE cluster = ?1",
        vals![cluster],
    )?
    .map(|r| {
        Ok(LockInfo {
            id: r.text(0)?,
            operation: r.text(1)?,
            // A pid outside u32 was not written by sealer; 0 never names a live process.
            pid: u32::try_from(r.int(2)?).unwrap_or(0),
            host: r.text(3)?,
            since: r.text(4)?,
        })
    })
    .transpose()
}

/// Inserts a new cluster's row at serial 1 and its `create` history row; returns its id.
fn insert_cluster(
    q: &dyn Query,
    name: &str,
    lineage: &str,
    now: &str,
    command: &Option<String>,
) -> Result<i64, DbError> {
    let id = q
        .row(
            "INSERT INTO clusters (name, lineage, serial, created_at, updated_at, digests_keyed)
             VALUES (?1, ?2, 1, ?3, ?3, 1) RETURNING id",
            vals![name, lineage, now],
        )?
        .ok_or_else(|| DbError::Column("INSERT returned no id".to_string()))?
        .int(0)?;
    q.execute(
        "INSERT INTO history (cluster_id, serial, at, operation, command)
         VALUES (?1, 1, ?2, 'create', ?3)",
        vals![id, now, command],
    )?;
    Ok(id)
}

/// Inserts or replaces one resource row, recorded at `serial`.
fn insert_resource(
    q: &dyn Query,
    cluster_id: i64,
    row: &ResourceRow,
    serial: u64,
) -> Result<(), DbError> {
    q.execute(
        "INSERT INTO resources
           (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial, drift)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (cluster_id, address) DO UPDATE SET
           resource_type = excluded.resource_type, host = excluded.host,
           attributes = excluded.attributes, sensitive = excluded.sensitive,
           status = excluded.status, depends_on = excluded.depends_on,
           updated_serial = excluded.updated_serial, drift = excluded.drift",
        vals![
            cluster_id,
            &row.address,
            &row.resource_type,
            &row.host,
            &row.attributes,
            &row.sensitive,
            &row.status,
            &row.depends_on,
            to_sql_serial(serial),
            &row.drift,
        ],
    )?;
    Ok(())
}

/// Serials are u64 in our API and i64 in SQLite; a state reaching 2^63 writes is not a
/// concern, but saturating keeps the conversion total.
fn to_sql_serial(serial: u64) -> i64 {
    i64::try_from(serial).unwrap_or(i64::MAX)
}

fn no_cluster(cluster: &str) -> Error {
    Error::msg(format!("the state has no cluster named {cluster:?}"))
        .hint("`sealer state list` shows the clusters the state records")
}

fn no_resource(cluster: &str, address: &str) -> Error {
    Error::msg(format!(
        "the state of cluster {cluster:?} has no resource {address}"
    ))
    .hint("`sealer state list` shows what the state records")
}
