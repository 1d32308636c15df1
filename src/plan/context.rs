//! What every step of a plan shares, decided when the plan is made: where the rootfs lives,
//! which host is master0, the masters and the virtual IP workers reach them through, the
//! registry's endpoint and hosts. It is part of the plan (saved with it, re-derived and
//! compared with it at apply), so the executor reads these decisions instead of making them
//! again from the Clusterfile or guessing them from the state.
//!
//! Secrets are not here: each host's env and the registry password are read at apply from
//! the Clusterfile the plan pins by digest (a saved plan is re-derived from exactly those
//! bytes), and the plan shows only their digests (`env_digest`, `password` attributes).

use crate::graph::input::{ClusterInput, RegistryInput};
use crate::kinds::registry::RegistryAttrs;
use crate::kinds::registry_client::RegistryClientAttrs;
use crate::kinds::rootfs::RootfsAttrs;
use crate::kinds::{self, kubernetes_init};
use crate::resource::{Recorded, ResourceType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// `<dataRoot>/<cluster>` on every host, and its `rootfs`.
    pub data_dir: String,
    pub rootfs: String,
    pub master0: String,
    pub masters: Vec<String>,
    /// The address workers reach several masters through.
    pub vip: String,
    pub registry: RegistryContext,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryContext {
    pub domain: String,
    /// `domain:port` (or the domain alone for an external registry without a port).
    pub endpoint: String,
    /// Hosts that run a registry; the first makes the certificate.
    pub hosts: Vec<String>,
    pub sans: Vec<String>,
    pub username: Option<String>,
}

impl Context {
    /// The context of a compiled cluster.
    pub fn of_input(input: &ClusterInput) -> Context {
        let masters = input.master_ips();
        let master0 = masters.first().cloned().unwrap_or_default();
        let registry = match &input.registry {
            RegistryInput::Local {
                domain,
                port,
                ha,
                sans,
                username,
                ..
            } => RegistryContext {
                domain: domain.clone(),
                endpoint: format!("{domain}:{port}"),
                hosts: if *ha {
                    masters.clone()
                } else {
                    vec![master0.clone()]
                },
                sans: sans.clone(),
                username: username.clone(),
            },
            RegistryInput::External {
                domain,
                port,
                username,
                ..
            } => RegistryContext {
                domain: domain.clone(),
                endpoint: port.map_or(domain.clone(), |p| format!("{domain}:{p}")),
                hosts: Vec::new(),
                sans: Vec::new(),
                username: username.clone(),
            },
        };
        Context {
            data_dir: input.rootfs_path.trim_end_matches("/rootfs").to_string(),
            rootfs: input.rootfs_path.clone(),
            master0,
            masters,
            vip: input.vip.clone(),
            registry,
        }
    }

    /// The context of a cluster known only from its state (`destroy --cluster`, `run`):
    /// what its resources recorded. A value nothing recorded is one no step needs.
    pub fn of_state(resources: &BTreeMap<String, Recorded>) -> Context {
        let of_type = |t: ResourceType| resources.values().filter(move |r| r.resource_type == t);
        let rootfs = of_type(ResourceType::Rootfs)
            .find_map(|r| kinds::from_attributes::<RootfsAttrs>(&r.address, &r.attributes).ok())
            .map(|a| a.path)
            .unwrap_or_default();
        let master0 = resources
            .get(kubernetes_init::ADDRESS)
            .and_then(|r| r.host.clone())
            .unwrap_or_default();
        let mut masters: Vec<String> = vec![master0.clone()];
        masters.extend(of_type(ResourceType::KubernetesMaster).filter_map(|r| r.host.clone()));
        masters.retain(|m| !m.is_empty());
        // Clients and registries record the same domain, port and user.
        let registry = of_type(ResourceType::RegistryClient)
            .find_map(|r| {
                kinds::from_attributes::<RegistryClientAttrs>(&r.address, &r.attributes).ok()
            })
            .map(|c| (c.domain, c.port, c.username))
            .or_else(|| {
                of_type(ResourceType::Registry)
                    .find_map(|r| {
                        kinds::from_attributes::<RegistryAttrs>(&r.address, &r.attributes).ok()
                    })
                    .map(|r| (r.domain, r.port, r.username))
            });
        let (domain, port, username) = registry.unwrap_or_default();
        Context {
            data_dir: rootfs.trim_end_matches("/rootfs").to_string(),
            rootfs,
            master0,
            masters,
            vip: String::new(),
            registry: RegistryContext {
                endpoint: port.map_or(domain.clone(), |p| format!("{domain}:{p}")),
                domain,
                hosts: of_type(ResourceType::Registry)
                    .filter_map(|r| r.host.clone())
                    .collect(),
                sans: Vec::new(),
                username,
            },
        }
    }
}
