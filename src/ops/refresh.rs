//! `sealer plan --refresh-only`: every recorded resource read back from its hosts, in
//! parallel, read-only (nothing on a host or in the state changes), compared with what the
//! state records. Plain `plan` stays offline; this is the one plan that connects.

use super::Settings;
use super::apply::{ExecSettings, base_context, host_access, node_names};
use super::plan::compile;
use crate::diag::{Error, Result};
use crate::exec::hosts::Pool;
use crate::exec::runner::Runner;
use crate::exec::{Event, EventSink};
use crate::image::{Image, Platform, Reference};
use crate::kinds::read::{ReadBack, read};
use crate::plan::context::Context;
use crate::state::StateStore;
use serde::Serialize;
use std::collections::BTreeSet;
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
        .flatten()
        .filter(|s| !s.resources.is_empty())
        .ok_or_else(|| {
            Error::msg(format!(
                "the state records nothing for cluster \"{cluster}\": there is nothing to read back"
            ))
            .hint("`sealer plan` shows what an apply would create")
        })?;
    let context = Context::of_state(&state.resources);
    let access = host_access(
        &BTreeSet::new(),
        Some(&compiled),
        &state,
        exec,
        settings.user_home.as_deref(),
    );
    let runner = Arc::new(Runner {
        ctx: base_context(&cluster, &context, exec.step_timeout),
        pool: Pool::new(access),
        sink: Arc::new(Quiet),
        node_names: std::sync::Mutex::new(node_names(&state)),
        secrets: Arc::new(std::sync::Mutex::new(Vec::new())),
    });
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

/// Reads (and preflight's questions) stream nothing: what they found is the result.
pub(super) struct Quiet;

impl EventSink for Quiet {
    fn event(&self, _event: Event) {}
}

/// The default bound of one read command: a host that does not answer in this time is
/// reported, not waited for.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
