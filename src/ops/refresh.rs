//! `sealer plan --refresh-only`: every recorded resource read back from its hosts, in
//! parallel, read-only (nothing on a host or in the state changes), compared with what the
//! state records. Plain `plan` stays offline; this is the one plan that connects.

use super::Settings;
use super::apply::{ExecSettings, base_context, host_access, node_names};
use super::plan::{Compiled, compile};
use crate::clusterfile::Clusterfile;
use crate::diag::{Error, Result};
use crate::exec::hosts::Pool;
use crate::exec::runner::Runner;
use crate::exec::{Event, EventSink};
use crate::image::{Image, Platform, Reference};
use crate::kinds::read::{ReadBack, read};
use crate::plan::context::Context;
use crate::resource::Drift;
use crate::state::{ClusterState, StateStore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What reading one recorded resource back found.
#[derive(Debug, Clone, Serialize)]
pub struct ReadResult {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub found: Found,
}

/// A read-back, or why the resource could not be read (its host is down, a command failed).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Found {
    Read(ReadBack),
    Failed { found: &'static str, error: String },
}

impl ReadResult {
    pub fn drifted(&self) -> bool {
        matches!(&self.found, Found::Read(r) if r.drifted())
    }

    pub fn failed(&self) -> bool {
        matches!(self.found, Found::Failed { .. })
    }
}

/// Every recorded resource of a cluster, read back, sorted by address.
#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub cluster: String,
    pub serial: u64,
    pub resources: Vec<ReadResult>,
}

impl Refresh {
    pub fn drifted(&self) -> impl Iterator<Item = &ReadResult> {
        self.resources.iter().filter(|r| r.drifted())
    }

    pub fn failed(&self) -> impl Iterator<Item = &ReadResult> {
        self.resources.iter().filter(|r| r.failed())
    }

    pub fn hosts(&self) -> usize {
        self.resources
            .iter()
            .filter_map(|r| r.host.as_deref())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Reads every resource the state records for the Clusterfile's cluster back from its
/// hosts (reached with the Clusterfile's settings, or what the state recorded for hosts
/// that left it), at most `exec.parallelism` reads at once, each command bounded by
/// `exec.step_timeout`.
pub async fn refresh<F, Fut>(
    settings: &Settings,
    path: &Path,
    exec: &ExecSettings,
    pull: F,
) -> Result<Refresh>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let store = StateStore::open_existing(&settings.state_path)?;
    // Read-back compares hosts with the record, never digests; a state-less refresh fails
    // below, after the Clusterfile is checked.
    let key = match &store {
        Some(store) => store.digest_key()?,
        None => crate::clusterfile::DigestKey::throwaway()?,
    };
    let compiled = compile(settings, path, &key, pull).await?;
    let cluster = compiled.clusterfile.name().to_string();
    let state = store
        .map(|store| store.cluster(&cluster))
        .transpose()?
        .flatten();
    let state = recorded(state, &cluster)?;
    read_back(settings, &compiled, &state, exec).await
}

/// The state of `cluster` when it records resources; an error that says so otherwise.
pub(super) fn recorded(state: Option<ClusterState>, cluster: &str) -> Result<ClusterState> {
    state.filter(|s| !s.resources.is_empty()).ok_or_else(|| {
        Error::msg(format!(
            "the state records nothing for cluster \"{cluster}\": there is nothing to read back"
        ))
        .hint("`sealer plan` shows what an apply would create")
    })
}

/// Reads every resource of `state` back from its hosts (see [`refresh`]).
pub async fn read_back(
    settings: &Settings,
    compiled: &Compiled,
    state: &ClusterState,
    exec: &ExecSettings,
) -> Result<Refresh> {
    let cluster = compiled.clusterfile.name().to_string();
    let runner = read_runner(
        settings,
        Some(&compiled.clusterfile),
        state,
        exec.step_timeout,
        exec,
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(exec.parallelism.max(1)));
    let mut reads = tokio::task::JoinSet::new();
    for recorded in state.resources.values().cloned() {
        let runner = Arc::clone(&runner);
        let limit = Arc::clone(&limit);
        reads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let found = match read(&runner, &recorded).await {
                Ok(read) => Found::Read(read),
                Err(e) => Found::Failed {
                    found: "error",
                    error: e.message,
                },
            };
            ReadResult {
                address: recorded.address,
                host: recorded.host,
                found,
            }
        });
    }
    let mut resources = Vec::new();
    while let Some(done) = reads.join_next().await {
        resources.push(done.map_err(|e| Error::msg(format!("a read-back stopped: {e}")))?);
    }
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(Refresh {
        cluster,
        serial: state.serial,
        resources,
    })
}

