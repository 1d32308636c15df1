//! The resource model of `deploy.md`: which resources a cluster has and what depends on
//! what; each kind builds its own resources (`crate::kinds`). Pure: the same input gives the same resources in the same order.

use super::input::{ClusterInput, HostInput, Launch, RegistryInput};
use crate::kinds::kubernetes_join::join_address;
use crate::kinds::{
    app, container_runtime, host, image_policy, kubernetes_init, kubernetes_join, node_meta,
    plugin, registry, registry_client, rootfs,
};
use crate::resource::Desired;
use std::collections::{BTreeMap, BTreeSet};

struct Builder {
    resources: Vec<Desired>,
    index: std::collections::HashMap<String, usize>,
}

impl Builder {
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
    // HA registries (several): a registry host reaches its own; the others reach them all
    // through the VIP that the image's seautil rule and lvscare pod balance (deploy.md).
    let balanced = registry_hosts.len() > 1;
    let registry_line = |host: &HostInput| -> Option<String> {
        match &input.registry {
            RegistryInput::Local { ha, .. } => {
                let ip = if *ha && host.is_master() {
                    host.ip.clone()
                } else if balanced {
                    input.vip.clone()
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
        let balanced_over = if balanced && !registry_hosts.iter().any(|r| r.ip == host.ip) {
            registry_hosts.iter().map(|r| r.ip.clone()).collect()
        } else {
            Vec::new()
        };
        let attrs = registry_client::RegistryClientAttrs::from_input(
            &input.registry,
            endpoint,
            balanced_over,
        );
        let mut deps = vec![format!("container_runtime.{ip}")];
        deps.extend(registry_addresses.iter().cloned());
        b.push(registry_client::desired(ip, &attrs, deps));
    }

    // Joins: master0 inits, other masters join one at a time, workers in parallel.
    b.push(kubernetes_init::desired(input, master0));
    let joins = kubernetes_join::Joins::new(input, master0);
    let mut previous = kubernetes_init::ADDRESS.to_string();
    let mut master_joins = Vec::new();
    for host in masters.iter().skip(1) {
        let address = b.push(joins.master(&host.ip, &previous)).address.clone();
        master_joins.push(address.clone());
        previous = address;
    }
    let mut worker_joins = Vec::new();
    for host in input
        .hosts
        .iter()
        .filter(|h| h.is_worker() && !h.is_master())
    {
        let address = b
            .push(joins.worker(&host.ip, &master_joins))
            .address
            .clone();
        worker_joins.push(address);
    }
    let mut all_joins = vec![kubernetes_init::ADDRESS.to_string()];
    all_joins.extend(master_joins.iter().cloned());
    all_joins.extend(worker_joins.iter().cloned());

    for host in &input.hosts {
        let Some(join) = join_address(input, host) else {
            continue;
        };
        b.push(node_meta::desired(host, join));
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
