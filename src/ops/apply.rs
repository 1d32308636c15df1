//! `sealer apply` and `sealer destroy`: prepare (plan, or read a saved plan), then
//! execute under the state lock.

use super::Settings;
use super::plan::{Compiled, compile, plan_refreshed};
use crate::clusterfile::Clusterfile;
use crate::clusterfile::env::{Env, EnvValue};
use crate::diag::{Error, Result};
use crate::exec::hosts::{Access, Pool};
use crate::exec::runner::{DeployContext, RootfsSource, Runner};
use crate::exec::{EventSink, Report, StateRecorder, schedule};
use crate::graph::resolve::Images;
use crate::image::{Image, Platform, Reference};
use crate::kinds::host::HostAttrs;
use crate::plan::context::Context;
use crate::plan::saved::SavedPlan;
use crate::plan::teardown::Teardown;
use crate::plan::{Action, Plan, PlanOptions, diff};
use crate::resource::{Recorded, ResourceType};
use crate::state::{ClusterState, LockHolder, StateStore};
use sealer_providers::quote::EnvItem;
use sealer_providers::ssh::{HostKeyPolicy, SshAuth, SshConfig};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How to execute.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub parallelism: usize,
    pub step_timeout: Duration,
    pub lock_timeout: Duration,
    pub accept_new_host_keys: bool,
}

/// A plan ready to run, with what its steps need.
pub struct Prepared {
    pub plan: Plan,
    pub(super) compiled: Option<Compiled>,
    /// `sealer run`: the image's tree by its root on master0, and what to record.
    pub(super) run_trees: HashMap<String, RootfsSource>,
    pub(super) run_image: Option<String>,
    /// The connections preflight opened, kept for the steps.
    pub(super) pool: Option<Pool>,
}

impl Prepared {
    /// Whether this is `sealer run APP_IMAGE` (planned and applied at once, never saved).
    pub fn is_run(&self) -> bool {
        self.run_image.is_some()
    }
}

/// `sealer apply -f Clusterfile`: plan now; with `refresh` (`--refresh`), after reading
/// the recorded resources back from their hosts, so that what drifted is repaired.
pub async fn prepare_apply<F, Fut>(
    settings: &Settings,
    path: &Path,
    options: &PlanOptions,
    refresh: Option<&ExecSettings>,
    pull: F,
) -> Result<Prepared>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let (outcome, _) = plan_refreshed(settings, path, options, refresh, pull).await?;
    Ok(Prepared {
        plan: outcome.saved.plan,
        compiled: Some(outcome.compiled),
        run_trees: HashMap::new(),
        run_image: None,
        pool: None,
    })
}

/// What to do about a stale plan file: make it again from the Clusterfile it names.
fn plan_again(clusterfile: &Path, plan_file: &Path) -> String {
    format!(
        "make a new plan: `sealer plan -f {} --out {}`",
        clusterfile.display(),
        plan_file.display()
    )
}

/// `sealer apply PLANFILE`: the saved plan, made again from the inputs it names (the same
/// Clusterfile bytes, images by digest, the state at its serial) and applied only if the
/// result is the file, byte for byte. Runs under the session's lock, so the state read here
/// is the one the plan runs against.
pub async fn prepare_saved<F, Fut>(
    settings: &Settings,
    session: &Session,
    path: &Path,
    pull: F,
) -> Result<Prepared>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let file = crate::plan::saved::read_bounded(path)?;
    let saved = SavedPlan::from_bytes(&file, path)?;
    let state = session.store.cluster(&saved.plan.cluster)?;
    // Stale first, each with its own words: the state moved on, the Clusterfile changed,
    // the images changed. Only then is a difference the file's own.
    saved.plan.check_fresh(
        state.as_ref().map(|s| s.lineage.as_str()),
        state.as_ref().map_or(0, |s| s.serial),
    )?;
    let Some(cf_path) = &saved.clusterfile_for(path) else {
        return Err(Error::msg(format!(
            "{} names no Clusterfile, so it cannot be verified",
            path.display()
        ))
        .hint("make the plan with `sealer plan -f CLUSTERFILE --out FILE`"));
    };
    let key = session.store.digest_key()?;
    let compiled = compile(settings, cf_path, &key, pull).await.map_err(|e| {
        e.context(format!(
            "the plan was made from {}, which does not compile now",
            cf_path.display()
        ))
    })?;
    if Some(&compiled.clusterfile_digest) != saved.clusterfile_digest.as_ref() {
        return Err(Error::msg(format!(
            "saved plan is stale: {} changed since the plan was made",
            cf_path.display()
        ))
        .hint(plan_again(cf_path, path))
        .stale_plan());
    }
    if compiled.images.digests() != saved.images {
        return Err(
            Error::msg("saved plan is stale: its images changed since the plan was made")
                .hint(plan_again(cf_path, path))
                .stale_plan(),
        );
    }
    let derived = super::plan::derive(&compiled, cf_path, state.as_ref(), &saved.options())?;
    let derived = derived.stored_at(path);
    SavedPlan::verify(&file, &derived, path)?;
    Ok(Prepared {
        plan: derived.plan,
        compiled: Some(compiled),
        run_trees: HashMap::new(),
        run_image: None,
        pool: None,
    })
}

