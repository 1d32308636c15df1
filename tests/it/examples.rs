//! The examples cannot rot: every image under `examples/images/` builds with the command its
//! Kubefile documents, every Clusterfile under `examples/clusterfiles/` validates and plans
//! against a fresh state, and the `sealer` commands of `examples/README.md` run as written
//! (`sealer run` up to its confirmation, on a state seeded as if the cluster were applied).
//! Both directories are listed, so a new example is checked without touching this file.
//! Nothing here needs root, SSH hosts or the network.

use crate::support::{Sandbox, repo_root, stdout_of};
use sealer::clusterfile::{Clusterfile, Phase, ProcessStep, Ssh};
use sealer::plan::Action;
use sealer::plan::saved::SavedPlan;
use sealer::resource::Recorded;
use sealer::state::StateStore;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    repo_root().join("examples")
}

/// The entries of `examples/<dir>`, sorted, as (file name, path).
fn listing(dir: &str) -> Vec<(String, PathBuf)> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(examples().join(dir))
        .unwrap_or_else(|e| panic!("examples/{dir}: {e}"))
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    entries.sort();
    entries
}

/// The example Clusterfiles: the YAML files of `examples/clusterfiles/`.
fn clusterfiles() -> Vec<(String, PathBuf)> {
    listing("clusterfiles")
        .into_iter()
        .filter(|(n, _)| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect()
}

fn readme() -> String {
    std::fs::read_to_string(examples().join("README.md")).expect("examples/README.md")
}

/// The `sealer ...` command lines of the README's fenced code blocks, in order, without
/// trailing comments and pipes.
fn readme_commands(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut commands = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let line = line.trim();
        if !fenced || !line.starts_with("sealer ") {
            continue;
        }
        let line = line.split(" # ").next().unwrap();
        let line = line.split(" | ").next().unwrap();
        commands.push(line.trim().to_string());
    }
    commands
}

/// Splits a documented command into arguments. The examples quote nothing, so that the test
/// runs exactly what a reader would type.
fn words(command: &str) -> Vec<String> {
    assert!(
        !command.contains(['"', '\'', '$', '`', '\\']),
        "keep example commands free of quoting and expansion: {command}"
    );
    command
        .split_whitespace()
        .skip(1) // "sealer"
        .map(str::to_string)
        .collect()
}

/// The `sealer build ... examples/images/NAME` command in the comments of a Kubefile.
fn documented_build(name: &str, kubefile: &Path) -> String {
    let text = std::fs::read_to_string(kubefile).unwrap();
    let found: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .filter_map(|l| l.find("sealer build ").map(|i| l[i..].trim().to_string()))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "examples/images/{name}/Kubefile must say in a comment how to build it \
         (`sealer build ... examples/images/{name}`), found {found:?}"
    );
    let command = found.into_iter().next().unwrap();
    assert!(
        command.ends_with(&format!(" examples/images/{name}")),
        "{name}: the documented build must take examples/images/{name} as context: {command}"
    );
    command
}

