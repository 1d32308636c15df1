//! `registry.<ip>`: the cluster's image registry, on master0 or, with `ha`, on every master
//! (`deploy.md`). Create: the first registry host makes the TLS certificate and key, the
//! others receive them host to host through memory; with basic auth, the htpasswd file is
//! written from stdin; then the image's `init-registry.sh <port> ROOTFS/registry <domain>`
//! starts it. An update re-runs the create. Destroy: the image's `clean-registry.sh` (if
//! it has one), then the certificate goes.

use super::read::ReadBack;
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
    resource_type: ResourceType::Registry,
    replace_on: &[],
    sensitive: &["password"],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host, Foundation::ContainerRuntime],
};

/// The port `init-registry.sh` is given when the attributes name none.
const DEFAULT_PORT: u16 = 5000;

/// What a registry serves, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAttrs {
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The cluster image's digest: the registry data comes from it.
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A digest of the basic-auth password, never the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Extra names in the registry's certificate.
    pub cert_sans: Vec<String>,
}

impl RegistryAttrs {
    /// The registry of the cluster input, serving the data of the image `image_digest`.
    pub fn from_input(registry: &RegistryInput, image_digest: &str) -> RegistryAttrs {
        let (domain, port) = domain_port(registry);
        let (username, password, cert_sans) = match registry {
            RegistryInput::Local {
                username,
                password_digest,
                sans,
                ..
            } => (username.clone(), password_digest.clone(), sans.clone()),
            RegistryInput::External { .. } => (None, None, Vec::new()),
        };
        RegistryAttrs {
            domain,
            port,
            data: image_digest.to_string(),
            username,
            password,
            cert_sans,
        }
    }
}

/// The registry's domain and port (an external registry may leave the port to its scheme).
pub fn domain_port(registry: &RegistryInput) -> (String, Option<u16>) {
    match registry {
        RegistryInput::Local { domain, port, .. } => (domain.clone(), Some(*port)),
        RegistryInput::External { domain, port, .. } => (domain.clone(), *port),
    }
}

/// `registry.<ip>` on `ip`, after that host's runtime (and, on HA masters, after the first
/// registry, whose certificate it serves: `depends_on` says so).
pub fn desired(ip: &str, attrs: &RegistryAttrs, depends_on: Vec<String>) -> Desired {
    SCHEMA.desired(format!("registry.{ip}"), Some(ip), attrs, depends_on)
}

/// Certificate, htpasswd, then `init-registry.sh`.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let attrs: RegistryAttrs = super::step_attributes(change, change.after())?;
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    let port = attrs.port.unwrap_or(DEFAULT_PORT).to_string();
    serve_certificate(r, a, &host).await?;
    let mut exports = r.exports(&host).to_string();
    if let Some((user, password)) = &ctx.registry_auth {
        let path = steps::registry_htpasswd_path(&ctx.registry_domain);
        let line = htpasswd_line(user, password).map_err(StepFailure::message)?;
        r.run(
            a,
            &host,
            steps::write_stdin_to(&path, "600"),
            Stdin::Bytes(line.into_bytes()),
        )
        .await?;
        // The image's init-registry.sh turns basic auth on when this is set.
        exports.push_str(&format!(
            "export RegistryHtpasswd={}\n",
            sealer_providers::quote::quote(&path)
        ));
    }
    let data = format!("{}/registry", ctx.rootfs);
    r.run(
        a,
        &host,
        steps::image_script(
            &ctx.rootfs,
            &exports,
            "init-registry.sh",
            &[port, data, ctx.registry_domain.clone()],
        ),
        Stdin::Null,
    )
    .await?;
    Ok(Attributes::new())
}

/// Reads the registry back: the certificate and key it serves, and the htpasswd file when
/// it has basic auth. (Its data is the rootfs's `registry/`, read back with the rootfs.)
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let attrs: RegistryAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let mut paths = vec![
        format!("/etc/sealer/registry/{}.crt", attrs.domain),
        format!("/etc/sealer/registry/{}.key", attrs.domain),
    ];
    if attrs.username.is_some() {
        paths.push(steps::registry_htpasswd_path(&attrs.domain));
    }
    let found = super::read::file_digests(r, &host, &paths).await?;
    let missing: Vec<String> = paths
        .iter()
        .zip(&found)
        .filter(|(_, digest)| digest.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    Ok(if missing.len() == paths.len() {
        ReadBack::gone(format!(
            "{} are not there: the registry's certificate is gone",
            missing.join(" and ")
        ))
    } else {
        ReadBack::of_findings(missing.iter().map(|p| format!("{p} is missing")).collect())
    })
}

