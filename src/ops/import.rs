//! `sealer import -f Clusterfile`: adopts a running cluster (one another state file
//! recorded, or Go Sealer installed) into a state that does not record it yet. Each
//! resource of the Clusterfile is read back from its hosts as if it had been applied
//! (the read-only read-backs of `plan --refresh-only`), and recorded as found, so that
//! the next plan shows only real differences. Nothing on a host changes.

use super::apply::ExecSettings;
use super::plan::compile;
use super::refresh::{Found, ReadResult, read_back, read_runner};
use super::{Session, Settings};
use crate::diag::{Diagnostic, Error, Result};
use crate::image::{Image, Platform, Reference};
use crate::kinds::read::ReadBack;
use crate::plan::Action;
use crate::resource::{Attributes, Drift, Recorded, ResourceType};
use crate::state::{ClusterState, StateStore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// What the import found of one resource, and so what it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Adopted {
    /// Read back as the Clusterfile would have made it: recorded ready.
    Imported,
    /// There, but not as the Clusterfile would make it, and its step can run again in
    /// place: recorded with its drift, which the next plan repairs (an update).
    Drifted,
    /// There but different, where the only repair would take the cluster down (a new
    /// `kubeadm init`, a master joined again): recorded as found, the difference reported.
    Accepted,
    /// Not there: not recorded, the next plan creates it.
    Missing,
    /// Nothing on a host tells (a plugin's script, a shell app): recorded as applied, since
    /// the cluster it belongs to is running.
    Assumed,
}

/// One resource of the import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportedResource {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub adopted: Adopted,
    /// What the read found (drift, why it is missing or cannot be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

/// What `sealer import` recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub cluster: String,
    /// The state serial after the import.
    pub serial: u64,
    /// Every resource of the Clusterfile, by address.
    pub resources: Vec<ImportedResource>,
}

impl Import {
    pub fn count(&self, adopted: Adopted) -> usize {
        self.resources
            .iter()
            .filter(|r| r.adopted == adopted)
            .count()
    }

    pub fn hosts(&self) -> usize {
        self.resources
            .iter()
            .filter_map(|r| r.host.as_deref())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Imports the Clusterfile's cluster: compiles it, takes the cluster's lock, learns each
/// host's facts (arch, hostname, host key: an unknown key is refused unless
/// `exec.accept_new_host_keys`, then pinned), reads every resource back and records what
/// was found in one state write. Refused, with nothing written, when the state already
/// records the cluster or any read fails.
pub async fn import<F, Fut>(
    settings: &Settings,
    path: &Path,
    exec: &ExecSettings,
    pull: F,
) -> Result<Import>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let key = StateStore::open_or_create(&settings.state_path)?.digest_key()?;
    let compiled = compile(settings, path, &key, pull).await?;
    let cluster = compiled.clusterfile.name().to_string();
    let session = Session::begin(settings, &cluster, "import", exec.lock_timeout)?;
    let store = session.store();
    if let Some(state) = store.cluster(&cluster)?
        && !state.resources.is_empty()
    {
        return Err(Error::msg(format!(
            "the state already records cluster \"{cluster}\" ({} resources, serial {}): there is nothing to import",
            state.resources.len(),
            state.serial
        ))
        .hint("`sealer plan` shows how it differs from the Clusterfile; import into another state with --state"));
    }
    let applied = |computed: &BTreeMap<String, Attributes>| -> ClusterState {
        let resources = compiled
            .resources
            .iter()
            .map(|d| {
                let learned = computed.get(&d.address).cloned().unwrap_or_default();
                (d.address.clone(), Recorded::applied(d, learned))
            })
            .collect();
        ClusterState {
            name: cluster.clone(),
            lineage: String::new(),
            serial: 0,
            created_at: String::new(),
            updated_at: String::new(),
            resources,
            applied_config: None,
            digests_keyed: true,
        }
    };
    // What apply learns as it creates each host, read without changing it; the reads of
    // the other kinds need it (node names, pinned keys).
    let facts = host_facts(settings, &compiled, &applied(&BTreeMap::new()), exec).await?;
    let candidates = applied(&facts);
    let found = read_back(settings, &compiled, &candidates, exec).await?;
    found.complete()?;
    let resources = adopt(&candidates, &found.resources);
    let records: Vec<Recorded> = resources
        .iter()
        .filter(|r| r.adopted != Adopted::Missing)
        .filter_map(|r| {
            let mut record = candidates.resources.get(&r.address)?.clone();
            if r.adopted == Adopted::Drifted {
                record.drift = Some(Drift {
                    gone: false,
                    findings: r.findings.clone(),
                    recorded_at: None,
                });
            }
            Some(record)
        })
        .collect();
    let serial = store.import_cluster(&cluster, &records)?;
    Ok(Import {
        cluster,
        serial,
        resources,
    })
}

/// Each host's arch, hostname and host key, by host address, read in parallel.
async fn host_facts(
    settings: &Settings,
    compiled: &super::Compiled,
    state: &ClusterState,
    exec: &ExecSettings,
) -> Result<BTreeMap<String, Attributes>> {
    let runner = read_runner(
        settings,
        Some(&compiled.clusterfile),
        state,
        exec.step_timeout,
        exec,
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(exec.parallelism.max(1)));
    let mut reads = tokio::task::JoinSet::new();
    for host in state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::Host)
    {
        let (Some(ip), address) = (host.host.clone(), host.address.clone()) else {
            continue;
        };
        let runner = Arc::clone(&runner);
        let limit = Arc::clone(&limit);
        reads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let facts = crate::kinds::host::facts(&runner, &ip).await;
            (address, facts)
        });
    }
    let mut facts = BTreeMap::new();
    let mut failed = Vec::new();
    while let Some(done) = reads.join_next().await {
        let (address, read) = done.map_err(|e| Error::msg(format!("a read stopped: {e}")))?;
        match read {
            Ok(learned) => {
                facts.insert(address, learned);
            }
            Err(e) => failed.push(Diagnostic::error_with_hints(&format!(
                "cannot read {address}: {}",
                e.message
            ))),
        }
    }
    if failed.is_empty() {
        return Ok(facts);
    }
    failed.sort_by(|a, b| a.message.cmp(&b.message));
    let last = failed.len() - 1;
    failed[last] = failed[last].clone().hint(
        "check that the hosts are up and reachable (a new host key needs --accept-new-host-keys), then run it again; nothing was recorded",
    );
    Err(Error::many(failed))
}

