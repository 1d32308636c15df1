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
}

impl RegistryClientAttrs {
    /// A client of the cluster input's registry, reaching it at `endpoint`.
    pub fn from_input(registry: &RegistryInput, endpoint: Option<String>) -> RegistryClientAttrs {
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
        }
    }
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

/// Removes the CA files and the pull credentials.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
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
            RegistryClientAttrs::from_input(&local, Some("10.0.0.1".to_string())),
            RegistryClientAttrs::from_input(&external(None), None),
            RegistryClientAttrs::from_input(&external(Some("u")), None),
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
        let attrs = RegistryClientAttrs::from_input(&external(None), None);
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
