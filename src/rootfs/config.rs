//! Clusterfile `Config` documents and Application `files`, written into the rendered tree.
//!
//! ## Where
//! `path` is relative to the rootfs, or to `application/apps/APP/` when `appName` is set
//! (Application files: always relative to their app's directory, which must exist). It must
//! stay inside: no absolute path, no `..`, and nothing on the way may be a symlink or a file.
//!
//! ## The `process` pipeline (Go Sealer's `pkg/config`, made strict)
//! `data` starts as text. Steps apply left to right:
//! - `value`: from here on, steps apply to each top-level value of `data` (which must be a
//!   YAML mapping) instead of the whole text. Without it they apply to the whole text.
//! - `toJson`: whole: `data` parsed as YAML becomes compact JSON (keys in the order written;
//!   Sealer sorts them). Per value: each value becomes its compact JSON text (a string
//!   value becomes a JSON string literal).
//! - `toBase64`: whole: standard base64 (padded) of the text. Per value: each value must be
//!   a scalar (or text from an earlier step) and becomes the base64 of its text as written
//!   (`port: 5000` encodes `5000`); a mapping or list needs `toJson` first.
//! - `toSecret`: the last step. `data` (a mapping, or per-value results) becomes the `data`
//!   of the Kubernetes Secret at `path`: each value goes in base64-encoded exactly once (a
//!   value already encoded by `toBase64` goes in as it is; Sealer would encode it again).
//!   Other keys of the Secret are kept, whatever the strategy. A missing file becomes a new
//!   `v1` Secret named after the Config, `type: Opaque`. The file must otherwise hold one
//!   document of `kind: Secret`.
//!
//! Unknown steps cannot occur (the Clusterfile loader refuses them; Sealer warns and goes on).
//!
//! ## Strategies
//! The result is written over the file (`overwrite`, the default), or deep-merged into every
//! document of it (`merge`, see [`Yaml::merge`]): the result must then be one YAML mapping,
//! every non-empty document of the file must be a mapping, and empty documents are dropped.
//! Merging into a file that does not exist writes the result as it is (as Sealer does).

use super::paths::{self, InTheWay};
use super::yaml::{self, Yaml};
use crate::clusterfile::{AppConfig, Clusterfile, Config, ProcessStep, Span, Strategy};
use crate::diag::{Diagnostic, Error, IoContext, Result};
use crate::image::metadata::app_root;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The data of a Config after its `process` steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// Text written as it is (or merged, when it is a YAML mapping).
    Text(String),
    /// Per-value results, written as a YAML mapping.
    Values(Vec<(String, Yaml)>),
    /// Keys and base64 values for a Secret's `data`.
    Secret(Vec<(String, String)>),
}

/// A value while per-value steps run: a node of `data`, or text an earlier step made.
enum Value {
    Node(Yaml),
    Text { text: String, base64: bool },
}

