//! `app.<name>`: an application launched on master0 (`deploy.md`): its launch commands run
//! in the rootfs with the env; a change of files, commands or env re-runs them (an update);
//! its uninstall depends on its kind (kube apps delete their files, helm apps their release,
//! others are forgotten). Apps of the Clusterfile and of `sealer run` are the same kind,
//! built by [`desired`].

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::AppInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::App,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
    // The image explains a change of what it brings (files, commands) and is not one itself:
    // an app runs again only when what it runs changes (`deploy.md`: files, cmds or config),
    // so a new cluster image with the same apps (a Kubernetes upgrade) leaves them be.
    explains: &["image", "overrides", "env", "texts"],
    lives_on: &[Foundation::Host, Foundation::Etcd],
};

/// The attribute of app file texts: a record without it (made by an older sealer) has
/// nothing to diff them with, and plans do not show them as all new.
pub const TEXTS: &str = "texts";

/// The address of the Cluster `cmd` / Application `cmds` / image CMDS that run instead of apps.
pub const RAW_LAUNCH: &str = "launch-cmds";

/// What an app is. Field order is the attribute order people read in plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAttrs {
    /// The image the app comes from, `NAME@sha256:...` (none for raw launch commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `helm`, `kube`, `shell`, `custom` or `raw`: decides how it is uninstalled.
    pub kind: String,
    /// The resolved launch commands, run in order.
    pub cmds: Vec<String>,
    /// File path (relative to the app's directory) → content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_digest: Option<String>,
    /// What Config documents and Application files wrote over its files, by path (texts,
    /// secrets masked), and its env as a digest per key: they explain a change of `files`
    /// or `env_digest` (`graph::explain`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// What its files hold once written (texts, secrets masked): shows how a file changed,
    /// whether a new image or a Config changed it. Always recorded, so a record without it
    /// is one an older sealer made, with nothing to compare with ([`TEXTS`]).
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    /// Apps of `sealer run` images live in their own tree next to the rootfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// `run` for apps installed by `sealer run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_by: Option<String>,
}

impl AppAttrs {
    /// An app of the cluster's launch list.
    pub fn from_input(app: &AppInput) -> AppAttrs {
        AppAttrs {
            image: Some(app.image.clone()),
            kind: app.kind.clone(),
            cmds: app.cmds.clone(),
            files: Some(app.files.clone()),
            env_digest: Some(app.env_digest.clone()),
            overrides: app.overrides.clone(),
            env: app.env.clone(),
            texts: app.texts.clone(),
            root: None,
            installed_by: None,
        }
    }

    /// Raw launch commands, in place of apps.
    pub fn raw(cmds: &[String]) -> AppAttrs {
        AppAttrs {
            image: None,
            kind: "raw".to_string(),
            cmds: cmds.to_vec(),
            files: None,
            env_digest: None,
            overrides: BTreeMap::new(),
            env: BTreeMap::new(),
            texts: BTreeMap::new(),
            root: None,
            installed_by: None,
        }
    }

    /// An app of a `sealer run` image, unpacked at `root` on master0.
    pub fn installed_by_run(app: &AppInput, root: &str) -> AppAttrs {
        AppAttrs {
            env_digest: None,
            env: BTreeMap::new(),
            root: Some(root.to_string()),
            installed_by: Some("run".to_string()),
            ..AppAttrs::from_input(app)
        }
    }
}

/// `app.<name>` on master0.
pub fn desired(name: &str, attrs: &AppAttrs, master0: &str, depends_on: Vec<String>) -> Desired {
    SCHEMA.desired(format!("app.{name}"), Some(master0), attrs, depends_on)
}

/// Whether a recorded app came from `sealer run` (a Clusterfile apply would forget it).
pub fn installed_by_run(attributes: &Attributes) -> bool {
    attributes.get("installed_by").and_then(|v| v.as_str()) == Some("run")
}

