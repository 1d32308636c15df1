//! The resource model of `deploy.md`: which resources a cluster has, their attributes, and
//! what depends on what. Pure: the same input gives the same resources in the same order.

use super::input::{ClusterInput, HostInput, Launch, RegistryInput};
use crate::kinds::{
    app, container_runtime, host, image_policy, plugin, registry, registry_client, rootfs,
};
use crate::resource::{Attributes, Desired, ResourceType};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The address of a host's join: `kubernetes.init` for master0.
pub fn join_address(input: &ClusterInput, host: &HostInput) -> Option<String> {
    let master0 = input.hosts.iter().find(|h| h.is_master())?;
    if host.ip == master0.ip {
        Some("kubernetes.init".to_string())
    } else if host.is_master() {
        Some(format!("kubernetes.master.{}", host.ip))
    } else if host.is_worker() {
        Some(format!("kubernetes.worker.{}", host.ip))
    } else {
        None
    }
}

struct Builder {
    resources: Vec<Desired>,
    index: std::collections::HashMap<String, usize>,
}

impl Builder {
    fn add(
        &mut self,
        address: String,
        resource_type: ResourceType,
        host: Option<&str>,
        attributes: Value,
    ) -> &mut Desired {
        let attributes: Attributes = match attributes {
            Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            _ => Attributes::new(),
        };
        self.resources.push(Desired {
            address,
            resource_type,
            host: host.map(str::to_string),
            attributes,
            sensitive: BTreeSet::new(),
            computed: BTreeSet::new(),
            replace_on: BTreeSet::new(),
            depends_on: Vec::new(),
        });
        let last = self.resources.len() - 1;
        self.index
            .insert(self.resources[last].address.clone(), last);
        &mut self.resources[last]
    }

    /// Adds a resource a kind module built.
    fn push(&mut self, desired: Desired) -> &mut Desired {
        self.resources.push(desired);
        let last = self.resources.len() - 1;
        self.index
            .insert(self.resources[last].address.clone(), last);
        &mut self.resources[last]
    }

    fn get_mut(&mut self, address: &str) -> Option<&mut Desired> {
        let i = *self.index.get(address)?;
        self.resources.get_mut(i)
    }

    /// Drops repeated dependencies, keeping the first mention (adding is unchecked: a
    /// worker list can be thousands long).
    fn finish(mut self) -> Vec<Desired> {
        for r in &mut self.resources {
            let mut seen = std::collections::HashSet::new();
            r.depends_on.retain(|d| seen.insert(d.clone()));
        }
        self.resources
    }
}

impl Desired {
    fn deps(&mut self, deps: impl IntoIterator<Item = String>) -> &mut Self {
        self.depends_on.extend(deps);
        self
    }

    fn sensitive(&mut self, names: &[&str]) -> &mut Self {
        for n in names {
            if self.attributes.contains_key(*n) {
                self.sensitive.insert(n.to_string());
            }
        }
        self
    }

