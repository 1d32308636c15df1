//! The resolved view: hosts, SSH merge, registry, env defaults and derived keys, secrets,
//! positions.

use super::{CLUSTER, fixture_dir, load_ok};
use crate::clusterfile::*;
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn scalar(text: &str) -> EnvValue {
    EnvValue::Scalar(text.to_string())
}

#[test]
fn hosts_are_flattened_in_file_order_with_ssh_merged_field_by_field() {
    let file = load_ok(
        "apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: c}
spec:
  image: x:v1
  env: [A=cluster, B=cluster]
  ssh: {user: admin, passwd: pw, pk: ~/.ssh/id, port: 2200}
  hosts:
    - ips: [10.0.0.3, 10.0.0.2]
      roles: [node]
      ssh: {port: \"2222\", passwd: other}
      env: [B=host, C=host]
      labels: {ssd: \"true\"}
      taints: [\"k=v:NoSchedule\"]
    - ips: [10.0.0.4]
      roles: [master]
      ssh: {user: root, pkPasswd: phrase}
    - ips: [10.0.0.5]
      roles: [master, node]
",
    );
    let hosts = file.hosts();
    let ips: Vec<String> = hosts.iter().map(|h| h.ip.to_string()).collect();
    assert_eq!(ips, ["10.0.0.3", "10.0.0.2", "10.0.0.4", "10.0.0.5"]);

    let first = &hosts[0];
    assert_eq!(first.ssh.user, "admin");
    assert_eq!(first.ssh.port, 2222);
    assert_eq!(
        first.ssh.password.as_ref().map(Secret::expose),
        Some("other")
    );
    assert_eq!(first.ssh.pk.as_deref(), Some("~/.ssh/id"));
    assert_eq!(first.transport, Transport::Ssh);
    assert_eq!(first.env.get("A"), Some(&scalar("cluster")));
    assert_eq!(first.env.get("B"), Some(&scalar("host")));
    assert_eq!(first.env.get("C"), Some(&scalar("host")));
    assert_eq!(first.labels.get("ssd").map(String::as_str), Some("true"));
    assert_eq!(first.taints[0].to_string(), "k=v:NoSchedule");
    assert_eq!(first.span, Span::new(9, 13));

    let master = &hosts[2];
    assert_eq!(master.ssh.user, "root");
    assert_eq!(master.ssh.port, 2200);
    assert_eq!(master.ssh.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(
        master.ssh.pk_passwd.as_ref().map(Secret::expose),
        Some("phrase")
    );
    assert_eq!(master.env.get("B"), Some(&scalar("cluster")));

    assert_eq!(file.master0().map(|h| h.ip), Some(ip("10.0.0.4")));
    let masters: Vec<IpAddr> = file.masters().iter().map(|h| h.ip).collect();
    assert_eq!(masters, [ip("10.0.0.4"), ip("10.0.0.5")]);
    let workers: Vec<IpAddr> = file.workers().iter().map(|h| h.ip).collect();
    assert_eq!(workers, [ip("10.0.0.3"), ip("10.0.0.2"), ip("10.0.0.5")]);
}

#[test]
fn ssh_defaults_are_root_and_22() {
    let file = load_ok(CLUSTER);
    let host = &file.hosts()[0];
    assert_eq!(host.ssh.user, "root");
    assert_eq!(host.ssh.port, 22);
    assert_eq!(host.ssh.password, None);
    assert!(!host.ssh.needs_sudo());
    assert_eq!(host.transport, Transport::Ssh);
}

#[test]
fn transport_local_can_be_cluster_wide_or_per_group() {
    let file = load_ok(&CLUSTER.replacen("  hosts:", "  ssh: {transport: local}\n  hosts:", 1));
    assert_eq!(file.hosts()[0].transport, Transport::Local);
    let file = load_ok(&format!(
        "{CLUSTER}      ssh: {{transport: local}}\n    - ips: [10.0.0.3]\n      roles: [node]\n"
    ));
    let transports: Vec<Transport> = file.hosts().iter().map(|h| h.transport).collect();
    assert_eq!(transports, [Transport::Local, Transport::Ssh]);
}

#[test]
fn defaults_and_derived_env() {
    let file = load_ok(CLUSTER);
    assert_eq!(file.data_root(), "/var/lib/sealer/data");
    assert_eq!(file.container_runtime(), None);
    assert_eq!(file.app_names(), None);
    let registry = file.registry();
    assert_eq!(registry.url(), "sea.hub:5000");
    assert_eq!(
        registry.kind,
        RegistryKind::Local {
            ha: true,
            insecure: false,
            cert_dns_names: vec![],
            cert_ips: vec![]
        }
    );
    assert_eq!(file.image_policy(), None);
    assert_eq!(file.image_policy_app(), "kyverno");
    assert_eq!(file.image_policy_exclude(), ["kube-system", "kyverno"]);

    let host = &file.hosts()[0];
    let env = file
        .host_env(host, &Env::new(), Some("containerd"))
        .unwrap();
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        shown,
        [
            "ContainerRuntime=containerd",
            "DNSSvcIP=10.96.0.10",
            "HostIP=10.0.0.2",
            "KubeSvcIP=10.96.0.1",
            "LocalRegistryDomain=sea.hub",
            "LocalRegistryPort=5000",
            "LocalRegistryURL=sea.hub:5000",
            "PodCIDR=100.64.0.0/10",
            "RegistryDomain=sea.hub",
            "RegistryPort=5000",
            "RegistryURL=sea.hub:5000",
            "SvcCIDR=10.96.0.0/22",
        ]
    );
}

#[test]
fn env_layers_image_then_cluster_then_host() {
    let file = load_ok(&format!(
        "{CLUSTER}      env: [H=host, \"L=a;b\"]\n  env: [SvcCIDR=10.100.0.0/16, C=cluster, H=cluster]\n  containerRuntime: {{type: docker}}\n"
    ));
    let mut image = Env::new();
    image.insert_scalar("I", "image");
    image.insert_scalar("C", "image");
    image.insert_scalar("PodCIDR", "10.244.0.0/16");
    let host = &file.hosts()[0];
    let env = file.host_env(host, &image, None).unwrap();
    assert_eq!(env.get("I"), Some(&scalar("image")));
    assert_eq!(env.get("C"), Some(&scalar("cluster")));
    assert_eq!(env.get("H"), Some(&scalar("host")));
    assert_eq!(
        env.get("L"),
        Some(&EnvValue::List(vec!["a".into(), "b".into()]))
    );
    assert_eq!(env.get("PodCIDR"), Some(&scalar("10.244.0.0/16")));
    assert_eq!(env.get("KubeSvcIP"), Some(&scalar("10.100.0.1")));
    assert_eq!(env.get("DNSSvcIP"), Some(&scalar("10.100.0.10")));
    assert_eq!(env.get("ContainerRuntime"), Some(&scalar("docker")));

    let mut bad_image = Env::new();
    bad_image.insert_scalar("SvcCIDR", "nope");
    let plain = load_ok(CLUSTER);
    let e = plain
        .host_env(&plain.hosts()[0], &bad_image, None)
        .unwrap_err();
    assert_eq!(e.to_string(), "error: invalid SvcCIDR: `nope`: no /PREFIX");
}

#[test]
fn an_external_registry_without_port_has_a_url_without_port() {
    let file = load_ok(&format!(
        "{CLUSTER}  registry:\n    externalRegistry: {{domain: harbor.local, username: u, password: p}}\n"
    ));
    let registry = file.registry();
    assert_eq!(registry.url(), "harbor.local");
    assert!(!registry.is_local());
    let env = file.registry_env();
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        shown,
        [
            "ExternalRegistryDomain=harbor.local",
            "ExternalRegistryURL=harbor.local",
            "RegistryDomain=harbor.local",
            "RegistryURL=harbor.local",
        ]
    );
}

#[test]
fn app_names_absent_empty_or_blank() {
    assert_eq!(load_ok(CLUSTER).app_names(), None);
    let with = |names: &str| load_ok(&format!("{CLUSTER}  appNames: {names}\n"));
    assert_eq!(with("[]").app_names(), Some(vec![]));
    assert_eq!(with("[\"\"]").app_names(), Some(vec![]));
    assert_eq!(
        with("[calico, nginx]").app_names(),
        Some(vec!["calico", "nginx"])
    );
}

#[test]
fn yaml_1_2_scalars_stay_strings() {
    let file = load_ok(&fixture_path("valid/external-registry.yaml"));
    let host = &file.hosts()[0];
    assert_eq!(host.labels.get("enabled").map(String::as_str), Some("yes"));
    assert_eq!(host.labels.get("version").map(String::as_str), Some("1.10"));
    assert_eq!(
        file.registry().password.as_ref().map(Secret::expose),
        Some("n")
    );
}

fn fixture_path(rel: &str) -> String {
    std::fs::read_to_string(fixture_dir("").join(rel)).unwrap()
}

#[test]
fn the_fixtures_resolve_as_documented() {
    let ha = load_ok(&fixture_path("valid/ha-3m3w.yaml"));
    assert_eq!(ha.name(), "prod-eu-1");
    assert_eq!(ha.masters().len(), 3);
    assert_eq!(ha.workers().len(), 3);
    assert_eq!(ha.data_root(), "/data/sealer");
    assert_eq!(ha.container_runtime(), Some("containerd"));
    assert_eq!(ha.plugins.len(), 2);
    assert_eq!(
        ha.plugins[0]
            .actions
            .iter()
            .map(|a| a.value)
            .collect::<Vec<_>>(),
        [Phase::PostInstall, Phase::PostScaleUp]
    );
    assert_eq!(ha.plugins[0].actions[1].span, Span::new(60, 24));
    assert_eq!(ha.plugins[1].scope.len(), 2);
    assert_eq!(ha.kubeadm.len(), 2);
    assert_eq!(ha.kubeadm[1].value["maxPods"], 200);
    assert_eq!(ha.kubeadm[0].kind.value, KubeadmKind::ClusterConfiguration);
    assert_eq!(ha.image_policy(), Some(ImagePolicy::Kyverno));
    let registry = ha.registry();
    assert_eq!(registry.username.as_deref(), Some("admin"));
    assert_eq!(
        registry.password.as_ref().map(Secret::expose),
        Some("r3gistry-pass")
    );
    assert_eq!(ha.env().get("Mirrors").map(|v| v.items().len()), Some(2));

    let apps = load_ok(&fixture_path("valid/application.yaml"));
    let app = apps.application.as_ref().unwrap();
    assert_eq!(app.images.len(), 2);
    assert_eq!(app.configs[0].launch_cmds.as_ref().map(Vec::len), Some(2));
    assert_eq!(app.configs[0].files[0].strategy.value, Strategy::Merge);
    assert_eq!(app.configs[1].files[0].strategy.value, Strategy::Overwrite);
    assert_eq!(apps.configs[0].process.len(), 3);

    let v6 = load_ok(&fixture_path("valid/ipv6.yaml"));
    assert!(v6.hosts().iter().all(|h| h.ip.is_ipv6()));
    let host = &v6.hosts()[0];
    let env = v6.host_env(host, &Env::new(), None).unwrap();
    assert_eq!(env.get("KubeSvcIP"), Some(&scalar("fd00:10:96::1")));
    assert_eq!(env.get("DNSSvcIP"), Some(&scalar("fd00:10:96::a")));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let file = load_ok(&fixture_path("valid/ha-3m3w.yaml"));
    let debug = format!("{file:?} {:?} {:?}", file.hosts(), file.registry());
    for secret in ["s3cret-root", "s3cret-ops", "r3gistry-pass"] {
        assert!(!debug.contains(secret), "{secret} shown in Debug output");
    }
    assert!(debug.contains("(sensitive value)"));
    let secret = Secret::new("pw");
    assert_eq!(
        format!("{secret} {secret:?}"),
        "(sensitive value) (sensitive value)"
    );
    // What an older sealer recorded, and what it is now: HMAC-SHA256 under the state's key.
    assert_eq!(
        secret.digest(&DigestKey::legacy()),
        "sha256:30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
    );
    assert_eq!(
        secret.digest(&DigestKey::new([0; 32])),
        "hmac-sha256:b341db40a4fff0be22734225a191a5296924222c7ecbeea220726b7aabe6a742"
    );
    assert_ne!(
        secret.digest(&DigestKey::new([0; 32])),
        secret.digest(&DigestKey::new([1; 32]))
    );
}

#[test]
fn locations_quote_the_source_line() {
    let file = load_ok(CLUSTER);
    let at = file.location(file.cluster.image.span);
    assert_eq!((at.line, at.column), (6, 10));
    assert_eq!(
        at.source_line.as_deref(),
        Some("  image: sealerio/kubernetes:v1.22.15")
    );
    assert_eq!(at.path, std::path::Path::new("Clusterfile"));
}

#[test]
fn private_keys_must_exist_on_the_operator_machine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".ssh")).unwrap();
    std::fs::write(dir.path().join(".ssh/id_ok"), "key").unwrap();
    let file = load_ok(&format!(
        "{CLUSTER}      ssh: {{pk: ~/.ssh/id_missing}}\n  ssh: {{pk: ~/.ssh/id_ok}}\n    \n"
    ));
    let problems = local_files::check_local_files(&file, Some(dir.path()));
    let missing = dir.path().join(".ssh/id_missing");
    assert_eq!(
        problems.iter().map(|d| d.headline()).collect::<Vec<_>>(),
        [format!(
            "Clusterfile:10:17: error: private key `~/.ssh/id_missing` ({}): No such file or directory",
            missing.display()
        )]
    );
    assert_eq!(
        expand_home("~/.ssh/id", Some(std::path::Path::new("/home/u"))),
        std::path::PathBuf::from("/home/u/.ssh/id")
    );
    assert_eq!(
        expand_home("/abs/key", Some(std::path::Path::new("/home/u"))),
        std::path::PathBuf::from("/abs/key")
    );
}

