//! `sealer status`: whether a cluster the state records is healthy now: every host reachable,
//! every recorded node Ready in `kubectl get nodes`, every app installed (its kind's
//! read-back), the registry answering `/v2/` and the API server answering `/readyz`. Works
//! from the state alone (a Clusterfile only adds the SSH passwords the state never keeps);
//! read-only, through the same runner, connections and bounds as `plan --refresh-only`.

use super::Settings;
use super::apply::ExecSettings;
use super::refresh::read_runner;
use crate::diag::{Error, Result};
use crate::exec::runner::Runner;
use crate::kinds::read::{ReadBack, read};
use crate::resource::{Recorded, ResourceType};
use crate::state::{ClusterState, StateStore};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Check {
    /// Healthy; `detail` says what was seen.
    Ok { detail: String },
    /// Unhealthy or unreachable; `finding` says what was found.
    Failing { finding: String },
    /// Nothing tells (a shell app's commands, a node whose API is down): `why`.
    NotChecked { why: String },
}

impl Check {
    pub fn ok(detail: impl Into<String>) -> Check {
        Check::Ok {
            detail: detail.into(),
        }
    }

    pub fn failing(finding: impl Into<String>) -> Check {
        Check::Failing {
            finding: finding.into(),
        }
    }

    pub fn not_checked(why: impl Into<String>) -> Check {
        Check::NotChecked { why: why.into() }
    }

    pub fn is_failing(&self) -> bool {
        matches!(self, Check::Failing { .. })
    }

    /// The words of the check: detail, finding or why.
    pub fn text(&self) -> &str {
        match self {
            Check::Ok { detail } => detail,
            Check::Failing { finding } => finding,
            Check::NotChecked { why } => why,
        }
    }
}

/// One recorded host: reachable, and its node's condition when it is one.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    /// The node name (the host's recorded hostname).
    pub node: Option<String>,
    /// `master` or `worker` when the host is a node.
    pub role: Option<&'static str>,
    pub reachable: Check,
    /// The node's STATUS in `kubectl get nodes`, for nodes.
    pub ready: Option<Check>,
}

/// One recorded app: installed or not (its kind's read-back).
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub name: String,
    pub kind: String,
    pub installed: Check,
}

/// The cluster registry, asked from master0.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryStatus {
    pub endpoint: String,
    pub answering: Check,
}

/// The health of one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub serial: u64,
    pub master0: String,
    /// Whether hosts were reached with a Clusterfile's SSH settings (else the state's,
    /// without passwords and key passphrases).
    pub with_clusterfile: bool,
    /// The sealer operation holding the cluster's lock while it was checked, if any (what
    /// was seen may be mid-change): `pid N on host H since T (apply, lock ID X)`.
    pub running: Option<String>,
    pub hosts: Vec<HostStatus>,
    /// Nodes `kubectl get nodes` lists that the state does not record.
    pub unknown_nodes: Vec<String>,
    pub apps: Vec<AppStatus>,
    pub registry: Option<RegistryStatus>,
    pub api: Check,
}