/// `sealer destroy`: every recorded resource, dependents first.
pub async fn prepare_destroy<F, Fut>(
    settings: &Settings,
    file: Option<&Path>,
    cluster: Option<&str>,
    pull: F,
) -> Result<Prepared>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let compiled = match file {
        Some(path) => {
            let store = StateStore::open_or_create(&settings.state_path)?;
            Some(compile(settings, path, &store.digest_key()?, pull).await?)
        }
        None => None,
    };
    let name = match (&compiled, cluster) {
        (Some(c), _) => c.clusterfile.name().to_string(),
        (None, Some(name)) => name.to_string(),
        (None, None) => return Err(Error::msg("destroy needs -f Clusterfile or --cluster NAME")),
    };
    let state = StateStore::open_existing(&settings.state_path)?
        .map(|s| s.cluster(&name))
        .transpose()?
        .flatten()
        .ok_or_else(|| {
            Error::msg(format!(
                "cluster \"{name}\" has no state: there is nothing to destroy"
            ))
            .hint(
                "`sealer state list` shows the clusters the state records; --state PATH|URL (or SEALER_STATE) names another state",
            )
        })?;
    let current = crate::plan::Current {
        lineage: &state.lineage,
        serial: state.serial,
        resources: &state.resources,
    };
    let mut plan = diff(
        &name,
        &[],
        Some(current),
        &PlanOptions {
            destroy: true,
            ..PlanOptions::default()
        },
    )?;
    plan.context = match &compiled {
        Some(c) => Context::of_input(&c.input),
        None => Context::of_state(&state.resources),
    };
    Ok(Prepared {
        plan,
        compiled,
        run_trees: HashMap::new(),
        run_image: None,
        pool: None,
    })
}

/// Runs a prepared plan under the cluster's state lock.
/// The state of one cluster, locked for the whole operation: taken before the plan is made,
/// so a second apply waits for the first instead of planning against a state that is
/// about to change.
pub struct Session {
    pub(super) store: StateStore,
    cluster: String,
    lock: crate::state::StateLock,
}

impl Session {
    pub(super) fn store(&self) -> &StateStore {
        &self.store
    }

    /// The lock a dead sealer left on this cluster, which this session took over.
    pub fn took_over(&self) -> Option<&crate::state::LockInfo> {
        self.lock.took_over()
    }

    pub fn begin(
        settings: &Settings,
        cluster: &str,
        operation: &str,
        timeout: Duration,
    ) -> Result<Session> {
        let store = StateStore::open_or_create(&settings.state_path)?.for_command(operation);
        let lock = store.lock(cluster, &LockHolder::this_process(operation), timeout)?;
        Ok(Session {
            store,
            cluster: cluster.to_string(),
            lock,
        })
    }
}

/// Rewrites the plain digests an older sealer recorded for the session's cluster in keyed
/// ones, as the prepared plan read them (`plan::rekey`). An apply with no changes does it
/// too: it changes no host and nothing the state says.
pub fn rekey(session: &Session, prepared: &Prepared) -> Result<()> {
    match session.store.cluster(&session.cluster)? {
        Some(state) => rekey_recorded(&session.store, &state, prepared.compiled.as_ref()),
        None => Ok(()),
    }
}

