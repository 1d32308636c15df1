//! `plugin.<name>.<phase>[.<ip>]`: a Clusterfile plugin's script at one of its phases
//! (`deploy.md`), run with the host's env in the rootfs. Its phase places it in the graph:
//! `pre-install` before master0's runtime, `pre-init-host` before its host's runtime,
//! `post-init-host` after its host's join, `post-install` after every join (and before the
//! apps), `pre-scaleup`/`post-scaleup` around the joins of added hosts. Create (and an
//! update, which re-runs it) runs `data`; the teardown phases (`*-uninstall`,
//! `*-clean-host`) are only armed then and run when deleted with what they tear down
//! (`plan::teardown`). Any other delete forgets the plugin.

use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::{ClusterInput, PluginInput};
use crate::kinds::kubernetes_join::join_address;
use crate::plan::Change;
use crate::plan::teardown;
use crate::resource::{Attributes, Desired, ResourceType};
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::Plugin,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host],
};

/// The attribute [`phase_of`] reads: the name of [`PluginAttrs::phase`].
const PHASE: &str = "phase";

/// A plugin at one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginAttrs {
    /// `pre-install`, `post-init-host`, ...: when it runs.
    pub phase: String,
    /// The script.
    pub data: String,
    /// Roles the per-host phases run on; empty = every host.
    pub scope: Vec<String>,
}

impl PluginAttrs {
    pub fn from_input(plugin: &PluginInput, phase: &str) -> PluginAttrs {
        PluginAttrs {
            phase: phase.to_string(),
            data: plugin.data.clone(),
            scope: plugin.scope.clone(),
        }
    }
}

/// The phase of a plugin's attributes. The plan asks it of every plugin change, within
/// loops over the whole plan, so it reads that one attribute and copies nothing.
pub fn phase_of(attributes: &Attributes) -> Option<&str> {
    attributes.get(PHASE).and_then(|p| p.as_str())
}

/// What a plugin lives on, by phase: the phases whose effect is in the cluster's API
/// (after the joins, around scale-ups) go with etcd; `post-init-host` goes with its node.
pub fn lives_on(attributes: &Attributes) -> &'static [Foundation] {
    match phase_of(attributes) {
        Some("post-init-host") => &[Foundation::Host, Foundation::Etcd, Foundation::Node],
        Some("post-install" | "pre-scaleup" | "post-scaleup") => {
            &[Foundation::Host, Foundation::Etcd]
        }
        _ => &[Foundation::Host],
    }
}

/// The joins that plugin phases are placed around.
pub struct Joins<'a> {
    /// `kubernetes.init`, then the other masters' and the workers' joins.
    pub all: &'a [String],
    /// The joins a scale-up adds: the other masters' and the workers'.
    pub scaleup: &'a [String],
}

/// A plugin placed at its phase: the resource (which depends on what comes before it), and
/// the resources that must wait for it (the runtime it prepares, the joins of a scale-up).
pub struct Placed {
    pub desired: Desired,
    pub dependents: Vec<String>,
}

