//! State inspection and surgery: `sealer state list`, `show`, `history`, `rm`, `unlock`.

use super::Settings;
use crate::diag::{Error, Result};
use crate::resource::Recorded;
use crate::state::{ClusterState, ClusterSummary, LockHolder, LockInfo, Operation, StateStore};
use std::path::Path;

/// What `sealer state list` shows.
#[derive(Debug)]
pub enum StateListing {
    /// No state file yet.
    Empty,
    /// Several clusters and none chosen: a summary of each.
    Clusters(Vec<ClusterSummary>),
    /// One cluster's resources.
    Resources(ClusterState),
}

/// Picks the cluster: the one named, else the only one in the state.
pub(super) fn choose(store: &StateStore, cluster: Option<&str>) -> Result<Option<ClusterState>> {
    match cluster {
        Some(name) => match store.cluster(name)? {
            Some(state) => Ok(Some(state)),
            None => Err(Error::msg(format!(
                "no cluster \"{name}\" in the state {}",
                store.path().display()
            ))
            .hint("`sealer state list` shows the clusters it holds")),
        },
        None => {
            let clusters = store.clusters()?;
            match clusters.as_slice() {
                [] => Ok(None),
                [one] => store.cluster(&one.name),
                many => Err(Error::msg(format!(
                    "the state holds {} clusters: {}",
                    many.len(),
                    many.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .hint("choose one with --cluster NAME")),
            }
        }
    }
}

/// No state where one was expected: sealer has applied nothing there, or the command looks
/// in the wrong place.
pub(crate) fn no_state(path: &Path) -> Error {
    Error::msg(format!(
        "there is no state at {}: sealer has applied no cluster there",
        crate::state::display_location(path)
    ))
    .hint(NO_STATE_HINT)
}

/// What to do when the state is not where a command looked.
pub(crate) const NO_STATE_HINT: &str = "`sealer apply -f Clusterfile` creates a cluster; --state PATH|URL (or SEALER_STATE) names another state";

/// A state that exists but records no cluster (every cluster in it was destroyed).
fn no_cluster() -> Error {
    Error::msg("the state holds no cluster")
        .hint("`sealer apply -f Clusterfile` creates one; --state PATH|URL (or SEALER_STATE) names another state")
}

/// The cluster an operation on the state means: the one named, else the only one.
pub fn cluster_name(settings: &Settings, cluster: Option<&str>) -> Result<String> {
    let store = StateStore::open_existing(&settings.state_path)?
        .ok_or_else(|| no_state(&settings.state_path))?;
    match choose(&store, cluster)? {
        Some(state) => Ok(state.name),
        None => Err(no_cluster()),
    }
}

pub fn list_state(settings: &Settings, cluster: Option<&str>) -> Result<StateListing> {
    let Some(store) = StateStore::open_existing(&settings.state_path)? else {
        return Ok(StateListing::Empty);
    };
    if cluster.is_none() {
        let clusters = store.clusters()?;
        if clusters.len() > 1 {
            return Ok(StateListing::Clusters(clusters));
        }
    }
    Ok(match choose(&store, cluster)? {
        Some(state) => StateListing::Resources(state),
        None => StateListing::Empty,
    })
}

pub fn show_state(settings: &Settings, cluster: Option<&str>, address: &str) -> Result<Recorded> {
    let none = || {
        Error::msg(format!("no resource {address} in the state"))
            .hint("`sealer state list` shows the recorded addresses")
    };
    let store = StateStore::open_existing(&settings.state_path)?.ok_or_else(none)?;
    let state = choose(&store, cluster)?.ok_or_else(none)?;
    state.resources.get(address).cloned().ok_or_else(none)
}

/// Breaks a lock left by a process that is gone. Only the lock with this ID is removed.
pub fn unlock_state(settings: &Settings, cluster: Option<&str>, lock_id: &str) -> Result<LockInfo> {
    let path: &Path = &settings.state_path;
    let store = StateStore::open_existing(path)?.ok_or_else(|| no_state(path))?;
    let name = match cluster {
        Some(name) => name.to_string(),
        None => match choose(&store, None)? {
            Some(state) => state.name,
            None => return Err(no_cluster()),
        },
    };
    store.break_lock(&name, lock_id)
}

/// One write of `sealer state history`, in words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryLine {
    pub serial: u64,
    pub at: String,
    /// The sealer command that wrote it (`apply`, `destroy`, `run`, `state rm`); `None` for
    /// writes of a sealer that did not record it.
    pub command: Option<String>,
    pub operation: String,
    pub address: Option<String>,
    /// What the write did: `created`, `updated: ssh_port, password`, `removed`, ...
    pub summary: String,
}

/// The history of the chosen cluster, each write summarised against the one before it of
/// the same resource (the history keeps each commit's attributes, so replaying it tells
/// what changed).
pub fn state_history(settings: &Settings, cluster: Option<&str>) -> Result<Vec<HistoryLine>> {
    let store = StateStore::open_existing(&settings.state_path)?
        .ok_or_else(|| no_state(&settings.state_path))?;
    let Some(state) = choose(&store, cluster)? else {
        return Ok(Vec::new());
    };
    let mut last: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    let mut lines = Vec::new();
    for v in store.history(&state.name)? {
        let summary = match v.operation {
            Operation::Create => "cluster state created".to_string(),
            Operation::Config => "applied configuration set".to_string(),
            Operation::Secret => "secret stored".to_string(),
            Operation::Refresh => refresh_summary(v.attributes.as_ref()),
            Operation::Remove => {
                if let Some(a) = &v.address {
                    last.remove(a);
                }
                "removed".to_string()
            }
            // A step marks its resource tainted as it starts and records it when it
            // finishes; a finished step is compared with the resource's last finished one.
            Operation::Taint => "step started (tainted until it finishes)".to_string(),
            Operation::Commit => {
                let before = v.address.as_ref().and_then(|a| last.get(a));
                let said = match (before, &v.attributes) {
                    (None, _) => "created".to_string(),
                    (Some(old), Some(new)) => match changed_keys(old, new) {
                        keys if keys.is_empty() => "recorded again, unchanged".to_string(),
                        keys => format!("updated: {}", keys.join(", ")),
                    },
                    (Some(_), None) => "recorded".to_string(),
                };
                if let (Some(a), Some(new)) = (&v.address, &v.attributes) {
                    last.insert(a.clone(), new.clone());
                }
                said
            }
        };
        lines.push(HistoryLine {
            serial: v.serial,
            at: v.at,
            command: v.command,
            operation: v.operation.as_str().to_string(),
            address: v.address,
            summary,
        });
    }
    Ok(lines)
}

/// The top-level attributes that differ between two attribute objects, by name.
fn changed_keys(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

/// Forgets `addresses` in the chosen cluster's state, under its lock: the hosts are not
/// touched, and the next plan sees those resources as never applied. Refused, with nothing
/// forgotten, when an address is not recorded or a resource that stays depends on one.
/// Returns the state's serial afterwards.
pub fn remove_from_state(
    settings: &Settings,
    cluster: Option<&str>,
    addresses: &[String],
    lock_timeout: std::time::Duration,
) -> Result<u64> {
    let name = cluster_name(settings, cluster)?;
    let store = StateStore::open_or_create(&settings.state_path)?.for_command("state rm");
    let _lock = store.lock(&name, &LockHolder::this_process("state rm"), lock_timeout)?;
    let state = store.cluster(&name)?.ok_or_else(|| {
        Error::msg(format!("no cluster \"{name}\" in the state"))
            .hint("`sealer state list` shows the clusters the state records")
    })?;
    let unknown: Vec<&String> = addresses
        .iter()
        .filter(|a| !state.resources.contains_key(a.as_str()))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.iter().map(|a| a.as_str()).collect();
        return Err(Error::msg(format!(
            "no resource {} in the state of cluster \"{name}\"; nothing was removed",
            list.join(", ")
        ))
        .hint("`sealer state list` shows the recorded addresses"));
    }
    let leaving: std::collections::BTreeSet<&str> = addresses.iter().map(String::as_str).collect();
    let mut dependents: Vec<String> = state
        .resources
        .values()
        .filter(|r| !leaving.contains(r.address.as_str()))
        .filter(|r| r.depends_on.iter().any(|d| leaving.contains(d.as_str())))
        .map(|r| r.address.clone())
        .collect();
    if !dependents.is_empty() {
        dependents.sort();
        let mut all: Vec<&str> = leaving.iter().copied().collect();
        all.extend(dependents.iter().map(String::as_str));
        return Err(Error::msg(format!(
            "{} depend on what you remove; nothing was removed",
            dependents.join(", ")
        ))
        .hint(format!(
            "forget them too: sealer state rm {}",
            all.join(" ")
        )));
    }
    let mut serial = state.serial;
    for address in leaving {
        serial = store.remove(&name, address)?;
    }
    Ok(serial)
}

/// `drift recorded: app.web; drift cleared: rootfs.10.0.0.2`, from a refresh's history row.
fn refresh_summary(marks: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::Object(marks)) = marks else {
        return "refresh recorded".to_string();
    };
    let (set, cleared): (Vec<_>, Vec<_>) = marks.iter().partition(|(_, drift)| !drift.is_null());
    let names = |list: Vec<(&String, &serde_json::Value)>| {
        list.into_iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !set.is_empty() {
        parts.push(format!("drift recorded: {}", names(set)));
    }
    if !cleared.is_empty() {
        parts.push(format!("drift cleared: {}", names(cleared)));
    }
    if parts.is_empty() {
        "refresh recorded".to_string()
    } else {
        parts.join("; ")
    }
}

/// Copies the state into `to` (`sealer state migrate --to`), holding every cluster's lock in
/// both states while it copies, so that no apply writes to either meanwhile. Refused, with
/// nothing written, when `to` holds another lineage under a cluster's name (see
/// [`StateStore::copy_to`]).
pub fn migrate_state(
    settings: &Settings,
    to: &Path,
    lock_timeout: std::time::Duration,
) -> Result<Vec<crate::state::CopiedCluster>> {
    let from = crate::state::display_location(&settings.state_path);
    if crate::state::display_location(to) == from {
        return Err(Error::msg(format!("--to names the state itself ({from})"))
            .hint("give --to another database or file"));
    }
    let source = StateStore::open_existing(&settings.state_path)?.ok_or_else(|| {
        Error::msg(format!("there is no state at {from} to copy"))
            .hint("name the state to copy with --state PATH|URL (or SEALER_STATE)")
    })?;
    let target = StateStore::open_or_create(to)?;
    let holder = LockHolder::this_process("state migrate");
    let mut locks = Vec::new();
    for cluster in source.clusters()? {
        locks.push(source.lock(&cluster.name, &holder, lock_timeout)?);
        locks.push(target.lock(&cluster.name, &holder, lock_timeout)?);
    }
    let copied = source.copy_to(&target)?;
    for lock in locks {
        lock.release()?;
    }
    Ok(copied)
}
