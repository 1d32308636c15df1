//! Saved plans (`sealer plan --out FILE`): the whole plan, bound to the state it was made
//! against (lineage + serial) and to its inputs (Clusterfile bytes, images by digest, the
//! options it was made with), so that `sealer apply FILE` applies exactly it or refuses it.
//!
//! A plan file is not trusted: plans are deterministic and need no host, so apply makes the
//! plan again from the inputs the file names and refuses unless the result serializes to the
//! very bytes of the file ([`SavedPlan::verify`]). An edited plan never runs.
//!
//! The file is JSON with its own wire types (a versioned boundary, apart from the internal
//! types). It holds no secret: sensitive attributes are digests, and credentials are read
//! from the Clusterfile again at apply time.

use super::{Action, Change, Plan, PlanOptions, ReasonCode};
use crate::diag::{Error, IoContext, Result};
use crate::resource::{Attributes, Desired, ResourceType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &str = "sealer-saved-plan";

/// The version of the saved-plan file format (apart from the plan JSON's): 2 added the
/// options and the sealer version that re-derivation needs.
pub const SAVED_FORMAT_VERSION: &str = "2";

/// The sealer that writes plans: a plan made by another version may plan differently, so it
/// is refused rather than re-derived.
pub const SEALER_VERSION: &str = env!("CARGO_PKG_VERSION");

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
    sealer_version: String,
    cluster: String,
    lineage: Option<String>,
    serial: u64,
    destroy: bool,
    unchanged: usize,
    clusterfile: Option<PathBuf>,
    clusterfile_digest: Option<String>,
    images: BTreeMap<String, String>,
    targets: Vec<String>,
    replace: Vec<String>,
    /// Absent when 1, so plans of older sealers read the same.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    max_unavailable: usize,
    /// Absent when `tree` (the default), so plans of older sealers read the same.
    #[serde(default, skip_serializing_if = "super::distribution::Mode::is_default")]
    rootfs_distribution: super::distribution::Mode,
    context: super::context::Context,
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
    reason_code: String,
    caused_by: Option<String>,
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
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
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
        self.to_bytes_naming(self.clusterfile.clone())
    }

    /// The file's bytes with `clusterfile` as the Clusterfile's name.
    fn to_bytes_naming(&self, clusterfile: Option<PathBuf>) -> Vec<u8> {
        let plan = &self.plan;
        let wire = Wire {
            kind: MAGIC.to_string(),
            format_version: SAVED_FORMAT_VERSION.to_string(),
            sealer_version: SEALER_VERSION.to_string(),
            cluster: plan.cluster.clone(),
            lineage: plan.lineage.clone(),
            serial: plan.serial,
            destroy: plan.destroy,
            unchanged: plan.unchanged,
            clusterfile,
            clusterfile_digest: self.clusterfile_digest.clone(),
            images: self.images.clone(),
            targets: plan.targets.clone(),
            replace: plan.replace.clone(),
            max_unavailable: plan.max_unavailable,
            rootfs_distribution: plan.rootfs_distribution,
            context: plan.context.clone(),
            changes: plan.changes.iter().map(change_to_wire).collect(),
        };
        // Plain data: serialization cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<SavedPlan> {
        // A Clusterfile given where a plan file goes is the likely mistake: say so.
        let looks_like_clusterfile = std::str::from_utf8(bytes).is_ok_and(|text| {
            text.lines()
                .any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"))
        });
        let not_a_plan = || {
            let error = Error::msg(format!("{} is not a saved sealer plan", path.display()));
            if looks_like_clusterfile {
                error.hint(format!(
                    "it looks like a Clusterfile: apply it with `sealer apply -f {}`",
                    path.display()
                ))
            } else {
                error.hint("make one with `sealer plan -f Clusterfile --out FILE`")
            }
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_a_plan())?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(MAGIC) {
            return Err(not_a_plan());
        }
        let version = value
            .get("format_version")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if version != SAVED_FORMAT_VERSION {
            return Err(Error::msg(format!(
                "{}: saved plan format {version} is not supported by this sealer ({SAVED_FORMAT_VERSION})",
                path.display()
            ))
            .hint("make the plan again with this sealer"));
        }
        let made_by = value
            .get("sealer_version")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if made_by != SEALER_VERSION {
            return Err(Error::msg(format!(
                "{}: the plan was made by sealer {made_by}, this is sealer {SEALER_VERSION}",
                path.display()
            ))
            .hint("plans are re-derived at apply: make the plan again with this sealer"));
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| Error::msg(format!("{}: damaged saved plan: {e}", path.display())))?;
        let mut changes = Vec::with_capacity(wire.changes.len());
        for c in wire.changes {
            let action = action_from(&c.action).ok_or_else(|| {
                Error::msg(format!("{}: unknown action {:?}", path.display(), c.action))
            })?;
            let code = ReasonCode::parse(&c.reason_code).ok_or_else(|| {
                Error::msg(format!(
                    "{}: unknown reason code {:?}",
                    path.display(),
                    c.reason_code
                ))
            })?;
            changes.push(change_from_wire(c, action, code));
        }
        Ok(SavedPlan {
            plan: Plan {
                cluster: wire.cluster,
                lineage: wire.lineage,
                serial: wire.serial,
                changes,
                unchanged: wire.unchanged,
                destroy: wire.destroy,
                targets: wire.targets,
                replace: wire.replace,
                max_unavailable: wire.max_unavailable,
                rootfs_distribution: wire.rootfs_distribution,
                context: wire.context,
            },
            clusterfile: wire.clusterfile,
            clusterfile_digest: wire.clusterfile_digest,
            images: wire.images,
        })
    }

    /// Writes the plan file (0600: it describes the cluster's hosts), naming the Clusterfile
    /// relative to it ([`SavedPlan::stored_at`]).
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes_naming(self.clusterfile_named_from(path));
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
        SavedPlan::from_bytes(&read_bounded(path)?, path)
    }

    /// This plan as written to `file`: the Clusterfile named relative to the file's own
    /// directory, so that the plan file and its Clusterfile can move together (a CI
    /// artifact downloaded into another checkout of the same repository).
    pub fn stored_at(mut self, file: &Path) -> SavedPlan {
        self.clusterfile = self.clusterfile_named_from(file);
        self
    }

    fn clusterfile_named_from(&self, file: &Path) -> Option<PathBuf> {
        let dir = std::path::absolute(file)
            .ok()
            .and_then(|f| f.parent().map(crate::clusterfile::normalize_path));
        match (dir, &self.clusterfile) {
            (Some(dir), Some(cf)) if cf.is_absolute() => Some(relative_path(&dir, cf)),
            (_, cf) => cf.clone(),
        }
    }

    /// Where the Clusterfile this plan names is, for the plan file at `file`.
    pub fn clusterfile_for(&self, file: &Path) -> Option<PathBuf> {
        let cf = self.clusterfile.as_ref()?;
        if cf.is_absolute() {
            return Some(cf.clone());
        }
        let dir = std::path::absolute(file).ok()?.parent()?.to_path_buf();
        Some(crate::clusterfile::normalize_path(&dir.join(cf)))
    }

    /// The options the plan was made with, to make it again.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            targets: self.plan.targets.clone(),
            replace: self.plan.replace.clone(),
            destroy: self.plan.destroy,
            max_unavailable: self.plan.max_unavailable,
            rootfs_distribution: self.plan.rootfs_distribution,
        }
    }

    /// Refuses `file` (the bytes of the plan file at `path`) unless it is exactly what
    /// `derived`, the plan made again from the same inputs, writes. Staleness (another
    /// Clusterfile, images or state) is checked before this, with its own message: a
    /// mismatch here means the file itself was changed.
    pub fn verify(file: &[u8], derived: &SavedPlan, path: &Path) -> Result<()> {
        if derived.to_bytes() == file {
            return Ok(());
        }
        let detail = SavedPlan::from_bytes(file, path)
            .ok()
            .and_then(|saved| first_difference(&saved, derived))
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        Err(Error::msg(format!(
            "{} does not match the plan its inputs produce{detail}: the file was edited or damaged; nothing was applied",
            path.display()
        ))
        .hint("make the plan again with `sealer plan -f CLUSTERFILE --out FILE` and review it"))
    }
}

