//! Sealer's image metadata: the `sealer.image.extension` manifest annotation (Go Sealer's
//! keys, read in its 0.9.0–0.10 shapes), the carried container images, and our own
//! `io.sealer.rs/metadata` annotation with per-app file digests.
//!
//! The wire types are private; the rest of the crate works with [`ImageMetadata`].

use crate::diag::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const EXTENSION_ANNOTATION: &str = "sealer.image.extension";
pub const CONTAINER_IMAGES_ANNOTATION: &str = "sealer.image.container.images";
pub const OWN_ANNOTATION: &str = "io.sealer.rs/metadata";

/// Where the files of app NAME live, relative to the rootfs (with a trailing slash, as Sealer
/// writes it in launch commands).
pub fn app_root(name: &str) -> String {
    format!("application/apps/{name}/")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageType {
    KubeInstaller,
    AppInstaller,
}

impl ImageType {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageType::KubeInstaller => "kube-installer",
            ImageType::AppInstaller => "app-installer",
        }
    }

    pub fn parse(text: &str) -> Option<ImageType> {
        match text {
            "kube-installer" => Some(ImageType::KubeInstaller),
            "app-installer" => Some(ImageType::AppInstaller),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppType {
    Helm,
    Kube,
    Shell,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Helm => "helm",
            AppType::Kube => "kube",
            AppType::Shell => "shell",
        }
    }

    pub fn parse(text: &str) -> Option<AppType> {
        match text {
            "helm" => Some(AppType::Helm),
            "kube" => Some(AppType::Kube),
            "shell" => Some(AppType::Shell),
            _ => None,
        }
    }
}

/// One app of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    /// `None` for an app whose type could not be detected (it needs `cmds`).
    pub app_type: Option<AppType>,
    /// Files relative to the app root, sorted.
    pub files: Vec<String>,
    /// APPCMDS: the app's own launch commands (each one shell command).
    pub cmds: Vec<String>,
    /// APPENV: env for this app's launch commands.
    pub env: BTreeMap<String, String>,
    pub version: String,
}

impl App {
    /// The command launching this app alone runs, by the image's own rules: APPCMDS in the
    /// app root, else the default of its type. `None` when neither applies.
    pub fn launch_cmd(&self) -> Option<String> {
        let root = app_root(&self.name);
        if !self.cmds.is_empty() {
            return Some(format!("cd {root} && {}", self.cmds.join(" && ")));
        }
        let per_file = |tool: &str| -> Option<String> {
            if self.files.is_empty() {
                return None;
            }
            let cmds: Vec<String> = self
                .files
                .iter()
                .map(|f| format!("{tool} {root}{f}"))
                .collect();
            Some(cmds.join(" && "))
        };
        match self.app_type? {
            AppType::Helm => Some(format!("helm install {} {root}", self.name)),
            AppType::Kube => per_file("kubectl apply -f"),
            AppType::Shell => per_file("bash"),
        }
    }
}

/// A container image carried in the rootfs's `registry/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    pub image: String,
    #[serde(rename = "appName", default, skip_serializing_if = "String::is_empty")]
    pub app_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(architecture: &str) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: None,
        }
    }

    /// The platform of the machine this binary runs on, in OCI spelling.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::linux(arch)
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let arch = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() || variant.as_deref() == Some("") {
            return None;
        }
        let ok = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok(os) || !ok(arch) || variant.as_deref().is_some_and(|v| !ok(v)) {
            return None;
        }
        Some(Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Digests of an app's files, for change detection in plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDigest {
    /// Digest over every (path, content digest) pair of the app.
    pub digest: String,
    pub files: BTreeMap<String, String>,
}

/// Everything the deployer needs to know about an image, besides its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMetadata {
    pub image_type: ImageType,
    pub apps: Vec<App>,
    /// LAUNCH: apps to launch, in order.
    pub launch_apps: Vec<String>,
    /// CMDS / CMD: raw commands run instead of apps.
    pub cmds: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub container_images: Vec<ContainerImage>,
    /// Per-app digests (absent for apps of images our builder did not make).
    pub app_digests: BTreeMap<String, AppDigest>,
    /// The rootfs's `etc/kubeadm.yml`, kept so plans need not read layers.
    pub kubeadm_config: Option<String>,
    /// The rootfs's `plugins/*.yaml` by file name, for the same reason.
    pub plugins: BTreeMap<String, String>,
    /// The Sealer version that built the image, as recorded.
    pub built_by: String,
}