/// Rewrites the plain digests an older sealer recorded in keyed ones (`plan::rekey`), as
/// the plan read them: resources and history, before any step runs. Only with the
/// Clusterfile, which tells what each digest was of; `sealer run` and `destroy --cluster`
/// leave them for the next apply.
fn rekey_recorded(
    store: &StateStore,
    state: &ClusterState,
    compiled: Option<&Compiled>,
) -> Result<()> {
    let Some(compiled) = compiled.filter(|_| !state.digests_keyed) else {
        return Ok(());
    };
    let rekey = super::plan::legacy_rekey(compiled)?;
    let every_sensitive: std::collections::BTreeSet<&str> = ResourceType::ALL
        .iter()
        .flat_map(|t| crate::kinds::schema(*t).sensitive.iter().copied())
        .collect();
    store.rekey(&state.name, |address, attributes| {
        let recorded = state.resources.get(address);
        rekey.apply_attributes(address, attributes, |attr| match recorded {
            Some(r) => r.sensitive.contains(attr),
            None => every_sensitive.contains(attr),
        })
    })?;
    Ok(())
}

/// The name of the cluster a Clusterfile declares (to lock its state before planning).
pub fn cluster_of(path: &Path) -> Result<String> {
    Ok(crate::clusterfile::load(path)?.name().to_string())
}

/// Runs a prepared plan in a session holding the cluster's state lock.
pub async fn execute(
    settings: &Settings,
    session: Session,
    mut prepared: Prepared,
    exec: &ExecSettings,
    sink: Arc<dyn EventSink>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Report> {
    let plan = &prepared.plan;
    if session.cluster != plan.cluster {
        return Err(Error::msg(format!(
            "the plan is for cluster \"{}\", but the lock is for \"{}\"",
            plan.cluster, session.cluster
        )));
    }
    let store = &session.store;
    let state = store.cluster(&plan.cluster)?;
    // Every plan is made under this lock; a state that moved since is a bug, refused anyway.
    plan.check_fresh(
        state.as_ref().map(|s| s.lineage.as_str()),
        state.as_ref().map_or(0, |s| s.serial),
    )?;
    // Only now, about to connect, are the private keys needed: plan and validate never
    // read them.
    if let Some(compiled) = &prepared.compiled
        && plan.has_changes()
    {
        let problems = crate::clusterfile::check_local_files(
            &compiled.clusterfile,
            settings.user_home.as_deref(),
        );
        if !problems.is_empty() {
            return Err(Error::many(problems));
        }
    }
    let state = match state {
        Some(s) => s,
        None => store.create_cluster(&plan.cluster)?,
    };
    rekey_recorded(store, &state, prepared.compiled.as_ref())?;
    let mut ctx = context(settings, &prepared, exec)?;
    ctx.rootfs_tree = crate::plan::distribution::tree(&plan.changes, plan.rootfs_distribution);
    ctx.relay_min = settings.relay_min;
    // Connections preflight opened are reused; they reach the same hosts the same way.
    let pool = match prepared.pool.take() {
        Some(pool) => pool,
        None => Pool::new(access(
            &prepared,
            &state,
            exec,
            settings.user_home.as_deref(),
        )),
    };
    let runner = Arc::new(Runner {
        ctx,
        pool,
        sink: Arc::clone(&sink),
        node_names: std::sync::Mutex::new(node_names(&state)),
        secrets: Arc::new(std::sync::Mutex::new(known_secrets(&prepared))),
        distribution: Default::default(),
    });
    let recorder = StateRecorder {
        store,
        cluster: plan.cluster.clone(),
    };
    let report = schedule::run(
        plan,
        runner,
        &recorder,
        exec.parallelism,
        sink.as_ref(),
        cancel,
    )
    .await;
    if report.success()
        && let Some(image) = &prepared.run_image
    {
        // `sealer run` images are part of the cluster's applied configuration from now on.
        let mut config = store
            .cluster(&plan.cluster)?
            .and_then(|s| s.applied_config)
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(map) = config.as_object_mut() {
            let list = map
                .entry("run_images")
                .or_insert_with(|| serde_json::json!([]));
            if let Some(list) = list.as_array_mut()
                && !list.iter().any(|v| v.as_str() == Some(image))
            {
                list.push(serde_json::json!(image));
            }
        }
        store.set_applied_config(&plan.cluster, &config)?;
    }
    Ok(report)
}

/// The Clusterfile's secrets: output that contains one of them is redacted.
fn known_secrets(prepared: &Prepared) -> Vec<String> {
    let Some(compiled) = &prepared.compiled else {
        return Vec::new();
    };
    let cf = &compiled.clusterfile;
    let mut out = Vec::new();
    for host in cf.hosts() {
        out.extend(host.ssh.password.as_ref().map(|s| s.expose().to_string()));
        out.extend(host.ssh.pk_passwd.as_ref().map(|s| s.expose().to_string()));
    }
    out.extend(
        cf.registry()
            .password
            .as_ref()
            .map(|s| s.expose().to_string()),
    );
    out.sort();
    out.dedup();
    out
}

pub(super) fn node_names(state: &ClusterState) -> HashMap<String, String> {
    state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::Host)
        .filter_map(|r| {
            let name = HostAttrs::recorded(r)?.hostname?;
            Some((r.host.clone()?, name))
        })
        .collect()
}