/// Runs the `process` steps over `data` (see the module docs).
pub fn process(data: &str, steps: &[ProcessStep]) -> Result<Processed, String> {
    enum State {
        Whole { text: String, base64: bool },
        PerValue(Vec<(String, Value)>),
    }
    let to_values = |text: &str| -> Result<Vec<(String, Value)>, String> {
        let entries =
            yaml::parse_mapping(text).map_err(|why| format!("`data` is not a mapping: {why}"))?;
        Ok(entries
            .into_iter()
            .map(|(k, v)| (k, Value::Node(v)))
            .collect())
    };
    let mut state = State::Whole {
        text: data.to_string(),
        base64: false,
    };
    for (i, step) in steps.iter().enumerate() {
        state = match (*step, state) {
            (ProcessStep::Value, State::Whole { text, .. }) => State::PerValue(to_values(&text)?),
            (ProcessStep::Value, per_value) => per_value,
            (ProcessStep::ToJson, State::Whole { text, .. }) => {
                let mut docs = yaml::parse(&text).map_err(|why| format!("toJson: {why}"))?;
                let json = match (docs.len(), docs.pop()) {
                    (1, Some(Some(node))) => node.to_json(),
                    (0, _) | (1, Some(None)) => serde_json::Value::Null,
                    (n, _) => return Err(format!("toJson: `data` holds {n} YAML documents")),
                };
                State::Whole {
                    text: json.to_string(),
                    base64: false,
                }
            }
            (ProcessStep::ToJson, State::PerValue(values)) => State::PerValue(
                values
                    .into_iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Value::Node(node) => node.to_json().to_string(),
                            Value::Text { text, .. } => serde_json::Value::String(text).to_string(),
                        };
                        (
                            k,
                            Value::Text {
                                text,
                                base64: false,
                            },
                        )
                    })
                    .collect(),
            ),
            (ProcessStep::ToBase64, State::Whole { text, .. }) => State::Whole {
                text: BASE64.encode(text.as_bytes()),
                base64: true,
            },
            (ProcessStep::ToBase64, State::PerValue(values)) => State::PerValue(
                values
                    .into_iter()
                    .map(|(k, v)| {
                        let text = value_text(&k, v, "toBase64")?;
                        Ok((
                            k,
                            Value::Text {
                                text: BASE64.encode(text.as_bytes()),
                                base64: true,
                            },
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            (ProcessStep::ToSecret, state) => {
                if i + 1 != steps.len() {
                    return Err("toSecret must be the last step of `process`".into());
                }
                let values = match state {
                    State::Whole {
                        text,
                        base64: false,
                    } => to_values(&text)?,
                    State::Whole { .. } => {
                        return Err(
                            "toSecret needs a mapping of keys; use `value|toBase64|toSecret` to encode each value"
                                .into(),
                        );
                    }
                    State::PerValue(values) => values,
                };
                let mut secret = Vec::new();
                for (k, v) in values {
                    let encoded = matches!(v, Value::Text { base64: true, .. });
                    let text = value_text(&k, v, "toSecret")?;
                    let text = if encoded {
                        text
                    } else {
                        BASE64.encode(text.as_bytes())
                    };
                    secret.push((k, text));
                }
                return Ok(Processed::Secret(secret));
            }
        };
    }
    Ok(match state {
        State::Whole { text, .. } => Processed::Text(text),
        State::PerValue(values) => Processed::Values(
            values
                .into_iter()
                .map(|(k, v)| match v {
                    Value::Node(node) => (k, node),
                    Value::Text { text, .. } => (k, Yaml::string(text)),
                })
                .collect(),
        ),
    })
}

/// The text of a scalar value (as written), for a step that encodes text.
fn value_text(key: &str, value: Value, step: &str) -> Result<String, String> {
    match value {
        Value::Text { text, .. } => Ok(text),
        Value::Node(Yaml::Scalar { text, .. }) => Ok(text),
        Value::Node(other) => Err(format!(
            "{step}: the value of `{key}` is {}; put toJson before {step}",
            other.kind_name()
        )),
    }
}

/// Where errors about one Config or file point.
#[derive(Clone)]
struct Origin<'a> {
    clusterfile: Option<&'a Clusterfile>,
    what: String,
    span: Span,
}

impl Origin<'_> {
    fn error(&self, message: impl std::fmt::Display) -> Error {
        let d = Diagnostic::error(format!("{}: {message}", self.what));
        match self.clusterfile {
            Some(cf) => d.at(cf.location(self.span)).into(),
            None => d.into(),
        }
    }
}