    fn replace_on(&mut self, names: &[&str]) -> &mut Self {
        self.replace_on.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Every attribute forces replacement (resources with no in-place update).
    fn replace_on_all(&mut self) -> &mut Self {
        let keys: Vec<String> = self.attributes.keys().cloned().collect();
        self.replace_on.extend(keys);
        self
    }
}

/// Compiles the cluster into its resources, in a fixed order (hosts in file order, then
/// cluster-wide resources); the plan sorts them topologically.
pub fn compile(input: &ClusterInput) -> Vec<Desired> {
    // About six resources per host, plus the apps and plugins: sized once, not rehashed.
    let estimate = input.hosts.len() * 7 + 64;
    let mut b = Builder {
        resources: Vec::with_capacity(estimate),
        index: std::collections::HashMap::with_capacity(estimate),
    };
    let Some(master0) = input.hosts.iter().find(|h| h.is_master()) else {
        return Vec::new();
    };
    let masters: Vec<&HostInput> = input.hosts.iter().filter(|h| h.is_master()).collect();
    let registry_hosts: Vec<&HostInput> = match &input.registry {
        RegistryInput::Local { ha: true, .. } => masters.clone(),
        RegistryInput::Local { ha: false, .. } => vec![master0],
        RegistryInput::External { .. } => Vec::new(),
    };
    let (reg_domain, _) = registry::domain_port(&input.registry);
    let registry_line = |host: &HostInput| -> Option<String> {
        match &input.registry {
            RegistryInput::Local { ha, .. } => {
                let ip = if *ha && host.is_master() {
                    host.ip.clone()
                } else {
                    master0.ip.clone()
                };
                Some(format!("{ip} {reg_domain}"))
            }
            RegistryInput::External { .. } => None,
        }
    };

    for host in &input.hosts {
        let ip = host.ip.as_str();
        let mut entries = input.host_aliases.clone();
        entries.extend(registry_line(host));
        b.push(host::desired(host, entries));
        let registry_data = registry_hosts.iter().any(|r| r.ip == host.ip);
        b.push(rootfs::desired(input, host, registry_data));
        b.push(container_runtime::desired(input, ip));
    }

    let registry_attrs = registry::RegistryAttrs::from_input(&input.registry, &input.image_digest);
    for host in &registry_hosts {
        let ip = host.ip.as_str();
        let mut deps = vec![format!("container_runtime.{ip}")];
        // HA registries serve the first one's certificate: it must exist first.
        deps.extend(
            registry_hosts
                .first()
                .filter(|first| first.ip != host.ip)
                .map(|first| format!("registry.{}", first.ip)),
        );
        b.push(registry::desired(ip, &registry_attrs, deps));
    }

    let registry_addresses: Vec<String> = registry_hosts
        .iter()
        .map(|h| format!("registry.{}", h.ip))
        .collect();
    for host in &input.hosts {
        let ip = host.ip.as_str();
        let endpoint =
            registry_line(host).map(|l| l.split(' ').next().unwrap_or_default().to_string());
        let attrs = registry_client::RegistryClientAttrs::from_input(&input.registry, endpoint);
        let mut deps = vec![format!("container_runtime.{ip}")];
        deps.extend(registry_addresses.iter().cloned());
        b.push(registry_client::desired(ip, &attrs, deps));
    }

    // Joins: master0 inits, other masters join one at a time, workers in parallel.
    let master_ips: Vec<String> = masters.iter().map(|h| h.ip.clone()).collect();
    let api_endpoint_for_workers = if masters.len() == 1 {
        master0.ip.clone()
    } else {
        input.vip.clone()
    };
    b.add(
        "kubernetes.init".to_string(),
        ResourceType::KubernetesInit,
        Some(&master0.ip),
        json!({
            "master0": master0.ip,
            "kube_version": input.kube_version,
            "kubeadm_config": input.kubeadm_config,
            "cert_sans": input.cert_sans,
            "svc_cidr": input.svc_cidr,
            "pod_cidr": input.pod_cidr,
            "api_server": "apiserver.cluster.local:6443",
        }),
    )
    .deps([format!("container_runtime.{}", master0.ip)])
    .deps([format!("registry_client.{}", master0.ip)])
    .replace_on(&["kubeadm_config", "cert_sans", "svc_cidr", "pod_cidr"]);

    // Joins carry the kubeadm configuration as a digest: the text is shown once, on
    // kubernetes.init, instead of once per node (5,000 copies at 5,000 hosts).
    let kubeadm_digest = crate::image::layout::sha256_digest(input.kubeadm_config.as_bytes());
    let mut previous = "kubernetes.init".to_string();
    let mut master_joins = Vec::new();
    for host in masters.iter().skip(1) {
        let ip = host.ip.as_str();
        let address = format!("kubernetes.master.{ip}");
        b.add(
            address.clone(),
            ResourceType::KubernetesMaster,
            Some(ip),
            json!({"kube_version": input.kube_version, "kubeadm_config_digest": kubeadm_digest, "master0": master0.ip}),
        )
        .replace_on_all()
        .deps(["kubernetes.init".to_string(), format!("container_runtime.{ip}")])
        .deps([previous.clone(), format!("registry_client.{ip}")]);
        master_joins.push(address.clone());
        previous = address;
    }
    let mut worker_joins = Vec::new();
    for host in input
        .hosts
        .iter()
        .filter(|h| h.is_worker() && !h.is_master())
    {
        let ip = host.ip.as_str();
        let address = format!("kubernetes.worker.{ip}");
        b.add(
            address.clone(),
            ResourceType::KubernetesWorker,
            Some(ip),
            json!({
                "kube_version": input.kube_version,
                "kubeadm_config_digest": kubeadm_digest,
                "api_endpoint": api_endpoint_for_workers,
                "masters": master_ips,
            }),
        )
        .replace_on(&["kube_version", "kubeadm_config_digest"])
        .deps([
            "kubernetes.init".to_string(),
            format!("container_runtime.{ip}"),
        ])
        .deps(master_joins.iter().cloned())
        .deps([format!("registry_client.{ip}")]);
        worker_joins.push(address);
    }
    let mut all_joins = vec!["kubernetes.init".to_string()];
    all_joins.extend(master_joins.iter().cloned());
    all_joins.extend(worker_joins.iter().cloned());

    for host in &input.hosts {
        let Some(join) = join_address(input, host) else {
            continue;
        };
        let role = if host.is_master() { "master" } else { "node" };
        b.add(
            format!("node_meta.{}", host.ip),
            ResourceType::NodeMeta,
            Some(&host.ip),
            json!({"role": role, "labels": host.labels, "taints": host.taints}),
        )
        .deps([join]);
    }

    // Plugins at their phases: each waits for what comes before its phase, and what comes
    // after it (a runtime, the joins of a scale-up) waits for it.
    let scaleup_joins: Vec<String> = master_joins.iter().chain(&worker_joins).cloned().collect();
    let joins = plugin::Joins {
        all: &all_joins,
        scaleup: &scaleup_joins,
    };
    let mut post_install = Vec::new();
    for p in &input.plugins {
        for phase in &p.phases {
            for placed in plugin::desired(input, &master0.ip, &joins, p, phase) {
                let address = placed.desired.address.clone();
                b.push(placed.desired);
                for dependent in placed.dependents {
                    if let Some(r) = b.get_mut(&dependent) {
                        r.deps([address.clone()]);
                    }
                }
                if phase == "post-install" {
                    post_install.push(address);
                }
            }
        }
    }

    // Apps (or raw commands) in launch order after every join and the post-install plugins.
    let mut previous: Option<String> = None;
    let mut entry_deps: Vec<String> = all_joins.clone();
    entry_deps.extend(post_install.iter().cloned());
    match &input.launch {
        Launch::Raw(cmds) if !cmds.is_empty() => {
            b.push(app::desired(
                app::RAW_LAUNCH,
                &app::AppAttrs::raw(cmds),
                &master0.ip,
                entry_deps.clone(),
            ));
        }
        Launch::Raw(_) => {}
        Launch::Apps(apps) => {
            let mut policy_applied: Option<String> = None;
            for app in apps {
                let address = format!("app.{}", app.name);
                let deps: Vec<String> = match &previous {
                    Some(p) => vec![p.clone()],
                    None => entry_deps.clone(),
                };
                b.push(app::desired(
                    &app.name,
                    &app::AppAttrs::from_input(app),
                    &master0.ip,
                    deps,
                ))
                .deps(policy_applied.clone());
                previous = Some(address.clone());
                if let Some(policy) = &input.image_policy
                    && policy.app == app.name
                {
                    b.push(image_policy::desired(
                        &image_policy::ImagePolicyAttrs::from_input(policy),
                        &master0.ip,
                        &address,
                    ));
                    policy_applied = Some(image_policy::ADDRESS.to_string());
                }
            }
        }
    }
    b.finish()
}

/// The resources as DOT, for `sealer graph` (edges point from a dependency to its dependent).
pub fn to_dot(cluster: &str, resources: &[Desired]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", cluster.replace('"', "\\\""));
    let _ = writeln!(
        out,
        "  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
    );
    let mut sorted: Vec<&Desired> = resources.iter().collect();
    sorted.sort_by(|a, b| a.address.cmp(&b.address));
    for r in &sorted {
        let _ = writeln!(out, "  \"{}\";", r.address);
    }
    let mut edges: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in &sorted {
        for d in &r.depends_on {
            edges.insert((d.as_str(), r.address.as_str()));
        }
    }
    for (from, to) in edges {
        let _ = writeln!(out, "  \"{from}\" -> \"{to}\";");
    }
    out.push_str("}\n");
    out
}

/// Addresses that must exist for the graph to be consistent (used by tests and resolve).
pub fn dangling_dependencies(resources: &[Desired]) -> BTreeMap<String, Vec<String>> {
    let known: BTreeSet<&str> = resources.iter().map(|r| r.address.as_str()).collect();
    let mut out = BTreeMap::new();
    for r in resources {
        let missing: Vec<String> = r
            .depends_on
            .iter()
            .filter(|d| !known.contains(d.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            out.insert(r.address.clone(), missing);
        }
    }
    out
}