/// `plugin` at `phase`: one resource on master0, or one per host in its scope for the
/// per-host phases. An unknown phase places nothing.
pub fn desired(
    input: &ClusterInput,
    master0: &str,
    joins: &Joins,
    plugin: &PluginInput,
    phase: &str,
) -> Vec<Placed> {
    let attrs = PluginAttrs::from_input(plugin, phase);
    let placed = |host: &str, address: String, after: Vec<String>, dependents: Vec<String>| {
        let desired = SCHEMA.desired(address, Some(host), &attrs, after);
        Placed {
            desired,
            dependents,
        }
    };
    let on_master0 = |after: Vec<String>, dependents: Vec<String>| {
        let address = format!("plugin.{}.{phase}", plugin.name);
        vec![placed(master0, address, after, dependents)]
    };
    let rootfs = |ip: &str| format!("rootfs.{ip}");
    let runtime = |ip: &str| format!("container_runtime.{ip}");
    match phase {
        "pre-install" => on_master0(vec![rootfs(master0)], vec![runtime(master0)]),
        "post-install" | "post-scaleup" => on_master0(joins.all.to_vec(), Vec::new()),
        "pre-scaleup" => on_master0(vec!["kubernetes.init".to_string()], joins.scaleup.to_vec()),
        // Teardown phases are recorded (armed) with the rootfs they run in, and run when
        // the plan destroys the cluster or their host (`plan::teardown`).
        "pre-uninstall" | "post-uninstall" => on_master0(vec![rootfs(master0)], Vec::new()),
        "pre-init-host" | "post-init-host" | "pre-clean-host" | "post-clean-host" => input
            .hosts
            .iter()
            .filter(|h| plugin.applies_to(h))
            .map(|host| {
                let ip = host.ip.as_str();
                let (after, dependents) = match phase {
                    "pre-init-host" => (rootfs(ip), vec![runtime(ip)]),
                    "post-init-host" => (
                        join_address(input, host).unwrap_or_else(|| runtime(ip)),
                        Vec::new(),
                    ),
                    _ => (rootfs(ip), Vec::new()),
                };
                let address = format!("plugin.{}.{phase}.{ip}", plugin.name);
                placed(ip, address, vec![after], dependents)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs the plugin's script; a teardown plugin is only armed here: recorded, it runs when
/// deleted.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    if teardown::phase_of(change).is_some() {
        return Ok(Attributes::new());
    }
    let attrs: PluginAttrs = super::step_attributes(change, change.after())?;
    let host = super::step_host(r, change);
    r.run_plugin(&change.address, &host, attrs.data).await?;
    Ok(Attributes::new())
}

/// Runs a teardown plugin whose phase the plan reached; forgets any other.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    if !r.ctx.teardown.runs(change) {
        return Ok(());
    }
    let attrs: PluginAttrs = super::step_attributes(change, change.before.as_ref())?;
    let host = super::step_host(r, change);
    r.run_plugin(&change.address, &host, attrs.data).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn plugin() -> PluginInput {
        PluginInput {
            name: "hello".to_string(),
            phases: vec!["pre-init-host".to_string()],
            scope: vec!["node".to_string()],
            data: "echo hello".to_string(),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let attrs = PluginAttrs::from_input(&plugin(), "pre-init-host");
        let back: PluginAttrs =
            from_attributes("plugin.hello.pre-init-host.1", &to_attributes(&attrs)).unwrap();
        assert_eq!(back, attrs);
    }

    #[test]
    fn a_recorded_map_reads_back() {
        let recorded: Attributes = serde_json::from_value(json!({
            "phase": "post-install",
            "data": "kubectl apply -f x.yaml",
            "scope": [],
        }))
        .unwrap();
        let attrs: PluginAttrs = from_attributes("plugin.x.post-install", &recorded).unwrap();
        assert_eq!(attrs.phase, "post-install");
        assert_eq!(attrs.data, "kubectl apply -f x.yaml");
        assert!(attrs.scope.is_empty());
        assert_eq!(to_attributes(&attrs), recorded);
    }

    #[test]
    fn phase_of_reads_the_phase_attribute_of_plugin_attrs() {
        let attrs = to_attributes(&PluginAttrs::from_input(&plugin(), "post-clean-host"));
        assert_eq!(phase_of(&attrs), Some("post-clean-host"));
        // Only the phase is needed: maps without the rest still have one.
        let partial: Attributes =
            serde_json::from_value(json!({"phase": "pre-uninstall"})).unwrap();
        assert_eq!(phase_of(&partial), Some("pre-uninstall"));
        assert_eq!(phase_of(&Attributes::new()), None);
    }

    #[test]
    fn pre_install_prepares_master0s_runtime_and_an_unknown_phase_places_nothing() {
        let input = ClusterInput {
            name: "c".to_string(),
            rootfs_path: String::new(),
            hosts: Vec::new(),
            image: String::new(),
            image_digest: String::new(),
            kube_version: String::new(),
            runtime_type: String::new(),
            runtime_version: String::new(),
            registry: crate::graph::input::RegistryInput::External {
                domain: "r".to_string(),
                port: None,
                username: None,
                password_digest: None,
            },
            host_aliases: Vec::new(),
            kubeadm_config: String::new(),
            cert_sans: Vec::new(),
            svc_cidr: String::new(),
            pod_cidr: String::new(),
            vip: String::new(),
            rootfs_inputs_digest: String::new(),
            rootfs_inputs: Default::default(),
            launch: crate::graph::input::Launch::Raw(Vec::new()),
            plugins: Vec::new(),
            image_policy: None,
        };
        let joins = Joins {
            all: &["kubernetes.init".to_string()],
            scaleup: &[],
        };
        assert!(desired(&input, "10.0.0.1", &joins, &plugin(), "whenever").is_empty());
        let placed = desired(&input, "10.0.0.1", &joins, &plugin(), "pre-install");
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].desired.address, "plugin.hello.pre-install");
        assert_eq!(placed[0].desired.depends_on, ["rootfs.10.0.0.1"]);
        assert_eq!(placed[0].dependents, ["container_runtime.10.0.0.1"]);
    }
}
