//! What runs once the cluster is up: launch precedence (spec `clusterfile.md`), app name
//! uniqueness across images, KUBEVERSION checks. Pure functions of the Clusterfile's launch
//! fields and the images' metadata; errors say which name or image is wrong so the caller
//! can point at it in the Clusterfile.

use super::input::{AppInput, Launch};
use crate::clusterfile::{DigestKey, ProcessStep, Strategy};
use crate::image::build::recipe::KUBE_VERSION_LABEL;
use crate::image::layout::sha256_digest;
use crate::image::{ImageMetadata, ImageType};
use crate::kubeversion::{Constraint, Version};
use crate::rootfs::app_files::AppFiles;
use std::collections::BTreeMap;

/// One image of the cluster (the cluster image first, then Application `spec.images`).
#[derive(Debug, Clone)]
pub struct LaunchImage<'a> {
    pub name: String,
    pub digest: String,
    pub metadata: &'a ImageMetadata,
    pub labels: &'a BTreeMap<String, String>,
    /// Its apps' files as shipped, when its tree was read (plans show what they become).
    pub files: Option<&'a AppFiles>,
}

/// An Application `files` entry: written over an app file before the rootfs is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOverride {
    pub path: String,
    pub strategy: Strategy,
    pub data: String,
    /// The Config's `process` steps (none for Application files).
    pub steps: Vec<ProcessStep>,
    /// The Config's name (a new Secret is named after it), or the app's.
    pub name: String,
    /// Where it comes from, for people: `Config NAME` or `Application config APP`.
    pub source: String,
    /// A Config document (written before the Application files, as the render does).
    pub from_config: bool,
    /// Processed `toSecret`: shown as a line count only.
    pub secret: bool,
}

/// The launch fields of a Clusterfile.
#[derive(Debug, Clone, Default)]
pub struct LaunchRequest {
    /// Cluster `spec.cmd`.
    pub cluster_cmd: Vec<String>,
    /// Application `spec.cmds`.
    pub application_cmds: Vec<String>,
    /// Cluster `spec.appNames` (`Some(empty)` = launch nothing).
    pub app_names: Option<Vec<String>>,
    /// Application `spec.launchApps`.
    pub launch_apps: Option<Vec<String>>,
    /// Application `configs[].launch.cmds`, by app.
    pub app_cmds: BTreeMap<String, Vec<String>>,
    /// Application `configs[].files`, by app.
    pub app_files: BTreeMap<String, Vec<FileOverride>>,
    /// Env digest applied to every app (cluster env).
    pub env_digest: String,
    /// The cluster env as a short digest per key (`graph::explain`).
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// A name in appNames/launchApps/configs that no image has.
    UnknownApp { name: String, known: Vec<String> },
    /// Two images define the same app.
    DuplicateApp {
        name: String,
        first: String,
        second: String,
    },
    /// An app has neither a command nor a type to derive one from.
    NoCommand { name: String, image: String },
}

impl LaunchError {
    pub fn message(&self) -> String {
        match self {
            LaunchError::UnknownApp { name, known } => format!(
                "unknown app {name}: the images define {}",
                if known.is_empty() {
                    "no apps".to_string()
                } else {
                    known.join(", ")
                }
            ),
            LaunchError::DuplicateApp {
                name,
                first,
                second,
            } => {
                format!("app {name} is defined by two images: {first} and {second}")
            }
            LaunchError::NoCommand { name, image } => format!(
                "app {name} of {image} has no launch command (no APPCMDS and no detectable type)"
            ),
        }
    }
}

