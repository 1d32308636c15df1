//! `kind: Config`, and the file strategies it shares with Application files.

use super::Header;
use super::reader::{Ctx, Fields, split_bar};
use crate::clusterfile::model::{Config, ProcessStep, Strategy};
use crate::clusterfile::span::Spanned;
use crate::clusterfile::yaml::{self, Node, Value};

pub(super) fn decode_config(ctx: &mut Ctx<'_>, h: Header<'_>) -> Option<Config> {
    let spec_node = h.spec?;
    let known = ["path", "appName", "strategy", "process", "data"];
    let spec = ctx.fields(spec_node, h.spec_at, "Config.spec", &known)?;
    let app_name = ctx
        .opt_string(&spec, "appName")
        .filter(|a| !a.value.is_empty());
    let inside = if app_name.is_some() {
        "the app's directory"
    } else {
        "the rootfs"
    };
    let path = ctx
        .req_string(&spec, "path")
        .filter(|p| ctx.relative_path(p, inside));
    let strategy = strategy(ctx, &spec, spec_node);
    let process = process(ctx, &spec);
    let data = ctx.req_text(&spec, "data");
    if let (Some(strategy), Some(data)) = (&strategy, &data) {
        check_merge_data(ctx, strategy, data);
    }
    Some(Config {
        span: h.kind_span,
        api_version: h.api_version?,
        name: h.name?,
        path: path?,
        app_name,
        strategy: strategy?,
        process: process?,
        data: data?,
    })
}

/// `strategy`, `overwrite` when absent (then located at the owning mapping).
pub(super) fn strategy(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    owner: &Node,
) -> Option<Spanned<Strategy>> {
    match ctx.opt_string(fields, "strategy") {
        None if fields.get("strategy").is_some_and(|e| !e.value.is_null()) => None,
        None => Some(Spanned::new(Strategy::Overwrite, owner.span)),
        Some(text) => ctx.choice(
            &text,
            "strategy",
            "strategies",
            Strategy::NAMES,
            &[Strategy::Merge, Strategy::Overwrite],
        ),
    }
}

/// `merge` deep-merges `data` into YAML documents, so `data` must be YAML mappings.
pub(super) fn check_merge_data(
    ctx: &mut Ctx<'_>,
    strategy: &Spanned<Strategy>,
    data: &Spanned<String>,
) {
    if strategy.value != Strategy::Merge {
        return;
    }
    let (documents, errors) = yaml::parse(&data.value);
    if let Some(e) = errors.first() {
        ctx.error_hint(
            data.span,
            format!(
                "data is not valid YAML (line {} of data): {}",
                e.span.line, e.message
            ),
            "strategy merge deep-merges YAML data; use overwrite for other content",
        );
        return;
    }
    let not_a_map = documents
        .iter()
        .filter_map(|d| d.root.as_ref())
        .find(|root| !root.is_null() && !matches!(root.value, Value::Map(_)));
    if let Some(root) = not_a_map {
        ctx.error_hint(
            data.span,
            format!(
                "data must be a YAML mapping to merge, not {}",
                root.kind_name()
            ),
            "strategy merge deep-merges YAML data; use overwrite for other content",
        );
    }
}

fn process(ctx: &mut Ctx<'_>, spec: &Fields<'_>) -> Option<Vec<Spanned<ProcessStep>>> {
    let Some(text) = ctx.opt_string(spec, "process") else {
        return if spec.get("process").is_some_and(|e| !e.value.is_null()) {
            None
        } else {
            Some(Vec::new())
        };
    };
    let mut steps = Vec::new();
    let mut ok = true;
    for (offset, part) in split_bar(&text.value) {
        let word = Spanned::new(part.to_string(), ctx.sub_span(&text, offset));
        match ctx.choice(
            &word,
            "process step",
            "process steps (separated by |)",
            ProcessStep::NAMES,
            &[
                ProcessStep::Value,
                ProcessStep::ToJson,
                ProcessStep::ToBase64,
                ProcessStep::ToSecret,
            ],
        ) {
            Some(step) => steps.push(step),
            None => ok = false,
        }
    }
    ok.then_some(steps)
}
