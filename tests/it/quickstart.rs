//! The quickstart's cluster (examples/quickstart/Clusterfile): applied onto this machine
//! through the sandboxed `local` transport, it converges, and nothing outside its sandbox
//! changes.

use crate::support::{Sandbox, repo_root, stdout_of};
use std::collections::BTreeMap;
use std::path::Path;

const IMAGE: &str = "example/demo-cluster:v1.22.15";

/// What the cluster's steps would write on an unconfined machine: path → content (files),
/// entry names (directories) or absence.
fn fingerprint() -> BTreeMap<&'static str, String> {
    let watched = [
        "/etc/hosts",
        "/etc/kubernetes",
        "/etc/sealer",
        "/etc/containerd",
        "/etc/crictl.yaml",
        "/root/.kube",
        "/var/lib/sealer",
        "/var/lib/fake-kube",
        "/var/log/sealer-test",
        "/usr/local/bin/containerd",
    ];
    watched
        .into_iter()
        .map(|p| {
            let path = Path::new(p);
            let seen = if path.is_dir() {
                let mut names: Vec<String> = std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                format!("dir {names:?}")
            } else if path.exists() {
                format!("file {:?}", std::fs::read(path).unwrap())
            } else {
                "absent".to_string()
            };
            (p, seen)
        })
        .collect()
}

#[test]
fn the_quickstart_cluster_applies_inside_its_sandbox_and_nowhere_else() {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    // The Clusterfile's sandbox is relative to its directory: a copy at the same place in
    // the test's directory keeps the sandbox there, out of the checkout.
    let text =
        std::fs::read_to_string(repo_root().join("examples/quickstart/Clusterfile")).unwrap();
    let clusterfile = sb
        .write_tree("examples/quickstart", &[("Clusterfile", &text)])
        .join("Clusterfile");
    let run = |args: &[&str]| {
        let mut cmd = sb.sealer();
        cmd.current_dir(sb.dir.path()).args(args);
        cmd
    };
    let before = fingerprint();

    stdout_of(&mut run(&[
        "apply",
        "-f",
        clusterfile.to_str().unwrap(),
        "--auto-approve",
    ]));

    assert_eq!(fingerprint(), before, "the apply wrote outside its sandbox");
    // What sealer keeps of it (the unpacked image, the rendered rootfs) is private.
    for dir in ["", "images", "cache", "cache/rootfs", "cache/rendered"] {
        use std::os::unix::fs::PermissionsExt;
        let path = sb.home().join(dir);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", path.display());
    }
    let upper = sb.path(".quickstart/sandbox/upper");
    assert!(upper.join("etc/kubernetes/admin.conf").is_file());
    assert!(upper.join("root/.kube/config").is_file());
    let hosts = std::fs::read_to_string(upper.join("etc/hosts")).unwrap();
    assert!(
        hosts.contains("127.0.0.1 apiserver.cluster.local"),
        "{hosts}"
    );
    assert!(hosts.contains("127.0.0.1 sea.hub"), "{hosts}");
    // containerd pulls from the cluster registry: its config reads certs.d, where the
    // registry's hosts.toml names the server and the CA sealer copied there, and the pause
    // image comes from that registry.
    let containerd = std::fs::read_to_string(upper.join("etc/containerd/config.toml")).unwrap();
    assert!(
        containerd.contains("config_path = \"/etc/containerd/certs.d\"")
            && containerd.contains("sandbox_image = \"sea.hub:5000/pause:3.5\""),
        "{containerd}"
    );
    let certs = upper.join("etc/containerd/certs.d/sea.hub:5000");
    assert_eq!(
        std::fs::read_to_string(certs.join("hosts.toml")).unwrap(),
        "server = \"https://sea.hub:5000\"\n\n[host.\"https://sea.hub:5000\"]\n  ca = \"/etc/containerd/certs.d/sea.hub:5000/ca.crt\"\n"
    );
    assert_eq!(
        std::fs::read(certs.join("ca.crt")).unwrap(),
        std::fs::read(upper.join("etc/sealer/registry/sea.hub.crt")).unwrap()
    );
    assert!(
        upper
            .join("var/lib/sealer/data/quickstart/rootfs/scripts/init-kube.sh")
            .is_file()
    );
    let log = std::fs::read_to_string(upper.join("var/log/sealer-test/commands.log")).unwrap();
    for ran in [
        " kubeadm init --config /etc/kubernetes/kubeadm.yaml",
        " helm install metrics",
    ] {
        assert!(log.contains(ran), "{ran} not in\n{log}");
    }

    // The state records the sandbox absolute, so a destroy from elsewhere finds it.
    let host = stdout_of(&mut run(&[
        "state",
        "show",
        "host.127.0.0.1",
        "--cluster",
        "quickstart",
    ]));
    let sandbox = sb.path(".quickstart/sandbox");
    assert!(host.contains(&*sandbox.to_string_lossy()), "{host}");
    let plan = stdout_of(&mut run(&["plan", "-f", clusterfile.to_str().unwrap()]));
    assert!(plan.contains("No changes."), "{plan}");

    stdout_of(sb.sealer().current_dir(repo_root()).args([
        "destroy",
        "--cluster",
        "quickstart",
        "--auto-approve",
    ]));
    assert!(!upper.join("etc/kubernetes/admin.conf").exists());
    assert!(!upper.join("var/lib/sealer/data/quickstart/rootfs").exists());
    let list = stdout_of(&mut run(&["state", "list", "--cluster", "quickstart"]));
    assert!(
        list.starts_with("# cluster \"quickstart\" has no resources (state serial "),
        "{list}"
    );
    assert_eq!(
        fingerprint(),
        before,
        "the destroy wrote outside its sandbox"
    );
}

