//! Plans: `sealer validate`, `plan`, `show`, `graph`.

use super::Settings;
use crate::clusterfile::{self, Clusterfile, DigestKey};
use crate::diag::{Diagnostic, Error, Result};
use crate::graph::resolve::{Images, resolve};
use crate::graph::{self, ClusterInput};
use crate::image::{Image, Platform, Reference};
use crate::plan::context::Context;
use crate::plan::rekey::Rekey;
use crate::plan::saved::SavedPlan;
use crate::plan::{Current, Plan, PlanOptions, diff};
use crate::resource::Desired;
use crate::state::{ClusterState, StateStore};
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
    /// The key its digests were made with (the state's; `DigestKey`).
    pub key: DigestKey,
}

/// Loads the Clusterfile, fetches its images (store first, else `pull`), checks them and
/// compiles the resource graph with digests keyed by `key`. Everything `sealer validate`
/// checks; no host is contacted.
pub async fn compile<F, Fut>(
    settings: &Settings,
    path: &Path,
    key: &DigestKey,
    pull: F,
) -> Result<Compiled>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let (cf, clusterfile_digest) = clusterfile::validate_file(path)?;
    let store = settings.store()?;
    let fetch = async |reference: &Reference, span| -> Result<(Reference, Image)> {
        if let Some(found) = store.find(&reference.to_string())? {
            return Ok(found);
        }
        let image = pull(reference.clone(), Platform::host())
            .await
            .map_err(|e| {
                let message = e
                    .diagnostics()
                    .first()
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                let mut diagnostic = crate::diag::Diagnostic::error(format!(
                    "image {reference} is not in the local store and cannot be pulled: {message}"
                ))
                .at(cf.location(span));
                // A near local name is the likelier cause; else what the pull knew to
                // advise (`sealer login` after a 401, the registry it could not reach).
                diagnostic.hints = match store.nearest_name(reference) {
                    Some(near) => vec![format!("did you mean {near} (in the local store)?")],
                    None => e.hints(),
                };
                Error::from(
                    diagnostic
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
    let mut app_files = std::collections::BTreeMap::new();
    for (_, image) in std::iter::once(&cluster).chain(&apps) {
        if let Some(files) = shipped_app_files(settings, &store, image)? {
            app_files.insert(image.digest().to_string(), files);
        }
    }
    let cluster_shipped = shipped_by_rootfs(settings, &store, (&cluster.0, &cluster.1))?;
    let images = Images {
        cluster,
        apps,
        app_files,
        cluster_shipped,
    };
    let input = resolve(&cf, &images, key)?;
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
        return Err(
            Error::msg(format!("dependency cycle between {}", text.join("; "))).hint(
                "check the Clusterfile's Plugin phases and the order of the apps it launches",
            ),
        );
    }
    Ok(Compiled {
        clusterfile: cf,
        clusterfile_digest,
        images,
        input,
        resources,
        key: key.clone(),
    })
}

/// How the digests an older sealer recorded read with `compiled`'s key
/// ([`Rekey`]): the same configuration compiled again with plain digests.
pub fn legacy_rekey(compiled: &Compiled) -> Result<Rekey> {
    let legacy = resolve(
        &compiled.clusterfile,
        &compiled.images,
        &DigestKey::legacy(),
    )?;
    Ok(Rekey::new(
        &graph::compile(&legacy),
        &compiled.resources,
        &compiled.key,
    ))
}

/// The files of an image's apps as it ships them, from its unpacked tree (unpacked once into
/// the cache, which apply uses too); `None` for an image without apps.
fn shipped_app_files(
    settings: &Settings,
    store: &crate::image::Store,
    image: &Image,
) -> Result<Option<crate::rootfs::app_files::AppFiles>> {
    let Some(meta) = image.metadata.as_ref().filter(|m| !m.apps.is_empty()) else {
        return Ok(None);
    };
    let tree = crate::rootfs::extract(store, image, settings.max_unpacked)?;
    let names = meta.apps.iter().map(|a| a.name.as_str());
    crate::rootfs::app_files::app_files(&tree, names).map(Some)
}

/// The kubeadm defaults and plugins of an image whose metadata does not record them (no
/// `io.sealer.rs/metadata` annotation: an image Go Sealer built), read from its unpacked
/// tree; `None` when the metadata has them, or the image is not a Sealer Image.
pub(super) fn shipped_by_rootfs(
    settings: &Settings,
    store: &crate::image::Store,
    (reference, image): (&Reference, &Image),
) -> Result<Option<crate::rootfs::shipped::Shipped>> {
    if image.metadata.is_none()
        || image
            .manifest
            .annotations
            .contains_key(crate::image::metadata::OWN_ANNOTATION)
    {
        return Ok(None);
    }
    let tree = crate::rootfs::extract(store, image, settings.max_unpacked)?;
    crate::rootfs::shipped::read(&tree)
        .map(Some)
        .map_err(|e| e.context(format!("image {reference}")))
}

/// A plan and what it was made from.
#[derive(Debug)]
pub struct PlanOutcome {
    pub saved: SavedPlan,
    /// What the plan was made from (apply needs it to run the steps).
    pub compiled: Compiled,
    /// The operation running on the cluster while the plan was made, if any: the resources
    /// it is changing are in progress, not failed.
    pub running: Option<crate::state::LockInfo>,
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
    plan_refreshed(settings, path, options, None, pull)
        .await
        .map(|(outcome, _)| outcome)
}

/// `sealer plan --refresh`: the plan made after reading every recorded resource back from
/// its hosts (with `exec`; [`read_back`](super::read_back)), so that what drifted is
/// repaired. Without `exec`, the offline plan. Refused when a read failed.
pub async fn plan_refreshed<F, Fut>(
    settings: &Settings,
    path: &Path,
    options: &PlanOptions,
    refresh: Option<&super::ExecSettings>,
    pull: F,
) -> Result<(PlanOutcome, Option<super::Refresh>)>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    // Plans never write a cluster's state; the first one makes the (empty) state database,
    // which holds the key of its digests.
    let store = StateStore::open_or_create(&settings.state_path)?;
    let compiled = compile(settings, path, &store.digest_key()?, pull).await?;
    let name = compiled.clusterfile.name().to_string();
    let (mut state, running) = (store.cluster(&name)?, store.running(&name)?);
    let mut read = None;
    if let Some(exec) = refresh {
        let recorded = super::refresh::recorded(state, &name)?;
        let found = super::read_back(settings, &compiled, &recorded, exec).await?;
        found.complete()?;
        state = Some(super::with_drift(&recorded, &found.drift_marks()));
        read = Some(found);
    }
    let mut saved = derive(&compiled, path, state.as_ref(), options)?;
    if let Some(running) = &running {
        // Recorded tainted as they started: what looks like a failure is the work of the
        // operation running now.
        for change in &mut saved.plan.changes {
            if change.reason_code == crate::plan::ReasonCode::ReplaceBecauseTainted {
                change.reason = format!(
                    "in progress: the {} running now (pid {} on host {}) is making it",
                    running.operation, running.pid, running.host
                );
            }
        }
    }
    Ok((
        PlanOutcome {
            saved,
            compiled,
            running,
        },
        read,
    ))
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
    if let Some(state) = state
        && !options.destroy
    {
        master0_kept(compiled, state)?;
    }
    // A state of an older sealer reads in keyed digests (`plan::rekey`).
    let rekeyed = match state {
        Some(s) if !s.digests_keyed => {
            let rekey = legacy_rekey(compiled)?;
            let mut resources = s.resources.clone();
            for r in resources.values_mut() {
                rekey.apply(r);
            }
            Some(resources)
        }
        _ => None,
    };
    let current = state.map(|s| Current {
        lineage: &s.lineage,
        serial: s.serial,
        resources: rekeyed.as_ref().unwrap_or(&s.resources),
    });
    let mut plan = diff(name, &compiled.resources, current, options)?;
    plan.context = Context::of_input(&compiled.input);
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
    })
}

