//! The README's quick start stays what CI runs: its first block holds exactly two commands,
//! the quickstart (run from a fresh clone by scripts/fresh-clone.sh) and the test suite
//! (which .ci/run runs). The Tour runs as written after the quickstart.

use crate::support::registry::{DOCKER_REGISTRY, Registry, require_tool};
use crate::support::{Sandbox, repo_root};
use std::path::Path;

fn quick_start_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split_once("\n## Quick start\n")
        .expect("README has a `## Quick start` section")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the section has a fenced sh block")
        .0;
    block
        .lines()
        .map(|l| {
            l.split_once(" #")
                .map_or(l, |(cmd, _)| cmd)
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_quick_start_block_holds_the_quickstart_then_the_test_suite() {
    let commands = quick_start_commands();
    assert_eq!(commands, ["./scripts/quickstart.sh", "./scripts/test.sh"]);
}

#[test]
fn ci_runs_exactly_the_readmes_test_command_and_its_fresh_clone_check() {
    let commands = quick_start_commands();
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines()
            .any(|l| l.trim() == format!("exec {}", commands[1])),
        ".ci/run must exec `{}`:\n{ci}",
        commands[1]
    );
    let suite = std::fs::read_to_string(repo_root().join("scripts/test.sh")).unwrap();
    assert!(
        suite
            .lines()
            .any(|l| l.trim() == "./scripts/fresh-clone.sh"),
        "the test suite must run the fresh-clone quick start"
    );
}

/// The lines of the README's `## Tour` block, comments stripped, as written.
fn tour_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split_once("\n## Tour\n")
        .expect("README has a `## Tour` section")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the Tour has a fenced sh block")
        .0;
    block
        .lines()
        .map(|l| {
            l.split_once(" # ")
                .map_or(l, |(cmd, _)| cmd)
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The line of the Tour that starts its registry: the test starts its own registry instead
/// (on a free port: tests run in parallel), in the same way, from the same kind of config.
const REGISTRY_LINE: &str = "docker-registry serve examples/registry/config.yml &";
/// The address the Tour's registry listens on (examples/registry/config.yml).
const TOUR_REGISTRY: &str = "localhost:5001";

/// A copy of what the quickstart and the Tour read (scripts/quickstart.sh, examples/), as a
/// fresh clone has it, in `sb`; a directory holding only `sealer` (the binary under test), to
/// put on PATH.
fn clone_into(sb: &Sandbox) -> std::path::PathBuf {
    std::fs::create_dir_all(sb.path("scripts")).unwrap();
    std::fs::copy(
        repo_root().join("scripts/quickstart.sh"),
        sb.path("scripts/quickstart.sh"),
    )
    .unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("examples"))
        .arg(sb.dir.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sealer"), bin.join("sealer")).unwrap();
    bin
}

/// `bash -c SCRIPT` in the clone, as a newcomer's shell: no SEALER_HOME yet, no cargo on
/// PATH (a build would fail), `extra_path` first.
fn shell(sb: &Sandbox, extra_path: &std::path::Path, script: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(sb.dir.path())
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                extra_path.display()
            ),
        )
        .env("HOME", sb.dir.path())
        .env("LANG", "C.UTF-8");
    cmd
}

fn ran(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn the_tour_runs_as_written_after_the_quickstart() {
    require_tool(DOCKER_REGISTRY, "docker-registry");
    let lines = tour_lines();
    assert!(
        lines.iter().any(|l| l == REGISTRY_LINE),
        "the Tour starts its registry with `{REGISTRY_LINE}`: {lines:#?}"
    );
    let config = std::fs::read_to_string(repo_root().join("examples/registry/config.yml")).unwrap();
    let port = TOUR_REGISTRY.rsplit_once(':').unwrap().1;
    assert!(
        config.contains(&format!("addr: 127.0.0.1:{port}\n")),
        "examples/registry/config.yml must listen on {TOUR_REGISTRY}:\n{config}"
    );
    let sb = Sandbox::new();
    let bin = clone_into(&sb);

    // The quickstart, given a sealer: it builds nothing (there is no cargo on PATH).
    let sealer = bin.join("sealer");
    let quickstart = ran(
        shell(&sb, Path::new("/nonexistent"), "./scripts/quickstart.sh").env("SEALER_BIN", &sealer),
        "the quickstart",
    );
    assert!(
        quickstart.contains(&format!(
            "quickstart: using SEALER_BIN ({})",
            sealer.display()
        )),
        "{quickstart}"
    );
    assert!(!sb.path("target").exists(), "the quickstart built sealer");
    // Found on PATH as well; the cluster is already there.
    let again = ran(
        &mut shell(&sb, &bin, "./scripts/quickstart.sh"),
        "the quickstart again",
    );
    assert!(
        again.contains("quickstart: using the sealer on PATH"),
        "{again}"
    );

    // Every example Clusterfile validates with the images the quickstart built (they name
    // `~/.ssh/id_ed25519`, which validate checks exists).
    std::fs::create_dir_all(sb.path(".ssh")).unwrap();
    std::fs::write(sb.path(".ssh/id_ed25519"), "").unwrap();
    for entry in std::fs::read_dir(sb.path("examples/clusterfiles")).unwrap() {
        let file = entry.unwrap().path();
        let valid = ran(
            shell(&sb, &bin, &format!("sealer validate -f {}", file.display()))
                .env("SEALER_HOME", sb.path(".quickstart/home")),
            "validate",
        );
        assert!(valid.contains(" is valid: "), "{valid}");
    }

    let registry = Registry::anonymous();
    let here = format!("localhost:{}", registry.addr().port());
    let script: Vec<String> = lines
        .iter()
        .filter(|l| *l != REGISTRY_LINE)
        .map(|l| l.replace(TOUR_REGISTRY, &here))
        .collect();
    let tour = ran(&mut shell(&sb, &bin, &script.join("\n")), "the Tour");
    for said in [
        "built my-app:v1".to_string(),
        format!("pushed {here}/my-app:v1"),
        format!("pulled {here}/my-app:v1"),
        "examples/quickstart/Clusterfile is valid".to_string(),
        "app.nginx: created".to_string(),
        "registry  sea.hub:5000  FAILING".to_string(),
        "exit 1".to_string(),
        "Destroy complete".to_string(),
        "# cluster \"quickstart\" has no resources".to_string(),
        "digraph \"quickstart\"".to_string(),
    ] {
        assert!(
            tour.contains(&said),
            "the Tour did not say {said:?}:\n{tour}"
        );
    }
}
