//! A cluster's rendered rootfs: `$SEALER_HOME/cache/rendered/<cluster>/`, rebuilt from the
//! extracted images on every call, in a temp dir moved into place when complete.
//!
//! Order: the images' trees merged (cluster image first, then app images in order), the
//! Clusterfile's `Config` documents, the Application's `files`, then the templates
//! (`*.tmpl` under `etc/`, `charts/`, `manifests/`, so Configs may write templates too).

use super::config::{self, apply_app_files, apply_configs};
use super::extract::apply_dir_modes;
use super::manifest::Manifest;
use super::merge::merge_tree;
use super::{TempDir, paths, stale_temps_removed, template};
use crate::clusterfile::{AppConfig, Clusterfile, Config, Env};
use crate::diag::{Diagnostic, Error, IoContext, Location, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The directory only registry hosts receive.
pub const REGISTRY_DIR: &str = "registry";
/// Where templates are looked for.
const TEMPLATE_DIRS: [&str; 3] = ["etc", "charts", "manifests"];
const TEMPLATE_SUFFIX: &str = ".tmpl";

/// What a cluster's rootfs is made of.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    /// The cluster's name (names the rendered directory).
    pub cluster: &'a str,
    /// Extracted images ([`super::extract`]): the cluster image, then app images in order.
    pub trees: &'a [PathBuf],
    pub configs: &'a [Config],
    /// Application `spec.configs` (their `files` are written).
    pub app_configs: &'a [AppConfig],
    /// The cluster env templates are rendered with.
    pub env: &'a Env,
    /// The Clusterfile the configs come from, to point errors at them.
    pub clusterfile: Option<&'a Clusterfile>,
}

impl<'a> RenderInput<'a> {
    /// The Config documents and Application files of a Clusterfile.
    pub fn from_clusterfile(
        cf: &'a Clusterfile,
        trees: &'a [PathBuf],
        env: &'a Env,
    ) -> RenderInput<'a> {
        RenderInput {
            cluster: &cf.cluster.name.value,
            trees,
            configs: &cf.configs,
            app_configs: cf
                .application
                .as_ref()
                .map_or(&[][..], |a| a.configs.as_slice()),
            env,
            clusterfile: Some(cf),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// `$SEALER_HOME/cache/rendered/<cluster>`.
    pub root: PathBuf,
    /// Everything: what registry hosts receive.
    pub manifest: Manifest,
    /// Everything but `registry/`: what the other hosts receive.
    pub without_registry: Manifest,
}

/// Builds the cluster's rendered rootfs (see the module docs).
pub fn render(home: &Path, input: &RenderInput<'_>) -> Result<Rendered> {
    let cluster = input.cluster;
    let name_ok = !cluster.is_empty()
        && !cluster.starts_with('.')
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !name_ok {
        return Err(Error::msg(format!("invalid cluster name {cluster:?}")));
    }
    let dir = home.join("cache/rendered");
    crate::home::private_dir(&home.join("cache"))?;
    crate::home::private_dir(&dir)?;
    stale_temps_removed(&dir);
    let tmp = TempDir::create(&dir, cluster)?;
    let root = tmp.path();

    let mut dir_modes = BTreeMap::new();
    for tree in input.trees {
        merge_tree(tree, root, &mut dir_modes)?;
    }
    // Until the end, directories stay writable for the steps below.
    apply_configs(root, input.configs, input.clusterfile)?;
    apply_app_files(root, input.app_configs, input.clusterfile)?;
    render_templates(root, input.env)?;
    apply_dir_modes(root, &dir_modes)?;
    let manifest = Manifest::scan(root)?;

    let dest = dir.join(cluster);
    tmp.persist_replacing(&dest, cluster)?;
    Ok(Rendered {
        root: dest,
        without_registry: manifest.excluding(REGISTRY_DIR),
        manifest,
    })
}

/// Renders every `*.tmpl` under the template directories, in path order; every error of
/// every template is reported.
fn render_templates(root: &Path, env: &Env) -> Result<()> {
    let mut templates = Vec::new();
    for dir in TEMPLATE_DIRS {
        let path = root.join(dir);
        if paths::is_real_dir(&path) {
            find_templates(&path, &mut templates)?;
        }
    }
    templates.sort();
    let mut problems = Vec::new();
    for path in templates {
        let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let text = fs::read(&path).with_path("cannot read", &path)?;
        let Ok(text) = String::from_utf8(text) else {
            problems.push(Diagnostic::error(format!(
                "template {} is not UTF-8 text",
                shown.display()
            )));
            continue;
        };
        match template::render(&text, env) {
            Ok(out) => {
                let name = path.to_string_lossy();
                let target = PathBuf::from(&name[..name.len() - TEMPLATE_SUFFIX.len()]);
                if paths::is_real_dir(&target) {
                    problems.push(Diagnostic::error(format!(
                        "template {}: its output {} is a directory",
                        shown.display(),
                        target.display()
                    )));
                    continue;
                }
                let mode = fs::symlink_metadata(&path)
                    .with_path("cannot inspect", &path)?
                    .permissions()
                    .mode()
                    & 0o7777;
                config::write_file(&target, &out, Some(mode))?;
            }
            Err(e) => {
                problems.push(Diagnostic::error(e.message).at(Location::new(&shown, e.line, 1)))
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::many(problems))
    }
}

/// Regular files named `*.tmpl` (not `.tmpl` alone) under `dir`; symlinks are not followed.
fn find_templates(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_path("cannot list", dir)? {
        let entry = entry.with_path("cannot list", dir)?;
        let path = entry.path();
        let kind = entry.file_type().with_path("cannot inspect", &path)?;
        if kind.is_dir() {
            find_templates(&path, out)?;
        } else if kind.is_file() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.len() > TEMPLATE_SUFFIX.len() && name.ends_with(TEMPLATE_SUFFIX) {
                out.push(path);
            }
        }
    }
    Ok(())
}