/// How to reach every host of the plan: the Clusterfile's settings, else (for hosts that
/// left it) what the state recorded with the cluster's SSH defaults; host keys pinned in
/// the state. `~` in the plan's paths is `home` (the settings' `user_home`), expanded here
/// where the transports use them.
pub(super) fn access(
    prepared: &Prepared,
    state: &ClusterState,
    exec: &ExecSettings,
    home: Option<&Path>,
) -> HashMap<String, Access> {
    // Replacing a host (`--replace host.IP`) drops its pin: with --accept-new-host-keys the
    // key it offers now is accepted and pinned, the way to take a reinstalled host back.
    let replaced: std::collections::BTreeSet<String> = prepared
        .plan
        .changes
        .iter()
        .filter(|c| c.resource_type == ResourceType::Host && c.action == Action::Replace)
        .filter_map(|c| c.host.clone())
        .collect();
    host_access(
        &replaced,
        prepared.compiled.as_ref().map(|c| &c.clusterfile),
        state,
        exec,
        home,
    )
}

/// How to reach every host of the Clusterfile and of the state, pins dropped for
/// `replaced` hosts.
pub(super) fn host_access(
    replaced: &std::collections::BTreeSet<String>,
    clusterfile: Option<&Clusterfile>,
    state: &ClusterState,
    exec: &ExecSettings,
    home: Option<&Path>,
) -> HashMap<String, Access> {
    let pinned = |ip: &str| -> Option<String> {
        if replaced.contains(ip) {
            return None;
        }
        state
            .resources
            .get(&format!("host.{ip}"))
            .and_then(HostAttrs::recorded)
            .and_then(|h| h.host_key)
    };
    let policy = |ip: &str| HostKeyPolicy {
        known_hosts: None,
        pinned: pinned(ip),
        accept_new: exec.accept_new_host_keys,
    };
    let mut out = HashMap::new();
    if let Some(cf) = clusterfile {
        for host in cf.hosts() {
            let ip = host.ip.to_string();
            let access = if host.transport == crate::clusterfile::Transport::Local {
                Access::Local {
                    sandbox: host.ssh.sandbox_path(home),
                }
            } else {
                let mut config = SshConfig::new(ip.clone(), host.ssh.user.clone());
                config.port = host.ssh.port;
                config.auth = SshAuth {
                    key_file: host.ssh.pk_path(home),
                    key_passphrase: host.ssh.pk_passwd.as_ref().map(|s| s.expose().to_string()),
                    password: host.ssh.password.as_ref().map(|s| s.expose().to_string()),
                };
                config.host_keys = policy(&ip);
                Access::Ssh(Box::new(config))
            };
            out.insert(ip, access);
        }
    }
    // Hosts only the state knows (being removed): what was recorded.
    for r in state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::Host)
    {
        let Some(ip) = r.host.clone() else { continue };
        if out.contains_key(&ip) {
            continue;
        }
        out.insert(ip.clone(), recorded_access(r, &ip, &policy(&ip), home));
    }
    out
}

fn recorded_access(r: &Recorded, ip: &str, policy: &HostKeyPolicy, home: Option<&Path>) -> Access {
    // A record that does not fit its kind (a damaged state) is reached as an empty one
    // would be: SSH as root on the default port.
    let recorded = HostAttrs::recorded(r);
    if let Some(h) = &recorded
        && h.transport == crate::kinds::host::Transport::Local
    {
        return Access::Local {
            sandbox: h
                .sandbox
                .as_ref()
                .map(|s| crate::clusterfile::expand_home(s, home)),
        };
    }
    let user = recorded
        .as_ref()
        .map_or_else(|| "root".to_string(), |h| h.ssh_user.clone());
    let mut config = SshConfig::new(ip.to_string(), user);
    if let Some(h) = &recorded {
        config.port = h.ssh_port;
    }
    config.auth = SshAuth {
        key_file: recorded
            .as_ref()
            .and_then(|h| h.key_file.as_ref())
            .map(|k| crate::clusterfile::expand_home(k, home)),
        key_passphrase: None,
        password: None,
    };
    config.host_keys = policy.clone();
    Access::Ssh(Box::new(config))
}

