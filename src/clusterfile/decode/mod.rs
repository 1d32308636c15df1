//! YAML tree → [`Clusterfile`]: the kinds of documents, their fields, and the rules that
//! involve more than one document. Every problem is collected; nothing stops at the first.

mod application;
mod cluster;
mod config;
mod env;
mod hosts;
mod kubeadm;
mod plugin;
mod reader;
mod registry;

use super::model::{
    Application, Cluster, Clusterfile, Config, KubeadmDocument, KubeadmKind, Plugin,
};
use super::span::{Source, Span, Spanned};
use super::suggest;
use super::yaml::{self, Node, Value};
use crate::diag::{Diagnostic, Error, Result};
use reader::{Ctx, Fields};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const SEALER_KINDS: &[&str] = &["Cluster", "Application", "Config", "Plugin"];

/// The apiVersions of a sealer kind: both spellings Sealer's own docs use.
fn sealer_api_versions(kind: &str) -> &'static [&'static str] {
    match kind {
        "Cluster" | "Application" => &["sealer.io/v2", "sealer.cloud/v2"],
        _ => &["sealer.io/v1", "sealer.cloud/v1"],
    }
}

fn known_kinds() -> Vec<&'static str> {
    let mut kinds = SEALER_KINDS.to_vec();
    kinds.extend(KubeadmKind::ALL.iter().map(|k| k.as_str()));
    kinds
}

/// Parses and validates the text of a Clusterfile.
pub(crate) fn decode(path: &Path, text: &str) -> Result<Clusterfile> {
    let source = Source::new(path, text);
    let mut ctx = Ctx::new(&source);
    let (found, yaml_failed) = decode_documents(&mut ctx, text);
    check_across_documents(&mut ctx, &found, yaml_failed);

    let mut errors = std::mem::take(&mut ctx.errors);
    // Read top to bottom, like a compiler's output.
    errors.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
    match found.clusters.into_iter().next() {
        Some((_, Some(cluster))) if errors.is_empty() => Ok(Clusterfile {
            path: path.to_path_buf(),
            origin: None,
            cluster,
            application: found.applications.into_iter().next().and_then(|(_, a)| a),
            configs: found.configs,
            plugins: found.plugins,
            kubeadm: found.kubeadm,
            source,
        }),
        _ if !errors.is_empty() => Err(Error::many(errors)),
        // Unreachable in practice: no Cluster is reported as an error.
        _ => Err(Diagnostic::error("no Cluster document")
            .at(source.location(Span::new(1, 1)))
            .into()),
    }
}

/// Reads every document of `text`, recording YAML errors; says whether there were any.
fn decode_documents(ctx: &mut Ctx<'_>, text: &str) -> (Found, bool) {
    let (documents, yaml_errors) = yaml::parse(text);
    for e in &yaml_errors {
        match &e.hint {
            Some(hint) => ctx.error_hint(e.span, e.message.clone(), hint.clone()),
            None => ctx.error(e.span, e.message.clone()),
        }
    }
    let mut found = Found::default();
    for document in &documents {
        let Some(root) = &document.root else { continue };
        if root.is_null() {
            continue;
        }
        decode_document(ctx, root, &mut found);
    }
    (found, !yaml_errors.is_empty())
}

/// Parses a file of Plugin documents only (an image's `plugins/*.yaml`).
pub(crate) fn decode_plugins(path: &Path, text: &str) -> Result<Vec<Plugin>> {
    let source = Source::new(path, text);
    let mut ctx = Ctx::new(&source);
    let (found, _) = decode_documents(&mut ctx, text);
    let others = found
        .clusters
        .iter()
        .map(|(s, _)| *s)
        .chain(found.applications.iter().map(|(s, _)| *s))
        .chain(found.configs.iter().map(|c| c.span))
        .chain(found.kubeadm.iter().map(|k| k.span));
    for span in others.collect::<Vec<_>>() {
        ctx.error(
            span,
            "a plugins/ file of an image may hold only Plugin documents",
        );
    }
    let mut errors = std::mem::take(&mut ctx.errors);
    errors.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
    if errors.is_empty() {
        Ok(found.plugins)
    } else {
        Err(Error::many(errors))
    }
}

