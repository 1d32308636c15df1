//! `env` lists: `K=V` items, the keys sealer derives, and the network keys it must parse.

use super::reader::{Ctx, Fields};
use crate::clusterfile::env::{DERIVED_KEYS, EnvValue, is_valid_key, parse_cidrs, service_ips};
use crate::clusterfile::model::EnvVar;
use crate::clusterfile::span::Spanned;
use std::collections::HashMap;

/// The items of `fields[key]`, each checked; bad items are reported and left out.
pub(crate) fn env_list(ctx: &mut Ctx<'_>, fields: &Fields<'_>, key: &str) -> Vec<EnvVar> {
    let Some(items) = ctx.opt_strings(fields, key) else {
        return Vec::new();
    };
    let mut out: Vec<EnvVar> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let Some((name, value)) = item.value.split_once('=') else {
            ctx.error_hint(
                item.span,
                format!("env item `{}` has no `=`", item.value),
                "write KEY=VALUE; KEY=a;b makes a list",
            );
            continue;
        };
        if !is_valid_key(name) {
            ctx.error_hint(
                item.span,
                format!("invalid env key `{name}`"),
                "env keys are shell variable names: letters, digits and _, not starting with a digit",
            );
            continue;
        }
        if DERIVED_KEYS.contains(&name) {
            ctx.error_hints(
                item.span,
                format!("env key `{name}` is derived by sealer and cannot be set"),
                vec![
                    derived_from(name).to_string(),
                    format!("derived keys: {}", DERIVED_KEYS.join(", ")),
                ],
            );
            continue;
        }
        if let Some(first_line) = seen.get(name) {
            ctx.error(
                item.span,
                format!("duplicate env key `{name}` (first at line {first_line})"),
            );
            continue;
        }
        seen.insert(name.to_string(), item.span.line);
        let value = EnvValue::parse(value);
        if !check_network_key(ctx, name, &value, &item) {
            continue;
        }
        out.push(EnvVar {
            key: Spanned::new(name.to_string(), item.span),
            value,
        });
    }
    out
}

fn derived_from(key: &str) -> &'static str {
    match key {
        "ContainerRuntime" => "it comes from spec.containerRuntime.type",
        "KubeSvcIP" | "DNSSvcIP" => "it comes from SvcCIDR: set SvcCIDR instead",
        "HostIP" => "it is each host's own IP",
        _ => "it comes from spec.registry",
    }
}

/// SvcCIDR and PodCIDR must be networks, and SvcCIDR must hold the DNS service address.
fn check_network_key(
    ctx: &mut Ctx<'_>,
    name: &str,
    value: &EnvValue,
    item: &Spanned<String>,
) -> bool {
    let example = match name {
        "SvcCIDR" => "10.96.0.0/22",
        "PodCIDR" => "100.64.0.0/10",
        _ => return true,
    };
    let result = if name == "SvcCIDR" {
        service_ips(value).map(|_| ())
    } else {
        parse_cidrs(value).map(|_| ())
    };
    match result {
        Ok(()) => true,
        Err(why) => {
            ctx.error_hint(
                item.span,
                format!("invalid {name}: {why}"),
                format!("write an IP network such as {name}={example}; separate dual-stack networks with ,"),
            );
            false
        }
    }
}
