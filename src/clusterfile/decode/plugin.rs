//! `kind: Plugin`: a shell script run at one or more phases on master0 or scoped hosts.

use super::Header;
use super::reader::{Ctx, split_bar};
use crate::clusterfile::model::{Phase, Plugin, PluginType};
use crate::clusterfile::names::is_role;
use crate::clusterfile::span::Spanned;
use crate::clusterfile::suggest;

pub(super) fn decode(ctx: &mut Ctx<'_>, h: Header<'_>) -> Option<Plugin> {
    let spec_node = h.spec?;
    let known = ["type", "action", "scope", "data"];
    let spec = ctx.fields(spec_node, h.spec_at, "Plugin.spec", &known)?;
    let plugin_type = ctx.req_string(&spec, "type").and_then(|t| {
        ctx.choice(
            &t,
            "plugin type",
            "plugin types",
            PluginType::NAMES,
            &[PluginType::Shell],
        )
    });
    let actions = ctx.req_string(&spec, "action").and_then(|text| {
        let mut phases = Vec::new();
        let mut ok = true;
        for (offset, part) in split_bar(&text.value) {
            let span = ctx.sub_span(&text, offset);
            match Phase::parse(part) {
                Some(phase) => phases.push(Spanned::new(phase, span)),
                None => {
                    let mut hints = suggest::hints(part, Phase::NAMES, "phases");
                    hints.push("separate several phases with |".to_string());
                    ctx.error_hints(span, format!("unknown plugin phase `{part}`"), hints);
                    ok = false;
                }
            }
        }
        if phases.is_empty() && ok {
            ctx.error(text.span, "Plugin.spec.action names no phase");
            ok = false;
        }
        ok.then_some(phases)
    });
    let scope = ctx.opt_string(&spec, "scope").map(|text| {
        let mut roles = Vec::new();
        for (offset, part) in split_bar(&text.value) {
            let role = Spanned::new(part.to_string(), ctx.sub_span(&text, offset));
            if is_role(part) {
                roles.push(role);
            } else {
                ctx.error_hint(
                    role.span,
                    format!("invalid role `{part}` in scope"),
                    "scope lists roles separated by |, such as master|node",
                );
            }
        }
        roles
    });
    let data = ctx.req_text(&spec, "data");
    Some(Plugin {
        span: h.kind_span,
        api_version: h.api_version?,
        name: h.name?,
        plugin_type: plugin_type?,
        actions: actions?,
        scope: scope.unwrap_or_default(),
        data: data?,
    })
}
