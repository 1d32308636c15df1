//! The resource model of `deploy.md`: which resources a cluster has, their attributes, and
//! what depends on what. Pure: the same input gives the same resources in the same order.

use super::input::{ClusterInput, HostInput, Launch, RegistryInput};
use crate::kinds::kubernetes_join::join_address;
use crate::kinds::{app, kubernetes_init, kubernetes_join, node_meta};
use crate::resource::{Attributes, Desired, ResourceType};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

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

    fn computed(&mut self, names: &[&str]) -> &mut Self {
        self.computed.extend(names.iter().map(|n| n.to_string()));
        self
    }

    fn replace_on(&mut self, names: &[&str]) -> &mut Self {
        self.replace_on.extend(names.iter().map(|n| n.to_string()));
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
    let (reg_domain, reg_port) = match &input.registry {
        RegistryInput::Local { domain, port, .. } => (domain.clone(), Some(*port)),
        RegistryInput::External { domain, port, .. } => (domain.clone(), *port),
    };
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
        b.add(
            format!("host.{ip}"),
            ResourceType::Host,
            Some(ip),
            json!({
                "arch": null,
                "ssh_user": host.ssh_user,
                "ssh_port": host.ssh_port,
                "transport": if host.local { "local" } else { "ssh" },
                "sandbox": host.sandbox,
                "password": host.password_digest,
                "key_file": host.key_file,
                "key_passphrase": host.key_passphrase_digest,
                "hosts_entries": entries,
            }),
        )
        .computed(&["arch", "hostname", "host_key"])
        .sensitive(&["password", "key_passphrase"])
        // Another sandbox is another machine, as far as the cluster can tell.
        .replace_on(&["sandbox"]);

        let content = crate::image::layout::sha256_digest(
            format!(
                "{}\n{}\n{}",
                input.image_digest, input.rootfs_inputs_digest, host.env_digest
            )
            .as_bytes(),
        );
        b.add(
            format!("rootfs.{ip}"),
            ResourceType::Rootfs,
            Some(ip),
            json!({
                "image": format!("{}@{}", input.image, input.image_digest),
                "path": input.rootfs_path,
                "content_digest": content,
                "registry_data": registry_hosts.iter().any(|r| r.ip == host.ip),
            }),
        )
        .deps([format!("host.{ip}")]);

        b.add(
            format!("container_runtime.{ip}"),
            ResourceType::ContainerRuntime,
            Some(ip),
            json!({"type": input.runtime_type, "version": input.runtime_version}),
        )
        .deps([format!("rootfs.{ip}")])
        .replace_on(&["type", "version"]);
    }

    for host in &registry_hosts {
        let ip = host.ip.as_str();
        let (username, password, sans) = match &input.registry {
            RegistryInput::Local {
                username,
                password_digest,
                sans,
                ..
            } => (username.clone(), password_digest.clone(), sans.clone()),
            RegistryInput::External { .. } => (None, None, Vec::new()),
        };
        b.add(
            format!("registry.{ip}"),
            ResourceType::Registry,
            Some(ip),
            json!({
                "domain": reg_domain,
                "port": reg_port,
                "data": input.image_digest,
                "username": username,
                "password": password,
                "cert_sans": sans,
            }),
        )
        .deps([format!("container_runtime.{ip}")])
        // HA registries serve the first one's certificate: it must exist first.
        .deps(
            registry_hosts
                .first()
                .filter(|first| first.ip != host.ip)
                .map(|first| format!("registry.{}", first.ip)),
        )
        .sensitive(&["password"]);
    }

    let registry_addresses: Vec<String> = registry_hosts
        .iter()
        .map(|h| format!("registry.{}", h.ip))
        .collect();
    for host in &input.hosts {
        let ip = host.ip.as_str();
        let (username, password) = match &input.registry {
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
        let endpoint =
            registry_line(host).map(|l| l.split(' ').next().unwrap_or_default().to_string());
        b.add(
            format!("registry_client.{ip}"),
            ResourceType::RegistryClient,
            Some(ip),
            json!({
                "domain": reg_domain,
                "port": reg_port,
                "endpoint": endpoint,
                "username": username,
                "password": password,
            }),
        )
        .deps([format!("container_runtime.{ip}")])
        .deps(registry_addresses.clone())
        .sensitive(&["password"]);
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

    // Plugins at their phases.
    let mut post_install = Vec::new();
    for plugin in &input.plugins {
        for phase in &plugin.phases {
            let attrs = json!({"phase": phase, "data": plugin.data, "scope": plugin.scope});
            match phase.as_str() {
                "pre-install" => {
                    let address = format!("plugin.{}.pre-install", plugin.name);
                    b.add(
                        address.clone(),
                        ResourceType::Plugin,
                        Some(&master0.ip),
                        attrs,
                    )
                    .deps([format!("rootfs.{}", master0.ip)]);
                    if let Some(runtime) = b.get_mut(&format!("container_runtime.{}", master0.ip)) {
                        runtime.deps([address]);
                    }
                }
                "post-install" => {
                    let address = format!("plugin.{}.post-install", plugin.name);
                    b.add(
                        address.clone(),
                        ResourceType::Plugin,
                        Some(&master0.ip),
                        attrs,
                    )
                    .deps(all_joins.iter().cloned());
                    post_install.push(address);
                }
                "pre-scaleup" => {
                    let address = format!("plugin.{}.pre-scaleup", plugin.name);
                    b.add(
                        address.clone(),
                        ResourceType::Plugin,
                        Some(&master0.ip),
                        attrs,
                    )
                    .deps(["kubernetes.init".to_string()]);
                    for join in master_joins.iter().chain(&worker_joins) {
                        if let Some(r) = b.get_mut(join) {
                            r.deps([address.clone()]);
                        }
                    }
                }
                "post-scaleup" => {
                    let address = format!("plugin.{}.post-scaleup", plugin.name);
                    b.add(address, ResourceType::Plugin, Some(&master0.ip), attrs)
                        .deps(all_joins.iter().cloned());
                }
                "pre-init-host" | "post-init-host" => {
                    for host in input.hosts.iter().filter(|h| plugin.applies_to(h)) {
                        let ip = host.ip.as_str();
                        let address = format!("plugin.{}.{phase}.{ip}", plugin.name);
                        if phase == "pre-init-host" {
                            b.add(
                                address.clone(),
                                ResourceType::Plugin,
                                Some(ip),
                                attrs.clone(),
                            )
                            .deps([format!("rootfs.{ip}")]);
                            if let Some(runtime) = b.get_mut(&format!("container_runtime.{ip}")) {
                                runtime.deps([address]);
                            }
                        } else {
                            let after = join_address(input, host)
                                .unwrap_or_else(|| format!("container_runtime.{ip}"));
                            b.add(address, ResourceType::Plugin, Some(ip), attrs.clone())
                                .deps([after]);
                        }
                    }
                }
                // Teardown phases are recorded (armed) with the rootfs they run in, and run
                // when the plan destroys the cluster or their host (`plan::teardown`).
                "pre-uninstall" | "post-uninstall" => {
                    let address = format!("plugin.{}.{phase}", plugin.name);
                    b.add(address, ResourceType::Plugin, Some(&master0.ip), attrs)
                        .deps([format!("rootfs.{}", master0.ip)]);
                }
                "pre-clean-host" | "post-clean-host" => {
                    for host in input.hosts.iter().filter(|h| plugin.applies_to(h)) {
                        let ip = host.ip.as_str();
                        let address = format!("plugin.{}.{phase}.{ip}", plugin.name);
                        b.add(address, ResourceType::Plugin, Some(ip), attrs.clone())
                            .deps([format!("rootfs.{ip}")]);
                    }
                }
                _ => {}
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
                    b.add(
                        "image_policy".to_string(),
                        ResourceType::ImagePolicy,
                        Some(&master0.ip),
                        json!({
                            "registry_url": policy.registry_url,
                            "exclude": policy.exclude,
                            "policy": policy.policy_yaml,
                        }),
                    )
                    .deps([address.clone()]);
                    policy_applied = Some("image_policy".to_string());
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