/// master0 (the first host with the role master, where `kubeadm init` ran) holds the
/// cluster's certificates: it cannot change. The plan refuses that too, but knows no lines:
/// here the error points at the Clusterfile's hosts.
fn master0_kept(compiled: &Compiled, state: &ClusterState) -> Result<()> {
    let master0 = |attributes: &crate::resource::Attributes| {
        attributes
            .get("master0")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let init = crate::kinds::kubernetes_init::ADDRESS;
    let Some(was) = state
        .resources
        .get(init)
        .and_then(|r| master0(&r.attributes))
    else {
        return Ok(());
    };
    let now = compiled
        .resources
        .iter()
        .find(|d| d.address == init)
        .and_then(|d| master0(&d.attributes));
    let Some(now) = now.filter(|now| *now != was) else {
        return Ok(());
    };
    let cf = &compiled.clusterfile;
    let ip_span = |ip: &str| {
        cf.cluster
            .hosts
            .iter()
            .flat_map(|g| &g.ips)
            .find(|i| i.value.to_string() == ip)
            .map(|i| i.span)
    };
    let kept = ip_span(&was).is_some();
    let span = ip_span(&now).unwrap_or(cf.cluster.hosts_span);
    let mut diagnostic = Diagnostic::error(format!(
        "master0 cannot change: the cluster was initialised on {was}, but the first master is \
         now {now}"
    ))
    .at(cf.location(span))
    .hint(format!(
        "{was} holds the cluster's certificates (kubeadm init ran there): master0 is the first \
         host with the role master"
    ));
    diagnostic = if kept {
        diagnostic.hint(format!(
            "list {was} first among the masters; other masters may come and go after it"
        ))
    } else {
        diagnostic.hint(format!(
            "put {was} back as the first master; to start over on other hosts, `sealer destroy` \
             the cluster first"
        ))
    };
    Err(diagnostic.into())
}

/// Reads a saved plan for `sealer show`.
pub fn show_plan(path: &Path) -> Result<SavedPlan> {
    SavedPlan::read(path)
}
