//! Plans: `sealer validate`, `plan`, `show`, `graph`.

use super::Settings;
use crate::clusterfile::env::{Env, EnvValue};
use crate::clusterfile::{self, Clusterfile};
use crate::diag::{Error, Result};
use crate::graph::resolve::{Images, resolve};
use crate::graph::{self, ClusterInput};
use crate::image::{Image, Platform, Reference};
use crate::plan::context::Context;
use crate::plan::saved::SavedPlan;
use crate::plan::{Current, Plan, PlanOptions, diff};
use crate::resource::Desired;
use crate::state::{ClusterState, StateStore};
use sealer_providers::quote::EnvItem;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

/// A Clusterfile compiled with its images: what validate, graph and plan share.
#[derive(Debug)]
pub struct Compiled {
    pub clusterfile: Clusterfile,
    /// The digest of the Clusterfile's bytes, as read once for this compilation.
    pub clusterfile_digest: String,
    pub images: Images,
    pub input: ClusterInput,
    pub resources: Vec<Desired>,
    /// Each host's env as `export` lines (image < cluster < host, plus derived keys).
    pub exports: BTreeMap<String, String>,
    /// The cluster's env: for hosts that left the Clusterfile, and the rootfs templates.
    pub cluster_env: Env,
    pub default_exports: String,
}

/// Loads the Clusterfile, fetches its images (store first, else `pull`), checks them and
/// compiles the resource graph. Everything `sealer validate` checks; no host is contacted.
pub async fn compile<F, Fut>(settings: &Settings, path: &Path, pull: F) -> Result<Compiled>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let (cf, clusterfile_digest) = clusterfile::validate_file(path, settings.user_home.as_deref())?;
    let store = settings.store()?;
    let fetch = async |reference: &Reference, span| -> Result<(Reference, Image)> {
        if let Some(found) = store.find(&reference.to_string())? {
            return Ok(found);
        }
        let image = pull(reference.clone(), Platform::host())
            .await
            .map_err(|e| {
                let message = e.diagnostics().first().map(|d| d.message.clone()).unwrap_or_default();
                Error::from(
                    crate::diag::Diagnostic::error(format!(
                        "image {reference} is not in the local store and cannot be pulled: {message}"
                    ))
                    .at(cf.location(span))
                    .hint("build it with `sealer build`, or `sealer load` / `sealer pull` it"),
                )
            })?;
        Ok((reference.clone(), image))
    };
    let cluster = fetch(&cf.cluster.image.value, cf.cluster.image.span).await?;
    let mut apps = Vec::new();
    if let Some(app) = &cf.application {
        for image in &app.images {
            apps.push(fetch(&image.value, image.span).await?);
        }
    }
    let images = Images { cluster, apps };
    let input = resolve(&cf, &images)?;
    let resources = graph::compile(&input);
    // A cycle can only come from plugin phases and app order; report it now, not at plan.
    let nodes: Vec<crate::plan::order::Node> = resources
        .iter()
        .map(|r| crate::plan::order::Node {
            address: &r.address,
            depends_on: &r.depends_on,
        })
        .collect();
    if let Err(cycles) = crate::plan::order::topological(&nodes) {
        let text: Vec<String> = cycles.iter().map(|c| c.join(", ")).collect();
        return Err(Error::msg(format!(
            "dependency cycle between {}",
            text.join("; ")
        )));
    }
    let (exports, cluster_env) = host_exports(&cf, &images, &input.runtime_type)?;
    let default_exports = crate::exec::runner::exports_of(&env_items(&cluster_env));
    Ok(Compiled {
        clusterfile: cf,
        clusterfile_digest,
        images,
        input,
        resources,
        exports,
        cluster_env,
        default_exports,
    })
}

/// Every host's env as `export` lines, and the cluster's env.
fn host_exports(
    cf: &Clusterfile,
    images: &Images,
    runtime: &str,
) -> Result<(BTreeMap<String, String>, Env)> {
    let mut image_env = Env::new();
    if let Some(meta) = images.cluster.1.metadata.as_ref() {
        for (k, v) in &meta.env {
            image_env.insert(k.clone(), EnvValue::parse(v));
        }
    }
    let runtime = Some(runtime);
    let mut exports = BTreeMap::new();
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

/// A plan and what it was made from.
#[derive(Debug)]
pub struct PlanOutcome {
    pub saved: SavedPlan,
    /// What the plan was made from (apply needs it to run the steps).
    pub compiled: Compiled,
}

impl PlanOutcome {
    pub fn plan(&self) -> &Plan {
        &self.saved.plan
    }
}

pub async fn plan<F, Fut>(
    settings: &Settings,
    path: &Path,
    options: &PlanOptions,
    pull: F,
) -> Result<PlanOutcome>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let compiled = compile(settings, path, pull).await?;
    let name = compiled.clusterfile.name().to_string();
    // Plans read the state and never write it; no state file means a new cluster.
    let state = match StateStore::open_existing(&settings.state_path)? {
        Some(store) => store.cluster(&name)?,
        None => None,
    };
    let saved = derive(&compiled, path, state.as_ref(), options)?;
    Ok(PlanOutcome { saved, compiled })
}

/// The plan of a compiled Clusterfile against a cluster's state, with what it was made
/// from. Pure: `plan` and the re-derivation of a saved plan at apply both come here.
pub fn derive(
    compiled: &Compiled,
    path: &Path,
    state: Option<&ClusterState>,
    options: &PlanOptions,
) -> Result<SavedPlan> {
    let name = compiled.clusterfile.name();
    let current = state.map(|s| Current {
        lineage: &s.lineage,
        serial: s.serial,
        resources: &s.resources,
    });
    let mut plan = diff(name, &compiled.resources, current, options)?;
    plan.context = Context::of_input(
        &compiled.input,
        &compiled.exports,
        &compiled.default_exports,
    );
    Ok(SavedPlan {
        plan,
        // Absolute, so that the saved plan applies from any directory.
        clusterfile: compiled
            .clusterfile
            .origin
            .clone()
            .or_else(|| Some(path.to_path_buf())),
        clusterfile_digest: Some(compiled.clusterfile_digest.clone()),
        images: compiled.images.digests(),
        targets: options.targets.clone(),
        replace: options.replace.clone(),
    })
}

/// Reads a saved plan for `sealer show`.
pub fn show_plan(path: &Path) -> Result<SavedPlan> {
    SavedPlan::read(path)
}
