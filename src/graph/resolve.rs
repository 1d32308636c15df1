//! Clusterfile + image metadata → [`ClusterInput`]: defaults, merged env, launch plan,
//! KUBEVERSION checks. Errors point into the Clusterfile.

use super::input::{ClusterInput, HostInput, ImagePolicyInput, PluginInput, RegistryInput};
use super::launch::{
    FileOverride, LaunchError, LaunchImage, LaunchRequest, check_kube_version, resolve_launch,
};
use crate::clusterfile::env::{Env, EnvValue};
use crate::clusterfile::registry::RegistryKind;
use crate::clusterfile::{Clusterfile, DigestKey, Span};
use crate::diag::{Diagnostic, Error, Result};
use crate::image::{Image, ImageType, Reference};
use crate::rootfs::app_files::AppFiles;
use crate::rootfs::shipped::Shipped;
use std::collections::BTreeMap;

pub const RUNTIME_TYPE_LABEL: &str = "cluster.alpha.sealer.io/cluster-runtime-type";
/// The cluster runtime sealer installs: Kubernetes with kubeadm. An image without the label
/// (or with an empty value) is one too, as Sealer reads it.
pub const SUPPORTED_RUNTIME_TYPE: &str = "kubernetes";
pub const RUNTIME_VERSION_LABEL: &str = "cluster.alpha.sealer.io/cluster-runtime-version";
pub const CONTAINER_RUNTIME_LABEL: &str = "cluster.alpha.sealer.io/container-runtime-type";
pub const CONTAINER_RUNTIME_VERSION_LABEL: &str =
    "cluster.alpha.sealer.io/container-runtime-version";
pub const IMAGE_POLICY_LABEL: &str = "cluster.alpha.sealer.io/image-policy";
const DEFAULT_VIP: &str = "10.103.97.2";

/// The images of a Clusterfile, fetched: the cluster image and the Application's, in order.
#[derive(Debug, Clone)]
pub struct Images {
    pub cluster: (Reference, Image),
    pub apps: Vec<(Reference, Image)>,
    /// Image digest → its apps' files as shipped (read from the unpacked trees), so the
    /// plan shows what app files become; an image missing here shows digests only.
    pub app_files: BTreeMap<String, AppFiles>,
    /// The cluster image's `etc/kubeadm.yml` and `plugins/*.yaml`, read from its unpacked
    /// tree when its metadata does not record them (images Go Sealer built); `None` means the
    /// metadata's copies are used.
    pub cluster_shipped: Option<Shipped>,
}

impl Images {
    /// Name → manifest digest of every image, for saved plans.
    pub fn digests(&self) -> BTreeMap<String, String> {
        std::iter::once(&self.cluster)
            .chain(&self.apps)
            .map(|(r, i)| (r.to_string(), i.digest().to_string()))
            .collect()
    }
}

fn env_json(env: &Env) -> String {
    let map: BTreeMap<&String, String> = env.iter().map(|(k, v)| (k, v.to_string())).collect();
    serde_json::to_string(&map).unwrap_or_default()
}

fn env_from_image(map: &BTreeMap<String, String>) -> Env {
    let mut env = Env::new();
    for (k, v) in map {
        env.insert(k.clone(), EnvValue::parse(v));
    }
    env
}

