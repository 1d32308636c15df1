//! State inspection: `sealer state list`, `state show`, `state unlock`.

use super::Settings;
use crate::diag::{Error, Result};
use crate::resource::Recorded;
use crate::state::{ClusterState, ClusterSummary, LockInfo, StateStore};
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
fn choose(store: &StateStore, cluster: Option<&str>) -> Result<Option<ClusterState>> {
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

/// The cluster an operation on the state means: the one named, else the only one.
pub fn cluster_name(settings: &Settings, cluster: Option<&str>) -> Result<String> {
    let store = StateStore::open_existing(&settings.state_path)?.ok_or_else(|| {
        Error::msg(format!(
            "there is no state at {}",
            settings.state_path.display()
        ))
    })?;
    match choose(&store, cluster)? {
        Some(state) => Ok(state.name),
        None => Err(Error::msg("the state holds no cluster")),
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
    let store = StateStore::open_existing(path)?
        .ok_or_else(|| Error::msg(format!("there is no state at {}", path.display())))?;
    let name = match cluster {
        Some(name) => name.to_string(),
        None => match choose(&store, None)? {
            Some(state) => state.name,
            None => return Err(Error::msg("the state holds no cluster")),
        },
    };
    store.break_lock(&name, lock_id)
}