/// What each read says to record. A resource that cannot be read is assumed applied only
/// when everything it depends on was found: a plugin of a control plane that is not there
/// did not run either.
fn adopt(candidates: &ClusterState, reads: &[ReadResult]) -> Vec<ImportedResource> {
    let mut out: Vec<ImportedResource> = reads
        .iter()
        .map(|r| {
            let resource_type = candidates
                .resources
                .get(&r.address)
                .map(|c| c.resource_type);
            let (adopted, findings) = match &r.found {
                Found::Read(ReadBack::AsRecorded) => (Adopted::Imported, Vec::new()),
                Found::Read(ReadBack::Drifted(f)) => {
                    let repair = resource_type.and_then(|t| crate::kinds::drift_repair(t, false));
                    if repair == Some(Action::Update) {
                        (Adopted::Drifted, f.clone())
                    } else {
                        (Adopted::Accepted, f.clone())
                    }
                }
                Found::Read(ReadBack::Gone(f)) => (Adopted::Missing, f.clone()),
                Found::Read(ReadBack::Unreadable(f)) => (Adopted::Assumed, f.clone()),
                // `complete` refused these already.
                Found::Failed { error, .. } => (Adopted::Missing, vec![error.clone()]),
            };
            ImportedResource {
                address: r.address.clone(),
                host: r.host.clone(),
                adopted,
                findings,
            }
        })
        .collect();
    // Resources come in address order, not dependency order: repeat until nothing changes.
    loop {
        let missing: BTreeSet<String> = out
            .iter()
            .filter(|r| r.adopted == Adopted::Missing)
            .map(|r| r.address.clone())
            .collect();
        let mut changed = false;
        for r in out.iter_mut().filter(|r| r.adopted == Adopted::Assumed) {
            let depends_on = candidates
                .resources
                .get(&r.address)
                .map(|c| c.depends_on.as_slice())
                .unwrap_or_default();
            if let Some(dep) = depends_on.iter().find(|d| missing.contains(*d)) {
                r.adopted = Adopted::Missing;
                r.findings = vec![format!("{dep} is not there, so this did not run either")];
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Status;

    fn recorded(address: &str, t: ResourceType, depends_on: &[&str]) -> Recorded {
        Recorded {
            address: address.to_string(),
            resource_type: t,
            host: Some("10.0.0.1".to_string()),
            attributes: Attributes::new(),
            sensitive: BTreeSet::new(),
            status: Status::Ready,
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            drift: None,
        }
    }

    fn read(address: &str, found: ReadBack) -> ReadResult {
        ReadResult {
            address: address.to_string(),
            host: Some("10.0.0.1".to_string()),
            found: Found::Read(found),
        }
    }

    #[test]
    fn each_read_says_how_its_resource_is_recorded() {
        let resources = [
            recorded("host.a", ResourceType::Host, &[]),
            recorded("rootfs.a", ResourceType::Rootfs, &["host.a"]),
            recorded(
                "kubernetes.init",
                ResourceType::KubernetesInit,
                &["rootfs.a"],
            ),
            recorded("kubernetes.worker.b", ResourceType::KubernetesWorker, &[]),
            recorded("plugin.x", ResourceType::Plugin, &["kubernetes.worker.b"]),
            recorded("plugin.y", ResourceType::Plugin, &["plugin.x"]),
            recorded("plugin.z", ResourceType::Plugin, &["kubernetes.init"]),
        ];
        let state = ClusterState {
            name: "c".into(),
            lineage: String::new(),
            serial: 0,
            created_at: String::new(),
            updated_at: String::new(),
            resources: resources
                .into_iter()
                .map(|r| (r.address.clone(), r))
                .collect(),
            applied_config: None,
            digests_keyed: true,
        };
        let unreadable = || ReadBack::unreadable("a script");
        let reads = [
            read("host.a", ReadBack::AsRecorded),
            read("kubernetes.init", ReadBack::Drifted(vec!["edited".into()])),
            read("kubernetes.worker.b", ReadBack::gone("not a node")),
            read("plugin.x", unreadable()),
            read("plugin.y", unreadable()),
            read("plugin.z", unreadable()),
            read("rootfs.a", ReadBack::Drifted(vec!["no manifest".into()])),
        ];
        let adopted: BTreeMap<String, Adopted> = adopt(&state, &reads)
            .into_iter()
            .map(|r| (r.address, r.adopted))
            .collect();
        assert_eq!(adopted["host.a"], Adopted::Imported);
        assert_eq!(adopted["rootfs.a"], Adopted::Drifted, "repaired in place");
        assert_eq!(
            adopted["kubernetes.init"],
            Adopted::Accepted,
            "only a new kubeadm init would repair it"
        );
        assert_eq!(adopted["kubernetes.worker.b"], Adopted::Missing);
        assert_eq!(adopted["plugin.x"], Adopted::Missing, "its node is missing");
        assert_eq!(adopted["plugin.y"], Adopted::Missing, "through plugin.x");
        assert_eq!(adopted["plugin.z"], Adopted::Assumed);
    }
}