/// The documents read so far; kinds that failed to decode are kept as `None` so that
/// counting them (one Cluster, at most one Application) still works.
#[derive(Default)]
struct Found {
    clusters: Vec<(Span, Option<Cluster>)>,
    applications: Vec<(Span, Option<Application>)>,
    configs: Vec<Config>,
    plugins: Vec<Plugin>,
    kubeadm: Vec<KubeadmDocument>,
    kubeadm_kinds: Vec<(KubeadmKind, Span)>,
    /// Names of every Config and Plugin document, also of those with other errors.
    config_names: Vec<Spanned<String>>,
    plugin_names: Vec<Spanned<String>>,
}

fn decode_document(ctx: &mut Ctx<'_>, root: &Node, found: &mut Found) {
    let Value::Map(entries) = &root.value else {
        ctx.error_hint(
            root.span,
            format!("a document must be a mapping, not {}", root.kind_name()),
            "each document has apiVersion, kind, metadata and spec",
        );
        return;
    };
    let Some(kind_entry) = entries.iter().find(|e| e.key == "kind") else {
        ctx.error_hint(
            root.span,
            "document has no `kind`",
            format!("kinds: {}", known_kinds().join(", ")),
        );
        return;
    };
    let Some(kind) = ctx.string(&kind_entry.value, "kind") else {
        if kind_entry.value.is_null() {
            ctx.error(kind_entry.value.span, "kind must not be empty");
        }
        return;
    };
    let span = kind.span;
    match kind.value.as_str() {
        "Cluster" => {
            let cluster = header(ctx, root, &kind).and_then(|h| cluster::decode(ctx, h));
            found.clusters.push((span, cluster));
        }
        "Application" => {
            let app = header(ctx, root, &kind).and_then(|h| application::decode(ctx, h));
            found.applications.push((span, app));
        }
        "Config" => {
            let h = header(ctx, root, &kind);
            found
                .config_names
                .extend(h.as_ref().and_then(|h| h.name.clone()));
            if let Some(c) = h.and_then(|h| config::decode_config(ctx, h)) {
                found.configs.push(c);
            }
        }
        "Plugin" => {
            let h = header(ctx, root, &kind);
            found
                .plugin_names
                .extend(h.as_ref().and_then(|h| h.name.clone()));
            if let Some(p) = h.and_then(|h| plugin::decode(ctx, h)) {
                found.plugins.push(p);
            }
        }
        other => match KubeadmKind::parse(other) {
            Some(k) => {
                if let Some((_, first)) = found.kubeadm_kinds.iter().find(|(seen, _)| *seen == k) {
                    ctx.error_hint(
                        span,
                        format!(
                            "a second {other} document (the first is at line {})",
                            first.line
                        ),
                        "merge them into one document",
                    );
                }
                found.kubeadm_kinds.push((k, span));
                if let Some(doc) = kubeadm::decode(ctx, root, Spanned::new(k, span)) {
                    found.kubeadm.push(doc);
                }
            }
            None => {
                let kinds = known_kinds();
                let hints = suggest::hints(other, &kinds, "kinds");
                ctx.error_hints(span, format!("unknown kind `{other}`"), hints);
            }
        },
    }
}

/// What every sealer document has: apiVersion, kind, metadata.name, spec.
pub(crate) struct Header<'n> {
    pub kind_span: Span,
    pub api_version: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: Option<&'n Node>,
    pub spec_at: Span,
}

fn header<'n>(ctx: &mut Ctx<'_>, root: &'n Node, kind: &Spanned<String>) -> Option<Header<'n>> {
    let doc = ctx.fields(
        root,
        kind.span,
        &kind.value,
        &["apiVersion", "kind", "metadata", "spec"],
    )?;
    let api_version = api_version(ctx, &doc, &kind.value, sealer_api_versions(&kind.value));

    let mut name = None;
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    match doc.get("metadata") {
        None => ctx.missing(&doc, "metadata"),
        Some(entry) => {
            let path = format!("{}.metadata", kind.value);
            if let Some(meta) = ctx.fields(
                &entry.value,
                entry.key_span,
                &path,
                &["name", "labels", "annotations"],
            ) {
                name = ctx.req_string(&meta, "name");
                // A Cluster's name has its own, stricter rule (decode::cluster). The others
                // name resources and files: a name is what plans print, so it holds no
                // control character or anything else a DNS name would not.
                if kind.value != "Cluster" {
                    name = name.filter(|n| {
                        let ok = crate::clusterfile::names::is_dns_subdomain(&n.value);
                        if !ok {
                            ctx.error_hint(
                                n.span,
                                format!("invalid {} name `{}`", kind.value, n.value.escape_debug()),
                                "use lowercase letters, digits, '-' and '.' (a DNS-1123 subdomain, at most 253 characters)",
                            );
                        }
                        ok
                    });
                }
                labels = string_map(ctx, &meta, "labels");
                annotations = string_map(ctx, &meta, "annotations");
            }
        }
    }
    let (spec, spec_at) = match doc.get("spec") {
        Some(entry) => (Some(&entry.value), entry.key_span),
        None => {
            ctx.missing(&doc, "spec");
            (None, kind.span)
        }
    };
    Some(Header {
        kind_span: kind.span,
        api_version,
        name,
        labels,
        annotations,
        spec,
        spec_at,
    })
}