/// Why an app changes, when its kind can say more than attribute names: which files
/// changed and through which Config or Application file, which env keys.
pub fn describe_update(
    before: &Attributes,
    after: &Attributes,
    changed: &BTreeSet<String>,
) -> Option<String> {
    if !changed.iter().all(|c| c == "files" || c == "env_digest") {
        return None;
    }
    // Each attribute read on its own: a record of an older sealer lacks the explanations.
    let map = |a: &Attributes, key: &str| -> BTreeMap<String, String> {
        a.get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    let (old_overrides, new_overrides) = (map(before, "overrides"), map(after, "overrides"));
    let mut causes = Vec::new();
    if before.get("image") != after.get("image") {
        let image = after.get("image").and_then(|v| v.as_str()).unwrap_or("");
        causes.push(format!("image {}", super::rootfs::short_image(image)));
    }
    if changed.contains("files") {
        let (old_files, new_files) = (map(before, "files"), map(after, "files"));
        let names: BTreeSet<&String> = new_files
            .keys()
            .chain(old_files.keys())
            .filter(|k| new_files.get(*k) != old_files.get(*k))
            .collect();
        let names: Vec<String> = names
            .into_iter()
            .map(
                |n| match sources(new_overrides.get(n).or(old_overrides.get(n))) {
                    Some(by) => format!("{n} (by {by})"),
                    None => n.clone(),
                },
            )
            .collect();
        causes.push(format!("files changed: {}", names.join(", ")));
    }
    if changed.contains("env_digest") {
        let keys = crate::graph::explain::differences("", &map(before, "env"), &map(after, "env"));
        causes.push(if keys.is_empty() {
            "env changed".to_string()
        } else {
            format!("env: {}", keys.join(", "))
        });
    }
    Some(causes.join("; "))
}

/// The sources named in an override text's `# SOURCE (strategy)` lines.
fn sources(text: Option<&String>) -> Option<String> {
    let names: Vec<&str> = text?
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.rsplit_once(" (").map(|(source, _)| source))
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Runs the launch commands (after syncing a `sealer run` image's tree to its root).
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let app: AppAttrs = super::step_attributes(change, change.after())?;
    let ctx = &r.ctx;
    let root = match &app.root {
        Some(root) => {
            if let Some(source) = ctx.run_trees.get(root) {
                r.sync_tree(&ctx.master0, source, root, false).await?;
            }
            root.clone()
        }
        None => ctx.rootfs.clone(),
    };
    let script = steps::in_rootfs(&root, r.exports(&ctx.master0), &app.cmds);
    r.run(&change.address, &ctx.master0, script, Stdin::Null)
        .await?;
    Ok(Attributes::new())
}

/// Reads an app back as its kind allows: a kube app's objects (`kubectl get -f` of each
/// file), a helm app's release (`helm status`). What other apps' commands did is theirs.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let app: AppAttrs = super::read::attributes(recorded)?;
    let ctx = &r.ctx;
    let name = recorded
        .address
        .strip_prefix("app.")
        .unwrap_or(&recorded.address);
    let root = app.root.as_deref().unwrap_or(&ctx.rootfs);
    let script = match app.kind.as_str() {
        "kube" => steps::kube_app_read(
            root,
            name,
            &app.files
                .unwrap_or_default()
                .into_keys()
                .collect::<Vec<_>>(),
        ),
        "helm" => format!(
            "helm status {} >/dev/null\n",
            sealer_providers::quote::quote(name)
        ),
        kind => {
            return Ok(ReadBack::unreadable(format!(
                "a {kind} app's commands are its own: nothing tells whether they still hold"
            )));
        }
    };
    let out = r.probe(&ctx.master0, script).await?;
    Ok(match app.kind.as_str() {
        "helm" if !out.ok => ReadBack::gone(format!(
            "release {name} is not installed (`helm status {name}`: {})",
            out.stderr_line()
        )),
        "helm" => ReadBack::AsRecorded,
        _ if !out.ok => {
            return Err(StepFailure::message(format!(
                "on host {}: reading app {name}: {}",
                ctx.master0,
                out.stderr_line()
            )));
        }
        _ => kube_read_back(&out.stdout),
    })
}

/// What [`steps::kube_app_read`] printed: `missing FILE: WHY` for each file whose objects
/// are not all in the API.
fn kube_read_back(output: &str) -> ReadBack {
    let missing: Vec<String> = output
        .lines()
        .filter_map(|l| l.strip_prefix("missing "))
        .map(|l| format!("objects of {l}"))
        .collect();
    if missing.is_empty() {
        ReadBack::AsRecorded
    } else {
        ReadBack::Drifted(missing)
    }
}

/// Uninstalls the app as its kind says; kinds without an uninstall are forgotten.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let app: AppAttrs = super::step_attributes(change, change.before.as_ref())?;
    let ctx = &r.ctx;
    let name = change
        .address
        .strip_prefix("app.")
        .unwrap_or(&change.address);
    let files: Vec<String> = app.files.unwrap_or_default().into_keys().collect();
    let root = app.root.as_deref().unwrap_or(&ctx.rootfs);
    if let Some(script) = steps::app_destroy(root, &app.kind, name, &files) {
        r.run(&change.address, &ctx.master0, script, Stdin::Null)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_back_kube_app_names_the_files_whose_objects_are_gone() {
        assert_eq!(kube_read_back(""), ReadBack::AsRecorded);
        let out = "missing 10-deployment.yaml: Error from server (NotFound): deployments.apps \"web\" not found\n";
        assert_eq!(
            kube_read_back(out).findings(),
            [
                "objects of 10-deployment.yaml: Error from server (NotFound): deployments.apps \"web\" not found"
            ]
        );
    }
}