/// A sandbox holding every example image, built with the README's commands, and the
/// SSH keys the example Clusterfiles name (`~/...`, HOME being the sandbox).
fn sandbox_with_examples() -> Sandbox {
    let sb = Sandbox::new();
    let readme = readme();
    let commands = readme_commands(&readme);
    let builds: Vec<&String> = commands
        .iter()
        .filter(|c| c.starts_with("sealer build "))
        .collect();
    let mut image_dirs = 0;
    for (name, path) in listing("images") {
        if !path.is_dir() {
            continue;
        }
        image_dirs += 1;
        let command = documented_build(&name, &path.join("Kubefile"));
        assert!(
            builds.contains(&&command),
            "examples/README.md must list the build of examples/images/{name} as its \
             Kubefile documents it: {command}"
        );
        assert!(
            readme.contains(&format!("[`images/{name}`](images/{name})")),
            "examples/README.md: the images table has no row for images/{name}"
        );
    }
    assert!(image_dirs >= 5, "the example images are missing");
    for &command in &builds {
        let context = command.rsplit(' ').next().unwrap();
        assert!(
            repo_root().join(context).join("Kubefile").is_file(),
            "{command}: no Kubefile in {context}"
        );
        run_ok(&sb, command);
    }
    // Each image has the type its documented build gives (the default is kube-installer).
    let listed: Value = serde_json::from_str(&stdout_of(sb.sealer().args(["images", "--json"])))
        .expect("images --json");
    for command in &builds {
        let args = words(command);
        let want = if args.iter().any(|a| a == "app-installer") {
            "app-installer"
        } else {
            "kube-installer"
        };
        let tag = &args[args.iter().position(|a| a == "-t").unwrap() + 1];
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == tag.as_str())
            .unwrap_or_else(|| panic!("{tag} is not in the store: {listed}"));
        assert_eq!(row["type"], want, "{command}");
    }
    // The private keys the Clusterfiles name, under the sandbox's HOME, as an operator has
    // them (validate and plan do not read them; the examples stay runnable up to apply).
    for (name, path) in clusterfiles() {
        let cf = model(&path);
        let ssh = std::iter::once(&cf.cluster.ssh).chain(cf.cluster.hosts.iter().map(|g| &g.ssh));
        for pk in ssh.filter_map(|s| s.pk.as_ref()) {
            let rel = pk.value.strip_prefix("~/").unwrap_or_else(|| {
                panic!("{name}: write key paths as ~/..., so that any machine has them")
            });
            let key = sb.dir.path().join(rel);
            std::fs::create_dir_all(key.parent().unwrap()).unwrap();
            std::fs::write(
                &key,
                "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key: examples only\n-----END OPENSSH PRIVATE KEY-----\n",
            )
            .unwrap();
        }
    }
    sb
}

