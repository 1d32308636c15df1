//! `sealer run APP_IMAGE`: installs an app image's apps on a cluster the state knows. Hosts
//! and the plan's context come from the state; the apps are built by the app kind, as the
//! Clusterfile's are, and follow every recorded app.

use super::Settings;
use super::apply::Prepared;
use crate::diag::{Error, Result};
use crate::exec::runner::RootfsSource;
use crate::graph::input::{AppInput, Launch};
use crate::image::{Image, Platform, Reference};
use crate::kinds::{app, kubernetes_init};
use crate::plan::context::Context;
use crate::plan::{PlanOptions, diff};
use crate::resource::{Desired, ResourceType};
use crate::state::{ClusterState, StateStore};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

/// Plans the apps of `image` on `cluster` (the only one, when not named).
pub async fn prepare_run<F, Fut>(
    settings: &Settings,
    image: &str,
    cluster: Option<&str>,
    pull: F,
) -> Result<Prepared>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let state = cluster_state(settings, cluster)?;
    let init = state
        .resources
        .get(kubernetes_init::ADDRESS)
        .ok_or_else(|| {
            Error::msg(format!("cluster \"{}\" has no Kubernetes yet", state.name))
                .hint("apply the cluster's Clusterfile first: `sealer apply -f Clusterfile`")
        })?;
    let init: kubernetes_init::InitAttrs =
        crate::kinds::from_attributes(&init.address, &init.attributes).map_err(Error::msg)?;
    let reference = Reference::parse(image)?;
    let store = settings.store()?;
    let image = match store.find(&reference.to_string())? {
        Some((_, image)) => image,
        None => pull(reference.clone(), Platform::host()).await?,
    };
    let apps = apps_of(&reference, &image, &init.kube_version)?;
    let context = Context::of_state(&state.resources);
    if context.data_dir.is_empty() {
        return Err(Error::msg(format!(
            "cluster \"{}\" records no rootfs: its apply did not finish",
            state.name
        ))
        .hint("apply the cluster's Clusterfile first"));
    }
    let hex = image.digest().trim_start_matches("sha256:");
    let root = format!("{}/run/{}", context.data_dir, &hex[..hex.len().min(12)]);
    let desired = desired_with(&state, &apps, &root, &init.master0)?;
    let current = crate::plan::Current {
        lineage: &state.lineage,
        serial: state.serial,
        resources: &state.resources,
    };
    let mut plan = diff(
        &state.name,
        &desired,
        Some(current),
        &PlanOptions::default(),
    )?;
    plan.context = context;
    let tree = crate::rootfs::extract(&store, &image, settings.max_unpacked)?;
    let manifest = crate::rootfs::Manifest::scan(&tree)?;
    let source = RootfsSource {
        root: tree,
        entries: manifest.sync_entries(),
    };
    Ok(Prepared {
        plan,
        compiled: None,
        run_trees: HashMap::from([(root, source)]),
        run_image: Some(reference.to_string()),
        pool: None,
    })
}

/// The state of the cluster `sealer run` installs on.
fn cluster_state(settings: &Settings, cluster: Option<&str>) -> Result<ClusterState> {
    // `sealer run` installs apps on a cluster sealer applied.
    let store = StateStore::open_existing(&settings.state_path)?
        .ok_or_else(|| super::state::no_state(&settings.state_path))?;
    let state = match cluster {
        Some(name) => store.cluster(name)?,
        None => match store.clusters()?.as_slice() {
            [one] => store.cluster(&one.name)?,
            [] => None,
            many => {
                return Err(
                    Error::msg(format!("the state holds {} clusters", many.len()))
                        .hint("choose one with --cluster NAME"),
                );
            }
        },
    };
    state.ok_or_else(|| {
        Error::msg("no such cluster in the state").hint("`sealer state list` shows the clusters")
    })
}

/// The apps an image launches, checked against the cluster's Kubernetes version.
fn apps_of(reference: &Reference, image: &Image, kube_version: &str) -> Result<Vec<AppInput>> {
    let meta = image
        .metadata
        .as_ref()
        .ok_or_else(|| {
            Error::msg(format!("{reference} is not a Sealer Image"))
                .hint("`sealer run` takes an app image built by `sealer build` (its Kubefile has APP or CMDS)")
        })?;
    if !kube_version.is_empty() {
        crate::graph::launch::check_kube_version(
            &reference.to_string(),
            &image.config.config.labels,
            kube_version,
        )
        .map_err(|e| {
            Error::msg(e).hint(
                "use an app image built for this Kubernetes version, or change its KUBEVERSION",
            )
        })?;
    }
    let launch_image = crate::graph::launch::LaunchImage {
        name: reference.to_string(),
        digest: image.digest().to_string(),
        metadata: meta,
        labels: &image.config.config.labels,
        files: None,
    };
    let launch = crate::graph::launch::resolve_launch(
        &crate::graph::launch::LaunchRequest::default(),
        &[launch_image],
        // Apps of `run` record no env digest and have no Config data over their files.
        &crate::clusterfile::DigestKey::legacy(),
    )
    .map_err(|errors| {
        Error::many(
            errors
                .iter()
                .map(|e| crate::diag::Diagnostic::error(e.message()))
                .collect(),
        )
    })?;
    let apps = match launch {
        Launch::Apps(apps) => apps,
        Launch::Raw(cmds) if cmds.is_empty() => Vec::new(),
        Launch::Raw(cmds) => vec![AppInput {
            name: app::RAW_LAUNCH.into(),
            image: format!("{reference}@{}", image.digest()),
            kind: "raw".into(),
            cmds,
            files: BTreeMap::new(),
            env_digest: String::new(),
            overrides: BTreeMap::new(),
            env: BTreeMap::new(),
            texts: BTreeMap::new(),
        }],
    };
    if apps.is_empty() {
        return Err(
            Error::msg(format!("{reference} launches nothing (no LAUNCH, no CMDS)"))
                .hint("give its Kubefile a LAUNCH of its apps (or CMDS) and build it again"),
        );
    }
    Ok(apps)
}

/// The cluster as recorded, with `apps` (unpacked at `root`) after every recorded app.
fn desired_with(
    state: &ClusterState,
    apps: &[AppInput],
    root: &str,
    master0: &str,
) -> Result<Vec<Desired>> {
    // Recorded resources stay as they are.
    let mut desired: Vec<Desired> = state
        .resources
        .values()
        .map(|r| Desired {
            address: r.address.clone(),
            resource_type: r.resource_type,
            host: r.host.clone(),
            attributes: r.attributes.clone(),
            sensitive: r.sensitive.clone(),
            computed: Default::default(),
            replace_on: Default::default(),
            depends_on: r.depends_on.clone(),
        })
        .collect();
    let mut previous: Vec<String> = state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::App)
        .map(|r| r.address.clone())
        .collect();
    previous.push(kubernetes_init::ADDRESS.to_string());
    for input in apps {
        let address = format!("app.{}", input.name);
        if state
            .resources
            .get(&address)
            .is_some_and(|r| !app::installed_by_run(&r.attributes))
        {
            return Err(Error::msg(format!(
                "app {} is already installed on cluster \"{}\" by its Clusterfile",
                input.name, state.name
            ))
            .hint("the Clusterfile owns it: change it there and `sealer apply -f Clusterfile`"));
        }
        desired.retain(|d| d.address != address);
        let attrs = app::AppAttrs::installed_by_run(input, root);
        desired.push(app::desired(&input.name, &attrs, master0, previous.clone()));
        previous = vec![address];
    }
    Ok(desired)
}
