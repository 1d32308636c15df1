//! `sealer validate -f FILE`: every invalid Clusterfile fixture fails with exit code 1 and
//! its located errors, compiler-style.

use crate::support::{Sandbox, failure_of, fixture};
use std::path::PathBuf;

fn invalid_fixtures() -> Vec<PathBuf> {
    let dir = fixture("clusterfiles/invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

/// `# expect: LINE:COL: error: MESSAGE` lines at the end of a fixture.
fn expectations(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("fixture")
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_invalid_clusterfile_fails_with_its_located_errors() {
    let sb = Sandbox::new();
    let paths = invalid_fixtures();
    assert!(paths.len() >= 10, "{paths:?}");
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let stderr = failure_of(
            sb.sealer()
                .current_dir(path.parent().unwrap())
                .args(["validate", "-f", &name]),
        );
        let expected = expectations(&path);
        assert!(!expected.is_empty(), "{name} has no expectations");
        for headline in expected {
            let line = format!("{name}:{headline}\n");
            assert!(
                stderr.contains(&line),
                "{name}: missing\n{line}in:\n{stderr}"
            );
        }
    }
}

#[test]
fn errors_quote_the_line_with_a_caret_and_a_hint() {
    let sb = Sandbox::new();
    let dir = fixture("clusterfiles/invalid");
    let stderr =
        failure_of(
            sb.sealer()
                .current_dir(&dir)
                .args(["validate", "-f", "bad-hosts.yaml"]),
        );
    let expected = "bad-hosts.yaml:8:26: error: invalid IP address `192.168.0.256`\n\
                    8 |     - ips: [192.168.0.2, 192.168.0.256]\n  \
                      |                          ^\n\
                    hint: write an IPv4 address such as 192.168.0.2 or an IPv6 address such as fd00::2\n";
    assert!(stderr.contains(expected), "{stderr}");
}

/// A key indented one column short is reported on its own line, with what to check.
#[test]
fn a_mis_indented_key_is_reported_on_its_line() {
    let sb = Sandbox::new();
    let dir = fixture("clusterfiles/invalid");
    let stderr =
        failure_of(
            sb.sealer()
                .current_dir(&dir)
                .args(["validate", "-f", "mis-indented-key.yaml"]),
        );
    assert_eq!(
        stderr,
        "mis-indented-key.yaml:9:4: error: invalid YAML: while parsing a block mapping, did not \
         find expected key\n\
         9 |    passwd: hunter2\n  \
           |    ^\n\
         hint: check this line's indentation: a key lines up with the other keys of its mapping, \
         a `-` with the other items of its list (spaces only)\n"
    );
}

#[test]
fn a_missing_clusterfile_is_an_error() {
    let sb = Sandbox::new();
    let stderr = failure_of(
        sb.sealer()
            .args(["validate", "-f", "/nonexistent/Clusterfile"]),
    );
    assert!(
        stderr.contains(
            "error: no Clusterfile at /nonexistent/Clusterfile\nhint: pass the file with -f PATH"
        ),
        "{stderr}"
    );
}

/// A cluster image whose runtime sealer cannot install (k3s, k0s, ...) is refused where the
/// Clusterfile names it; one without the label is a Kubernetes (kubeadm) image, as in Sealer.
#[test]
fn a_cluster_image_of_an_unsupported_runtime_is_refused_at_spec_image() {
    let sb = Sandbox::new();
    let clusterfile = sb.path("Clusterfile");
    for (tag, label) in [
        (
            "k3s",
            "LABEL cluster.alpha.sealer.io/cluster-runtime-type=k3s\n",
        ),
        (
            "k0s",
            "LABEL cluster.alpha.sealer.io/cluster-runtime-type=k0s\n",
        ),
        (
            "kubernetes",
            "LABEL cluster.alpha.sealer.io/cluster-runtime-type=kubernetes\n",
        ),
        ("none", ""),
    ] {
        let ctx = sb.write_tree(
            tag,
            &[
                (
                    "Kubefile",
                    &format!(
                        "FROM scratch\n{label}LABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.26.15\nCOPY etc etc\n"
                    ),
                ),
                ("etc/note", "x\n"),
            ],
        );
        crate::support::stdout_of(
            sb.sealer()
                .args(["build", "--platform", "linux/amd64", "-t"])
                .arg(format!("rt/{tag}:v1"))
                .arg(&ctx),
        );
        std::fs::write(
            &clusterfile,
            format!(
                "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: rt/{tag}:v1\n  ssh: {{user: root, passwd: x}}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n"
            ),
        )
        .unwrap();
        let out = sb
            .sealer()
            .current_dir(sb.path(""))
            .args(["validate", "-f", "Clusterfile"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if tag == "k3s" || tag == "k0s" {
            assert!(!out.status.success(), "{tag}");
            assert!(
                stderr.contains(&format!(
                    "Clusterfile:6:10: error: rt/{tag}:v1 installs a \"{tag}\" cluster (label cluster.alpha.sealer.io/cluster-runtime-type), which sealer cannot install: the only supported cluster runtime is \"kubernetes\" (kubeadm)\n"
                )),
                "{stderr}"
            );
            assert!(
                stderr.contains("hint: use a Kubernetes cluster image"),
                "{stderr}"
            );
        } else {
            assert!(out.status.success(), "{tag}: {stderr}");
        }
    }
}

/// A Kubefile of apps only, built without --type, is a cluster image (Sealer's default) that
/// says no Kubernetes version: the build warns, and validate refuses it at spec.image.
#[test]
fn a_cluster_image_without_a_kubernetes_version_is_refused_at_spec_image() {
    let sb = Sandbox::new();
    let ctx = sb.write_tree(
        "apps",
        &[
            (
                "Kubefile",
                "FROM scratch\nAPP web local://web.yaml\nLAUNCH [\"web\"]\n",
            ),
            (
                "web.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
            ),
        ],
    );
    let built = sb
        .sealer()
        .args(["build", "-t", "apps:v1"])
        .arg(&ctx)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&built.get_output().stderr).to_string();
    assert!(
        stderr.starts_with(
            "warning: this is a cluster image (--type kube-installer, the default) that does not \
             say its Kubernetes version (label cluster.alpha.sealer.io/cluster-runtime-version): \
             a Cluster cannot use it as spec.image\n\
             hint: an image of apps only is an app image: build it with --type app-installer\n"
        ),
        "{stderr}"
    );
    std::fs::write(
        sb.path("Clusterfile"),
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: apps:v1\n  ssh: {user: root, passwd: x}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n",
    )
    .unwrap();
    let stderr =
        failure_of(
            sb.sealer()
                .current_dir(sb.path(""))
                .args(["validate", "-f", "Clusterfile"]),
        );
    assert_eq!(
        stderr,
        "Clusterfile:6:10: error: apps:v1 does not say which Kubernetes it installs (no label \
         cluster.alpha.sealer.io/cluster-runtime-version): spec.image needs a cluster image\n\
         6 |   image: apps:v1\n  \
           |          ^\n\
         hint: build the cluster image FROM a Kubernetes cluster image (e.g. FROM my-kubernetes:v1.26.15)\n\
         hint: an image of apps only is an app image (`sealer build --type app-installer`): list \
         it in an Application's spec.images\n"
    );
    // Built as what it is, there is no warning.
    let built = sb
        .sealer()
        .args(["build", "--type", "app-installer", "-t", "apps:v2"])
        .arg(&ctx)
        .assert()
        .success();
    assert!(built.get_output().stderr.starts_with(b"built apps:v2"));
}

/// Commands run with `--json` (and `inspect`, whose output is JSON) refuse with a JSON
/// object on stdout as well as the message on stderr; the exit code is unchanged.
#[test]
fn json_refusals_are_json_on_stdout() {
    let sb = Sandbox::new();
    let dir = fixture("clusterfiles/invalid");
    let refused = |cmd: &mut assert_cmd::Command| -> serde_json::Value {
        let out = cmd.assert().code(1).get_output().clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!out.stderr.is_empty(), "the message stays on stderr");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    assert_eq!(
        refused(sb.sealer().current_dir(&dir).args([
            "validate",
            "-f",
            "mis-indented-key.yaml",
            "--json"
        ])),
        serde_json::json!({
            "type": "error",
            "errors": [{
                "message": "invalid YAML: while parsing a block mapping, did not find expected key",
                "file": "mis-indented-key.yaml",
                "line": 9,
                "column": 4,
                "hint": "check this line's indentation: a key lines up with the other keys of its mapping, a `-` with the other items of its list (spaces only)",
            }],
        })
    );
    assert_eq!(
        refused(sb.sealer().args(["inspect", "nope:v1"])),
        serde_json::json!({
            "type": "error",
            "errors": [{
                "message": "no image nope:v1 in the local store",
                "file": null,
                "line": null,
                "column": null,
                "hint": "`sealer images` lists the local images; `sealer pull NAME` fetches one",
            }],
        })
    );
    let state_show = refused(
        sb.sealer()
            .args(["state", "show", "host.10.0.0.2", "--json"]),
    );
    assert_eq!(
        state_show["errors"][0]["message"],
        "no resource host.10.0.0.2 in the state"
    );
    // Without --json, stdout stays empty.
    let out = sb
        .sealer()
        .args(["state", "show", "host.10.0.0.2"])
        .assert()
        .code(1);
    assert!(out.get_output().stdout.is_empty());
    // No state: an empty list of clusters.
    let listed = sb
        .sealer()
        .args(["state", "list", "--json"])
        .assert()
        .success();
    let listed: serde_json::Value = serde_json::from_slice(&listed.get_output().stdout).unwrap();
    assert_eq!(listed, serde_json::json!({"clusters": []}));
}

/// A mistyped image name that a registry cannot give: one short error naming the registry
/// and the root cause, and the nearest local name, in a Clusterfile, `sealer pull` and FROM.
#[test]
fn a_mistyped_image_name_suggests_the_nearest_local_one() {
    let sb = Sandbox::new();
    let ctx = sb.write_tree(
        "k8s",
        &[
            (
                "Kubefile",
                "FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.26.15\nCOPY etc etc\n",
            ),
            ("etc/note", "x\n"),
        ],
    );
    // Port 9 (discard) refuses connections: the pull fails the same way on every machine.
    let stored = "127.0.0.1:9/my-kubernetes:v1.26.15";
    let typo = "127.0.0.1:9/my-kubernets:v1.26.15";
    sb.sealer()
        .args(["build", "-t", stored])
        .arg(&ctx)
        .assert()
        .success();
    let cause = "cannot pull 127.0.0.1:9/my-kubernets:v1.26.15: cannot reach 127.0.0.1:9: \
                 Connection refused";
    let near = "hint: did you mean 127.0.0.1:9/my-kubernetes:v1.26.15 (in the local store)?\n";

    std::fs::write(
        sb.path("Clusterfile"),
        format!("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: {typo}\n  ssh: {{user: root, passwd: x}}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n"),
    )
    .unwrap();
    let stderr =
        failure_of(
            sb.sealer()
                .current_dir(sb.path(""))
                .args(["validate", "-f", "Clusterfile"]),
        );
    assert_eq!(
        stderr,
        format!(
            "Clusterfile:6:10: error: image {typo} is not in the local store and cannot be \
             pulled: {cause}\n\
             6 |   image: {typo}\n  \
               |          ^\n\
             {near}\
             hint: build it with `sealer build`, or `sealer load` / `sealer pull` it\n"
        )
    );

    let stderr = failure_of(sb.sealer().args(["pull", typo]));
    assert_eq!(stderr, format!("error: {cause}\n{near}"));

    let from = sb.write_tree("child", &[("Kubefile", &format!("FROM {typo}\n"))]);
    let stderr = failure_of(sb.sealer().args(["build", "-t", "child:v1"]).arg(&from));
    assert_eq!(
        stderr,
        format!(
            "{}/Kubefile:1:6: error: base image {typo} is not in the local store and cannot be \
             pulled: {cause}\n\
             1 | FROM {typo}\n  \
               |      ^\n\
             {near}",
            from.display()
        )
    );
}
