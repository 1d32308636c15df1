//! The error catalogue: the messages a user meets most, each from the real binary, with the
//! `hint:` that says what to do next (docs/errors.md lists them). One snapshot per message
//! in tests/it/snapshots/it__errors__*.snap, so the wording is reviewed in one place.
//!
//! Only what is cheap to provoke is here: no registry but a closed port, no SSH host but a
//! closed port on 127.0.0.1. Located Clusterfile errors are in validate.rs, lock errors in
//! state.rs and in the unit tests of `state::lock`.

use crate::support::{Sandbox, repo_root};
use std::path::Path;

/// A port nothing listens on (discard): connecting is refused on every machine.
const CLOSED: &str = "127.0.0.1:9";
const IMAGE: &str = "example/demo-cluster:v1.22.15";

/// `$ sealer ARGS`, its exit code and what it printed, with the sandbox's path hidden.
fn transcript(sb: &Sandbox, args: &[&str], stdin: &str) -> String {
    let out = sb
        .sealer()
        .current_dir(sb.path(""))
        .env("NO_COLOR", "1")
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    let mut text = format!(
        "$ sealer {}\nexit {}\n",
        args.join(" "),
        out.status.code().unwrap_or(-1)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.is_empty() {
        text.push_str(&format!("--- stdout\n{stdout}"));
    }
    text.push_str(&format!(
        "--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    ));
    hide(&text, sb.dir.path())
}

fn hide(text: &str, dir: &Path) -> String {
    let dir = dir.display().to_string();
    text.replace(&dir, "[SANDBOX]")
}

/// The last lines of `text` from the first that starts with `error:` (the plan before
/// a refusal is not the message).
fn from_first_error(text: &str) -> String {
    let (head, _) = text.split_once("--- stderr\n").unwrap();
    let stderr = &text[head.len() + "--- stderr\n".len()..];
    let at = stderr.find("\nerror:").map_or(0, |i| i + 1);
    format!("{head}--- stderr (from the first error)\n{}", &stderr[at..])
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("")).unwrap();
    sb
}

/// The quickstart's cluster image, and a Clusterfile of one host whose SSH port is closed.
fn with_cluster_image() -> Sandbox {
    let sb = sandbox();
    let out = sb
        .sealer()
        .args(["build", "-t", IMAGE])
        .arg(repo_root().join("examples/images/demo-cluster"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    write_clusterfile(&sb, "");
    sb
}

fn write_clusterfile(sb: &Sandbox, extra_env: &str) {
    std::fs::write(
        sb.path("Clusterfile"),
        format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: demo\nspec:\n  image: {IMAGE}\n  env: [A=1{extra_env}]\n  ssh: {{user: root, passwd: x, port: \"9\"}}\n  hosts:\n    - ips: [127.0.0.1]\n      roles: [master]\n"
        ),
    )
    .unwrap();
}

#[test]
fn files_that_are_not_there() {
    let sb = sandbox();
    insta::assert_snapshot!("no_clusterfile", transcript(&sb, &["validate"], ""));
    insta::assert_snapshot!("no_plan_file", transcript(&sb, &["apply", "plan.json"], ""));
    std::fs::write(
        sb.path("Clusterfile"),
        "apiVersion: sealer.io/v2\nkind: Cluster\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "a_clusterfile_given_as_a_plan",
        transcript(&sb, &["apply", "Clusterfile"], "")
    );
    insta::assert_snapshot!(
        "load_of_nothing",
        transcript(&sb, &["load", "-i", "images.tar"], "")
    );
    std::fs::write(sb.path("images.tar"), "not an archive\n").unwrap();
    insta::assert_snapshot!(
        "load_of_a_file_that_is_not_an_archive",
        transcript(&sb, &["load", "-i", "images.tar"], "")
    );
}

/// Every slip of a Clusterfile at once, each where it is (validate.rs has one fixture per
/// rule; these are the forms a newcomer gets wrong).
#[test]
fn clusterfile_slips() {
    let sb = sandbox();
    std::fs::write(
        sb.path("Clusterfile"),
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: demo\nspec:\n  imag: my-kubernetes:v1.26.15\n  ssh:\n    user: root\n    passwd: x\n  hosts: 10.0.0.2\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "clusterfile_slips",
        transcript(&sb, &["validate", "-f", "Clusterfile"], "")
    );
}

#[test]
fn no_state_yet() {
    let sb = sandbox();
    insta::assert_snapshot!("status_without_state", transcript(&sb, &["status"], ""));
    insta::assert_snapshot!(
        "destroy_without_state",
        transcript(&sb, &["destroy", "--cluster", "demo"], "")
    );
    insta::assert_snapshot!(
        "run_without_state",
        transcript(&sb, &["run", "my-app:v1"], "")
    );
    insta::assert_snapshot!(
        "state_unlock_without_state",
        transcript(&sb, &["state", "unlock", "0123abcd"], "")
    );
}

#[test]
fn images_that_are_not_there_or_not_reachable() {
    let sb = sandbox();
    insta::assert_snapshot!(
        "inspect_of_an_unknown_image",
        transcript(&sb, &["inspect", "my-app:v1"], "")
    );
    insta::assert_snapshot!(
        "rmi_of_an_unknown_image",
        transcript(&sb, &["rmi", "my-app:v1"], "")
    );
    insta::assert_snapshot!(
        "pull_from_a_registry_that_is_down",
        transcript(&sb, &["pull", &format!("{CLOSED}/my-app:v1")], "")
    );
    insta::assert_snapshot!(
        "login_without_password_stdin",
        transcript(&sb, &["login", CLOSED, "-u", "me"], "")
    );
    insta::assert_snapshot!(
        "login_to_a_registry_that_is_down",
        transcript(
            &sb,
            &[
                "login",
                CLOSED,
                "-u",
                "me",
                "--password-stdin",
                "--insecure"
            ],
            "secret\n"
        )
    );
}

#[test]
fn kubefile_and_flag_slips() {
    let sb = sandbox();
    sb.write_tree(
        "app",
        &[(
            "Kubefile",
            "FROM scratch\nAPPCMD nginx [\"kubectl\", \"apply\"]\n",
        )],
    );
    insta::assert_snapshot!(
        "kubefile_unknown_instruction",
        transcript(&sb, &["build", "-t", "my-app:v1", "app"], "")
    );
    sb.write_tree(
        "escapes",
        &[("Kubefile", "# escape=`\n# escape=\\\nFROM scratch\n")],
    );
    insta::assert_snapshot!(
        "kubefile_two_escape_directives",
        transcript(&sb, &["build", "-t", "my-app:v1", "escapes"], "")
    );
    sb.write_tree(
        "launch",
        &[
            (
                "Kubefile",
                "FROM scratch\nAPP web local://web.yaml\nLAUNCH [\"web\"]\nCMDS [\"echo hi\"]\n",
            ),
            ("web.yaml", "kind: List\n"),
        ],
    );
    insta::assert_snapshot!(
        "kubefile_launch_and_cmds",
        transcript(&sb, &["build", "-t", "my-app:v1", "launch"], "")
    );
    insta::assert_snapshot!(
        "build_of_a_context_that_is_not_there",
        transcript(&sb, &["build", "-t", "my-app:v1", "ap"], "")
    );
    insta::assert_snapshot!(
        "build_arg_without_value",
        transcript(
            &sb,
            &["build", "-t", "my-app:v1", "--build-arg", "VERSION", "app"],
            ""
        )
    );
}

/// One image, one host whose SSH port is closed: what a first apply can meet, in order.
#[test]
fn a_cluster_whose_host_cannot_be_reached() {
    let sb = with_cluster_image();
    insta::assert_snapshot!(
        "a_mistyped_local_image_name",
        transcript(&sb, &["inspect", "example/demo-clustr:v1.22.15"], "")
    );
    insta::assert_snapshot!(
        "apply_without_confirmation",
        from_first_error(&transcript(&sb, &["apply", "-f", "Clusterfile"], ""))
    );
    insta::assert_snapshot!(
        "preflight_of_a_host_that_refuses_ssh",
        transcript(&sb, &["check", "-f", "Clusterfile"], "")
    );
    insta::assert_snapshot!(
        "apply_to_a_host_that_refuses_ssh",
        from_first_error(&transcript(
            &sb,
            &["apply", "-f", "Clusterfile", "-y", "--skip-check", "all"],
            ""
        ))
    );
    insta::assert_snapshot!(
        "run_before_kubernetes",
        transcript(&sb, &["run", IMAGE], "")
    );
    insta::assert_snapshot!(
        "destroy_of_an_unknown_cluster",
        transcript(&sb, &["destroy", "--cluster", "other"], "")
    );
    let plan = transcript(
        &sb,
        &["plan", "-f", "Clusterfile", "--out", "demo.plan"],
        "",
    );
    assert!(
        plan.starts_with("$ sealer plan -f Clusterfile --out demo.plan\nexit 0\n"),
        "{plan}"
    );
    write_clusterfile(&sb, ",B=2");
    insta::assert_snapshot!(
        "apply_of_a_stale_plan",
        transcript(&sb, &["apply", "demo.plan"], "")
    );
}
