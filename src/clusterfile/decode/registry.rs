//! `Cluster.spec.registry`: the local or the external registry, and the image policy.

use super::reader::{Ctx, Fields};
use crate::clusterfile::model::{ExternalRegistry, ImagePolicy, LocalRegistry, Registry};
use crate::clusterfile::names::is_hostname;
use crate::clusterfile::span::{Span, Spanned};
use crate::clusterfile::yaml::Node;
use std::net::IpAddr;

pub(super) fn registry(ctx: &mut Ctx<'_>, node: &Node, at: Span) -> Registry {
    let known = [
        "localRegistry",
        "externalRegistry",
        "imagePolicy",
        "imagePolicyApp",
        "imagePolicyExclude",
    ];
    let Some(fields) = ctx.fields(node, at, "Cluster.spec.registry", &known) else {
        return Registry::default();
    };
    let local = fields
        .get("localRegistry")
        .and_then(|e| local_registry(ctx, &e.value, e.key_span));
    let external = fields
        .get("externalRegistry")
        .and_then(|e| external_registry(ctx, &e.value, e.key_span));
    if let (Some(_), Some(external)) = (&local, &external) {
        ctx.error_hint(
            external.span,
            "both localRegistry and externalRegistry are set",
            "a cluster uses one registry: remove one of them",
        );
    }
    let image_policy = ctx.opt_string(&fields, "imagePolicy").and_then(|p| {
        ctx.choice(
            &p,
            "image policy",
            "image policies",
            ImagePolicy::NAMES,
            &[ImagePolicy::Kyverno],
        )
    });
    let image_policy_app = ctx.opt_string(&fields, "imagePolicyApp");
    if let Some(app) = image_policy_app.as_ref().filter(|a| a.value.is_empty()) {
        ctx.error(
            app.span,
            "Cluster.spec.registry.imagePolicyApp must not be empty",
        );
    }
    Registry {
        local,
        external,
        image_policy,
        image_policy_app: image_policy_app.filter(|a| !a.value.is_empty()),
        image_policy_exclude: ctx.opt_strings(&fields, "imagePolicyExclude"),
    }
}

fn domain(ctx: &mut Ctx<'_>, text: Spanned<String>) -> Option<Spanned<String>> {
    if is_hostname(&text.value) || text.value.parse::<IpAddr>().is_ok() {
        Some(text)
    } else {
        ctx.error_hint(
            text.span,
            format!("invalid registry domain `{}`", text.value),
            "a host name such as sea.hub, without a port (use port:)",
        );
        None
    }
}

/// Basic auth needs both halves.
fn check_credentials(ctx: &mut Ctx<'_>, fields: &Fields<'_>) -> bool {
    let user = fields.get("username");
    let password = fields.get("password");
    let missing = match (user, password) {
        (Some(u), None) => Some((u.key_span, "username", "password")),
        (None, Some(p)) => Some((p.key_span, "password", "username")),
        _ => None,
    };
    if let Some((span, has, lacks)) = missing {
        ctx.error(span, format!("{} has a {has} but no {lacks}", fields.path));
        return false;
    }
    true
}

fn local_registry(ctx: &mut Ctx<'_>, node: &Node, at: Span) -> Option<LocalRegistry> {
    let path = "Cluster.spec.registry.localRegistry";
    let known = [
        "domain", "port", "ha", "insecure", "username", "password", "cert",
    ];
    let fields = ctx.fields(node, at, path, &known)?;
    check_credentials(ctx, &fields);
    let mut registry = LocalRegistry {
        span: at,
        domain: ctx
            .opt_string(&fields, "domain")
            .and_then(|d| domain(ctx, d)),
        port: ctx.port(&fields, "port"),
        ha: ctx.bool(&fields, "ha"),
        insecure: ctx.bool(&fields, "insecure"),
        username: ctx
            .opt_string(&fields, "username")
            .filter(|u| !u.value.is_empty()),
        password: ctx.secret(&fields, "password"),
        ..LocalRegistry::default()
    };
    if let Some(cert) = fields.get("cert")
        && let Some(cert) = ctx.fields(
            &cert.value,
            cert.key_span,
            &format!("{path}.cert"),
            &["subjectAltName"],
        )
        && let Some(san) = cert.get("subjectAltName")
        && let Some(san) = ctx.fields(
            &san.value,
            san.key_span,
            &format!("{path}.cert.subjectAltName"),
            &["dnsNames", "ips"],
        )
    {
        for name in ctx.opt_strings(&san, "dnsNames").unwrap_or_default() {
            let bare = name.value.strip_prefix("*.").unwrap_or(&name.value);
            if is_hostname(bare) {
                registry.cert_dns_names.push(name);
            } else {
                ctx.error(name.span, format!("invalid DNS name `{}`", name.value));
            }
        }
        if let Some(node) = san.value("ips") {
            let ips_path = san.path_of("ips");
            for (i, item) in ctx
                .seq(node, &ips_path)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                registry
                    .cert_ips
                    .extend(ctx.ip(item, &format!("{ips_path}[{i}]")));
            }
        }
    }
    Some(registry)
}

fn external_registry(ctx: &mut Ctx<'_>, node: &Node, at: Span) -> Option<ExternalRegistry> {
    let path = "Cluster.spec.registry.externalRegistry";
    let known = ["domain", "port", "username", "password"];
    let fields = ctx.fields(node, at, path, &known)?;
    check_credentials(ctx, &fields);
    let domain = ctx
        .req_string(&fields, "domain")
        .and_then(|d| domain(ctx, d));
    let port = ctx.port(&fields, "port");
    let username = ctx
        .opt_string(&fields, "username")
        .filter(|u| !u.value.is_empty());
    let password = ctx.secret(&fields, "password");
    Some(ExternalRegistry {
        span: at,
        domain: domain?,
        port,
        username,
        password,
    })
}