/// Resolves what to launch. Raw commands win; else the app list, each app with its command.
pub fn resolve_launch(
    request: &LaunchRequest,
    images: &[LaunchImage<'_>],
    key: &DigestKey,
) -> Result<Launch, Vec<LaunchError>> {
    // Raw commands: Cluster cmd, else Application cmds, else the cluster image's CMDS.
    let image_cmds = images
        .first()
        .map(|i| i.metadata.cmds.clone())
        .unwrap_or_default();
    for cmds in [&request.cluster_cmd, &request.application_cmds, &image_cmds] {
        if !cmds.is_empty() {
            return Ok(Launch::Raw(cmds.clone()));
        }
    }

    let mut errors = Vec::new();
    // Where each app is defined; a name defined twice is an error naming both images.
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, image) in images.iter().enumerate() {
        for app in &image.metadata.apps {
            if let Some(&first) = owner.get(app.name.as_str()) {
                errors.push(LaunchError::DuplicateApp {
                    name: app.name.clone(),
                    first: images[first].name.clone(),
                    second: image.name.clone(),
                });
            } else {
                owner.insert(&app.name, index);
            }
        }
    }
    let known: Vec<String> = owner.keys().map(|k| k.to_string()).collect();

    // The explicit list (appNames, else launchApps) selects apps of any image; without one,
    // each image launches its own LAUNCH list. Either way the cluster image's apps come
    // first, then each app image's, in `spec.images` order.
    let explicit = request.app_names.as_ref().or(request.launch_apps.as_ref());
    let mut order: Vec<(usize, String)> = Vec::new();
    match explicit {
        Some(names) => {
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                match owner.get(name) {
                    Some(&i) => order.push((i, name.to_string())),
                    None => errors.push(LaunchError::UnknownApp {
                        name: name.to_string(),
                        known: known.clone(),
                    }),
                }
            }
            order.sort_by_key(|(i, _)| *i);
        }
        None => {
            for (i, image) in images.iter().enumerate() {
                order.extend(image.metadata.launch_apps.iter().map(|n| (i, n.clone())));
            }
        }
    }
    for name in request.app_cmds.keys().chain(request.app_files.keys()) {
        if !owner.contains_key(name.as_str()) {
            errors.push(LaunchError::UnknownApp {
                name: name.clone(),
                known: known.clone(),
            });
        }
    }

    let mut apps = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in order {
        if !seen.insert(name.clone()) {
            continue;
        }
        let image = &images[i];
        let Some(app) = image.metadata.app(&name) else {
            continue;
        };
        let cmds = match request.app_cmds.get(&name) {
            Some(cmds) if !cmds.is_empty() => cmds
                .iter()
                .map(|c| format!("cd {} && {c}", crate::image::metadata::app_root(&name)))
                .collect(),
            _ => match app.launch_cmd() {
                Some(cmd) => vec![cmd],
                None => {
                    errors.push(LaunchError::NoCommand {
                        name: name.clone(),
                        image: image.name.clone(),
                    });
                    continue;
                }
            },
        };
        let mut files: BTreeMap<String, String> = image
            .metadata
            .app_digests
            .get(&name)
            .map(|d| d.files.clone())
            .unwrap_or_else(|| {
                // Images without our digests: the file list and the image digest stand in.
                app.files
                    .iter()
                    .map(|f| (f.clone(), image.digest.clone()))
                    .collect()
            });
        let app_overrides = request.app_files.get(&name).map_or(&[][..], Vec::as_slice);
        let texts = image
            .files
            .and_then(|f| f.get(&name))
            .map(|shipped| super::explain::app_texts(shipped, app_overrides, &files))
            .unwrap_or_default();
        let mut overrides: BTreeMap<String, String> = BTreeMap::new();
        for o in app_overrides {
            let before = files.get(&o.path).cloned().unwrap_or_default();
            let digest =
                key.digest(format!("{before}\n{}\n{}", o.strategy.as_str(), o.data).as_bytes());
            files.insert(o.path.clone(), digest);
            overrides
                .entry(o.path.clone())
                .or_default()
                .push_str(&format!(
                    "# {} ({})\n{}",
                    o.source,
                    o.strategy.as_str(),
                    super::explain::explained_text(&o.data, o.secret)
                ));
        }
        let mut env = request.env.clone();
        for (k, v) in &app.env {
            env.insert(k.clone(), super::explain::value_digest(key, k, v));
        }
        let kind = app.app_type.map_or("custom", |t| t.as_str()).to_string();
        let env_digest = sha256_digest(
            format!(
                "{}\n{}",
                request.env_digest,
                serde_json::to_string(&app.env).unwrap_or_default()
            )
            .as_bytes(),
        );
        apps.push(AppInput {
            name: name.clone(),
            image: format!("{}@{}", image.name, image.digest),
            kind,
            cmds,
            files,
            env_digest,
            overrides,
            env,
            texts,
        });
    }
    if errors.is_empty() {
        Ok(Launch::Apps(apps))
    } else {
        Err(errors)
    }
}

/// Checks an image's KUBEVERSION against the cluster's Kubernetes version.
pub fn check_kube_version(
    image: &str,
    labels: &BTreeMap<String, String>,
    cluster_version: &str,
) -> Result<(), String> {
    let Some(text) = labels.get(KUBE_VERSION_LABEL) else {
        return Ok(());
    };
    let constraint = Constraint::parse(text)
        .map_err(|e| format!("image {image} has an invalid KUBEVERSION: {e}"))?;
    let version = Version::parse(cluster_version).map_err(|e| {
        format!("the cluster's Kubernetes version {cluster_version:?} is not a version: {e}")
    })?;
    if constraint.matches(&version) {
        Ok(())
    } else {
        Err(format!(
            "image {image} supports Kubernetes {text}, but the cluster runs {cluster_version}"
        ))
    }
}