#[test]
fn a_sandbox_on_a_host_reached_over_ssh_is_refused_at_its_line() {
    let sb = Sandbox::new();
    let dir = sb.write_tree(
        "cf",
        &[(
            "Clusterfile",
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: example/demo-cluster:v1.22.15\n  ssh: {passwd: x, sandbox: /tmp/x}\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n",
        )],
    );
    let out = sb
        .sealer()
        .args(["validate", "-f"])
        .arg(dir.join("Clusterfile"))
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("Clusterfile:6:") && err.contains("sandbox needs transport: local"),
        "{err}"
    );
}

#[test]
fn registry_basic_auth_reaches_the_registry_and_every_kubelet() {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    let password = "s3cret-registry-pass";
    let clusterfile = sb.write_tree(
        "cf",
        &[(
            "Clusterfile",
            &format!(
                "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {{name: auth}}\nspec:\n  image: {IMAGE}\n  ssh: {{transport: local, sandbox: sandbox}}\n  registry:\n    localRegistry: {{username: puller, password: {password}}}\n  hosts:\n    - ips: [127.0.0.1]\n      roles: [master]\n"
            ),
        )],
    );
    let file = clusterfile.join("Clusterfile");
    let run = |args: &[&str]| {
        let mut cmd = sb.sealer();
        cmd.current_dir(sb.dir.path()).args(args);
        cmd
    };
    let out = stdout_of(&mut run(&[
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--auto-approve",
    ]));
    assert!(!out.contains(password));

    // Relative to the Clusterfile's directory.
    let upper = clusterfile.join("sandbox/upper");
    let htpasswd =
        std::fs::read_to_string(upper.join("etc/sealer/registry/sea.hub.htpasswd")).unwrap();
    let (user, hash) = htpasswd.trim().split_once(':').unwrap();
    assert_eq!(user, "puller");
    assert!(bcrypt::verify(password, hash).unwrap(), "{htpasswd}");
    let registry =
        std::fs::read_to_string(upper.join("var/lib/fake-registry/sealer-registry")).unwrap();
    assert!(
        registry.contains("auth=htpasswd:/etc/sealer/registry/sea.hub.htpasswd"),
        "{registry}"
    );
    let kubelet = upper.join("var/lib/kubelet/config.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubelet).unwrap()).unwrap();
    use base64::Engine as _;
    let auth = config["auths"]["sea.hub:5000"]["auth"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(decoded, format!("puller:{password}").as_bytes());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&kubelet).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for file in ["state.db", "state.db-wal"] {
        let bytes = std::fs::read(sb.home().join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{file}"
        );
    }

    stdout_of(&mut run(&[
        "destroy",
        "-f",
        file.to_str().unwrap(),
        "--auto-approve",
    ]));
    assert!(!kubelet.exists());
    assert!(!upper.join("etc/sealer/registry/sea.hub.htpasswd").exists());
}

/// A Plugin that prints a certificate, then the registry credentials the kubelet got, slowly
/// enough for its spinner to show each line.
const PRINTS_A_CERTIFICATE: &str = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: show-ca}\nspec:\n  type: SHELL\n  action: post-install\n  data: |\n    echo '-----BEGIN CERTIFICATE-----'\n    echo MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBExDzANBgNVBAMMBnVu\n    sleep 0.6\n    echo '-----END CERTIFICATE-----'\n    sleep 0.6\n    printf 'pulling as %s\\n' \"$(grep -o '\"auth\": *\"[^\"]*\"' /var/lib/kubelet/config.json | cut -d'\"' -f4 | base64 -d)\"\n    sleep 0.6\n";
/// The cluster registry's password: the Plugin above prints it (decoded from the kubelet's
/// credentials), and it must show as `(sensitive value)`.
const REGISTRY_PASSWORD: &str = "tty-registry-s3cret";