/// Applies the Config documents, in order.
pub fn apply_configs(root: &Path, configs: &[Config], cf: Option<&Clusterfile>) -> Result<()> {
    for config in configs {
        let origin = Origin {
            clusterfile: cf,
            what: format!("Config {}", config.name.value),
            span: config.path.span,
        };
        let base = match &config.app_name {
            Some(app) => app_dir(root, &app.value).map_err(|why| origin.error(why))?,
            None => Vec::new(),
        };
        let steps: Vec<ProcessStep> = config.process.iter().map(|s| s.value).collect();
        let processed = process(&config.data.value, &steps).map_err(|why| {
            Origin {
                span: config.data.span,
                ..origin.clone()
            }
            .error(why)
        })?;
        let target = target(root, &base, &config.path.value).map_err(|why| origin.error(why))?;
        write_processed(
            &target,
            processed,
            config.strategy.value,
            &config.name.value,
        )
        .map_err(|why| origin.error(why))?;
    }
    Ok(())
}

/// Applies Application `configs[].files`, in order.
pub fn apply_app_files(root: &Path, configs: &[AppConfig], cf: Option<&Clusterfile>) -> Result<()> {
    for config in configs {
        for file in &config.files {
            let origin = Origin {
                clusterfile: cf,
                what: format!(
                    "Application file {} of app {}",
                    file.path.value, config.name.value
                ),
                span: file.path.span,
            };
            let base = app_dir(root, &config.name.value).map_err(|why| origin.error(why))?;
            let target = target(root, &base, &file.path.value).map_err(|why| origin.error(why))?;
            write_processed(
                &target,
                Processed::Text(file.data.value.clone()),
                file.strategy.value,
                &config.name.value,
            )
            .map_err(|why| origin.error(why))?;
        }
    }
    Ok(())
}

/// The components of `application/apps/APP`, which must be a directory of the tree.
fn app_dir(root: &Path, app: &str) -> Result<Vec<String>, String> {
    let rel = app_root(app);
    let parts = paths::clean(Path::new(&rel)).map_err(|why| format!("app name: {why}"))?;
    let exists = paths::resolve_existing(root, &parts).is_some_and(|p| paths::is_real_dir(&p));
    if !exists || parts.len() != 3 {
        return Err(format!("no app {app} in the images ({rel} does not exist)"));
    }
    Ok(parts)
}

/// A file to write: the components of `base` + `path`, checked to stay inside the tree.
fn target(root: &Path, base: &[String], path: &str) -> Result<Target, String> {
    let rel = paths::clean(Path::new(path))
        .map_err(|why| format!("path must stay inside the rootfs: {why}"))?;
    if rel.is_empty() {
        return Err("path names no file".into());
    }
    let mut parts = base.to_vec();
    parts.extend(rel);
    let full = paths::prepare_parents(root, &parts, InTheWay::Refuse).map_err(|e| {
        let why = e
            .diagnostics()
            .iter()
            .map(|d| d.message.as_str())
            .collect::<Vec<_>>();
        format!("cannot write {}: {}", parts.join("/"), why.join("; "))
    })?;
    match fs::symlink_metadata(&full) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!("{} is a symlink", parts.join("/")));
        }
        Ok(m) if m.is_dir() => return Err(format!("{} is a directory", parts.join("/"))),
        _ => {}
    }
    Ok(Target {
        path: full,
        shown: parts.join("/"),
    })
}

struct Target {
    path: PathBuf,
    shown: String,
}

fn write_processed(
    target: &Target,
    processed: Processed,
    strategy: Strategy,
    config_name: &str,
) -> Result<(), String> {
    let existing = match fs::read(&target.path) {
        Ok(bytes) => Some(
            String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", target.shown))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", target.shown)),
    };
    let content = rewritten(
        existing.as_deref(),
        processed,
        strategy,
        config_name,
        &target.shown,
    )?;
    write_file(&target.path, content.as_bytes(), None).map_err(|e| e.to_string())
}