/// Makes the certificate on the first registry host; copies it to the others.
async fn serve_certificate(r: &Runner, a: &str, host: &str) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let first = ctx
        .registry_hosts
        .first()
        .cloned()
        .unwrap_or_else(|| ctx.master0.clone());
    if host == first {
        r.run(
            a,
            host,
            steps::registry_cert(&ctx.registry_domain, &ctx.registry_sans),
            Stdin::Null,
        )
        .await?;
        return Ok(());
    }
    // HA registries serve the first one's certificate: copied host to host through
    // memory, never written on the operator machine.
    for ext in ["crt", "key"] {
        let path = format!("/etc/sealer/registry/{}.{ext}", ctx.registry_domain);
        let bytes = r.run_secret(a, &first, steps::read_file(&path)).await?;
        r.run(
            a,
            host,
            steps::write_stdin_to(&path, if ext == "key" { "600" } else { "644" }),
            Stdin::Bytes(bytes),
        )
        .await?;
    }
    Ok(())
}

/// `clean-registry.sh` if the image has it, then the certificate.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    r.run(
        a,
        &host,
        steps::optional_image_script(&ctx.rootfs, r.exports(&host), "clean-registry.sh"),
        Stdin::Null,
    )
    .await?;
    r.run(
        a,
        &host,
        steps::registry_cert_destroy(&ctx.registry_domain),
        Stdin::Null,
    )
    .await?;
    Ok(())
}

/// The htpasswd line of the registry's basic auth (bcrypt: the only scheme docker-registry
/// accepts). Made here and sent on stdin: the password never reaches a command line.
fn htpasswd_line(user: &str, password: &str) -> Result<String, String> {
    let hash = bcrypt::hash(password, bcrypt::DEFAULT_COST)
        .map_err(|e| format!("cannot hash the registry password: {e}"))?;
    Ok(format!("{user}:{hash}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn local(username: Option<&str>) -> RegistryInput {
        RegistryInput::Local {
            domain: "sea.hub".to_string(),
            port: 5000,
            ha: false,
            username: username.map(str::to_string),
            password_digest: username.map(|_| "sha256:pw".to_string()),
            sans: vec!["reg.example".to_string()],
        }
    }

    #[test]
    fn attributes_round_trip() {
        for attrs in [
            RegistryAttrs::from_input(&local(Some("admin")), "sha256:img"),
            RegistryAttrs::from_input(&local(None), "sha256:img"),
        ] {
            let back: RegistryAttrs =
                from_attributes("registry.1", &to_attributes(&attrs)).unwrap();
            assert_eq!(back, attrs);
        }
    }

    #[test]
    fn a_recorded_map_reads_back() {
        let recorded: Attributes = serde_json::from_value(json!({
            "domain": "sea.hub",
            "port": 5000,
            "data": "sha256:img",
            "username": "admin",
            "password": "sha256:pw",
            "cert_sans": ["reg.example"],
        }))
        .unwrap();
        let attrs: RegistryAttrs = from_attributes("registry.1", &recorded).unwrap();
        assert_eq!(
            attrs,
            RegistryAttrs::from_input(&local(Some("admin")), "sha256:img")
        );
        assert_eq!(to_attributes(&attrs), recorded);
    }

    #[test]
    fn without_auth_there_is_no_username_password_nor_sensitive_attribute() {
        let attrs = RegistryAttrs::from_input(&local(None), "sha256:img");
        let d = desired(
            "10.0.0.1",
            &attrs,
            vec!["container_runtime.10.0.0.1".into()],
        );
        assert!(!d.attributes.contains_key("username"));
        assert!(!d.attributes.contains_key("password"));
        assert!(d.sensitive.is_empty());
        let with_auth = RegistryAttrs::from_input(&local(Some("admin")), "sha256:img");
        let d = desired("10.0.0.1", &with_auth, Vec::new());
        assert_eq!(d.sensitive.iter().collect::<Vec<_>>(), ["password"]);
    }

    #[test]
    fn an_external_registry_may_have_no_port() {
        let external = RegistryInput::External {
            domain: "reg.example".to_string(),
            port: None,
            username: None,
            password_digest: None,
        };
        assert_eq!(domain_port(&external), ("reg.example".to_string(), None));
    }
}