impl Status {
    /// Every failing check, each as `SUBJECT: FINDING`, hosts first.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for h in &self.hosts {
            let name = match &h.node {
                Some(node) => format!("host {} (node {node})", h.host),
                None => format!("host {}", h.host),
            };
            for check in std::iter::once(&h.reachable).chain(h.ready.as_ref()) {
                if check.is_failing() {
                    out.push(format!("{name}: {}", check.text()));
                }
            }
        }
        for a in &self.apps {
            if a.installed.is_failing() {
                out.push(format!("app {}: {}", a.name, a.installed.text()));
            }
        }
        if let Some(r) = &self.registry
            && r.answering.is_failing()
        {
            out.push(format!("registry {}: {}", r.endpoint, r.answering.text()));
        }
        if self.api.is_failing() {
            out.push(format!("API: {}", self.api.text()));
        }
        out
    }

    pub fn healthy(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Checks the cluster `cluster` (default: the only one in the state), or the Clusterfile's
/// cluster when `file` is given (its hosts reached with its settings, passwords included).
/// Each command bounded by `exec.step_timeout`, at most `exec.parallelism` hosts at once.
pub async fn status(
    settings: &Settings,
    cluster: Option<&str>,
    file: Option<&Path>,
    exec: &ExecSettings,
) -> Result<Status> {
    let clusterfile = file.map(crate::clusterfile::load).transpose()?;
    let name = clusterfile.as_ref().map(|cf| cf.name().to_string());
    let store = StateStore::open_existing(&settings.state_path)?
        .ok_or_else(|| super::state::no_state(&settings.state_path))?;
    let state = super::state::choose(&store, name.as_deref().or(cluster))?
        .filter(|s| !s.resources.is_empty())
        .ok_or_else(|| {
            Error::msg("the state records no resources for this cluster: there is nothing to check")
                .hint("`sealer state list` shows what the state holds")
        })?;
    let running = store.running(&state.name)?.map(|lock| lock.to_string());
    let runner = read_runner(
        settings,
        clusterfile.as_ref(),
        &state,
        exec.step_timeout,
        exec,
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(exec.parallelism.max(1)));
    let (hosts, apps, master0) = tokio::join!(
        reach_hosts(&runner, &state, &limit),
        check_apps(&runner, &state, &limit),
        check_master0(&runner, &state),
    );
    let hosts = hosts?;
    let apps = apps?;
    let Master0 {
        nodes,
        registry,
        api,
    } = master0;
    let (hosts, unknown_nodes) = node_conditions(&runner, &state, hosts, &nodes).await;
    Ok(Status {
        cluster: state.name.clone(),
        serial: state.serial,
        master0: runner.ctx.master0.clone(),
        with_clusterfile: clusterfile.is_some(),
        running,
        hosts,
        unknown_nodes,
        apps,
        registry,
        api,
    })
}

/// Connects to every recorded host (a `true` on it), in parallel.
async fn reach_hosts(
    runner: &Arc<Runner>,
    state: &ClusterState,
    limit: &Arc<tokio::sync::Semaphore>,
) -> Result<Vec<(String, Check)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for ip in recorded_hosts(state) {
        let runner = Arc::clone(runner);
        let limit = Arc::clone(limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let check = match runner.probe(&ip, "true\n".to_string()).await {
                Ok(out) if out.ok => Check::ok("reachable"),
                Ok(out) => Check::failing(format!("`true` failed: {}", out.stderr_line())),
                Err(e) => Check::failing(format!("unreachable: {}", e.message)),
            };
            (ip, check)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.push(done.map_err(|e| Error::msg(format!("a host check stopped: {e}")))?);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The hosts the state records (`host.IP`), sorted.
fn recorded_hosts(state: &ClusterState) -> Vec<String> {
    state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::Host)
        .filter_map(|r| r.host.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every recorded app, read back through its kind, in parallel.
async fn check_apps(
    runner: &Arc<Runner>,
    state: &ClusterState,
    limit: &Arc<tokio::sync::Semaphore>,
) -> Result<Vec<AppStatus>> {
    let mut tasks = tokio::task::JoinSet::new();
    for recorded in state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::App)
    {
        let recorded = recorded.clone();
        let runner = Arc::clone(runner);
        let limit = Arc::clone(limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            app_status(&recorded, read(&runner, &recorded).await)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.push(done.map_err(|e| Error::msg(format!("an app check stopped: {e}")))?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What an app's read-back says of its health.
fn app_status(
    recorded: &Recorded,
    read: std::result::Result<ReadBack, crate::exec::StepFailure>,
) -> AppStatus {
    let name = recorded
        .address
        .strip_prefix("app.")
        .unwrap_or(&recorded.address)
        .to_string();
    let kind = recorded
        .attributes
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("unknown")
        .to_string();
    let installed = match read {
        Ok(ReadBack::AsRecorded) => Check::ok("installed"),
        Ok(ReadBack::Unreadable(why)) => Check::not_checked(why.join("; ")),
        Ok(found @ (ReadBack::Drifted(_) | ReadBack::Gone(_))) => {
            Check::failing(format!("not installed: {}", found.findings().join("; ")))
        }
        Err(e) => Check::failing(format!("could not be read: {}", e.message)),
    };
    AppStatus {
        name,
        kind,
        installed,
    }
}

/// What master0 answers for the whole cluster.
struct Master0 {
    /// `kubectl get nodes`: each node's STATUS, or why the API did not list them.
    nodes: std::result::Result<Vec<(String, String)>, String>,
    registry: Option<RegistryStatus>,
    api: Check,
}

/// The API's readiness, its node list and the registry, asked on master0 one after the
/// other (one connection).
async fn check_master0(runner: &Runner, state: &ClusterState) -> Master0 {
    let master0 = &runner.ctx.master0;
    let api = match runner
        .probe(master0, "kubectl get --raw /readyz\n".to_string())
        .await
    {
        Ok(out) if out.ok && out.stdout.trim() == "ok" => {
            Check::ok(format!("answers /readyz on {master0}"))
        }
        Ok(out) => Check::failing(format!(
            "`kubectl get --raw /readyz` on {master0}: {}",
            readyz_failure(&out.stderr, &out.stdout)
        )),
        Err(e) => Check::failing(format!("master0 {master0}: {}", e.message)),
    };
    let nodes = match runner
        .probe(master0, "kubectl get nodes\n".to_string())
        .await
    {
        Ok(out) if out.ok => Ok(parse_nodes(&out.stdout)),
        Ok(out) => Err(format!(
            "`kubectl get nodes` on {master0}: {}",
            out.stderr_line()
        )),
        Err(e) => Err(e.message),
    };
    let registry = if state
        .resources
        .values()
        .any(|r| r.resource_type == ResourceType::Registry)
    {
        let endpoint = runner.ctx.registry_endpoint.clone();
        let answering = registry_check(runner, master0, &endpoint).await;
        Some(RegistryStatus {
            endpoint,
            answering,
        })
    } else {
        None
    };
    Master0 {
        nodes,
        registry,
        api,
    }
}

/// What a failed `/readyz` said: its failing checks (`[-]...`), else its last line.
fn readyz_failure(stderr: &str, stdout: &str) -> String {
    let failed: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[-]"))
        .collect();
    if !failed.is_empty() {
        return format!("not ready: {}", failed.join(", "));
    }
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("answered {:?}", stdout.trim()))
}

/// `NAME STATUS ...` rows of `kubectl get nodes`, header skipped.
fn parse_nodes(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// Whether the registry answers `/v2/` from `host` with sealer's CA: 200, or 401 (it
/// wants credentials: it is there and speaks the registry API).
async fn registry_check(runner: &Runner, host: &str, endpoint: &str) -> Check {
    let out = match runner
        .probe(host, sealer_providers::steps::registry_api_probe(endpoint))
        .await
    {
        Ok(out) => out,
        Err(e) => return Check::failing(format!("cannot be asked from {host}: {}", e.message)),
    };
    let code = out.stdout.trim();
    match code {
        "200" => Check::ok(format!("answers https://{endpoint}/v2/ from {host}")),
        "401" => Check::ok(format!(
            "answers https://{endpoint}/v2/ from {host} (HTTP 401: it asks for credentials)"
        )),
        _ if out.ok => Check::failing(format!(
            "https://{endpoint}/v2/ answered HTTP {code} from {host}"
        )),
        _ => Check::failing(format!(
            "does not answer https://{endpoint}/v2/ from {host}: {}",
            out.stderr_line()
        )),
    }
}

/// Each host with its node's condition, and the listed nodes the state does not record.
async fn node_conditions(
    runner: &Runner,
    state: &ClusterState,
    hosts: Vec<(String, Check)>,
    nodes: &std::result::Result<Vec<(String, String)>, String>,
) -> (Vec<HostStatus>, Vec<String>) {
    let roles = node_roles(state, &runner.ctx.master0);
    let mut recorded_names = BTreeSet::new();
    let mut out = Vec::new();
    for (ip, reachable) in hosts {
        let role = roles.get(&ip).copied();
        let node = match role {
            // The recorded hostname; else the host's own, when it answers.
            Some(_) if !reachable.is_failing() => runner.node_name(&ip, &ip).await.ok(),
            Some(_) => super::apply::node_names(state).get(&ip).cloned(),
            None => None,
        };
        if let Some(n) = &node {
            recorded_names.insert(n.clone());
        }
        let ready = role.map(|_| node_ready(node.as_deref(), nodes));
        out.push(HostStatus {
            host: ip,
            node,
            role,
            reachable,
            ready,
        });
    }
    let unknown = match nodes {
        Ok(listed) => listed
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| !recorded_names.contains(name))
            .collect(),
        Err(_) => Vec::new(),
    };
    (out, unknown)
}

/// Which recorded hosts are nodes, and of which role.
fn node_roles(
    state: &ClusterState,
    master0: &str,
) -> std::collections::HashMap<String, &'static str> {
    let mut roles = std::collections::HashMap::new();
    for r in state.resources.values() {
        match r.resource_type {
            ResourceType::KubernetesInit => {
                roles.insert(
                    r.host.clone().unwrap_or_else(|| master0.to_string()),
                    "master",
                );
            }
            ResourceType::KubernetesMaster => {
                if let Some(h) = &r.host {
                    roles.insert(h.clone(), "master");
                }
            }
            ResourceType::KubernetesWorker => {
                if let Some(h) = &r.host {
                    roles.insert(h.clone(), "worker");
                }
            }
            _ => {}
        }
    }
    roles
}

/// A node's condition from `kubectl get nodes`: Ready (cordoned or not), or not.
fn node_ready(
    node: Option<&str>,
    nodes: &std::result::Result<Vec<(String, String)>, String>,
) -> Check {
    let Some(node) = node else {
        return Check::not_checked("its node name is unknown: the host did not answer");
    };
    let listed = match nodes {
        Ok(listed) => listed,
        Err(why) => return Check::not_checked(format!("the API did not list nodes: {why}")),
    };
    match listed.iter().find(|(name, _)| name == node) {
        None => Check::failing(format!("node {node} is not in `kubectl get nodes`")),
        Some((_, status)) if status.split(',').any(|s| s == "Ready") => Check::ok(status.clone()),
        Some((_, status)) => Check::failing(format!("node {node} is {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_ready_only_when_their_status_says_ready() {
        let listed = Ok(parse_nodes(
            "NAME STATUS ROLES VERSION\na Ready master v1\nb NotReady <none> v1\nc Ready,SchedulingDisabled <none> v1\n",
        ));
        assert_eq!(node_ready(Some("a"), &listed), Check::ok("Ready"));
        assert_eq!(
            node_ready(Some("b"), &listed),
            Check::failing("node b is NotReady")
        );
        assert_eq!(
            node_ready(Some("c"), &listed),
            Check::ok("Ready,SchedulingDisabled")
        );
        assert!(node_ready(Some("d"), &listed).is_failing());
        assert!(!node_ready(Some("a"), &Err("down".into())).is_failing());
    }

    #[test]
    fn an_apps_read_back_says_installed_missing_or_not_checked() {
        let app = |kind: &str| Recorded {
            address: "app.dashboard".to_string(),
            resource_type: ResourceType::App,
            host: None,
            attributes: serde_json::from_value(serde_json::json!({"kind": kind})).unwrap(),
            sensitive: Default::default(),
            status: crate::resource::Status::Ready,
            depends_on: Vec::new(),
            drift: None,
        };
        let kube = app("kube");
        let status = app_status(&kube, Ok(ReadBack::AsRecorded));
        assert_eq!(
            (status.name.as_str(), status.kind.as_str()),
            ("dashboard", "kube")
        );
        assert_eq!(status.installed, Check::ok("installed"));
        let gone = app_status(
            &kube,
            Ok(ReadBack::Drifted(vec!["objects of a.yaml".into()])),
        );
        assert_eq!(
            gone.installed,
            Check::failing("not installed: objects of a.yaml")
        );
        let unread = app_status(&kube, Err(crate::exec::StepFailure::message("timed out")));
        assert_eq!(
            unread.installed,
            Check::failing("could not be read: timed out")
        );
        let shell = app_status(&app("shell"), Ok(ReadBack::unreadable("its own")));
        assert_eq!(shell.installed, Check::not_checked("its own"));
    }

    #[test]
    fn a_failed_readyz_names_its_failing_checks() {
        let stderr = "Error from server (InternalServerError): an error on the server (\"[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\") has prevented the request from succeeding\n";
        assert_eq!(
            readyz_failure(stderr, ""),
            "not ready: [-]etcd failed: reason withheld"
        );
        assert_eq!(
            readyz_failure("The connection to the server x:6443 was refused\n", ""),
            "The connection to the server x:6443 was refused"
        );
    }
}