/// What a file holds after `processed` is written over `existing` (None: no such file) with
/// `strategy`: the in-memory half of a Config or Application file, shared by the render
/// and by plans, which show the rendered text of app files.
pub fn rewritten(
    existing: Option<&str>,
    processed: Processed,
    strategy: Strategy,
    config_name: &str,
    shown: &str,
) -> Result<String, String> {
    match processed {
        Processed::Secret(values) => {
            secret(existing, values, config_name).map_err(|why| format!("{shown}: {why}"))
        }
        Processed::Values(values) => {
            let text = yaml::to_string(&[Yaml::Map(values)])?;
            merged(existing, text, strategy, shown)
        }
        Processed::Text(text) => merged(existing, text, strategy, shown),
    }
}

fn merged(
    existing: Option<&str>,
    data: String,
    strategy: Strategy,
    shown: &str,
) -> Result<String, String> {
    let Some(existing) = existing else {
        return Ok(data);
    };
    if strategy == Strategy::Overwrite {
        return Ok(data);
    }
    let src = Yaml::Map(
        yaml::parse_mapping(&data).map_err(|why| format!("merge needs YAML `data`: {why}"))?,
    );
    let docs = yaml::parse(existing).map_err(|why| format!("cannot merge into {shown}: {why}"))?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let Some(mut doc) = doc else {
            continue;
        };
        if !matches!(doc, Yaml::Map(_)) {
            return Err(format!(
                "cannot merge into document {} of {shown}: it is {}, not a mapping",
                i + 1,
                doc.kind_name()
            ));
        }
        doc.merge(&src);
        out.push(doc);
    }
    if out.is_empty() {
        out.push(src);
    }
    yaml::to_string(&out)
}

fn secret(
    existing: Option<&str>,
    values: Vec<(String, String)>,
    name: &str,
) -> Result<String, String> {
    let mut doc = match existing {
        None => Yaml::Map(vec![
            ("apiVersion".into(), Yaml::string("v1")),
            ("kind".into(), Yaml::string("Secret")),
            (
                "metadata".into(),
                Yaml::Map(vec![("name".into(), Yaml::string(name))]),
            ),
            ("type".into(), Yaml::string("Opaque")),
        ]),
        Some(text) => {
            let mut docs: Vec<Yaml> = yaml::parse(text)?.into_iter().flatten().collect();
            if docs.len() != 1 {
                return Err(format!(
                    "toSecret needs one Secret document, found {}",
                    docs.len()
                ));
            }
            docs.remove(0)
        }
    };
    let Yaml::Map(entries) = &mut doc else {
        return Err("toSecret needs a Secret, found a document that is not a mapping".into());
    };
    let kind = entries.iter().find(|(k, _)| k == "kind").map(|(_, v)| v);
    if !matches!(kind, Some(Yaml::Scalar { text, .. }) if text == "Secret") {
        return Err("toSecret needs a document of `kind: Secret`".into());
    }
    let data = match entries.iter().position(|(k, _)| k == "data") {
        Some(i) => &mut entries[i].1,
        None => {
            entries.push(("data".into(), Yaml::Map(Vec::new())));
            let last = entries.len() - 1;
            &mut entries[last].1
        }
    };
    if data.typed() == Some(yaml::Typed::Null) {
        *data = Yaml::Map(Vec::new());
    }
    let Yaml::Map(data) = data else {
        return Err("the Secret's `data` is not a mapping".into());
    };
    for (key, value) in values {
        match data.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = Yaml::string(value),
            None => data.push((key, Yaml::string(value))),
        }
    }
    yaml::to_string(&[doc])
}

/// Writes a new file at `path` (whatever was there is removed first, never written
/// through: it may be a hard link into an image cache). The mode is `mode`, else the mode
/// of the file it replaces, else 0644.
pub fn write_file(path: &Path, content: &[u8], mode: Option<u32>) -> Result<()> {
    let old_mode = fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    let mode = mode.or(old_mode).unwrap_or(0o644);
    paths::remove_any(path)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_path("cannot create", path)?;
    file.write_all(content).with_path("cannot write", path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_path("cannot set the mode of", path)
}
