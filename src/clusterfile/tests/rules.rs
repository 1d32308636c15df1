//! One case per rule: input YAML → the exact headlines of its errors.

use super::{CLUSTER, headlines, load_ok};

/// CLUSTER with `extra` lines added to its spec (they start at line 10).
fn spec(extra: &str) -> String {
    format!("{CLUSTER}{extra}")
}

/// CLUSTER followed by another document (its first line is line 11).
fn with_doc(doc: &str) -> String {
    format!("{CLUSTER}---\n{doc}")
}

fn check(cases: &[(&str, String, &[&str])]) {
    let mut failures = Vec::new();
    for (name, src, expected) in cases {
        let actual = headlines(src);
        let expected: Vec<String> = expected
            .iter()
            .map(|e| format!("Clusterfile:{e}"))
            .collect();
        if actual != expected {
            failures.push(format!(
                "case {name}:\n  expected: {expected:#?}\n  actual:   {actual:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn documents_and_kinds() {
    check(&[
        (
            "unknown kind",
            with_doc("apiVersion: apps/v1\nkind: Deployment\n"),
            &["12:7: error: unknown kind `Deployment`"],
        ),
        (
            "near miss of a kind",
            with_doc("apiVersion: sealer.io/v1\nkind: plugin\n"),
            &["12:7: error: unknown kind `plugin`"],
        ),
        (
            "no kind",
            with_doc("foo: bar\n"),
            &["11:1: error: document has no `kind`"],
        ),
        (
            "not a mapping",
            with_doc("- a\n"),
            &["11:1: error: a document must be a mapping, not a list"],
        ),
        (
            "no apiVersion",
            CLUSTER.replacen("apiVersion: sealer.io/v2\n", "", 1),
            &["1:7: error: missing field `apiVersion` in Cluster"],
        ),
        (
            "wrong apiVersion",
            CLUSTER.replacen("sealer.io/v2", "sealer.io/v1", 1),
            &["1:13: error: unsupported apiVersion `sealer.io/v1` for kind Cluster"],
        ),
        (
            "unknown top-level field",
            format!("{CLUSTER}status: {{}}\n"),
            &["10:1: error: unknown field `status` in Cluster"],
        ),
        (
            "no spec",
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: a}\n".to_string(),
            &["2:7: error: missing field `spec` in Cluster"],
        ),
        (
            "no metadata",
            CLUSTER.replacen("metadata:\n  name: test\n", "", 1),
            &["2:7: error: missing field `metadata` in Cluster"],
        ),
        (
            "no Cluster",
            "apiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: a}\nspec: {}\n"
                .to_string(),
            &["1:1: error: no Cluster document"],
        ),
        (
            "empty file",
            String::new(),
            &["1:1: error: no Cluster document"],
        ),
        (
            "two Applications",
            format!(
                "{CLUSTER}---\nkind: Application\napiVersion: sealer.io/v2\nmetadata: {{name: a}}\nspec: {{}}\n---\nkind: Application\napiVersion: sealer.io/v2\nmetadata: {{name: b}}\nspec: {{}}\n"
            ),
            &["16:7: error: a second Application document (the first is at line 11)"],
        ),
        (
            "two kubeadm documents of one kind",
            with_doc(
                "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
            ),
            &["15:7: error: a second InitConfiguration document (the first is at line 12)"],
        ),
        (
            "kubeadm apiVersion of another kind",
            with_doc("apiVersion: kubeadm.k8s.io/v1beta3\nkind: KubeletConfiguration\n"),
            &[
                "11:13: error: unsupported apiVersion `kubeadm.k8s.io/v1beta3` for kind KubeletConfiguration",
            ],
        ),
    ]);
}

#[test]
fn yaml_level_problems() {
    check(&[
        (
            "syntax error",
            spec("  env: [a\n"),
            &["10:8: error: invalid YAML: unclosed bracket '['"],
        ),
        (
            "duplicate key",
            spec("  image: other:v1\n"),
            &["10:3: error: duplicate key `image` (first at line 6)"],
        ),
        (
            "custom tag",
            spec("  dataRoot: !path /data\n"),
            &["10:13: error: unsupported YAML tag `!path`"],
        ),
        (
            "non-string key",
            spec("  [a]: b\n"),
            &["10:3: error: mapping keys must be strings"],
        ),
    ]);
}

#[test]
fn cluster_fields() {
    check(&[
        (
            "unknown field with a suggestion",
            spec("  hostAlias: []\n"),
            &["10:3: error: unknown field `hostAlias` in Cluster.spec"],
        ),
        (
            "bad name",
            CLUSTER.replacen("name: test", "name: Test_1", 1),
            &["4:9: error: invalid cluster name `Test_1`"],
        ),
        (
            "name too long",
            CLUSTER.replacen("name: test", &format!("name: {}", "a".repeat(64)), 1),
            &[&format!(
                "4:9: error: invalid cluster name `{}`",
                "a".repeat(64)
            )],
        ),
        (
            "no image",
            CLUSTER.replacen("  image: sealerio/kubernetes:v1.22.15\n", "", 1),
            &["5:1: error: missing field `image` in Cluster.spec"],
        ),
        (
            "empty image",
            CLUSTER.replacen("image: sealerio/kubernetes:v1.22.15", "image:", 1),
            &["6:3: error: Cluster.spec.image must not be empty"],
        ),
        (
            "bad image",
            CLUSTER.replacen(
                "sealerio/kubernetes:v1.22.15",
                "sealerio/kubernetes:v1:22",
                1,
            ),
            &[
                "6:10: error: invalid image reference \"sealerio/kubernetes:v1:22\": invalid repository component \"kubernetes:v1\" (lowercase letters, digits and separators '.', '_', '-', not at either end)",
            ],
        ),
        (
            "cmd is a list",
            spec("  cmd: echo hi\n"),
            &["10:8: error: Cluster.spec.cmd must be a list, not a string"],
        ),
        (
            "ha is a YAML 1.2 boolean",
            spec("  registry:\n    localRegistry: {ha: on}\n"),
            &[
                "11:25: error: Cluster.spec.registry.localRegistry.ha must be true or false, not `on`",
            ],
        ),
        (
            "bad port",
            spec("  ssh: {port: 22a}\n"),
            &["10:15: error: invalid port `22a`"],
        ),
        (
            "port 0",
            spec("  ssh: {port: \"0\"}\n"),
            &["10:15: error: invalid port `0`"],
        ),
        (
            "unknown transport",
            spec("  ssh: {transport: sftp}\n"),
            &["10:20: error: unknown transport `sftp`"],
        ),
        (
            "relative dataRoot",
            spec("  dataRoot: data\n"),
            &["10:13: error: dataRoot `data` must be an absolute path without `..`"],
        ),
        (
            "dataRoot with ..",
            spec("  dataRoot: /var/../etc\n"),
            &["10:13: error: dataRoot `/var/../etc` must be an absolute path without `..`"],
        ),
        (
            "container runtime type",
            spec("  containerRuntime: {type: ../x}\n"),
            &["10:28: error: invalid container runtime type `../x`"],
        ),
        (
            "container runtime without type",
            spec("  containerRuntime: {}\n"),
            &["10:3: error: missing field `type` in Cluster.spec.containerRuntime"],
        ),
        (
            "host alias",
            spec(
                "  hostAliases:\n    - {ip: 10.0.0.300, hostnames: [a_b]}\n    - {ip: 10.0.0.1}\n",
            ),
            &[
                "11:12: error: invalid IP address `10.0.0.300`",
                "11:36: error: invalid hostname `a_b`",
                "12:7: error: missing field `hostnames` in Cluster.spec.hostAliases[1]",
            ],
        ),
    ]);
}

#[test]
fn hosts() {
    let hosts = |groups: &str| {
        CLUSTER.replacen("    - ips: [10.0.0.2]\n      roles: [master]\n", groups, 1)
    };
    check(&[
        (
            "bad IP",
            hosts("    - ips: [192.168.0.256]\n      roles: [master]\n"),
            &["8:13: error: invalid IP address `192.168.0.256`"],
        ),
        (
            "duplicate IP, in another group",
            hosts(
                "    - ips: [10.0.0.2]\n      roles: [master]\n    - ips: [10.0.0.3, 10.0.0.2]\n      roles: [node]\n",
            ),
            &["10:23: error: duplicate host IP 10.0.0.2 (first at line 8)"],
        ),
        (
            "duplicate IP, spelled differently",
            hosts("    - ips: [\"fd00::2\", \"fd00:0::2\"]\n      roles: [master]\n"),
            &["8:24: error: duplicate host IP fd00::2 (first at line 8)"],
        ),
        (
            "mixed families",
            hosts("    - ips: [10.0.0.2, \"fd00::2\"]\n      roles: [master]\n"),
            &[
                "8:23: error: host IP fd00::2 is IPv6, but the first host IP 10.0.0.2 (line 8) is IPv4",
            ],
        ),
        (
            "no master",
            hosts("    - ips: [10.0.0.2]\n      roles: [node]\n"),
            &["7:3: error: no host has the role `master`"],
        ),
        (
            "no hosts at all",
            hosts(""),
            &["7:3: error: no host has the role `master`"],
        ),
        (
            "hosts missing",
            CLUSTER.replacen(
                "  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n",
                "",
                1,
            ),
            &["5:1: error: missing field `hosts` in Cluster.spec"],
        ),
        (
            "empty ips and roles",
            hosts("    - ips: []\n      roles: []\n"),
            &[
                "7:3: error: no host has the role `master`",
                "8:7: error: Cluster.spec.hosts[0].ips must list at least one IP",
                "9:7: error: Cluster.spec.hosts[0].roles must list at least one role",
            ],
        ),
        (
            "bad role",
            hosts("    - ips: [10.0.0.2]\n      roles: [master, \"db|cache\"]\n"),
            &["9:23: error: invalid role `db|cache`"],
        ),
        (
            "ips not a list",
            hosts("    - ips: 10.0.0.2\n      roles: [master]\n"),
            &["8:12: error: Cluster.spec.hosts[0].ips must be a list, not a string"],
        ),
        (
            "two local hosts in two groups",
            hosts(
                "    - ips: [10.0.0.2]\n      roles: [master]\n      ssh: {transport: local}\n    - ips: [10.0.0.3]\n      roles: [node]\n      ssh: {transport: local}\n",
            ),
            &["13:24: error: only one host may use transport local, but 10.0.0.2 and 10.0.0.3 do"],
        ),
        (
            "labels",
            hosts(
                "    - ips: [10.0.0.2]\n      roles: [master]\n      labels: {\"-x\": a, ok: \"a b\"}\n",
            ),
            &[
                "10:16: error: invalid label key `-x`",
                "10:29: error: invalid label value `a b` for `ok`",
            ],
        ),
        (
            "taints",
            hosts(
                "    - ips: [10.0.0.2]\n      roles: [master]\n      taints: [\"a=b:NoSchedule\", \"a=b\", \"c:Evict\"]\n",
            ),
            &[
                "10:34: error: invalid taint `a=b`: no effect",
                "10:41: error: invalid taint `c:Evict`: unknown effect `Evict`",
            ],
        ),
    ]);
}

#[test]
fn env() {
    check(&[
        (
            "no =",
            spec("  env: [DEBUG]\n"),
            &["10:9: error: env item `DEBUG` has no `=`"],
        ),
        (
            "bad key",
            spec("  env: [\"1A=b\", \"A-B=c\"]\n"),
            &[
                "10:9: error: invalid env key `1A`",
                "10:17: error: invalid env key `A-B`",
            ],
        ),
        (
            "derived keys",
            spec("  env: [KubeSvcIP=10.96.0.1, LocalRegistryURL=x, ContainerRuntime=docker]\n"),
            &[
                "10:9: error: env key `KubeSvcIP` is derived by sealer and cannot be set",
                "10:30: error: env key `LocalRegistryURL` is derived by sealer and cannot be set",
                "10:50: error: env key `ContainerRuntime` is derived by sealer and cannot be set",
            ],
        ),
        (
            "derived key in a host group",
            CLUSTER.replacen(
                "roles: [master]\n",
                "roles: [master]\n      env: [HostIP=1.2.3.4]\n",
                1,
            ),
            &["10:13: error: env key `HostIP` is derived by sealer and cannot be set"],
        ),
        (
            "duplicate key",
            spec("  env:\n    - A=1\n    - A=2\n"),
            &["12:7: error: duplicate env key `A` (first at line 11)"],
        ),
        (
            "bad SvcCIDR",
            spec("  env: [SvcCIDR=10.96.0.0]\n"),
            &["10:9: error: invalid SvcCIDR: `10.96.0.0`: no /PREFIX"],
        ),
        (
            "SvcCIDR too small for DNSSvcIP",
            spec("  env: [SvcCIDR=10.96.0.0/29]\n"),
            &[
                "10:9: error: invalid SvcCIDR: `10.96.0.0/29` is too small: DNSSvcIP is its 10th address",
            ],
        ),
        (
            "bad PodCIDR",
            spec("  env: [\"PodCIDR=100.64.0.0/10,300.0.0.0/8\"]\n"),
            &["10:9: error: invalid PodCIDR: `300.0.0.0/8`: `300.0.0.0` is not an IP address"],
        ),
    ]);
}

#[test]
fn registry() {
    check(&[
        (
            "both registries",
            spec(
                "  registry:\n    localRegistry: {domain: sea.hub}\n    externalRegistry: {domain: harbor.local}\n",
            ),
            &["12:5: error: both localRegistry and externalRegistry are set"],
        ),
        (
            "external without domain",
            spec("  registry:\n    externalRegistry: {port: 443}\n"),
            &["11:5: error: missing field `domain` in Cluster.spec.registry.externalRegistry"],
        ),
        (
            "domain with a port",
            spec("  registry:\n    localRegistry: {domain: \"sea.hub:5000\"}\n"),
            &["11:29: error: invalid registry domain `sea.hub:5000`"],
        ),
        (
            "password without username",
            spec("  registry:\n    externalRegistry: {domain: h.local, password: p}\n"),
            &[
                "11:41: error: Cluster.spec.registry.externalRegistry has a password but no username",
            ],
        ),
        (
            "unknown registry field",
            spec("  registry:\n    localRegistry: {domian: sea.hub}\n"),
            &["11:21: error: unknown field `domian` in Cluster.spec.registry.localRegistry"],
        ),
        (
            "bad cert SANs",
            spec(
                "  registry:\n    localRegistry:\n      cert: {subjectAltName: {dnsNames: [a_b], ips: [1.2.3]}}\n",
            ),
            &[
                "12:42: error: invalid DNS name `a_b`",
                "12:54: error: invalid IP address `1.2.3`",
            ],
        ),
        (
            "image policy",
            spec("  registry: {imagePolicy: opa}\n"),
            &["10:27: error: unknown image policy `opa`"],
        ),
    ]);
}

const APP: &str = "apiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: apps}\nspec:\n";

#[test]
fn application() {
    let app = |spec: &str| with_doc(&format!("{APP}{spec}"));
    check(&[
        (
            "unknown field",
            app("  launchApp: [a]\n"),
            &["15:3: error: unknown field `launchApp` in Application.spec"],
        ),
        (
            "bad image",
            app("  images: [\"Redis:v7\"]\n"),
            &[
                "15:12: error: invalid image reference \"Redis:v7\": invalid repository component \"Redis\" (lowercase letters, digits and separators '.', '_', '-', not at either end)",
            ],
        ),
        (
            "config without name, file problems",
            app(
                "  configs:\n    - files:\n        - {path: ../x.yaml, strategy: replace, data: a}\n        - {path: b.yaml}\n",
            ),
            &[
                "16:7: error: missing field `name` in Application.spec.configs[0]",
                "17:18: error: path `../x.yaml` leaves the app's directory",
                "17:39: error: unknown strategy `replace`",
                "18:11: error: missing field `data` in Application.spec.configs[0].files[1]",
            ],
        ),
        (
            "merge data that is not YAML",
            app(
                "  configs:\n    - name: a\n      files: [{path: a.yaml, strategy: merge, data: \"a: [\"}]\n",
            ),
            &[
                "17:53: error: data is not valid YAML (line 1 of data): invalid YAML: unclosed bracket '['",
            ],
        ),
        (
            "duplicate config and file",
            app(
                "  configs:\n    - name: a\n      files: [{path: a.yaml, data: x}, {path: ./a.yaml, data: y}]\n    - name: a\n",
            ),
            &[
                "17:47: error: a second entry for file `./a.yaml` (the first is at line 17)",
                "18:13: error: a second config for app `a` (the first is at line 16)",
            ],
        ),
        (
            "launch fields",
            app("  configs:\n    - name: a\n      launch: {cmd: [x]}\n"),
            &["17:16: error: unknown field `cmd` in Application.spec.configs[0].launch"],
        ),
    ]);
}

const CONFIG: &str = "apiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: c}\nspec:\n";
const PLUGIN: &str = "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\nspec:\n";

#[test]
fn config_and_plugin() {
    let config = |spec: &str| with_doc(&format!("{CONFIG}{spec}"));
    let plugin = |spec: &str| with_doc(&format!("{PLUGIN}{spec}"));
    check(&[
        (
            "absolute path",
            config("  path: /etc/hosts\n  data: x\n"),
            &["15:9: error: path `/etc/hosts` is absolute"],
        ),
        (
            "process and strategy",
            config("  path: a\n  strategy: Merge\n  process: \"toJson | base64\"\n  data: x\n"),
            &[
                "16:13: error: unknown strategy `Merge`",
                "17:22: error: unknown process step `base64`",
            ],
        ),
        (
            "missing path and data",
            config("  appName: mysql\n"),
            &[
                "14:1: error: missing field `path` in Config.spec",
                "14:1: error: missing field `data` in Config.spec",
            ],
        ),
        (
            "two Configs for one file",
            format!(
                "{CLUSTER}---\n{CONFIG}  path: a.yaml\n  data: x\n---\n{}  path: ./a.yaml\n  data: y\n",
                CONFIG.replace("name: c", "name: d")
            ),
            &["22:9: error: a second Config for path `./a.yaml` (the first is at line 15)"],
        ),
        (
            "unknown type and phase",
            plugin("  type: shell\n  action: pre-install|postinstall\n  data: x\n"),
            &[
                "15:9: error: unknown plugin type `shell`",
                "16:23: error: unknown plugin phase `postinstall`",
            ],
        ),
        (
            "no phase",
            plugin("  type: SHELL\n  action: \"|\"\n  data: x\n"),
            &["16:11: error: Plugin.spec.action names no phase"],
        ),
        (
            "bad scope",
            plugin("  type: SHELL\n  action: pre-install\n  scope: \"master|a b\"\n  data: x\n"),
            &["17:18: error: invalid role `a b` in scope"],
        ),
        (
            "missing type, action and data",
            plugin("  scope: master\n"),
            &[
                "14:1: error: missing field `type` in Plugin.spec",
                "14:1: error: missing field `action` in Plugin.spec",
                "14:1: error: missing field `data` in Plugin.spec",
            ],
        ),
        (
            "two plugins with one name",
            format!(
                "{CLUSTER}---\n{PLUGIN}  type: SHELL\n  action: pre-install\n  data: x\n---\n{PLUGIN}  type: SHELL\n  action: post-install\n  data: y\n"
            ),
            &["21:18: error: a second Plugin named `p` (the first is at line 13)"],
        ),
    ]);
}

#[test]
fn all_errors_of_a_file_are_reported_in_line_order() {
    let src = format!(
        "{}---\n{PLUGIN}  type: SHELL\n  action: pre-instal\n  data: x\n---\nkind: Clustr\n",
        CLUSTER
            .replacen("name: test", "name: Test", 1)
            .replacen("10.0.0.2", "10.0.0.x", 1)
    );
    assert_eq!(
        headlines(&src),
        [
            "Clusterfile:4:9: error: invalid cluster name `Test`",
            "Clusterfile:8:13: error: invalid IP address `10.0.0.x`",
            "Clusterfile:16:11: error: unknown plugin phase `pre-instal`",
            "Clusterfile:19:7: error: unknown kind `Clustr`",
        ]
    );
}

#[test]
fn hints_say_what_is_allowed() {
    let src = spec("  imgae: x\n");
    let e = crate::clusterfile::parse(std::path::Path::new("Clusterfile"), &src).unwrap_err();
    assert_eq!(
        e.diagnostics()[0].hints,
        [
            "did you mean `image`?",
            "fields of Cluster.spec: image, env, cmd, appNames, ssh, hosts, containerRuntime, hostAliases, registry, dataRoot",
        ]
    );
    let e = crate::clusterfile::parse(
        std::path::Path::new("Clusterfile"),
        &with_doc(&format!(
            "{PLUGIN}  type: SHELL\n  action: post-scale-up\n  data: x\n"
        )),
    )
    .unwrap_err();
    assert_eq!(e.diagnostics()[0].hints[0], "did you mean `post-scaleup`?");
}

#[test]
fn accepted_spellings() {
    load_ok(&CLUSTER.replacen("sealer.io/v2", "sealer.cloud/v2", 1));
    load_ok(&with_doc(&format!(
        "{}  type: SHELL\n  action: pre-install\n  data: x\n",
        PLUGIN.replace("sealer.io/v1", "sealer.cloud/v1")
    )));
    // Ports as numbers or strings; booleans in any core-schema case; anchors and aliases.
    load_ok(&spec(
        "  ssh: {port: \"2222\"}\n  registry:\n    localRegistry: {port: 5000, ha: False, insecure: TRUE}\n",
    ));
    let quoted = load_ok(&spec("  registry:\n    localRegistry: {ha: \"false\"}\n"));
    assert!(matches!(
        quoted.registry().kind,
        crate::clusterfile::RegistryKind::Local { ha: false, .. }
    ));
    let aliased = load_ok(&format!("{CLUSTER}  env: [&a A=1]\n  cmd: [*a]\n"));
    assert_eq!(
        aliased.cluster.cmd.as_ref().map(|c| c[0].value.as_str()),
        Some("A=1")
    );
    // Kubeadm documents take any field.
    load_ok(&with_doc(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nanything: {goes: [here]}\n",
    ));
    // An empty document, as after a trailing `---`.
    load_ok(&format!("---\n{CLUSTER}---\n"));
}
