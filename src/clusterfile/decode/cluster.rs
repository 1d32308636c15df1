//! `kind: Cluster`: its spec and SSH settings; hosts and registry have their own modules.

use super::Header;
use super::env::env_list;
use super::reader::{Ctx, Fields};
use super::{hosts, registry};
use crate::clusterfile::model::{Cluster, HostAlias, Registry, Ssh, Transport};
use crate::clusterfile::names::{is_cluster_name, is_hostname};
use crate::clusterfile::span::{Span, Spanned};
use crate::clusterfile::yaml::Node;
use crate::image::reference::Reference;

const SPEC: &[&str] = &[
    "image",
    "env",
    "cmd",
    "appNames",
    "ssh",
    "hosts",
    "containerRuntime",
    "hostAliases",
    "registry",
    "dataRoot",
];
pub(super) const SSH: &[&str] = &[
    "user",
    "passwd",
    "pk",
    "pkPasswd",
    "port",
    "transport",
    "sandbox",
];

pub(super) fn decode(ctx: &mut Ctx<'_>, h: Header<'_>) -> Option<Cluster> {
    let name = h.name.filter(|name| {
        let ok = is_cluster_name(&name.value);
        if !ok {
            ctx.error_hint(
                name.span,
                format!("invalid cluster name `{}`", name.value),
                "use at most 63 lowercase letters, digits and '-': it names the state entry and the data directory",
            );
        }
        ok
    });
    let spec_node = h.spec?;
    let spec = ctx.fields(spec_node, h.spec_at, "Cluster.spec", SPEC)?;

    let image = ctx
        .req_string(&spec, "image")
        .and_then(|text| image_reference(ctx, &text));
    let env = env_list(ctx, &spec, "env");
    let cmd = ctx.opt_strings(&spec, "cmd");
    let app_names = spec.value("appNames").and_then(|node| {
        ctx.strings(node, "Cluster.spec.appNames")
            .map(|names| Spanned::new(names, node.span))
    });
    let ssh = match spec.get("ssh") {
        Some(entry) => ssh(ctx, &entry.value, entry.key_span, "Cluster.spec.ssh"),
        None => Ssh::default(),
    };
    let (hosts, hosts_span) = hosts::host_groups(ctx, &spec);
    if let Some(hosts_span) = hosts_span {
        hosts::check_hosts(ctx, &hosts, &ssh, hosts_span);
    }
    let container_runtime = spec
        .get("containerRuntime")
        .and_then(|entry| container_runtime(ctx, &entry.value, entry.key_span));
    let host_aliases = host_aliases(ctx, &spec);
    let registry = match spec.get("registry") {
        Some(entry) => registry::registry(ctx, &entry.value, entry.key_span),
        None => Registry::default(),
    };
    let data_root = ctx.opt_string(&spec, "dataRoot").filter(|root| {
        let ok = root.value.starts_with('/') && !root.value.split('/').any(|p| p == "..");
        if !ok {
            ctx.error_hint(
                root.span,
                format!(
                    "dataRoot `{}` must be an absolute path without `..`",
                    root.value
                ),
                "for example /var/lib/sealer/data",
            );
        }
        ok
    });

    Some(Cluster {
        span: h.kind_span,
        api_version: h.api_version?,
        name: name?,
        labels: h.labels,
        annotations: h.annotations,
        image: image?,
        env,
        cmd,
        app_names,
        ssh,
        hosts,
        hosts_span: hosts_span?,
        container_runtime,
        host_aliases,
        registry,
        data_root,
    })
}

/// An image reference, reported at its value when it does not parse.
pub(super) fn image_reference(
    ctx: &mut Ctx<'_>,
    text: &Spanned<String>,
) -> Option<Spanned<Reference>> {
    match Reference::parse(&text.value) {
        Ok(reference) => Some(Spanned::new(reference, text.span)),
        Err(error) => {
            for d in error.diagnostics() {
                ctx.error_hints(text.span, d.message.clone(), d.hints.clone());
            }
            None
        }
    }
}

pub(super) fn ssh(ctx: &mut Ctx<'_>, node: &Node, at: Span, path: &str) -> Ssh {
    let Some(fields) = ctx.fields(node, at, path, SSH) else {
        return Ssh::default();
    };
    let transport = ctx.opt_string(&fields, "transport").and_then(|t| {
        ctx.choice(
            &t,
            "transport",
            "transports",
            Transport::NAMES,
            &[Transport::Ssh, Transport::Local],
        )
    });
    Ssh {
        user: ctx
            .opt_string(&fields, "user")
            .filter(|u| !u.value.is_empty()),
        passwd: ctx.secret(&fields, "passwd"),
        pk: ctx
            .opt_string(&fields, "pk")
            .filter(|p| !p.value.is_empty()),
        pk_passwd: ctx.secret(&fields, "pkPasswd"),
        port: ctx.port(&fields, "port"),
        transport,
        sandbox: ctx
            .opt_string(&fields, "sandbox")
            .filter(|p| !p.value.is_empty()),
    }
}

fn container_runtime(ctx: &mut Ctx<'_>, node: &Node, at: Span) -> Option<Spanned<String>> {
    let fields = ctx.fields(node, at, "Cluster.spec.containerRuntime", &["type"])?;
    let kind = ctx.req_string(&fields, "type")?;
    // The type names a script, scripts/<type>.sh, in the image.
    let ok = kind
        .value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !kind.value.starts_with('.');
    if !ok {
        ctx.error_hint(
            kind.span,
            format!("invalid container runtime type `{}`", kind.value),
            "docker, containerd, or NAME for an image with scripts/NAME.sh",
        );
        return None;
    }
    Some(kind)
}

fn host_aliases(ctx: &mut Ctx<'_>, spec: &Fields<'_>) -> Vec<HostAlias> {
    let mut out = Vec::new();
    let Some(node) = spec.value("hostAliases") else {
        return out;
    };
    for (i, item) in ctx
        .seq(node, "Cluster.spec.hostAliases")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = format!("Cluster.spec.hostAliases[{i}]");
        let Some(fields) = ctx.fields(item, item.span, &path, &["ip", "hostnames"]) else {
            continue;
        };
        let ip = match fields.value("ip") {
            Some(node) => ctx.ip(node, &fields.path_of("ip")),
            None => {
                ctx.missing(&fields, "ip");
                None
            }
        };
        let mut hostnames = Vec::new();
        match fields.get("hostnames") {
            None => ctx.missing(&fields, "hostnames"),
            Some(entry) => {
                let listed = ctx
                    .strings(&entry.value, &fields.path_of("hostnames"))
                    .unwrap_or_default();
                if listed.is_empty() {
                    ctx.error(
                        entry.key_span,
                        format!(
                            "{} must list at least one name",
                            fields.path_of("hostnames")
                        ),
                    );
                }
                for name in listed {
                    if is_hostname(&name.value) {
                        hostnames.push(name);
                    } else {
                        ctx.error(name.span, format!("invalid hostname `{}`", name.value));
                    }
                }
            }
        }
        if let Some(ip) = ip {
            out.push(HostAlias { ip, hostnames });
        }
    }
    out
}
