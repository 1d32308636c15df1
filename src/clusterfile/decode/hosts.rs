//! `Cluster.spec.hosts`: host groups, and the rules between hosts.

use super::env::env_list;
use super::reader::{Ctx, Fields};
use crate::clusterfile::model::{HostGroup, Label, Ssh, Transport};
use crate::clusterfile::names::{is_label_value, is_qualified_name, is_role};
use crate::clusterfile::span::{Span, Spanned};
use crate::clusterfile::taint::Taint;
use crate::clusterfile::yaml::{Node, Value};
use std::collections::HashMap;
use std::net::IpAddr;

const HOST: &[&str] = &["ips", "roles", "ssh", "env", "labels", "taints"];

pub(super) fn host_groups(ctx: &mut Ctx<'_>, spec: &Fields<'_>) -> (Vec<HostGroup>, Option<Span>) {
    let Some(entry) = spec.get("hosts") else {
        ctx.missing(spec, "hosts");
        return (Vec::new(), None);
    };
    let items = ctx
        .seq(&entry.value, "Cluster.spec.hosts")
        .unwrap_or_default();
    let mut groups = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(group) = host_group(ctx, item, &format!("Cluster.spec.hosts[{i}]")) {
            groups.push(group);
        }
    }
    (groups, Some(entry.key_span))
}

fn host_group(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<HostGroup> {
    let fields = ctx.fields(node, node.span, path, HOST)?;
    let mut ips = Vec::new();
    match fields.get("ips") {
        None => ctx.missing(&fields, "ips"),
        Some(entry) => {
            let ips_path = fields.path_of("ips");
            let list_or_null = entry.value.is_null() || matches!(entry.value.value, Value::Seq(_));
            let items = ctx.seq(&entry.value, &ips_path).unwrap_or_default();
            if items.is_empty() && list_or_null {
                ctx.error(
                    entry.key_span,
                    format!("{ips_path} must list at least one IP"),
                );
            }
            for (i, item) in items.iter().enumerate() {
                ips.extend(ctx.ip(item, &format!("{ips_path}[{i}]")));
            }
        }
    }
    let mut roles = Vec::new();
    match fields.get("roles") {
        None => ctx.missing(&fields, "roles"),
        Some(entry) => {
            let listed = ctx
                .strings(&entry.value, &fields.path_of("roles"))
                .unwrap_or_default();
            if listed.is_empty()
                && (entry.value.is_null() || matches!(entry.value.value, Value::Seq(_)))
            {
                ctx.error_hint(
                    entry.key_span,
                    format!("{} must list at least one role", fields.path_of("roles")),
                    "master, node, or a role of your own for plugin scopes",
                );
            }
            for role in listed {
                if is_role(&role.value) {
                    roles.push(role);
                } else {
                    ctx.error_hint(
                        role.span,
                        format!("invalid role `{}`", role.value),
                        "roles are made of letters, digits, '-', '_' and '.'",
                    );
                }
            }
        }
    }
    let ssh = match fields.get("ssh") {
        Some(entry) => {
            super::cluster::ssh(ctx, &entry.value, entry.key_span, &fields.path_of("ssh"))
        }
        None => Ssh::default(),
    };
    let env = env_list(ctx, &fields, "env");
    let labels = labels(ctx, &fields);
    let mut taints = Vec::new();
    for text in ctx.opt_strings(&fields, "taints").unwrap_or_default() {
        match Taint::parse(&text.value) {
            Ok(taint) => taints.push(Spanned::new(taint, text.span)),
            Err(e) => ctx.error_hints(text.span, e.message, e.hints),
        }
    }
    Some(HostGroup {
        span: node.span,
        ips,
        roles,
        ssh,
        env,
        labels,
        taints,
    })
}

fn labels(ctx: &mut Ctx<'_>, fields: &Fields<'_>) -> Vec<Label> {
    let mut out = Vec::new();
    let Some(node) = fields.value("labels") else {
        return out;
    };
    let path = fields.path_of("labels");
    let entries = match &node.value {
        Value::Map(entries) => entries.as_slice(),
        _ if node.is_null() => &[],
        _ => {
            ctx.wrong_type(node, &path, "a mapping");
            &[]
        }
    };
    for e in entries {
        if !is_qualified_name(&e.key) {
            ctx.error_hint(
                e.key_span,
                format!("invalid label key `{}`", e.key),
                "label keys are [PREFIX/]NAME: NAME at most 63 letters, digits, '-', '_' and '.', PREFIX a DNS name",
            );
            continue;
        }
        let value = if e.value.is_null() {
            Some(Spanned::new(String::new(), e.value.span))
        } else {
            ctx.string(&e.value, &format!("{path}.{}", e.key))
        };
        let Some(value) = value else { continue };
        if !is_label_value(&value.value) {
            ctx.error_hint(
                value.span,
                format!("invalid label value `{}` for `{}`", value.value, e.key),
                "label values are empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            );
            continue;
        }
        out.push(Label {
            key: Spanned::new(e.key.clone(), e.key_span),
            value,
        });
    }
    out
}

/// The rules between hosts: one address family, each IP once, a master, one local host.
pub(super) fn check_hosts(
    ctx: &mut Ctx<'_>,
    groups: &[HostGroup],
    cluster_ssh: &Ssh,
    hosts_span: Span,
) {
    let mut seen: HashMap<IpAddr, Span> = HashMap::new();
    let mut first: Option<&Spanned<IpAddr>> = None;
    for ip in groups.iter().flat_map(|g| &g.ips) {
        if let Some(earlier) = seen.get(&ip.value) {
            ctx.error_hint(
                ip.span,
                format!(
                    "duplicate host IP {} (first at line {})",
                    ip.value, earlier.line
                ),
                "an IP appears once in the whole file",
            );
            continue;
        }
        seen.insert(ip.value, ip.span);
        match first {
            None => first = Some(ip),
            Some(f) if f.value.is_ipv4() != ip.value.is_ipv4() => ctx.error_hint(
                ip.span,
                format!(
                    "host IP {} is {}, but the first host IP {} (line {}) is {}",
                    ip.value,
                    family(&ip.value),
                    f.value,
                    f.span.line,
                    family(&f.value)
                ),
                "all hosts of a cluster share one address family",
            ),
            Some(_) => {}
        }
    }
    if !groups
        .iter()
        .any(|g| g.roles.iter().any(|r| r.value == "master"))
    {
        ctx.error_hint(
            hosts_span,
            "no host has the role `master`",
            "give the first host group roles: [master]",
        );
    }
    let mut local: Vec<(IpAddr, Span)> = Vec::new();
    for group in groups {
        let transport = group
            .ssh
            .transport
            .as_ref()
            .or(cluster_ssh.transport.as_ref());
        if let Some(t) = transport.filter(|t| t.value == Transport::Local) {
            local.extend(group.ips.iter().map(|ip| (ip.value, t.span)));
        } else if let Some(sandbox) = group.ssh.sandbox.as_ref().or(cluster_ssh.sandbox.as_ref()) {
            ctx.error_hint(
                sandbox.span,
                "sandbox needs transport: local",
                "a sandbox confines the commands sealer runs on this machine; SSH hosts are machines of their own",
            );
        }
    }
    if let [(a, _), (b, span), ..] = local.as_slice() {
        ctx.error_hint(
            *span,
            format!("only one host may use transport local, but {a} and {b} do"),
            "transport: local runs a host's commands on this machine; give it to one host group with one IP",
        );
    }
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}
