//! `registry_client.<ip>`: how a host reaches the cluster registry (`deploy.md`). Create:
//! the registry's CA (read from the first registry host) goes into
//! `/etc/{docker,containerd}/certs.d/<domain:port>/`, and kubelet's pull credentials are
//! written when basic auth is set (or removed when it was turned off). An update rewrites
//! them (the create again). Destroy: the CA files and the credentials go.

use super::read::ReadBack;
use super::registry::domain_port;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::RegistryInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::RegistryClient,
    replace_on: &[],
    sensitive: &["password"],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host, Foundation::ContainerRuntime],
};

/// Which registry a host pulls from, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryClientAttrs {
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The IP the host reaches a local registry at (none for an external registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A digest of the basic-auth password, never the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The registry hosts the virtual IP (`endpoint`) balances over, for a host that is not
    /// one of them in a cluster of HA registries: the one-shot IPVS rule and the
    /// `reg-lvscare` static pod follow them, as in Sealer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balanced_over: Vec<String>,
}

/// The static pod caring for the registry's VIP on hosts that run no registry.
pub const REG_LVSCARE: &str = "reg-lvscare";

/// The registry's virtual server: the VIP on the registry's port over the registry hosts.
/// The registry has no health path: lvscare probes `/`.
fn registry_virtual_server<'a>(
    vip: &'a str,
    port: u16,
    registry_hosts: &'a [String],
) -> steps::VirtualServer<'a> {
    steps::VirtualServer {
        vip,
        port,
        real_servers: registry_hosts,
        health_path: "/",
    }
}

/// The port of `DOMAIN:PORT` (a local registry always has one).
fn endpoint_port(endpoint: &str) -> Option<u16> {
    endpoint.rsplit_once(':')?.1.parse().ok()
}

/// The `reg-lvscare` static pod for a host reaching HA registries through the VIP, when
/// this plan's host is one (`None` for a registry host or a single registry). The join of a
/// worker writes it again: `kubeadm reset` of an earlier join emptied the manifests.
pub fn registry_lvscare_pod(r: &Runner, host: &str) -> Option<String> {
    let ctx = &r.ctx;
    let port = endpoint_port(&ctx.registry_endpoint)?;
    if ctx.registry_hosts.len() < 2 || ctx.registry_hosts.iter().any(|h| h == host) {
        return None;
    }
    let vs = registry_virtual_server(&ctx.vip, port, &ctx.registry_hosts);
    let image = super::kubernetes_join::lvscare_image(&ctx.registry_endpoint);
    Some(steps::write_static_pod(
        REG_LVSCARE,
        &steps::lvscare_static_pod(REG_LVSCARE, &vs, &image),
    ))
}

impl RegistryClientAttrs {
    /// A client of the cluster input's registry, reaching it at `endpoint` (the VIP over
    /// `balanced_over`, when not empty).
    pub fn from_input(
        registry: &RegistryInput,
        endpoint: Option<String>,
        balanced_over: Vec<String>,
    ) -> RegistryClientAttrs {
        let (domain, port) = domain_port(registry);
        let (username, password) = match registry {
            RegistryInput::Local {
                username,
                password_digest,
                ..
            }
            | RegistryInput::External {
                username,
                password_digest,
                ..
            } => (username.clone(), password_digest.clone()),
        };
        RegistryClientAttrs {
            domain,
            port,
            endpoint,
            username,
            password,
            balanced_over,
        }
    }
}

/// Why a client is updated when the HA registries it balances over changed.
pub fn describe_update(
    before: &Attributes,
    after: &Attributes,
    changed: &std::collections::BTreeSet<String>,
) -> Option<String> {
    if !changed.contains("balanced_over") {
        return None;
    }
    let (moves, now) = super::kubernetes_join::came_and_went(before, after, "balanced_over");
    let moves = if moves.is_empty() {
        String::new()
    } else {
        format!(" ({moves})")
    };
    Some(if now.is_empty() {
        format!(
            "registry hosts changed{moves}: one registry left to reach directly; reg-lvscare.yaml and the VIP's IPVS rule go"
        )
    } else {
        format!(
            "registry hosts changed{moves}: the registry VIP's IPVS rule and reg-lvscare.yaml are rewritten"
        )
    })
}

/// `registry_client.<ip>` on `ip`, after that host's runtime and every registry.
pub fn desired(ip: &str, attrs: &RegistryClientAttrs, depends_on: Vec<String>) -> Desired {
    SCHEMA.desired(format!("registry_client.{ip}"), Some(ip), attrs, depends_on)
}

