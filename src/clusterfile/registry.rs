//! The cluster's registry with defaults applied: the local one (`sea.hub:5000`, HA, TLS)
//! unless an external one is configured.

use super::model::{Clusterfile, ImagePolicy};
use super::secret::Secret;
use std::net::IpAddr;

pub const DEFAULT_LOCAL_DOMAIN: &str = "sea.hub";
pub const DEFAULT_LOCAL_PORT: u16 = 5000;
pub const DEFAULT_IMAGE_POLICY_APP: &str = "kyverno";
pub const DEFAULT_IMAGE_POLICY_EXCLUDE: &[&str] = &["kube-system", "kyverno"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryKind {
    /// Run by sealer on master0, or on every master when `ha`.
    Local {
        ha: bool,
        insecure: bool,
        cert_dns_names: Vec<String>,
        cert_ips: Vec<IpAddr>,
    },
    External,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEndpoint {
    pub kind: RegistryKind,
    pub domain: String,
    /// Always set for a local registry; an external one may have none.
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl RegistryEndpoint {
    /// `domain[:port]`.
    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.domain),
            None => self.domain.clone(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.kind, RegistryKind::Local { .. })
    }
}

impl Clusterfile {
    pub fn registry(&self) -> RegistryEndpoint {
        let registry = &self.cluster.registry;
        if let Some(external) = &registry.external {
            return RegistryEndpoint {
                kind: RegistryKind::External,
                domain: external.domain.value.clone(),
                port: external.port.as_ref().map(|p| p.value),
                username: external.username.as_ref().map(|u| u.value.clone()),
                password: external.password.as_ref().map(|p| p.value.clone()),
            };
        }
        let local = registry.local.clone().unwrap_or_default();
        RegistryEndpoint {
            kind: RegistryKind::Local {
                ha: local.ha.is_none_or(|h| h.value),
                insecure: local.insecure.is_some_and(|i| i.value),
                cert_dns_names: local
                    .cert_dns_names
                    .iter()
                    .map(|n| n.value.clone())
                    .collect(),
                cert_ips: local.cert_ips.iter().map(|i| i.value).collect(),
            },
            domain: local
                .domain
                .map_or_else(|| DEFAULT_LOCAL_DOMAIN.to_string(), |d| d.value),
            port: Some(local.port.map_or(DEFAULT_LOCAL_PORT, |p| p.value)),
            username: local.username.map(|u| u.value),
            password: local.password.map(|p| p.value),
        }
    }

    /// `spec.registry.imagePolicy` (the image label can also enable it; not known here).
    pub fn image_policy(&self) -> Option<ImagePolicy> {
        self.cluster.registry.image_policy.as_ref().map(|p| p.value)
    }

    pub fn image_policy_app(&self) -> &str {
        self.cluster
            .registry
            .image_policy_app
            .as_ref()
            .map_or(DEFAULT_IMAGE_POLICY_APP, |a| a.value.as_str())
    }

    pub fn image_policy_exclude(&self) -> Vec<String> {
        match &self.cluster.registry.image_policy_exclude {
            Some(list) => list.iter().map(|n| n.value.clone()).collect(),
            None => DEFAULT_IMAGE_POLICY_EXCLUDE
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}
