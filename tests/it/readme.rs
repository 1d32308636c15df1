//! The README's quick start stays what CI runs: its first block holds exactly two commands,
//! the quickstart (run from a fresh clone by scripts/fresh-clone.sh) and the test suite
//! (which .ci/run runs).

use crate::support::repo_root;

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