impl Refresh {
    /// What the reads say each resource's drift is: `Some` for drifted or gone, `None` for
    /// as recorded. Resources that could not be read, or that nothing on a host can tell
    /// about, are left out: what the state says of them stands.
    pub fn drift_marks(&self) -> BTreeMap<String, Option<Drift>> {
        self.resources
            .iter()
            .filter_map(|r| {
                let drift = match &r.found {
                    Found::Read(ReadBack::AsRecorded) => None,
                    Found::Read(ReadBack::Drifted(findings)) => Some(Drift {
                        gone: false,
                        findings: findings.clone(),
                        recorded_at: None,
                    }),
                    Found::Read(ReadBack::Gone(findings)) => Some(Drift {
                        gone: true,
                        findings: findings.clone(),
                        recorded_at: None,
                    }),
                    Found::Read(ReadBack::Unreadable(_)) | Found::Failed { .. } => return None,
                };
                Some((r.address.clone(), drift))
            })
            .collect()
    }

    /// An error naming every resource that could not be read, when there is one: a plan
    /// or a record made from part of the picture would say less than it seems to.
    pub fn complete(&self) -> Result<()> {
        let failed: Vec<crate::diag::Diagnostic> = self
            .failed()
            .map(|r| {
                let why = match &r.found {
                    Found::Failed { error, .. } => error.as_str(),
                    Found::Read(_) => "",
                };
                crate::diag::Diagnostic::error(format!("cannot read {} back: {why}", r.address))
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let last = failed.len() - 1;
        let mut failed = failed;
        failed[last] = failed[last]
            .clone()
            .hint("check that the hosts are up and reachable, then run it again; nothing changed");
        Err(Error::many(failed))
    }
}

/// The marks of `marks` that change what `state` records (set, changed or cleared).
pub fn changed_marks(
    state: &ClusterState,
    marks: &BTreeMap<String, Option<Drift>>,
) -> BTreeMap<String, Option<Drift>> {
    marks
        .iter()
        .filter(|(address, mark)| {
            let recorded = state.resources.get(*address).and_then(|r| r.drift.as_ref());
            let same = match (recorded, mark) {
                (None, None) => true,
                (Some(a), Some(b)) => a.gone == b.gone && a.findings == b.findings,
                _ => false,
            };
            !same && state.resources.contains_key(*address)
        })
        .map(|(a, m)| (a.clone(), m.clone()))
        .collect()
}

/// `state` as the reads found it: each read resource's drift replaced by what was found.
pub fn with_drift(state: &ClusterState, marks: &BTreeMap<String, Option<Drift>>) -> ClusterState {
    let mut state = state.clone();
    for (address, mark) in marks {
        if let Some(r) = state.resources.get_mut(address) {
            r.drift = mark.clone();
        }
    }
    state
}

/// What `sealer apply --refresh-only` found: the reads, and the drift they change in the
/// state (set, changed or cleared), which [`record_refresh`] writes once confirmed.
#[derive(Debug)]
pub struct RefreshRecord {
    pub refresh: Refresh,
    pub marks: BTreeMap<String, Option<Drift>>,
}

/// `sealer apply --refresh-only`, the reading half: under the session's lock, every
/// recorded resource is read back; nothing is written. Refused when a read failed.
pub async fn prepare_refresh_record<F, Fut>(
    settings: &Settings,
    session: &super::Session,
    path: &Path,
    exec: &ExecSettings,
    pull: F,
) -> Result<RefreshRecord>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let store = session.store();
    let compiled = compile(settings, path, &store.digest_key()?, pull).await?;
    let cluster = compiled.clusterfile.name().to_string();
    let state = recorded(store.cluster(&cluster)?, &cluster)?;
    let refresh = read_back(settings, &compiled, &state, exec).await?;
    refresh.complete()?;
    let marks = changed_marks(&state, &refresh.drift_marks());
    Ok(RefreshRecord { refresh, marks })
}

/// Records the drift of `record` in the state, in one write (no host is touched); the
/// next plan repairs what is recorded drifted. Returns the new serial.
pub fn record_refresh(session: &super::Session, record: &RefreshRecord) -> Result<u64> {
    session
        .store()
        .record_drift(&record.refresh.cluster, &record.marks)
}

/// A runner for read-only commands on the cluster's hosts: reached with the Clusterfile's
/// settings when there is one, else what the state recorded (no passwords: those live only
/// in the Clusterfile); host keys pinned in the state; each command bounded by `timeout`.
pub(super) fn read_runner(
    settings: &Settings,
    clusterfile: Option<&Clusterfile>,
    state: &ClusterState,
    timeout: Duration,
    exec: &ExecSettings,
) -> Arc<Runner> {
    let context = Context::of_state(&state.resources);
    let access = host_access(
        &BTreeSet::new(),
        clusterfile,
        state,
        exec,
        settings.user_home.as_deref(),
    );
    Arc::new(Runner {
        ctx: base_context(&state.name, &context, timeout),
        pool: Pool::new(access),
        sink: Arc::new(Quiet),
        node_names: std::sync::Mutex::new(node_names(state)),
        secrets: Arc::new(std::sync::Mutex::new(Vec::new())),
        distribution: Default::default(),
    })
}

/// Reads (and preflight's questions) stream nothing: what they found is the result.
pub(super) struct Quiet;

impl EventSink for Quiet {
    fn event(&self, _event: Event) {}
}

/// The default bound of one read command: a host that does not answer in this time is
/// reported, not waited for.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