impl Plan {
    /// Refuses a plan made against another state than `lineage`/`serial`.
    pub fn check_fresh(&self, lineage: Option<&str>, serial: u64) -> Result<()> {
        let plan = self;
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
            .hint("make a new plan")
            .stale_plan());
        }
        if plan.serial != serial && lineage.is_some() {
            return Err(Error::msg(format!(
                "saved plan is stale: state serial is {serial}, the plan was made at {}",
                plan.serial
            ))
            .hint("the state changed since the plan was made: make a new plan")
            .stale_plan());
        }
        Ok(())
    }
}

/// `to` relative to the directory `from` (both absolute and normalized), lexically.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out
}

/// Plan files are read whole: one of 5,000 hosts is about 30 MB; far more is not a plan.
const MAX_PLAN_FILE: u64 = 512 * 1024 * 1024;

/// The bytes of a plan file, refused past [`MAX_PLAN_FILE`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_path("cannot read", path)?;
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_FILE + 1)
        .read_to_end(&mut bytes)
        .with_path("cannot read", path)?;
    if bytes.len() as u64 > MAX_PLAN_FILE {
        return Err(Error::msg(format!(
            "{}: a saved plan is at most {} MiB; this file is larger",
            path.display(),
            MAX_PLAN_FILE / (1024 * 1024)
        ))
        .hint("make the plan again with `sealer plan --out FILE`"));
    }
    Ok(bytes)
}

