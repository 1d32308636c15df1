//! Saved plans (`sealer plan --out FILE`): the whole plan, bound to the state it was made
//! against (lineage + serial) and to its inputs (Clusterfile and image digests), so that
//! `sealer apply FILE` applies exactly it or refuses it as stale.
//!
//! The file is JSON with its own wire types (a versioned boundary, apart from the internal
//! types). It holds no secret: sensitive attributes are digests, and credentials are read
//! from the Clusterfile again at apply time.

use super::{Action, Change, FORMAT_VERSION, Plan};
use crate::diag::{Error, IoContext, Result};
use crate::resource::{Attributes, Desired, ResourceType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &str = "sealer-saved-plan";

/// A plan with what it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPlan {
    pub plan: Plan,
    pub clusterfile: Option<PathBuf>,
    pub clusterfile_digest: Option<String>,
    /// Image name → manifest digest, for every image the plan used.
    pub images: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    kind: String,
    format_version: String,
    cluster: String,
    lineage: Option<String>,
    serial: u64,
    destroy: bool,
    unchanged: usize,
    clusterfile: Option<PathBuf>,
    clusterfile_digest: Option<String>,
    images: BTreeMap<String, String>,
    changes: Vec<ChangeWire>,
}

#[derive(Serialize, Deserialize)]
struct ChangeWire {
    address: String,
    #[serde(rename = "type")]
    resource_type: ResourceType,
    host: Option<String>,
    action: String,
    reason: String,
    disruptive: bool,
    before: Option<Attributes>,
    after: Option<Attributes>,
    sensitive: BTreeSet<String>,
    computed: BTreeSet<String>,
    forcing: BTreeSet<String>,
    depends_on: Vec<String>,
    desired: Option<DesiredWire>,
}

#[derive(Serialize, Deserialize)]
struct DesiredWire {
    attributes: Attributes,
    sensitive: BTreeSet<String>,
    computed: BTreeSet<String>,
    replace_on: BTreeSet<String>,
    depends_on: Vec<String>,
    lives_in: Vec<String>,
}

fn action_from(text: &str) -> Option<Action> {
    [
        Action::Create,
        Action::Update,
        Action::Replace,
        Action::Delete,
    ]
    .into_iter()
    .find(|a| a.as_str() == text)
}

impl SavedPlan {
    pub fn to_bytes(&self) -> Vec<u8> {
        let plan = &self.plan;
        let wire = Wire {
            kind: MAGIC.to_string(),
            format_version: FORMAT_VERSION.to_string(),
            cluster: plan.cluster.clone(),
            lineage: plan.lineage.clone(),
            serial: plan.serial,
            destroy: plan.destroy,
            unchanged: plan.unchanged,
            clusterfile: self.clusterfile.clone(),
            clusterfile_digest: self.clusterfile_digest.clone(),
            images: self.images.clone(),
            changes: plan.changes.iter().map(change_to_wire).collect(),
        };
        // Plain data: serialization cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<SavedPlan> {
        let not_a_plan = || {
            Error::msg(format!("{} is not a saved sealer plan", path.display()))
                .hint("make one with `sealer plan -f Clusterfile --out FILE`")
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_a_plan())?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(MAGIC) {
            return Err(not_a_plan());
        }
        let version = value
            .get("format_version")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if version != FORMAT_VERSION {
            return Err(Error::msg(format!(
                "{}: saved plan format {version} is not supported by this sealer ({FORMAT_VERSION})",
                path.display()
            ))
            .hint("make the plan again with this sealer"));
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| Error::msg(format!("{}: damaged saved plan: {e}", path.display())))?;
        let mut changes = Vec::with_capacity(wire.changes.len());
        for c in wire.changes {
            let action = action_from(&c.action).ok_or_else(|| {
                Error::msg(format!("{}: unknown action {:?}", path.display(), c.action))
            })?;
            changes.push(change_from_wire(c, action));
        }
        Ok(SavedPlan {
            plan: Plan {
                cluster: wire.cluster,
                lineage: wire.lineage,
                serial: wire.serial,
                changes,
                unchanged: wire.unchanged,
                destroy: wire.destroy,
            },
            clusterfile: wire.clusterfile,
            clusterfile_digest: wire.clusterfile_digest,
            images: wire.images,
        })
    }

    /// Writes the plan file (0600: it describes the cluster's hosts).
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let result = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(crate::diag::io_error("cannot write", path, e));
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<SavedPlan> {
        let bytes = std::fs::read(path).with_path("cannot read", path)?;
        SavedPlan::from_bytes(&bytes, path)
    }

    /// Refuses a plan made against another state than `lineage`/`serial`.
    pub fn check_fresh(&self, lineage: Option<&str>, serial: u64) -> Result<()> {
        let plan = &self.plan;
        if plan.lineage.as_deref() != lineage {
            return Err(Error::msg(match (&plan.lineage, lineage) {
                (Some(p), Some(s)) => format!(
                    "saved plan is for another state: its lineage is {p}, the state's is {s}"
                ),
                (None, Some(_)) => format!(
                    "saved plan is stale: it was made for a new cluster, but cluster \"{}\" has state now",
                    plan.cluster
                ),
                (Some(_), None) => format!(
                    "saved plan is stale: cluster \"{}\" has no state any more",
                    plan.cluster
                ),
                (None, None) => String::new(),
            })
            .hint("make a new plan"));
        }
        if plan.serial != serial && lineage.is_some() {
            return Err(Error::msg(format!(
                "saved plan is stale: state serial is {serial}, the plan was made at {}",
                plan.serial
            ))
            .hint("the state changed since the plan was made: make a new plan"));
        }
        Ok(())
    }
}

fn change_to_wire(c: &Change) -> ChangeWire {
    ChangeWire {
        address: c.address.clone(),
        resource_type: c.resource_type,
        host: c.host.clone(),
        action: c.action.as_str().to_string(),
        reason: c.reason.clone(),
        disruptive: c.disruptive,
        before: c.before.clone(),
        after: c.after().cloned(),
        sensitive: c.sensitive.clone(),
        computed: c.computed.clone(),
        forcing: c.forcing.clone(),
        depends_on: c.depends_on.clone(),
        desired: c.desired.as_ref().map(|d| DesiredWire {
            attributes: d.attributes.clone(),
            sensitive: d.sensitive.clone(),
            computed: d.computed.clone(),
            replace_on: d.replace_on.clone(),
            depends_on: d.depends_on.clone(),
            lives_in: d.lives_in.clone(),
        }),
    }
}

fn change_from_wire(c: ChangeWire, action: Action) -> Change {
    let desired = c.desired.map(|d| Desired {
        address: c.address.clone(),
        resource_type: c.resource_type,
        host: c.host.clone(),
        attributes: d.attributes,
        sensitive: d.sensitive,
        computed: d.computed,
        replace_on: d.replace_on,
        depends_on: d.depends_on,
        lives_in: d.lives_in,
    });
    Change {
        address: c.address,
        resource_type: c.resource_type,
        host: c.host,
        action,
        reason: c.reason,
        disruptive: c.disruptive,
        before: c.before,
        sensitive: c.sensitive,
        computed: c.computed,
        forcing: c.forcing,
        depends_on: c.depends_on,
        desired,
    }
}