/// On a terminal (a pty, through util-linux's `script`), an apply shows one overall line
/// (steps finished of the plan's, elapsed, what the host runs) and ends with a table per host;
/// a step's spinner shows its output but never a certificate's body nor a secret; in a pipe,
/// none of it.
#[test]
fn a_terminal_shows_the_overall_line_and_a_closing_table_per_host() {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    let text =
        std::fs::read_to_string(repo_root().join("examples/quickstart/Clusterfile")).unwrap();
    let text = text.replace(
        "  hosts:\n",
        &format!(
            "  registry:\n    localRegistry: {{username: puller, password: {REGISTRY_PASSWORD}}}\n  hosts:\n"
        ),
    );
    let text = format!("{text}{PRINTS_A_CERTIFICATE}");
    let clusterfile = sb
        .write_tree("examples/quickstart", &[("Clusterfile", &text)])
        .join("Clusterfile");
    let command = format!(
        "'{}' apply -f '{}' --auto-approve",
        env!("CARGO_BIN_EXE_sealer"),
        clusterfile.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(sb.dir.path())
        .env("SEALER_HOME", sb.home())
        .env("HOME", sb.dir.path())
        .env("TERM", "xterm")
        .env("COLUMNS", "100")
        .output()
        .expect("util-linux `script`");
    let tty = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("/11] ") && tty.contains(" · 127.0.0.1 "),
        "no overall line:\n{tty}"
    );
    // It appears once the steps start: it does not cut into the plan.
    let plan_ends = tty.find("Plan: 11 to add").expect("the plan");
    assert!(
        !tty[..plan_ends].contains("/11]"),
        "the overall line showed before the steps started:\n{tty}"
    );
    assert!(
        tty.contains("plugin.show-ca.post-install: (certificate …)")
            && tty.contains("plugin.show-ca.post-install: (certificate received)"),
        "the spinner did not summarise the certificate:\n{tty}"
    );
    // (The plan above shows the Plugin's script, certificate included: that is its input.)
    assert!(
        !tty.contains("post-install: MIIBkTCB"),
        "a spinner showed a certificate's body:\n{tty}"
    );
    assert!(
        tty.contains("post-install: pulling as puller:(sensitive value)"),
        "the spinner did not show the redacted line:\n{tty}"
    );
    assert!(!tty.contains(REGISTRY_PASSWORD), "{tty}");
    let table = tty
        .split_once("\nHOST ")
        .map(|(_, t)| format!("HOST {t}"))
        .unwrap_or_else(|| panic!("no closing table:\n{tty}"));
    let rows: Vec<Vec<&str>> = table
        .lines()
        .take(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["HOST", "DONE", "FAILED", "SKIPPED", "TIME"],
        "{table}"
    );
    assert_eq!(rows[1][..4], ["127.0.0.1", "11", "0", "0"], "{table}");
    assert_eq!(rows[2][..4], ["all", "11", "0", "0"], "{table}");
    assert_eq!(rows[2].last(), Some(&"elapsed"), "{table}");
    assert!(table.contains("Apply complete: 11 steps done."), "{table}");

    let piped = sb
        .sealer()
        .current_dir(sb.dir.path())
        .args([
            "destroy",
            "-f",
            clusterfile.to_str().unwrap(),
            "--auto-approve",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{stderr}");
    assert!(
        !stderr.contains("HOST ") && !stderr.contains("/11]") && !stderr.contains(" · "),
        "a pipe got the terminal's display:\n{stderr}"
    );
    assert!(stderr.contains("Destroy complete"), "{stderr}");
}