/// Runs a documented command from the repository root; it must succeed.
fn run_ok(sb: &Sandbox, command: &str) -> String {
    let out = sb
        .sealer()
        .current_dir(repo_root())
        .args(words(command))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sealer_ok(sb: &Sandbox, args: &[&str], file: &Path) -> String {
    stdout_of(sb.sealer().args(args).arg(file).env("NO_COLOR", "1"))
}

/// Loads a Clusterfile with the library's parser, to derive what its plan must contain.
fn model(path: &Path) -> Clusterfile {
    let text = std::fs::read_to_string(path).unwrap();
    sealer::clusterfile::parse(path, &text).unwrap_or_else(|e| {
        panic!("{}: {}", path.display(), e.render());
    })
}

/// Every secret value written in the Clusterfile: SSH and registry passwords, key
/// passphrases, and the values of `toSecret` Configs.
fn secrets(cf: &Clusterfile) -> Vec<String> {
    let mut out = Vec::new();
    let mut ssh = |s: &Ssh| {
        for secret in [&s.passwd, &s.pk_passwd].into_iter().flatten() {
            out.push(secret.value.expose().to_string());
        }
    };
    ssh(&cf.cluster.ssh);
    for group in &cf.cluster.hosts {
        ssh(&group.ssh);
    }
    let registry = &cf.cluster.registry;
    if let Some(p) = registry.local.as_ref().and_then(|l| l.password.as_ref()) {
        out.push(p.value.expose().to_string());
    }
    if let Some(p) = registry.external.as_ref().and_then(|l| l.password.as_ref()) {
        out.push(p.value.expose().to_string());
    }
    for config in &cf.configs {
        if config
            .process
            .iter()
            .any(|p| p.value == ProcessStep::ToSecret)
        {
            for line in config.data.value.lines() {
                if let Some((_, v)) = line.split_once(':') {
                    let v = v.trim();
                    if v.len() >= 8 {
                        out.push(v.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Hosts of the Clusterfile: IP → roles.
fn hosts(cf: &Clusterfile) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for group in &cf.cluster.hosts {
        for ip in &group.ips {
            out.insert(
                ip.value.to_string(),
                group.roles.iter().map(|r| r.value.clone()).collect(),
            );
        }
    }
    out
}

fn addresses<'a>(changes: &'a [Value], prefix: &str) -> Vec<&'a str> {
    changes
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .filter(|a| a.starts_with(prefix))
        .collect()
}

/// What the plan of a known example must hold, beyond the checks every example gets.
struct Expected {
    add: u64,
    apps: &'static [&'static str],
    plugins: &'static [&'static str],
}

fn expected(file: &str) -> Option<Expected> {
    Some(match file {
        "single-node.yaml" => Expected {
            add: 9,
            apps: &["app.calico"],
            plugins: &["plugin.untaint-master.post-install"],
        },
        "ha-3x3.yaml" => Expected {
            add: 49,
            apps: &["app.calico"],
            plugins: &[
                "plugin.backup-before-destroy.pre-uninstall",
                "plugin.mount-data-disk.pre-init-host.192.0.2.21",
                "plugin.mount-data-disk.pre-init-host.192.0.2.22",
                "plugin.mount-data-disk.pre-init-host.192.0.2.23",
                "plugin.unmount-data-disk.post-clean-host.192.0.2.21",
                "plugin.unmount-data-disk.post-clean-host.192.0.2.22",
                "plugin.unmount-data-disk.post-clean-host.192.0.2.23",
                "plugin.untaint-master.post-install",
                "plugin.wait-for-dns.post-install",
            ],
        },
        "app-with-configs.yaml" => Expected {
            add: 25,
            apps: &[
                "app.calico",
                "app.nginx",
                "app.redis",
                "app.backup-rbac",
                "app.backup",
            ],
            plugins: &["plugin.untaint-master.post-install"],
        },
        _ => return None,
    })
}

/// The LAUNCH list of an image in the sandbox's store.
fn launch_of(sb: &Sandbox, image: &str) -> Vec<String> {
    let inspect: Value =
        serde_json::from_str(&stdout_of(sb.sealer().args(["inspect", image]))).unwrap();
    inspect["launch"]["app_names"]
        .as_array()
        .unwrap_or_else(|| panic!("{image}: no launch list in {inspect}"))
        .iter()
        .map(|a| format!("app.{}", a.as_str().unwrap()))
        .collect()
}

/// Checks the plan of one example Clusterfile against what the file declares.
fn check_clusterfile(sb: &Sandbox, name: &str, path: &Path) {
    let cf = model(path);
    let cluster = cf.cluster.name.value.clone();
    let secrets = secrets(&cf);
    let hosts = hosts(&cf);
    let has = |ip: &str, role: &str| hosts[ip].contains(role);
    let masters: Vec<&String> = hosts.keys().filter(|ip| has(ip, "master")).collect();
    let master0 = cf
        .cluster
        .hosts
        .iter()
        .find(|g| g.roles.iter().any(|r| r.value == "master"))
        .map(|g| g.ips[0].value.to_string())
        .unwrap();

    // `validate` reports on stderr.
    let out = sb
        .sealer()
        .args(["validate", "-f"])
        .arg(path)
        .output()
        .unwrap();
    let validated = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{name}: {validated}");
    assert!(
        validated.contains(&format!("is valid: cluster \"{cluster}\"")),
        "{name}: {validated}"
    );

    // The JSON plan of a fresh state.
    let json_text = sealer_ok(sb, &["plan", "--json", "-f"], path);
    let plan: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(plan["cluster"], cluster.as_str(), "{name}");
    assert_eq!(plan["new_cluster"], true, "{name}");
    assert_eq!(plan["errors"], serde_json::json!([]), "{name}");
    let changes = plan["changes"].as_array().unwrap();
    let add = plan["summary"]["add"].as_u64().unwrap();
    assert!(add > 0, "{name}: the plan creates nothing");
    assert_eq!(add as usize, changes.len(), "{name}");
    for c in changes {
        assert_eq!(c["action"], "create", "{name}: {}", c["address"]);
    }

    // One host resource per IP; kubeadm init on master0, joins for the others.
    let host_addrs: BTreeSet<String> = addresses(changes, "host.")
        .into_iter()
        .map(str::to_string)
        .collect();
    let want: BTreeSet<String> = hosts.keys().map(|ip| format!("host.{ip}")).collect();
    assert_eq!(host_addrs, want, "{name}: host resources");
    assert_eq!(
        addresses(changes, "rootfs.").len(),
        hosts.len(),
        "{name}: rootfs"
    );
    let init = changes
        .iter()
        .find(|c| c["address"] == "kubernetes.init")
        .unwrap_or_else(|| panic!("{name}: no kubernetes.init"));
    assert_eq!(init["host"], master0.as_str(), "{name}: master0");
    assert_eq!(
        addresses(changes, "kubernetes.master.").len(),
        masters.len() - 1,
        "{name}: master joins"
    );
    let workers = hosts
        .keys()
        .filter(|ip| has(ip, "node") && !has(ip, "master"))
        .count();
    assert_eq!(
        addresses(changes, "kubernetes.worker.").len(),
        workers,
        "{name}: worker joins"
    );

    // The local registry: on every master with `ha` (the default), else on master0; its
    // password only ever as a sensitive value.
    if cf.cluster.registry.external.is_none() {
        let local = cf.cluster.registry.local.as_ref();
        let ha = local.and_then(|l| l.ha.as_ref()).is_none_or(|h| h.value);
        let registries = addresses(changes, "registry.");
        assert_eq!(
            registries.len(),
            if ha { masters.len() } else { 1 },
            "{name}: {registries:?}"
        );
        if local.is_some_and(|l| l.password.is_some()) {
            for c in changes.iter().filter(|c| {
                let a = c["address"].as_str().unwrap();
                a.starts_with("registry.") || a.starts_with("registry_client.")
            }) {
                assert!(
                    c["sensitive_paths"]
                        .as_array()
                        .unwrap()
                        .contains(&Value::from("password")),
                    "{name}: {} does not mark its password sensitive",
                    c["address"]
                );
                assert!(c["after"]["password"].is_null(), "{name}: {c}");
            }
        }
    }

    // Plugins of the Clusterfile at the phases of a create: once, or once per host in scope.
    // Teardown phases are armed (recorded to run at destroy); scale-up phases have no place
    // in the plan of a new cluster.
    let plugins: BTreeSet<&str> = addresses(changes, "plugin.").into_iter().collect();
    let reason_of = |address: &str| {
        changes
            .iter()
            .find(|c| c["address"] == address)
            .map(|c| c["reason"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    for plugin in &cf.plugins {
        let pname = &plugin.name.value;
        for phase in &plugin.actions {
            let prefix = format!("plugin.{pname}.{}", phase.value.as_str());
            match phase.value {
                Phase::PreInitHost
                | Phase::PostInitHost
                | Phase::PreCleanHost
                | Phase::PostCleanHost => {
                    for (ip, roles) in &hosts {
                        let in_scope = plugin.scope.is_empty()
                            || plugin.scope.iter().any(|s| roles.contains(&s.value));
                        let address = format!("{prefix}.{ip}");
                        assert_eq!(
                            plugins.contains(address.as_str()),
                            in_scope,
                            "{name}: {address} (planned: {plugins:?})"
                        );
                        if in_scope
                            && sealer::plan::teardown::is_teardown_phase(phase.value.as_str())
                        {
                            assert!(
                                reason_of(&address)
                                    .ends_with("runs only when its host leaves the cluster"),
                                "{name}: {address}: {}",
                                reason_of(&address)
                            );
                        }
                    }
                }
                Phase::PreInstall | Phase::PostInstall => assert!(
                    plugins.contains(prefix.as_str()),
                    "{name}: {prefix} missing from {plugins:?}"
                ),
                Phase::PreUninstall | Phase::PostUninstall => assert!(
                    reason_of(&prefix).ends_with("runs only when the cluster is destroyed"),
                    "{name}: {prefix}: {}",
                    reason_of(&prefix)
                ),
                _ => assert!(
                    !plugins
                        .iter()
                        .any(|p| *p == prefix || p.starts_with(&format!("{prefix}."))),
                    "{name}: {prefix} is not a phase of a create, yet it is planned"
                ),
            }
        }
    }

    // Apps, in launch order, each after the previous one.
    let apps: Vec<&str> = addresses(changes, "app.");
    for pair in changes
        .iter()
        .filter(|c| c["address"].as_str().unwrap().starts_with("app."))
        .collect::<Vec<_>>()
        .windows(2)
    {
        assert!(
            pair[1]["depends_on"]
                .as_array()
                .unwrap()
                .contains(&pair[0]["address"]),
            "{name}: {} does not wait for {}",
            pair[1]["address"],
            pair[0]["address"]
        );
    }
    let explicit = cf.cluster.cmd.as_ref().is_some_and(|c| !c.is_empty())
        || cf.cluster.app_names.is_some()
        || cf.application.as_ref().is_some_and(|a| {
            a.launch_apps.is_some() || a.cmds.as_ref().is_some_and(|c| !c.is_empty())
        });
    if !explicit {
        // Without an explicit list: the cluster image's LAUNCH, then each app image's.
        let mut want = launch_of(sb, &cf.cluster.image.value.to_string());
        for image in cf.application.iter().flat_map(|a| &a.images) {
            want.extend(launch_of(sb, &image.value.to_string()));
        }
        assert_eq!(apps, want, "{name}: apps in launch order");
    }

    if let Some(exp) = expected(name) {
        assert_eq!(add, exp.add, "{name}: resources to add");
        assert_eq!(apps, exp.apps, "{name}: apps in launch order");
        assert_eq!(
            plugins,
            exp.plugins.iter().copied().collect(),
            "{name}: plugins"
        );
    }

    // The human plan, a saved plan and the graph: the same cluster, and no secret anywhere.
    let human = sealer_ok(sb, &["plan", "-f"], path);
    assert!(
        human.starts_with(&format!(
            "Cluster \"{cluster}\" has no state yet: this plan creates it.\n"
        )),
        "{name}: {human}"
    );
    assert!(
        human.contains(&format!("Plan: {add} to add, 0 to change, 0 to destroy.")),
        "{name}: {human}"
    );
    let saved = sb.path(&format!("{name}.plan"));
    sealer_ok(sb, &["plan", "--out", saved.to_str().unwrap(), "-f"], path);
    let saved_bytes = std::fs::read(&saved).unwrap();
    let shown = stdout_of(sb.sealer().args(["show", "--json"]).arg(&saved));
    assert_eq!(shown, json_text, "{name}: show of the saved plan");
    let markdown = sealer_ok(sb, &["plan", "--format", "markdown", "-f"], path);
    let graph = sealer_ok(sb, &["graph", "-f"], path);
    assert!(
        graph.starts_with(&format!("digraph \"{cluster}\" {{")),
        "{name}: {graph}"
    );
    for secret in &secrets {
        for (what, text) in [
            ("validate", validated.as_bytes()),
            ("plan --json", json_text.as_bytes()),
            ("plan", human.as_bytes()),
            ("plan --format markdown", markdown.as_bytes()),
            ("graph", graph.as_bytes()),
            ("the saved plan", &saved_bytes[..]),
        ] {
            assert!(
                !text.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{name}: {what} shows a secret in clear text"
            );
        }
    }
    if !secrets.is_empty() && cf.cluster.registry.local.is_some() {
        assert!(human.contains("(sensitive value)"), "{name}: {human}");
    }
}

/// Every example image builds as documented and every example Clusterfile validates and
/// plans a new cluster with what it declares.
#[test]
fn every_example_builds_validates_and_plans() {
    let sb = sandbox_with_examples();
    let readme = readme();
    let files = clusterfiles();
    assert!(files.len() >= 3, "the example Clusterfiles are missing");
    for (name, path) in listing(".") {
        if path.is_dir() {
            assert!(
                readme.contains(&format!("]({name})")) || readme.contains(&format!("]({name}/")),
                "examples/README.md does not link examples/{name}"
            );
        }
    }
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with('#'),
            "{name}: start with a comment saying what it shows and how to use it"
        );
        assert!(
            readme.contains(&format!("[`clusterfiles/{name}`](clusterfiles/{name})")),
            "examples/README.md: the Clusterfiles table has no row for {name}"
        );
        assert!(
            readme.contains(&format!("sealer plan -f examples/clusterfiles/{name}")),
            "examples/README.md: no plan command for {name}"
        );
        check_clusterfile(&sb, name, path);
    }
}

/// The README's commands run as written: builds, validates, plans, graphs and inspections
/// succeed; apply and destroy name existing files; `sealer run` is exercised on a state
/// seeded as if the cluster had been applied, up to its confirmation, which a test (no
/// terminal) refuses: nothing reaches a host.
#[test]
fn the_readme_commands_run_as_written() {
    let sb = sandbox_with_examples();
    let commands = readme_commands(&readme());
    let mut ran = BTreeSet::new();
    let mut runs = Vec::new();
    for command in &commands {
        let args = words(command);
        let sub = args[0].as_str();
        ran.insert(sub.to_string());
        match sub {
            "build" => {} // run by sandbox_with_examples
            "validate" | "plan" | "graph" | "images" | "inspect" | "show" => {
                assert!(
                    !args.iter().any(|a| a == "--out" || a == "-o"),
                    "{command}: the README's commands write nothing into the repository"
                );
                run_ok(&sb, command);
            }
            "apply" | "destroy" => {
                let file = args
                    .iter()
                    .position(|a| a == "-f")
                    .map(|i| &args[i + 1])
                    .unwrap_or_else(|| panic!("{command}: no -f"));
                assert!(repo_root().join(file).is_file(), "{command}: no {file}");
            }
            "run" => runs.push(args),
            other => panic!("examples/README.md: `{command}`: teach this test `sealer {other}`"),
        }
    }
    assert!(
        ["build", "validate", "plan", "run"]
            .iter()
            .all(|s| ran.contains(*s)),
        "{ran:?}"
    );

    // `sealer run IMAGE --cluster NAME` on the cluster of the example of that name.
    let clusters: BTreeMap<String, PathBuf> = clusterfiles()
        .into_iter()
        .map(|(_, p)| (model(&p).cluster.name.value.clone(), p))
        .collect();
    for args in &runs {
        let image = &args[1];
        let cluster = args
            .iter()
            .position(|a| a == "--cluster")
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| panic!("sealer run {image}: name the cluster with --cluster"));
        let file = clusters
            .get(&cluster)
            .unwrap_or_else(|| panic!("sealer run: no example Clusterfile of cluster {cluster}"));
        seed_applied(&sb, file, &cluster);
        let out = sb
            .sealer()
            .current_dir(repo_root())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "sealer run {image}: {stderr}");
        let want: Vec<String> = launch_of(&sb, image)
            .iter()
            .map(|a| format!("  # {a} will be created"))
            .collect();
        let planned: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  # ")).collect();
        assert_eq!(
            planned.len(),
            want.len(),
            "sealer run {image} plans only its apps: {stderr}"
        );
        for (line, want) in planned.iter().zip(&want) {
            assert!(line.starts_with(want.as_str()), "{line} / {want}");
        }
        assert!(
            stderr.contains("refusing to apply without confirmation: stdin is not a terminal"),
            "sealer run {image}: {stderr}"
        );
        // Nothing was recorded: the state still holds only the seeded cluster.
        let listed = stdout_of(sb.sealer().args(["state", "list", "--cluster", &cluster]));
        for app in launch_of(&sb, image) {
            assert!(
                !listed
                    .lines()
                    .any(|l| l.split_whitespace().any(|w| w == app)),
                "sealer run {image} recorded {app}: {listed}"
            );
        }
    }

    // An app image whose KUBEVERSION does not admit the cluster is refused before any plan.
    let out = sb
        .sealer()
        .args(["run", "backup-app:v1", "--cluster", "single"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("backup-app:v1 supports Kubernetes >=1.24, but the cluster runs v1.22.15"),
        "{stderr}"
    );
    assert!(!stderr.contains("will be created"), "{stderr}");
}

/// Records the plan of `file` as applied in the sandbox's state (what a successful apply
/// commits step by step), unless the cluster is there already.
fn seed_applied(sb: &Sandbox, file: &Path, cluster: &str) {
    let store = StateStore::open_or_create(&sb.home().join("state.db")).unwrap();
    if store.cluster(cluster).unwrap().is_some() {
        return;
    }
    let out = sb.path(&format!("{cluster}-seed.plan"));
    sealer_ok(sb, &["plan", "--out", out.to_str().unwrap(), "-f"], file);
    let saved = SavedPlan::read(&out).unwrap();
    store.create_cluster(cluster).unwrap();
    for change in &saved.plan.changes {
        assert_eq!(change.action, Action::Create);
        let desired = change.desired.as_ref().unwrap();
        let computed = desired
            .computed
            .iter()
            .map(|k| (k.clone(), serde_json::json!("x86_64")))
            .collect();
        store
            .commit(cluster, &Recorded::applied(desired, computed))
            .unwrap();
    }
}

/// The text between `# BEGIN NAME` and `# END NAME` (markers included) in `path`.
fn marked_block(path: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let begin = format!("# BEGIN {name}");
    let end = format!("# END {name}");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{}: no {begin:?}", path.display()));
    let stop = text[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("{}: no {end:?}", path.display()));
    text[start..start + stop + end.len()].to_string()
}

/// The runtime and kubelet configuration real hosts get is the one the test bed deploys:
/// the demo image's scripts carry the skeleton's blocks word for word, so a test of one is
/// a test of the other.
#[test]
fn the_demo_image_configures_containerd_and_the_kubelet_as_the_skeleton_does() {
    let images = examples().join("images");
    for (script, block) in [
        ("containerd.sh", "containerd config"),
        ("init-kube.sh", "kubelet unit"),
    ] {
        let skeleton = marked_block(&images.join("cluster-image/scripts").join(script), block);
        let demo = marked_block(&images.join("demo-cluster/scripts").join(script), block);
        assert_eq!(demo, skeleton, "{script}: the {block} blocks differ");
    }
    let containerd = marked_block(
        &images.join("cluster-image/scripts/containerd.sh"),
        "containerd config",
    );
    for line in [
        r#"config_path = "/etc/containerd/certs.d""#,
        "sandbox_image = ",
        "config images list",
    ] {
        assert!(containerd.contains(line), "{line:?} not in:\n{containerd}");
    }
    let unit = marked_block(
        &images.join("cluster-image/scripts/init-kube.sh"),
        "kubelet unit",
    );
    for line in [
        "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n",
        "EnvironmentFile=-/etc/default/kubelet\n",
        "ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n",
    ] {
        assert!(unit.contains(line), "{line:?} not in:\n{unit}");
    }
}

/// `cluster-image/check.sh`, on a build context and on a saved image.
fn check(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("examples/images/cluster-image/check.sh"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_image_check_names_what_a_real_deploy_lacks_and_passes_a_complete_image() {
    // The skeleton as committed: no binaries, no containerd bundle, no registry content.
    let (code, said) = check(&[]);
    assert_eq!(code, 1, "{said}");
    for missing in [
        "missing: bin/kubeadm ",
        "missing: bin/kubelet ",
        "missing: bin/kubectl ",
        "missing: cri/containerd.tar.gz ",
        "missing: images/registry.tar ",
        "missing: registry/ ",
    ] {
        assert!(said.contains(missing), "{missing} not reported:\n{said}");
    }

    // A context with every file, programs as ELF binaries (their first bytes are enough).
    let sb = Sandbox::new();
    let elf = "\x7fELF\x02\x01\x01";
    let complete = sb.write_tree(
        "complete",
        &[
            ("bin/kubeadm", elf),
            ("bin/kubelet", elf),
            ("bin/kubectl", elf),
            ("bin/seautil", elf),
            ("bin/helm", elf),
            ("bin/crictl", elf),
            ("cri/containerd.tar.gz", "x"),
            ("images/registry.tar", "x"),
            (
                "registry/docker/registry/v2/repositories/pause/_layers/x",
                "x",
            ),
        ],
    );
    let (code, said) = check(&[complete.as_os_str()]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("ok: "), "{said}");

    // The demo image, saved as an archive: its stand-ins are scripts, not the real tools.
    stdout_of(
        sb.sealer()
            .args(["build", "-t", "demo:v1"])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    let archive = sb.path("demo.tar");
    stdout_of(
        sb.sealer()
            .args(["save", "-o"])
            .arg(&archive)
            .arg("demo:v1"),
    );
    let (code, said) = check(&["--archive".as_ref(), archive.as_os_str()]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("missing: bin/kubeadm is not a real program: it is not an ELF binary"),
        "{said}"
    );
    assert!(
        !said.contains("missing: bin/kubeadm ("),
        "the archive's bin/ was read: {said}"
    );
}