/// Trusts the registry's CA and writes (or removes) the pull credentials.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    // An external registry has no host here: its CA is the system's business.
    let ca = match ctx.registry_hosts.first() {
        Some(source) => {
            let path = format!("/etc/sealer/registry/{}.crt", ctx.registry_domain);
            r.run(a, source, steps::read_file(&path), Stdin::Null)
                .await?
        }
        None => Vec::new(),
    };
    if !ca.is_empty() {
        r.run(
            a,
            &host,
            steps::registry_client(&ctx.cluster, &ctx.registry_endpoint, None),
            Stdin::Bytes(ca),
        )
        .await?;
    }
    // Hosts without a registry reach HA registries through the VIP: the one-shot rule
    // (the image's seautil: init-kube.sh has not installed it yet), then lvscare's pod.
    if let Some(pod) = registry_lvscare_pod(r, &host) {
        let port = endpoint_port(&ctx.registry_endpoint).unwrap_or_default();
        let vs = registry_virtual_server(&ctx.vip, port, &ctx.registry_hosts);
        let seautil_dir = format!("{}/bin", ctx.rootfs);
        let script = format!(
            "{}{}",
            steps::ipvs_rule(&vs, Some(&seautil_dir)),
            pod.trim_start_matches("set -e\n")
        );
        r.run(a, &host, script, Stdin::Null).await?;
    } else if was_balanced(change)?.is_some() {
        // Not balanced any more (one registry left): the pod and the rule go.
        r.run(a, &host, unbalance(r, change)?, Stdin::Null).await?;
    }
    match &ctx.registry_auth {
        Some((user, password)) => {
            let config = pull_credentials(&ctx.registry_endpoint, user, password);
            r.run(
                a,
                &host,
                steps::registry_credentials(),
                Stdin::Bytes(config.into_bytes()),
            )
            .await?;
        }
        // Auth turned off: the credentials written before go.
        None if had_credentials(change)? => {
            r.run(a, &host, steps::registry_credentials_destroy(), Stdin::Null)
                .await?;
        }
        None => {}
    }
    Ok(Attributes::new())
}

/// Reads the client back: the registry's CA where containerd and docker look for it (the
/// same bytes as the certificate the first registry host serves), and kubelet's pull
/// credentials when the registry has basic auth.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let attrs: RegistryClientAttrs = super::read::attributes(recorded)?;
    let ctx = &r.ctx;
    let host = super::read::host_of(r, recorded);
    let mut findings = Vec::new();
    if let Some(source) = ctx.registry_hosts.first() {
        let served = format!("/etc/sealer/registry/{}.crt", ctx.registry_domain);
        let served = super::read::file_digests(r, source, &[served]).await?;
        let served = &served[0];
        let wrong_ca = format!("is not the certificate the registry on {source} serves");
        // Each file, the digest it should have, and what it is when it has another.
        let mut expected: Vec<(String, Option<String>, &str)> =
            ["/etc/containerd/certs.d", "/etc/docker/certs.d"]
                .iter()
                .map(|dir| {
                    let path = format!("{dir}/{}/ca.crt", ctx.registry_endpoint);
                    (path, served.clone(), wrong_ca.as_str())
                })
                .collect();
        // containerd reads the CA only through its hosts.toml.
        let hosts_toml = steps::containerd_hosts_toml(&ctx.registry_endpoint);
        let hosts_toml = crate::image::layout::sha256_digest(hosts_toml.as_bytes());
        expected.push((
            steps::containerd_hosts_toml_path(&ctx.registry_endpoint),
            Some(hosts_toml.trim_start_matches("sha256:").to_string()),
            "is not the registry host configuration sealer writes",
        ));
        let paths: Vec<String> = expected.iter().map(|(p, _, _)| p.clone()).collect();
        let found = super::read::file_digests(r, &host, &paths).await?;
        for ((path, want, wrong), digest) in expected.iter().zip(found) {
            match (digest, want) {
                (None, _) => findings.push(format!("{path} is missing")),
                (Some(d), Some(w)) if &d != w => findings.push(format!("{path} {wrong}")),
                _ => {}
            }
        }
    }
    // A host reaching HA registries through the VIP: the reg-lvscare pod of the recorded
    // registry hosts.
    if let (false, Some(vip), Some(port)) =
        (attrs.balanced_over.is_empty(), &attrs.endpoint, attrs.port)
    {
        let vs = registry_virtual_server(vip, port, &attrs.balanced_over);
        let image = super::kubernetes_join::lvscare_image(&format!("{}:{port}", attrs.domain));
        let pod = steps::lvscare_static_pod(REG_LVSCARE, &vs, &image);
        let want = crate::image::layout::sha256_digest(pod.as_bytes());
        let path = format!("{}/{REG_LVSCARE}.yaml", steps::STATIC_POD_DIR);
        let found = super::read::file_digests(r, &host, std::slice::from_ref(&path)).await?;
        match &found[0] {
            None => findings.push(format!(
                "{path} is missing: no lvscare keeps the route to the registries"
            )),
            Some(d) if d != want.trim_start_matches("sha256:") => findings.push(format!(
                "{path} is not the lvscare pod sealer wrote for registries {:?}",
                attrs.balanced_over
            )),
            Some(_) => {}
        }
    }
    if attrs.username.is_some() {
        let paths = [
            "/var/lib/kubelet/config.json".to_string(),
            "/var/lib/kubelet/config.json.sealer-owned".to_string(),
        ];
        let found = super::read::file_digests(r, &host, &paths).await?;
        if found[0].is_none() || found[1].is_none() {
            findings.push(
                "kubelet's pull credentials (/var/lib/kubelet/config.json) are not the ones sealer wrote"
                    .to_string(),
            );
        }
    }
    Ok(ReadBack::of_findings(findings))
}