/// What differs between a plan file and the plan made again, in words (the first thing).
fn first_difference(saved: &SavedPlan, derived: &SavedPlan) -> Option<String> {
    let (a, b) = (&saved.plan, &derived.plan);
    for (x, y) in a.changes.iter().zip(&b.changes) {
        if x != y {
            return Some(if x.address == y.address {
                format!("change {} differs", x.address)
            } else {
                format!(
                    "the file has {} where the plan has {}",
                    x.address, y.address
                )
            });
        }
    }
    if a.changes.len() != b.changes.len() {
        return Some(format!(
            "the file has {} changes, the plan {}",
            a.changes.len(),
            b.changes.len()
        ));
    }
    (a != b || saved != derived).then(|| "its summary or inputs differ".to_string())
}

fn change_to_wire(c: &Change) -> ChangeWire {
    ChangeWire {
        address: c.address.clone(),
        resource_type: c.resource_type,
        host: c.host.clone(),
        action: c.action.as_str().to_string(),
        reason: c.reason.clone(),
        reason_code: c.reason_code.as_str().to_string(),
        caused_by: c.caused_by.clone(),
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
        }),
    }
}

fn change_from_wire(c: ChangeWire, action: Action, reason_code: ReasonCode) -> Change {
    let desired = c.desired.map(|d| Desired {
        address: c.address.clone(),
        resource_type: c.resource_type,
        host: c.host.clone(),
        attributes: d.attributes,
        sensitive: d.sensitive,
        computed: d.computed,
        replace_on: d.replace_on,
        depends_on: d.depends_on,
    });
    Change {
        address: c.address,
        resource_type: c.resource_type,
        host: c.host,
        action,
        reason: c.reason,
        reason_code,
        caused_by: c.caused_by,
        disruptive: c.disruptive,
        before: c.before,
        sensitive: c.sensitive,
        computed: c.computed,
        forcing: c.forcing,
        depends_on: c.depends_on,
        desired,
    }
}