pub fn resolve(cf: &Clusterfile, images: &Images, key: &DigestKey) -> Result<ClusterInput> {
    let mut errors: Vec<Diagnostic> = Vec::new();
    let at = |span: Span, message: String| Diagnostic::error(message).at(cf.location(span));
    let (cluster_ref, cluster_image) = &images.cluster;
    let image_span = cf.cluster.image.span;
    let Some(meta) = cluster_image.metadata.as_ref() else {
        return Err(at(
            image_span,
            format!("{cluster_ref} is not a Sealer Image (no sealer.image.extension annotation)"),
        )
        .hint("spec.image needs a cluster image built by `sealer build` (or Go Sealer), not a container image")
        .into());
    };
    if meta.image_type != ImageType::KubeInstaller {
        errors.push(
            at(
                image_span,
                format!("{cluster_ref} is an app image: spec.image needs a cluster image"),
            )
            .hint("list app images in an Application's spec.images"),
        );
    }
    let labels = &cluster_image.config.config.labels;
    if let Some(kind) = labels
        .get(RUNTIME_TYPE_LABEL)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && *v != SUPPORTED_RUNTIME_TYPE)
    {
        errors.push(
            at(
                image_span,
                format!(
                    "{cluster_ref} installs a {kind:?} cluster (label {RUNTIME_TYPE_LABEL}), which sealer cannot install: the only supported cluster runtime is {SUPPORTED_RUNTIME_TYPE:?} (kubeadm)"
                ),
            )
            .hint(format!(
                "use a Kubernetes cluster image (label {RUNTIME_TYPE_LABEL}={SUPPORTED_RUNTIME_TYPE}, or none)"
            )),
        );
    }
    let kube_version = labels
        .get(RUNTIME_VERSION_LABEL)
        .cloned()
        .unwrap_or_default();
    if let Err(e) = check_kube_version(&cluster_ref.to_string(), labels, &kube_version)
        && !kube_version.is_empty()
    {
        errors.push(at(image_span, e));
    }
    if kube_version.trim().is_empty() && meta.image_type == ImageType::KubeInstaller {
        // kubeadm is told the version (kubernetesVersion): without it nothing can install.
        errors.push(
            at(
                image_span,
                format!(
                    "{cluster_ref} does not say which Kubernetes it installs (no label {RUNTIME_VERSION_LABEL}): spec.image needs a cluster image"
                ),
            )
            .hint("build the cluster image FROM a Kubernetes cluster image (e.g. FROM my-kubernetes:v1.26.15)")
            .hint("an image of apps only is an app image (`sealer build --type app-installer`): list it in an Application's spec.images"),
        );
    }
    let runtime_type = cf
        .container_runtime()
        .map(str::to_string)
        .or_else(|| labels.get(CONTAINER_RUNTIME_LABEL).cloned())
        .unwrap_or_else(|| "docker".to_string());
    let runtime_version = labels
        .get(CONTAINER_RUNTIME_VERSION_LABEL)
        .cloned()
        .unwrap_or_default();

    let mut launch_images = vec![LaunchImage {
        name: cluster_ref.to_string(),
        digest: cluster_image.digest().to_string(),
        metadata: meta,
        labels,
        files: images.app_files.get(cluster_image.digest()),
    }];
    let app_spans: Vec<Span> = cf
        .application
        .as_ref()
        .map(|a| a.images.iter().map(|i| i.span).collect())
        .unwrap_or_default();
    for (i, (reference, image)) in images.apps.iter().enumerate() {
        let span = app_spans.get(i).copied().unwrap_or(image_span);
        let Some(app_meta) = image.metadata.as_ref() else {
            errors.push(
                at(span, format!("{reference} is not a Sealer Image"))
                    .hint("an Application's spec.images lists app images built by `sealer build --type app-installer`"),
            );
            continue;
        };
        let app_labels = &image.config.config.labels;
        if kube_version.is_empty() {
            // Refused above, at spec.image.
        } else if let Err(e) = check_kube_version(&reference.to_string(), app_labels, &kube_version)
        {
            errors.push(at(span, e).hint(
                "use an app image built for this Kubernetes version, or change its KUBEVERSION",
            ));
        }
        launch_images.push(LaunchImage {
            name: reference.to_string(),
            digest: image.digest().to_string(),
            metadata: app_meta,
            labels: app_labels,
            files: images.app_files.get(image.digest()),
        });
    }

    // Env: image < cluster < host, plus derived keys; digested per host.
    let image_env = env_from_image(&meta.env);
    let mut cluster_env = image_env.clone();
    cluster_env.merge(&cf.env());
    let hosts = cf.hosts();
    let mut host_inputs = Vec::new();
    for host in &hosts {
        let env = match cf.host_env(host, &image_env, Some(&runtime_type)) {
            Ok(env) => env,
            Err(e) => {
                errors.extend(
                    e.diagnostics()
                        .iter()
                        .map(|d| d.clone().at(cf.location(host.span))),
                );
                continue;
            }
        };
        host_inputs.push(HostInput {
            ip: host.ip.to_string(),
            roles: host.roles.clone(),
            ssh_user: host.ssh.user.clone(),
            ssh_port: host.ssh.port,
            local: host.transport == crate::clusterfile::Transport::Local,
            // As anchored at load, `~` unexpanded: the plan is the same under any HOME.
            sandbox: host.ssh.sandbox.clone(),
            password_digest: host.ssh.password.as_ref().map(|s| s.digest(key)),
            key_file: host.ssh.pk.clone(),
            key_passphrase_digest: host.ssh.pk_passwd.as_ref().map(|s| s.digest(key)),
            env_digest: key.digest(env_json(&env).as_bytes()),
            env: super::explain::env_digests(key, &env),
            labels: host.labels.clone(),
            taints: host.taints.iter().map(|t| t.to_string()).collect(),
        });
    }
    let first_env = hosts
        .first()
        .and_then(|h| cf.host_env(h, &image_env, Some(&runtime_type)).ok())
        .unwrap_or_default();
    let scalar = |key: &str, default: &str| {
        first_env
            .get(key)
            .map_or(default.to_string(), |v| v.to_string())
    };

    let registry = cf.registry();
    let password_digest = registry.password.as_ref().map(|s| s.digest(key));
    let registry_input = match &registry.kind {
        RegistryKind::Local {
            ha,
            cert_dns_names,
            cert_ips,
            ..
        } => RegistryInput::Local {
            domain: registry.domain.clone(),
            port: registry
                .port
                .unwrap_or(crate::clusterfile::registry::DEFAULT_LOCAL_PORT),
            ha: *ha,
            username: registry.username.clone(),
            password_digest,
            sans: cert_dns_names
                .iter()
                .cloned()
                .chain(cert_ips.iter().map(|ip| ip.to_string()))
                .collect(),
        },
        RegistryKind::External => RegistryInput::External {
            domain: registry.domain.clone(),
            port: registry.port,
            username: registry.username.clone(),
            password_digest,
        },
    };

    let host_aliases: Vec<String> = cf
        .cluster
        .host_aliases
        .iter()
        .map(|a| {
            let names: Vec<&str> = a.hostnames.iter().map(|h| h.value.as_str()).collect();
            format!("{} {}", a.ip.value, names.join(" "))
        })
        .collect();

    // Everything written into the rootfs before it is copied: Config documents and
    // Application files.
    let mut rootfs_inputs = String::new();
    let mut explained: BTreeMap<String, String> = BTreeMap::new();
    for c in &cf.configs {
        let process: Vec<&str> = c.process.iter().map(|p| p.value.as_str()).collect();
        rootfs_inputs.push_str(&format!(
            "config {} {} {:?} {} {}\n{}\n",
            c.name.value,
            c.path.value,
            c.app_name.as_ref().map(|a| a.value.as_str()),
            c.strategy.value.as_str(),
            process.join("|"),
            c.data.value
        ));
        let secret = c
            .process
            .iter()
            .any(|p| p.value == crate::clusterfile::ProcessStep::ToSecret);
        let target = match &c.app_name {
            Some(app) => format!("app {} file {}", app.value, c.path.value),
            None => c.path.value.clone(),
        };
        let mut how = format!("# {target} ({})", c.strategy.value.as_str());
        if !process.is_empty() {
            how.push_str(&format!(", process {}", process.join("|")));
        }
        explained.insert(
            format!("Config {}", c.name.value),
            format!(
                "{how}\n{}",
                super::explain::explained_text(&c.data.value, secret)
            ),
        );
    }

    // Launch.
    let mut request = LaunchRequest {
        cluster_cmd: cf
            .cluster
            .cmd
            .iter()
            .flatten()
            .map(|c| c.value.clone())
            .collect(),
        app_names: cf
            .app_names()
            .map(|names| names.into_iter().map(str::to_string).collect()),
        env_digest: key.digest(env_json(&cluster_env).as_bytes()),
        env: super::explain::env_digests(key, &cluster_env),
        ..LaunchRequest::default()
    };
    if let Some(app) = &cf.application {
        request.application_cmds = app.cmds.iter().flatten().map(|c| c.value.clone()).collect();
        request.launch_apps = app
            .launch_apps
            .as_ref()
            .map(|l| l.iter().map(|n| n.value.clone()).collect());
        for config in &app.configs {
            if let Some(cmds) = &config.launch_cmds {
                request.app_cmds.insert(
                    config.name.value.clone(),
                    cmds.iter().map(|c| c.value.clone()).collect(),
                );
            }
            let files: Vec<FileOverride> = config
                .files
                .iter()
                .map(|f| FileOverride {
                    path: f.path.value.clone(),
                    strategy: f.strategy.value,
                    data: f.data.value.clone(),
                    steps: Vec::new(),
                    name: config.name.value.clone(),
                    source: format!("Application config {}", config.name.value),
                    from_config: false,
                    secret: false,
                })
                .collect();
            for f in &files {
                rootfs_inputs.push_str(&format!(
                    "file {} {} {}\n{}\n",
                    config.name.value,
                    f.path,
                    f.strategy.as_str(),
                    f.data
                ));
                explained.insert(
                    format!("Application config {} file {}", config.name.value, f.path),
                    format!(
                        "# ({})\n{}",
                        f.strategy.as_str(),
                        super::explain::mask_secrets(&f.data)
                    ),
                );
            }
            if !files.is_empty() {
                request.app_files.insert(config.name.value.clone(), files);
            }
        }
    }
    // Config documents with an appName change that app's files too.
    for c in &cf.configs {
        if let Some(app) = &c.app_name {
            request
                .app_files
                .entry(app.value.clone())
                .or_default()
                .push(FileOverride {
                    path: c.path.value.clone(),
                    strategy: c.strategy.value,
                    data: c.data.value.clone(),
                    steps: c.process.iter().map(|p| p.value).collect(),
                    name: c.name.value.clone(),
                    source: format!("Config {}", c.name.value),
                    from_config: true,
                    secret: c
                        .process
                        .iter()
                        .any(|p| p.value == crate::clusterfile::ProcessStep::ToSecret),
                });
        }
    }
    let launch = match resolve_launch(&request, &launch_images, key) {
        Ok(launch) => Some(launch),
        Err(launch_errors) => {
            for e in launch_errors {
                let span = match &e {
                    LaunchError::UnknownApp { name, .. } => {
                        app_name_span(cf, name).unwrap_or(cf.cluster.span)
                    }
                    LaunchError::DuplicateApp { .. } => {
                        app_spans.first().copied().unwrap_or(image_span)
                    }
                    LaunchError::NoCommand { .. } => image_span,
                };
                errors.push(at(span, e.message()));
            }
            None
        }
    };

    // Plugins: the image's plugins/*.yaml, then the Clusterfile's (which win by name).
    let to_input = |p: &crate::clusterfile::Plugin| PluginInput {
        name: p.name.value.clone(),
        phases: p
            .actions
            .iter()
            .map(|a| a.value.as_str().to_string())
            .collect(),
        scope: p.scope.iter().map(|s| s.value.clone()).collect(),
        data: p.data.value.clone(),
    };
    let (image_kubeadm, image_plugins) = match &images.cluster_shipped {
        Some(shipped) => (shipped.kubeadm.as_deref(), &shipped.plugins),
        None => (meta.kubeadm_config.as_deref(), &meta.plugins),
    };
    let mut by_name: BTreeMap<String, PluginInput> = BTreeMap::new();
    for (file, text) in image_plugins {
        let shown = std::path::PathBuf::from(format!("{cluster_ref}:plugins/{file}"));
        match crate::clusterfile::parse_plugins(&shown, text) {
            Ok(plugins) => {
                for p in &plugins {
                    by_name.insert(p.name.value.clone(), to_input(p));
                }
            }
            Err(e) => errors.extend(e.diagnostics().iter().cloned()),
        }
    }
    for p in &cf.plugins {
        by_name.insert(p.name.value.clone(), to_input(p));
    }
    let plugins: Vec<PluginInput> = by_name.into_values().collect();

    let policy_enabled = cf.image_policy().is_some()
        || labels
            .get(IMAGE_POLICY_LABEL)
            .is_some_and(|v| v == "kyverno");
    let image_policy = if policy_enabled {
        let app = cf.image_policy_app().to_string();
        let launched = matches!(&launch, Some(super::input::Launch::Apps(apps)) if apps.iter().any(|a| a.name == app));
        if launch.is_some() && !launched {
            let span = cf
                .cluster
                .registry
                .image_policy
                .as_ref()
                .map_or(cf.cluster.span, |p| p.span);
            errors.push(
                at(span, format!("the image policy needs app {app} (Kyverno) in the launch list"))
                    .hint("launch the Kyverno app, or set spec.registry.imagePolicyApp to the app that installs it"),
            );
        }
        let exclude: Vec<String> = cf
            .image_policy_exclude()
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        let registry_url = registry.url();
        Some(ImagePolicyInput {
            policy_yaml: super::policy::kyverno_policy(&registry_url, &exclude),
            app,
            registry_url,
            exclude,
        })
    } else {
        None
    };

    if !errors.is_empty() {
        return Err(Error::many(errors));
    }
    let cert_sans: Vec<String> = first_env
        .get("CertSANs")
        .map(|v| {
            v.items()
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let svc_cidr = scalar("SvcCIDR", crate::clusterfile::env::DEFAULT_SVC_CIDR);
    let pod_cidr = scalar("PodCIDR", crate::clusterfile::env::DEFAULT_POD_CIDR);
    let vip = scalar("IPvsVIPv4", DEFAULT_VIP);
    let master0 = host_inputs
        .iter()
        .find(|h| h.is_master())
        .map(|h| h.ip.clone())
        .unwrap_or_default();
    let documents: Vec<serde_json::Value> = cf
        .kubeadm
        .iter()
        .map(|d| serde_json::Value::Object(d.value.clone()))
        .collect();
    let forced = super::kubeadm::Forced {
        kube_version: kube_version.clone(),
        master0,
        vip: vip.clone(),
        pod_cidr: pod_cidr.clone(),
        svc_cidr: svc_cidr.clone(),
        cert_sans: cert_sans.clone(),
    };
    let kubeadm_config = super::kubeadm::config(image_kubeadm, &documents, &forced)
        .map_err(|e| e.context(format!("{cluster_ref}")))?;
    Ok(ClusterInput {
        name: cf.name().to_string(),
        rootfs_path: format!(
            "{}/{}/rootfs",
            cf.data_root().trim_end_matches('/'),
            cf.name()
        ),
        hosts: host_inputs,
        image: cluster_ref.to_string(),
        image_digest: cluster_image.digest().to_string(),
        kube_version,
        runtime_type,
        runtime_version,
        registry: registry_input,
        host_aliases,
        kubeadm_config,
        cert_sans,
        svc_cidr,
        pod_cidr,
        vip,
        rootfs_inputs_digest: key.digest(rootfs_inputs.as_bytes()),
        rootfs_inputs: explained,
        launch: launch.unwrap_or(super::input::Launch::Raw(Vec::new())),
        plugins,
        image_policy,
    })
}

/// Where an app name was written: appNames, launchApps, or an Application config.
fn app_name_span(cf: &Clusterfile, name: &str) -> Option<Span> {
    if let Some(names) = &cf.cluster.app_names
        && let Some(n) = names.value.iter().find(|n| n.value.trim() == name)
    {
        return Some(n.span);
    }
    let app = cf.application.as_ref()?;
    if let Some(n) = app
        .launch_apps
        .iter()
        .flatten()
        .find(|n| n.value.trim() == name)
    {
        return Some(n.span);
    }
    if let Some(c) = app.configs.iter().find(|c| c.name.value == name) {
        return Some(c.name.span);
    }
    cf.configs
        .iter()
        .filter_map(|c| c.app_name.as_ref())
        .find(|a| a.value == name)
        .map(|a| a.span)
}