impl ImageMetadata {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Reads the metadata from manifest annotations. `None` when the image is not a Sealer
    /// Image (no `sealer.image.extension`).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Option<Self>> {
        let Some(text) = annotations.get(EXTENSION_ANNOTATION) else {
            return Ok(None);
        };
        let wire: ExtensionWire = serde_json::from_str(text)
            .map_err(|e| Error::msg(format!("invalid {EXTENSION_ANNOTATION} annotation: {e}")))?;
        let container_images = match annotations.get(CONTAINER_IMAGES_ANNOTATION) {
            Some(text) if !text.trim().is_empty() && text.trim() != "null" => {
                serde_json::from_str(text).map_err(|e| {
                    Error::msg(format!(
                        "invalid {CONTAINER_IMAGES_ANNOTATION} annotation: {e}"
                    ))
                })?
            }
            _ => Vec::new(),
        };
        let own: OwnWire = match annotations.get(OWN_ANNOTATION) {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::msg(format!("invalid {OWN_ANNOTATION} annotation: {e}")))?,
            None => OwnWire::default(),
        };
        Ok(Some(Self::from_wire(wire, container_images, own)))
    }

    fn from_wire(
        wire: ExtensionWire,
        container_images: Vec<ContainerImage>,
        own: OwnWire,
    ) -> ImageMetadata {
        let mut app_cmds: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for config in wire.launch.app_configs {
            app_cmds.insert(config.name, config.launch.cmds);
        }
        let apps = wire
            .applications
            .into_iter()
            .map(|a| {
                // 0.9 keeps APPCMDS in launch.appConfigs; 0.10 in applications[].cmds.
                let cmds = app_cmds.remove(&a.name).unwrap_or(a.cmds);
                let mut files = a.files;
                files.sort();
                files.dedup();
                App {
                    app_type: a.app_type.as_deref().and_then(AppType::parse),
                    files,
                    cmds,
                    env: a.env,
                    version: a.version,
                    name: a.name,
                }
            })
            .collect();
        ImageMetadata {
            image_type: ImageType::parse(&wire.image_type).unwrap_or(ImageType::KubeInstaller),
            apps,
            launch_apps: wire.launch.app_names,
            cmds: wire.launch.cmds,
            env: wire.env,
            container_images,
            app_digests: own.apps,
            kubeadm_config: own.kubeadm,
            plugins: own.plugins,
            built_by: wire.build_client.sealer_version,
        }
    }

    /// The manifest annotations that carry this metadata.
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut app_configs = Vec::new();
        let applications = self
            .apps
            .iter()
            .map(|a| {
                if !a.cmds.is_empty() {
                    app_configs.push(AppConfigWire {
                        name: a.name.clone(),
                        launch: LaunchCmdsWire {
                            cmds: a.cmds.clone(),
                        },
                    });
                }
                AppWire {
                    name: a.name.clone(),
                    app_type: a.app_type.map(|t| t.as_str().to_string()),
                    files: a.files.clone(),
                    version: a.version.clone(),
                    cmds: Vec::new(),
                    env: a.env.clone(),
                }
            })
            .collect();
        let wire = ExtensionWire {
            build_client: BuildClientWire {
                sealer_version: self.built_by.clone(),
                buildah_version: String::new(),
            },
            schema_version: "v1alpha1".to_string(),
            image_type: self.image_type.as_str().to_string(),
            applications,
            launch: LaunchWire {
                cmds: self.cmds.clone(),
                app_names: self.launch_apps.clone(),
                app_configs,
            },
            env: self.env.clone(),
        };
        let own = OwnWire {
            format_version: 1,
            apps: self.app_digests.clone(),
            kubeadm: self.kubeadm_config.clone(),
            plugins: self.plugins.clone(),
        };
        let mut out = BTreeMap::new();
        out.insert(EXTENSION_ANNOTATION.to_string(), to_json(&wire));
        out.insert(
            CONTAINER_IMAGES_ANNOTATION.to_string(),
            to_json(&self.container_images),
        );
        out.insert(OWN_ANNOTATION.to_string(), to_json(&own));
        out
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain data structures to a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BuildClientWire {
    #[serde(rename = "sealerVersion", default)]
    sealer_version: String,
    #[serde(rename = "buildahVersion", default)]
    buildah_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExtensionWire {
    #[serde(rename = "buildClient", default)]
    build_client: BuildClientWire,
    #[serde(rename = "schemaVersion", default)]
    schema_version: String,
    #[serde(rename = "type", default)]
    image_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    applications: Vec<AppWire>,
    #[serde(default, deserialize_with = "null_as_default")]
    launch: LaunchWire,
    #[serde(default, deserialize_with = "null_as_default")]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AppWire {
    name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    app_type: Option<String>,
    #[serde(
        alias = "launchfiles",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    files: Vec<String>,
    #[serde(default)]
    version: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    cmds: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LaunchWire {
    #[serde(default, deserialize_with = "null_as_default")]
    cmds: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    app_names: Vec<String>,
    #[serde(rename = "appConfigs", default, deserialize_with = "null_as_default")]
    app_configs: Vec<AppConfigWire>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AppConfigWire {
    name: String,
    #[serde(default)]
    launch: LaunchCmdsWire,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LaunchCmdsWire {
    #[serde(default, deserialize_with = "null_as_default")]
    cmds: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OwnWire {
    #[serde(rename = "formatVersion", default)]
    format_version: u32,
    #[serde(default)]
    apps: BTreeMap<String, AppDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kubeadm: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    plugins: BTreeMap<String, String>,
}

/// Go writes `null` for nil slices and maps.
fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(extension: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(EXTENSION_ANNOTATION.to_string(), extension.to_string())])
    }

    #[test]
    fn reads_sealer_090_launchfiles() {
        let meta = ImageMetadata::from_annotations(&annotations(
            r#"{"buildClient":{"sealerVersion":"v0.9.0","buildahVersion":"v1.27.1"},
                "schemaVersion":"v1alpha1","type":"app-installer",
                "applications":[{"name":"nginx","type":"kube","launchfiles":["nginx.yaml"],"version":"v1"}],
                "launch":{"app_names":["nginx"]}}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(meta.image_type, ImageType::AppInstaller);
        assert_eq!(meta.apps[0].files, vec!["nginx.yaml"]);
        assert_eq!(
            meta.apps[0].launch_cmd().unwrap(),
            "kubectl apply -f application/apps/nginx/nginx.yaml"
        );
        assert_eq!(meta.launch_apps, vec!["nginx"]);
    }

    #[test]
    fn reads_sealer_010_app_cmds_and_nulls() {
        let meta = ImageMetadata::from_annotations(&annotations(
            r#"{"type":"kube-installer","applications":[{"name":"m","version":"v1",
                "cmds":["bash a.sh"],"env":{"A":"1"}}],"launch":{"cmds":null,"app_names":null},"env":null}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            meta.apps[0].launch_cmd().unwrap(),
            "cd application/apps/m/ && bash a.sh"
        );
        assert_eq!(meta.apps[0].env.get("A").map(String::as_str), Some("1"));
    }

    #[test]
    fn not_a_sealer_image() {
        assert_eq!(
            ImageMetadata::from_annotations(&BTreeMap::new()).unwrap(),
            None
        );
    }

    #[test]
    fn round_trips_through_annotations() {
        let meta = ImageMetadata {
            image_type: ImageType::KubeInstaller,
            apps: vec![App {
                name: "calico".into(),
                app_type: Some(AppType::Shell),
                files: vec!["calico.sh".into()],
                cmds: vec!["bash calico.sh --x".into()],
                env: BTreeMap::new(),
                version: "v1".into(),
            }],
            launch_apps: vec!["calico".into()],
            cmds: vec![],
            env: BTreeMap::from([("K".into(), "V".into())]),
            container_images: vec![],
            app_digests: BTreeMap::new(),
            kubeadm_config: None,
            plugins: BTreeMap::new(),
            built_by: "0.1.0".into(),
        };
        let back = ImageMetadata::from_annotations(&meta.to_annotations())
            .unwrap()
            .unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn platform_parse() {
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().variant.as_deref(),
            Some("v7")
        );
        for bad in [
            "linux",
            "/amd64",
            "linux/",
            "a/b/c/d",
            "linux/arm/",
            "li nux/amd64",
        ] {
            assert!(Platform::parse(bad).is_none(), "{bad}");
        }
    }
}