/// Whether the state recorded this client with a username (so credentials were written).
fn had_credentials(change: &Change) -> Result<bool, StepFailure> {
    let Some(before) = change.before.as_ref() else {
        return Ok(false);
    };
    let before: RegistryClientAttrs = super::step_attributes(change, Some(before))?;
    Ok(before.username.is_some())
}

/// The VIP a recorded client reached HA registries through, if it did.
fn was_balanced(change: &Change) -> Result<Option<(String, u16)>, StepFailure> {
    let Some(before) = change.before.as_ref() else {
        return Ok(None);
    };
    let before: RegistryClientAttrs = super::step_attributes(change, Some(before))?;
    Ok(
        match (
            before.balanced_over.is_empty(),
            before.endpoint,
            before.port,
        ) {
            (false, Some(vip), Some(port)) => Some((vip, port)),
            _ => None,
        },
    )
}

/// Removes the `reg-lvscare` pod and the registry's IPVS rule the recorded client had.
fn unbalance(r: &Runner, change: &Change) -> Result<String, StepFailure> {
    let Some((vip, port)) = was_balanced(change)? else {
        return Ok(String::new());
    };
    let seautil_dir = format!("{}/bin", r.ctx.rootfs);
    Ok(format!(
        "set -e\n{}{}",
        steps::remove_static_pod(REG_LVSCARE).trim_start_matches("set -e\n"),
        steps::ipvs_rule_clean(&vip, port, Some(&seautil_dir)).trim_start_matches("set -e\n")
    ))
}

/// Removes the CA files and the pull credentials (and the registry's balancing).
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    let unbalance = unbalance(r, change)?;
    if !unbalance.is_empty() {
        r.run(a, &host, unbalance, Stdin::Null).await?;
    }
    r.run(
        a,
        &host,
        steps::registry_client_destroy(&ctx.cluster, &ctx.registry_endpoint),
        Stdin::Null,
    )
    .await?;
    r.run(a, &host, steps::registry_credentials_destroy(), Stdin::Null)
        .await?;
    Ok(())
}

/// kubelet's pull credentials for the cluster registry, in the docker config format.
fn pull_credentials(endpoint: &str, user: &str, password: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {endpoint: {"auth": auth}}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn external(username: Option<&str>) -> RegistryInput {
        RegistryInput::External {
            domain: "reg.example".to_string(),
            port: None,
            username: username.map(str::to_string),
            password_digest: username.map(|_| "sha256:pw".to_string()),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let local = RegistryInput::Local {
            domain: "sea.hub".to_string(),
            port: 5000,
            ha: true,
            username: Some("admin".to_string()),
            password_digest: Some("sha256:pw".to_string()),
            sans: Vec::new(),
        };
        for attrs in [
            RegistryClientAttrs::from_input(&local, Some("10.0.0.1".to_string()), Vec::new()),
            RegistryClientAttrs::from_input(
                &local,
                Some("10.103.97.2".to_string()),
                vec!["10.0.0.2".to_string(), "10.0.0.3".to_string()],
            ),
            RegistryClientAttrs::from_input(&external(None), None, Vec::new()),
            RegistryClientAttrs::from_input(&external(Some("u")), None, Vec::new()),
        ] {
            let back: RegistryClientAttrs =
                from_attributes("registry_client.1", &to_attributes(&attrs)).unwrap();
            assert_eq!(back, attrs);
        }
    }

    #[test]
    fn a_recorded_map_reads_back() {
        let recorded: Attributes = serde_json::from_value(json!({
            "domain": "sea.hub",
            "port": 5000,
            "endpoint": "10.0.0.1",
            "username": "admin",
            "password": "sha256:pw",
        }))
        .unwrap();
        let attrs: RegistryClientAttrs = from_attributes("registry_client.1", &recorded).unwrap();
        assert_eq!(attrs.endpoint.as_deref(), Some("10.0.0.1"));
        assert_eq!(attrs.username.as_deref(), Some("admin"));
        assert_eq!(to_attributes(&attrs), recorded);
    }

    #[test]
    fn an_external_registry_without_auth_has_only_its_domain() {
        let attrs = RegistryClientAttrs::from_input(&external(None), None, Vec::new());
        let d = desired("10.0.0.2", &attrs, Vec::new());
        assert_eq!(d.attributes.keys().collect::<Vec<_>>(), ["domain"]);
        assert!(d.sensitive.is_empty());
    }

    #[test]
    fn pull_credentials_are_a_docker_config() {
        let config: serde_json::Value =
            serde_json::from_str(&pull_credentials("sea.hub:5000", "admin", "pw")).unwrap();
        // base64("admin:pw")
        assert_eq!(config["auths"]["sea.hub:5000"]["auth"], "YWRtaW46cHc=");
    }
}
