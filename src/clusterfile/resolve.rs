//! Defaults and derived values of the cluster: env keys, data root, launch overrides.

use super::env::{DEFAULT_POD_CIDR, DEFAULT_SVC_CIDR, Env, EnvValue, service_ips};
use super::hosts::{Host, env_of};
use super::model::Clusterfile;
use super::registry::RegistryKind;
use crate::diag::{Error, Result};

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/sealer/data";

impl Clusterfile {
    pub fn name(&self) -> &str {
        &self.cluster.name.value
    }

    /// The cluster env as written (`spec.env`).
    pub fn env(&self) -> Env {
        env_of(&self.cluster.env)
    }

    /// `spec.dataRoot`, else `/var/lib/sealer/data`.
    pub fn data_root(&self) -> &str {
        self.cluster
            .data_root
            .as_ref()
            .map_or(DEFAULT_DATA_ROOT, |d| d.value.as_str())
    }

    /// `spec.containerRuntime.type` when written (else the image label, else docker: decided
    /// by the caller, which has the image).
    pub fn container_runtime(&self) -> Option<&str> {
        self.cluster
            .container_runtime
            .as_ref()
            .map(|t| t.value.as_str())
    }

    /// `spec.appNames` with empty names dropped: `Some([])` for `[]` or `[""]` (launch
    /// nothing), `None` when absent.
    pub fn app_names(&self) -> Option<Vec<&str>> {
        self.cluster.app_names.as_ref().map(|names| {
            names
                .value
                .iter()
                .map(|n| n.value.as_str())
                .filter(|n| !n.is_empty())
                .collect()
        })
    }

    /// The registry keys: `LocalRegistry*` or `ExternalRegistry*`, and `Registry*`.
    pub fn registry_env(&self) -> Env {
        let registry = self.registry();
        let prefix = match registry.kind {
            RegistryKind::Local { .. } => "LocalRegistry",
            RegistryKind::External => "ExternalRegistry",
        };
        let mut env = Env::new();
        for p in [prefix, "Registry"] {
            env.insert_scalar(format!("{p}Domain"), registry.domain.clone());
            if let Some(port) = registry.port {
                env.insert_scalar(format!("{p}Port"), port.to_string());
            }
            env.insert_scalar(format!("{p}URL"), registry.url());
        }
        env
    }

    /// The keys sealer derives for the whole cluster from a merged env (image < cluster):
    /// registry keys, `ContainerRuntime` when known, `KubeSvcIP` and `DNSSvcIP` from the
    /// env's `SvcCIDR` (default 10.96.0.0/22).
    pub fn derived_env(&self, merged: &Env, container_runtime: Option<&str>) -> Result<Env> {
        let mut env = self.registry_env();
        if let Some(runtime) = container_runtime.or(self.container_runtime()) {
            env.insert_scalar("ContainerRuntime", runtime);
        }
        let default = EnvValue::Scalar(DEFAULT_SVC_CIDR.to_string());
        let svc = merged.get("SvcCIDR").unwrap_or(&default);
        let (kube, dns) =
            service_ips(svc).map_err(|why| Error::msg(format!("invalid SvcCIDR: {why}")))?;
        env.insert_scalar("KubeSvcIP", kube.to_string());
        env.insert_scalar("DNSSvcIP", dns.to_string());
        Ok(env)
    }

    /// A host's whole env: image env < cluster env < host env, then the SvcCIDR and
    /// PodCIDR defaults, the derived keys and `HostIP`.
    pub fn host_env(
        &self,
        host: &Host,
        image_env: &Env,
        container_runtime: Option<&str>,
    ) -> Result<Env> {
        let mut env = image_env.clone();
        env.merge(&host.env);
        env.insert_default("SvcCIDR", DEFAULT_SVC_CIDR);
        env.insert_default("PodCIDR", DEFAULT_POD_CIDR);
        let derived = self.derived_env(&env, container_runtime)?;
        env.merge(&derived);
        env.insert_scalar("HostIP", host.ip.to_string());
        Ok(env)
    }
}
