use super::compile::dangling_dependencies;
use super::input::*;
use super::*;
use crate::plan::order::{Node, topological};
use std::collections::BTreeMap;

pub fn host(ip: &str, roles: &[&str]) -> HostInput {
    HostInput {
        ip: ip.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ssh_user: "root".into(),
        ssh_port: 22,
        local: false,
        sandbox: None,
        password_digest: None,
        key_file: Some("~/.ssh/id_ed25519".into()),
        key_passphrase_digest: None,
        env_digest: "sha256:env".into(),
        env: BTreeMap::new(),
        labels: BTreeMap::new(),
        taints: Vec::new(),
    }
}

pub fn app(name: &str) -> AppInput {
    AppInput {
        name: name.into(),
        image: "k8s@sha256:img".into(),
        kind: "kube".into(),
        cmds: vec![format!(
            "kubectl apply -f application/apps/{name}/{name}.yaml"
        )],
        files: BTreeMap::from([(format!("{name}.yaml"), "sha256:f".to_string())]),
        env_digest: "sha256:env".into(),
        overrides: BTreeMap::new(),
        env: BTreeMap::new(),
        texts: BTreeMap::new(),
    }
}

pub fn three_by_three() -> ClusterInput {
    ClusterInput {
        name: "prod".into(),
        rootfs_path: "/var/lib/sealer/data/prod/rootfs".into(),
        hosts: vec![
            host("10.0.0.2", &["master"]),
            host("10.0.0.3", &["master"]),
            host("10.0.0.4", &["master"]),
            host("10.0.0.5", &["node"]),
            host("10.0.0.6", &["node"]),
            host("10.0.0.7", &["node"]),
        ],
        image: "k8s:v1.22.15".into(),
        image_digest: "sha256:img".into(),
        kube_version: "v1.22.15".into(),
        runtime_type: "containerd".into(),
        runtime_version: "1.6.24".into(),
        registry: RegistryInput::Local {
            domain: "sea.hub".into(),
            port: 5000,
            ha: true,
            username: None,
            password_digest: None,
            sans: Vec::new(),
        },
        host_aliases: Vec::new(),
        kubeadm_config: String::new(),
        cert_sans: Vec::new(),
        svc_cidr: "10.96.0.0/22".into(),
        pod_cidr: "100.64.0.0/10".into(),
        vip: "10.103.97.2".into(),
        rootfs_inputs_digest: "sha256:none".into(),
        rootfs_inputs: BTreeMap::new(),
        launch: Launch::Apps(vec![app("calico"), app("nginx")]),
        plugins: vec![PluginInput {
            name: "label".into(),
            phases: vec!["post-install".into(), "pre-init-host".into()],
            scope: vec!["master".into()],
            data: "echo hi".into(),
        }],
        image_policy: None,
    }
}

fn deps_of<'a>(rs: &'a [crate::resource::Desired], address: &str) -> &'a [String] {
    &rs.iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("no {address}"))
        .depends_on
}

#[test]
fn a_three_by_three_cluster_has_every_resource_of_the_model() {
    let rs = compile(&three_by_three());
    assert!(
        dangling_dependencies(&rs).is_empty(),
        "{:?}",
        dangling_dependencies(&rs)
    );
    let count = |prefix: &str| rs.iter().filter(|r| r.address.starts_with(prefix)).count();
    assert_eq!(count("host."), 6);
    assert_eq!(count("rootfs."), 6);
    assert_eq!(count("container_runtime."), 6);
    assert_eq!(count("registry."), 3, "HA: a registry on every master");
    assert_eq!(count("registry_client."), 6);
    assert_eq!(count("kubernetes.init"), 1);
    assert_eq!(count("kubernetes.master."), 2);
    assert_eq!(count("kubernetes.worker."), 3);
    assert_eq!(count("node_meta."), 6);
    assert_eq!(count("plugin.label.post-install"), 1);
    assert_eq!(count("plugin.label.pre-init-host."), 3, "scope master");
    assert_eq!(count("app."), 2);

    // Masters join one at a time; workers wait for every master.
    assert!(deps_of(&rs, "kubernetes.master.10.0.0.3").contains(&"kubernetes.init".to_string()));
    assert!(
        deps_of(&rs, "kubernetes.master.10.0.0.4")
            .contains(&"kubernetes.master.10.0.0.3".to_string())
    );
    let worker = deps_of(&rs, "kubernetes.worker.10.0.0.5");
    assert!(worker.contains(&"kubernetes.master.10.0.0.4".to_string()));
    assert!(
        !worker.iter().any(|d| d.starts_with("kubernetes.worker.")),
        "workers join in parallel"
    );
    // The first app waits for every join and the post-install plugin; the next for the first.
    let calico = deps_of(&rs, "app.calico");
    assert!(calico.contains(&"kubernetes.worker.10.0.0.7".to_string()));
    assert!(calico.contains(&"plugin.label.post-install".to_string()));
    assert_eq!(deps_of(&rs, "app.nginx"), ["app.calico".to_string()]);
    // pre-init-host plugins run before the host's runtime.
    assert!(
        deps_of(&rs, "container_runtime.10.0.0.3")
            .contains(&"plugin.label.pre-init-host.10.0.0.3".to_string())
    );

    let nodes: Vec<Node> = rs
        .iter()
        .map(|r| Node {
            address: &r.address,
            depends_on: &r.depends_on,
        })
        .collect();
    assert!(topological(&nodes).is_ok());
}

#[test]
fn workers_reach_one_master_directly_and_several_through_the_vip() {
    let mut input = three_by_three();
    let rs = compile(&input);
    let worker = rs
        .iter()
        .find(|r| r.address == "kubernetes.worker.10.0.0.5")
        .unwrap();
    assert_eq!(worker.attributes["api_endpoint"], "10.103.97.2");
    input
        .hosts
        .retain(|h| h.ip != "10.0.0.3" && h.ip != "10.0.0.4");
    let rs = compile(&input);
    let worker = rs
        .iter()
        .find(|r| r.address == "kubernetes.worker.10.0.0.5")
        .unwrap();
    assert_eq!(worker.attributes["api_endpoint"], "10.0.0.2");
    assert_eq!(
        rs.iter()
            .filter(|r| r.address.starts_with("registry."))
            .count(),
        1
    );
}

#[test]
fn compilation_is_deterministic_and_the_dot_lists_every_edge() {
    let a = compile(&three_by_three());
    let b = compile(&three_by_three());
    assert_eq!(a, b);
    let dot = to_dot("prod", &a);
    assert!(dot.starts_with("digraph \"prod\" {\n"));
    assert!(dot.contains("  \"kubernetes.init\" -> \"kubernetes.master.10.0.0.3\";\n"));
    let edges = a.iter().map(|r| r.depends_on.len()).sum::<usize>();
    assert_eq!(dot.matches(" -> ").count(), edges);
}