/// Everything the steps need: the plan's context (decided when the plan was made), and
/// what the plan holds only by reference, resolved now: each host's env and the registry
/// password from the Clusterfile the plan pins by digest, the rendered rootfs from its
/// images.
fn context(settings: &Settings, prepared: &Prepared, exec: &ExecSettings) -> Result<DeployContext> {
    let plan = &prepared.plan;
    let c = &plan.context;
    let mut ctx = base_context(&plan.cluster, c, exec.step_timeout);
    ctx.run_trees = prepared.run_trees.clone();
    ctx.teardown = Teardown::of(&plan.changes);
    let Some(compiled) = &prepared.compiled else {
        return Ok(ctx);
    };
    let cf = &compiled.clusterfile;
    let (exports, cluster_env) = host_exports(cf, &compiled.images, &compiled.input.runtime_type)?;
    ctx.exports = exports;
    ctx.default_exports = crate::exec::runner::exports_of(&env_items(&cluster_env));
    let password = cf.registry().password.clone();
    ctx.registry_auth = c
        .registry
        .username
        .clone()
        .zip(password.as_ref().map(|p| p.expose().to_string()));
    // The rendered rootfs, only when a host receives it in this plan.
    let needs_rootfs = plan
        .changes
        .iter()
        .any(|c| c.resource_type == ResourceType::Rootfs && c.action != Action::Delete);
    if needs_rootfs {
        let store = settings.store()?;
        let mut trees = vec![crate::rootfs::extract(
            &store,
            &compiled.images.cluster.1,
            settings.max_unpacked,
        )?];
        for (_, image) in &compiled.images.apps {
            trees.push(crate::rootfs::extract(
                &store,
                image,
                settings.max_unpacked,
            )?);
        }
        let input = crate::rootfs::RenderInput::from_clusterfile(cf, &trees, &cluster_env);
        let rendered = crate::rootfs::render(&settings.home, &input)?;
        ctx.rootfs_source = Some(RootfsSource {
            root: rendered.root.clone(),
            entries: rendered.manifest.sync_entries(),
        });
    }
    Ok(ctx)
}

/// What steps (and reads) need from a plan's context alone: no env, no secrets, no trees.
pub(super) fn base_context(cluster: &str, c: &Context, step_timeout: Duration) -> DeployContext {
    DeployContext {
        cluster: cluster.to_string(),
        rootfs: c.rootfs.clone(),
        master0: c.master0.clone(),
        masters: c.masters.clone(),
        vip: c.vip.clone(),
        registry_endpoint: c.registry.endpoint.clone(),
        registry_domain: c.registry.domain.clone(),
        registry_hosts: c.registry.hosts.clone(),
        registry_sans: c.registry.sans.clone(),
        registry_auth: None,
        exports: HashMap::new(),
        default_exports: String::new(),
        rootfs_source: None,
        run_trees: HashMap::new(),
        step_timeout,
        drain_timeout: Duration::from_secs(120),
        teardown: Teardown::default(),
        rootfs_tree: Default::default(),
        relay_min: crate::limits::RELAY_MIN_DEFAULT,
    }
}

/// Every host's env as `export` lines, and the cluster's env.
fn host_exports(
    cf: &Clusterfile,
    images: &Images,
    runtime: &str,
) -> Result<(HashMap<String, String>, Env)> {
    let mut image_env = Env::new();
    if let Some(meta) = images.cluster.1.metadata.as_ref() {
        for (k, v) in &meta.env {
            image_env.insert(k.clone(), EnvValue::parse(v));
        }
    }
    let runtime = Some(runtime);
    let mut exports = HashMap::new();
    for host in cf.hosts() {
        let env = cf.host_env(&host, &image_env, runtime)?;
        exports.insert(
            host.ip.to_string(),
            crate::exec::runner::exports_of(&env_items(&env)),
        );
    }
    let mut cluster_env = image_env;
    cluster_env.merge(&cf.env());
    let derived = cf.derived_env(&cluster_env, runtime)?;
    cluster_env.merge(&derived);
    Ok((exports, cluster_env))
}

fn env_items(env: &Env) -> BTreeMap<String, EnvItem> {
    env.iter()
        .map(|(k, v)| {
            let item = match v {
                EnvValue::Scalar(s) => EnvItem::Scalar(s.clone()),
                EnvValue::List(l) => EnvItem::List(l.clone()),
            };
            (k.clone(), item)
        })
        .collect()
}