/// An app image must be an app image (a cluster image has its own runtime).
pub fn is_app_image(metadata: &ImageMetadata) -> bool {
    metadata.image_type == ImageType::AppInstaller
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{App, AppType};

    fn meta(apps: &[(&str, Option<AppType>, &[&str])], launch: &[&str]) -> ImageMetadata {
        ImageMetadata {
            image_type: ImageType::KubeInstaller,
            apps: apps
                .iter()
                .map(|(n, t, cmds)| App {
                    name: n.to_string(),
                    app_type: *t,
                    files: vec![format!("{n}.yaml")],
                    cmds: cmds.iter().map(|s| s.to_string()).collect(),
                    env: BTreeMap::new(),
                    version: "v1".into(),
                })
                .collect(),
            launch_apps: launch.iter().map(|s| s.to_string()).collect(),
            cmds: vec![],
            env: BTreeMap::new(),
            container_images: vec![],
            app_digests: BTreeMap::new(),
            kubeadm_config: None,
            plugins: BTreeMap::new(),
            built_by: "test".into(),
        }
    }

    fn names(launch: &Launch) -> Vec<String> {
        match launch {
            Launch::Apps(apps) => apps.iter().map(|a| a.name.clone()).collect(),
            Launch::Raw(cmds) => cmds.clone(),
        }
    }

    #[test]
    fn precedence() {
        let labels = BTreeMap::new();
        let cluster = meta(
            &[
                ("calico", Some(AppType::Shell), &[]),
                ("nginx", Some(AppType::Kube), &["kubectl apply -f x.yaml"]),
            ],
            &["calico"],
        );
        let extra = meta(&[("redis", Some(AppType::Helm), &[])], &["redis"]);
        let images = [
            LaunchImage {
                name: "k8s".into(),
                digest: "sha256:a".into(),
                metadata: &cluster,
                labels: &labels,
                files: None,
            },
            LaunchImage {
                name: "redis".into(),
                digest: "sha256:b".into(),
                metadata: &extra,
                labels: &labels,
                files: None,
            },
        ];
        let mut req = LaunchRequest::default();
        assert_eq!(
            names(&resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()),
            ["calico", "redis"]
        );
        req.launch_apps = Some(vec!["redis".into(), "nginx".into()]);
        assert_eq!(
            names(&resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()),
            ["nginx", "redis"],
            "cluster image apps first"
        );
        req.app_names = Some(vec!["".into()]);
        assert!(
            names(&resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()).is_empty(),
            "[\"\"] launches nothing"
        );
        req.app_names = Some(vec!["nginx".into()]);
        req.app_cmds.insert(
            "nginx".into(),
            vec![
                "kubectl apply -f a.yaml".into(),
                "kubectl apply -f b.yaml".into(),
            ],
        );
        let Launch::Apps(apps) = resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            apps[0].cmds,
            [
                "cd application/apps/nginx/ && kubectl apply -f a.yaml",
                "cd application/apps/nginx/ && kubectl apply -f b.yaml"
            ]
        );
        req.application_cmds = vec!["echo app".into()];
        assert_eq!(
            names(&resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()),
            ["echo app"]
        );
        req.cluster_cmd = vec!["echo cluster".into()];
        assert_eq!(
            names(&resolve_launch(&req, &images, &DigestKey::legacy()).unwrap()),
            ["echo cluster"]
        );
    }

    #[test]
    fn unknown_and_duplicate_apps() {
        let labels = BTreeMap::new();
        let a = meta(&[("x", Some(AppType::Kube), &[])], &[]);
        let b = meta(&[("x", Some(AppType::Kube), &[])], &[]);
        let images = [
            LaunchImage {
                name: "a".into(),
                digest: "sha256:a".into(),
                metadata: &a,
                labels: &labels,
                files: None,
            },
            LaunchImage {
                name: "b".into(),
                digest: "sha256:b".into(),
                metadata: &b,
                labels: &labels,
                files: None,
            },
        ];
        let req = LaunchRequest {
            app_names: Some(vec!["y".into()]),
            ..Default::default()
        };
        let errs = resolve_launch(&req, &images, &DigestKey::legacy()).unwrap_err();
        let text: Vec<String> = errs.iter().map(LaunchError::message).collect();
        assert_eq!(
            text,
            [
                "app x is defined by two images: a and b",
                "unknown app y: the images define x"
            ]
        );
    }

    #[test]
    fn kube_version_checks() {
        let labels =
            BTreeMap::from([(KUBE_VERSION_LABEL.to_string(), ">=1.24, <1.27".to_string())]);
        assert!(check_kube_version("app", &labels, "v1.25.3").is_ok());
        assert_eq!(
            check_kube_version("app:v1", &labels, "v1.22.15").unwrap_err(),
            "image app:v1 supports Kubernetes >=1.24, <1.27, but the cluster runs v1.22.15"
        );
        assert!(check_kube_version("app", &BTreeMap::new(), "v1.22.15").is_ok());
    }
}