#[test]
fn relative_paths_are_anchored_at_the_clusterfiles_directory_lexically() {
    let dir = Some(std::path::Path::new("/srv/project"));
    for (written, anchored) in [
        ("keys/id", "/srv/project/keys/id"),
        ("./sandbox", "/srv/project/sandbox"),
        ("../../.quickstart/sandbox", "/.quickstart/sandbox"),
        ("a/./b/../c", "/srv/project/a/c"),
        ("../../../../x", "/x"),
        // Absolute and `~` paths are kept as written: `~` is expanded at apply.
        ("/abs/./key", "/abs/./key"),
        ("~/.ssh/id", "~/.ssh/id"),
        ("~", "~"),
    ] {
        assert_eq!(anchor(written, dir), anchored, "{written}");
    }
    // Text parsed without a file: as written.
    assert_eq!(anchor("./keys/id", None), "./keys/id");
}

#[test]
fn a_loaded_clusterfile_anchors_sandbox_and_pk_at_its_directory_not_the_working_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("project/keys")).unwrap();
    std::fs::write(dir.path().join("project/keys/id"), "key").unwrap();
    let text = format!(
        "{CLUSTER}      ssh: {{transport: local, sandbox: ./sb}}\n    - ips: [10.0.0.3]\n      roles: [node]\n      ssh: {{pk: keys/id}}\n    - ips: [10.0.0.4]\n      roles: [node]\n      ssh: {{pk: ~/id}}\n"
    );
    let path = dir.path().join("project/./Clusterfile");
    std::fs::write(&path, text).unwrap();
    let file = load(&path).unwrap_or_else(|e| panic!("{}", e.render()));
    let project = dir.path().join("project");
    assert_eq!(file.dir(), Some(project.as_path()));
    let hosts = file.hosts();
    let sandbox = project.join("sb");
    let key = project.join("keys/id");
    assert_eq!(hosts[0].ssh.sandbox.as_deref(), sandbox.to_str());
    assert_eq!(hosts[1].ssh.pk.as_deref(), key.to_str());
    assert_eq!(hosts[2].ssh.pk.as_deref(), Some("~/id"));
    // `~` is expanded only with the home the caller passes.
    let home = std::path::Path::new("/home/u");
    assert_eq!(hosts[2].ssh.pk_path(Some(home)), Some(home.join("id")));
    assert_eq!(hosts[1].ssh.pk_path(Some(home)), Some(key));
    // Validation finds the relative key next to the Clusterfile; `~/id` is missing.
    let problems: Vec<String> = check_local_files(&file, Some(home))
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        problems,
        ["private key `~/id` (/home/u/id): No such file or directory"]
    );
}
