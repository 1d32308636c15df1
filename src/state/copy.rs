//! Copying a state between backends (what `sealer state migrate --to URL` is to run): every
//! cluster, row for row (lineage, serial, resources, history, sealed secrets) and the digest
//! key, read in one transaction of the source and written in one of the target, so the
//! target holds all of it or none of it. A target that already holds a different lineage
//! under a cluster's name, or another digest key, is refused and left untouched.

use super::sql::{Query, Row, Value, vals};
use super::{StateStore, ids};
use crate::{Error, Result};

/// The columns copied per table, besides `cluster_id` (the target's own ids are used).
const TABLES: &[(&str, &str)] = &[
    (
        "resources",
        "address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial, drift",
    ),
    (
        "history",
        "serial, at, operation, address, attributes, command",
    ),
    ("secrets", "name, nonce, ciphertext"),
];

const CLUSTER_COLUMNS: &str =
    "name, lineage, serial, created_at, updated_at, applied_config, digests_keyed";

/// What a copy did with one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedCluster {
    pub name: String,
    pub lineage: String,
    pub serial: u64,
    /// `false` when the target already held this lineage at this serial.
    pub copied: bool,
}

/// One cluster as read from the source.
struct Snapshot {
    cluster: Row,
    tables: Vec<Vec<Row>>,
}

impl StateStore {
    /// Copies every cluster of this state into `target`, with the digest key (digests are
    /// keyed with it). A cluster the target already holds with the same lineage and serial
    /// is left as it is; any other cluster of that name (another lineage, or the same one at
    /// another serial) is refused, and so is a target holding clusters under another digest
    /// key: nothing is written then. Both states should be locked by the caller.
    pub fn copy_to(&self, target: &StateStore) -> Result<Vec<CopiedCluster>> {
        let source = &self.shared;
        let (key, snapshots) = source.read(|q| {
            let read = |e| source.err("cannot read", e);
            let key = q
                .row("SELECT key FROM digest_key WHERE id = 1", &[])
                .map_err(read)?
                .ok_or_else(|| self.damaged_key())?
                .blob(0)
                .map_err(read)?;
            let mut snapshots = Vec::new();
            let clusters = q
                .rows(
                    &format!("SELECT id, {CLUSTER_COLUMNS} FROM clusters ORDER BY name"),
                    &[],
                )
                .map_err(read)?;
            for cluster in clusters {
                let id = cluster.int(0).map_err(read)?;
                let mut tables = Vec::new();
                for (table, columns) in TABLES {
                    tables.push(
                        q.rows(
                            &format!("SELECT {columns} FROM {table} WHERE cluster_id = ?1"),
                            vals![id],
                        )
                        .map_err(read)?,
                    );
                }
                snapshots.push(Snapshot {
                    cluster: Row(cluster.0[1..].to_vec()),
                    tables,
                });
            }
            Ok((key, snapshots))
        })?;
        for snapshot in &snapshots {
            let (name, lineage) = (
                self.text(&snapshot.cluster, 0)?,
                self.text(&snapshot.cluster, 1)?,
            );
            if !ids::is_lineage(&lineage) {
                return Err(self.damaged(&name, &format!("its lineage {lineage:?} is not a UUID")));
            }
        }

        let shared = &target.shared;
        shared.write("cannot write", "cannot commit to", |q| {
            let write = |e| shared.err("cannot write", e);
            let existing = q
                .rows("SELECT name, lineage, serial FROM clusters", &[])
                .map_err(write)?;
            let target_key = q
                .row("SELECT key FROM digest_key WHERE id = 1", &[])
                .map_err(write)?
                .map(|r| r.blob(0))
                .transpose()
                .map_err(write)?;
            let mut report = Vec::new();
            for snapshot in &snapshots {
                let c = &snapshot.cluster;
                let (name, lineage, serial) = (
                    c.text(0).map_err(write)?,
                    c.text(1).map_err(write)?,
                    c.int(2).map_err(write)?,
                );
                let serial_u64 = u64::try_from(serial).unwrap_or(0);
                if let Some(there) = existing
                    .iter()
                    .find(|r| r.text(0).ok().as_deref() == Some(name.as_str()))
                {
                    let (their_lineage, their_serial) =
                        (there.text(1).map_err(write)?, there.int(2).map_err(write)?);
                    if their_lineage != lineage {
                        return Err(Error::msg(format!(
                            "state database {} already has a cluster named {name:?} of another lineage ({their_lineage}, serial {their_serial}; copying {lineage}, serial {serial})",
                            shared.path.display()
                        ))
                        .hint("it is another cluster's state: copy into an empty database, or destroy that cluster first; nothing was copied"));
                    }
                    if their_serial != serial {
                        return Err(Error::msg(format!(
                            "state database {} has cluster {name:?} at serial {their_serial}, the source at serial {serial}",
                            shared.path.display()
                        ))
                        .hint("the two copies of this state have moved apart: keep the one you trust; nothing was copied"));
                    }
                    report.push(CopiedCluster {
                        name,
                        lineage,
                        serial: serial_u64,
                        copied: false,
                    });
                    continue;
                }
                report.push(CopiedCluster {
                    name,
                    lineage,
                    serial: serial_u64,
                    copied: true,
                });
            }
            // Checked after the lineages, which say more about what is wrong.
            if !existing.is_empty() && target_key.as_deref() != Some(&key[..]) {
                return Err(Error::msg(format!(
                    "state database {} already holds clusters, under another digest key than {}",
                    shared.path.display(),
                    self.shared.path.display()
                ))
                .hint("copy into an empty state: digests made with one key cannot be read with another"));
            }
            for (snapshot, done) in snapshots.iter().zip(&report) {
                if !done.copied {
                    continue;
                }
                let c = &snapshot.cluster;
                let id = q
                    .row(
                        &format!(
                            "INSERT INTO clusters ({CLUSTER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"
                        ),
                        &c.0,
                    )
                    .map_err(write)?
                    .ok_or_else(|| Error::msg("INSERT returned no id"))?
                    .int(0)
                    .map_err(write)?;
                for ((table, columns), rows) in TABLES.iter().zip(&snapshot.tables) {
                    let count = columns.split(',').count();
                    let marks: Vec<String> = (2..=count + 1).map(|i| format!("?{i}")).collect();
                    let sql = format!(
                        "INSERT INTO {table} (cluster_id, {columns}) VALUES (?1, {})",
                        marks.join(", ")
                    );
                    for row in rows {
                        let mut params = vec![Value::Int(id)];
                        params.extend(row.0.iter().cloned());
                        q.execute(&sql, &params).map_err(write)?;
                    }
                }
            }
            if existing.is_empty() {
                copy_key(q, &key).map_err(write)?;
            }
            Ok(report)
        })
    }

    fn text(&self, row: &Row, i: usize) -> Result<String> {
        row.text(i).map_err(|e| self.shared.err("cannot read", e))
    }

    fn damaged_key(&self) -> Error {
        Error::msg(format!(
            "state database {} is damaged: its digest key is missing",
            self.shared.path.display()
        ))
        .hint("restore the state from a backup; sealer never repairs or replaces a damaged state")
    }
}

/// Makes the target's digest key the source's.
fn copy_key(q: &dyn Query, key: &[u8]) -> std::result::Result<(), super::sql::DbError> {
    q.execute("DELETE FROM digest_key", &[])?;
    q.execute(
        "INSERT INTO digest_key (id, key) VALUES (1, ?1)",
        vals![key],
    )?;
    Ok(())
}