/// `apiVersion`, which must be one of `accepted`.
pub(crate) fn api_version(
    ctx: &mut Ctx<'_>,
    doc: &Fields<'_>,
    kind: &str,
    accepted: &[&str],
) -> Option<Spanned<String>> {
    let usage = format!("write apiVersion: {}", accepted.join(" or "));
    let Some(node) = doc.value("apiVersion") else {
        ctx.error_hint(
            doc.at,
            format!("missing field `apiVersion` in {kind}"),
            usage,
        );
        return None;
    };
    let version = ctx.string(node, &format!("{kind}.apiVersion"));
    match version {
        Some(v) if accepted.contains(&v.value.as_str()) => Some(v),
        Some(v) => {
            ctx.error_hint(
                v.span,
                format!("unsupported apiVersion `{}` for kind {kind}", v.value),
                usage,
            );
            None
        }
        None => {
            if node.is_null() {
                ctx.error_hint(
                    node.span,
                    format!("{kind}.apiVersion must not be empty"),
                    usage,
                );
            }
            None
        }
    }
}

/// A mapping of strings to strings (metadata labels and annotations).
fn string_map(ctx: &mut Ctx<'_>, fields: &Fields<'_>, key: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(node) = fields.value(key) else {
        return out;
    };
    let path = fields.path_of(key);
    match &node.value {
        Value::Map(entries) => {
            for e in entries {
                let value = ctx
                    .string(&e.value, &format!("{path}.{}", e.key))
                    .map(|s| s.value)
                    .unwrap_or_default();
                out.insert(e.key.clone(), value);
            }
        }
        _ if node.is_null() => {}
        _ => ctx.wrong_type(node, &path, "a mapping"),
    }
    out
}

fn check_across_documents(ctx: &mut Ctx<'_>, found: &Found, yaml_failed: bool) {
    match found.clusters.as_slice() {
        // A syntax error may have swallowed the Cluster: don't guess.
        [] if !yaml_failed => ctx.error_hint(
            Span::new(1, 1),
            "no Cluster document",
            "a Clusterfile needs one document with kind: Cluster",
        ),
        [] => {}
        [(first, _), rest @ ..] => {
            for (span, _) in rest {
                ctx.error_hint(
                    *span,
                    format!(
                        "a second Cluster document (the first is at line {})",
                        first.line
                    ),
                    "a Clusterfile describes exactly one cluster",
                );
            }
        }
    }
    if let [(first, _), rest @ ..] = found.applications.as_slice() {
        for (span, _) in rest {
            ctx.error_hint(
                *span,
                format!(
                    "a second Application document (the first is at line {})",
                    first.line
                ),
                "list every app image and config in one Application",
            );
        }
    }
    unique_names(ctx, "Config", &found.config_names);
    unique_names(ctx, "Plugin", &found.plugin_names);
    // Two Configs writing one file would make the result depend on document order.
    let mut targets: HashMap<(Option<&str>, &str), Span> = HashMap::new();
    for c in &found.configs {
        let app = c.app_name.as_ref().map(|a| a.value.as_str());
        let path = c.path.value.trim_start_matches("./");
        if let Some(first) = targets.get(&(app, path)) {
            ctx.error(
                c.path.span,
                format!(
                    "a second Config for path `{}` (the first is at line {})",
                    c.path.value, first.line
                ),
            );
        } else {
            targets.insert((app, path), c.path.span);
        }
    }
}

fn unique_names(ctx: &mut Ctx<'_>, kind: &str, names: &[Spanned<String>]) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for name in names {
        if let Some(first) = seen.get(name.value.as_str()) {
            ctx.error(
                name.span,
                format!(
                    "a second {kind} named `{}` (the first is at line {})",
                    name.value, first.line
                ),
            );
        } else {
            seen.insert(&name.value, name.span);
        }
    }
}
