//! What the docs say about the CLI, checked against the CLI: the reference `docs/cli.md`,
//! every command's example, the completion scripts, and the `sealer` commands that the CI
//! examples (`examples/ci/`) and the pull-request guide (`docs/pr-review.md`) run.
//!
//! The clap definitions live in the binary, so this file compiles them (and the reference
//! renderer) by path: the tests parse with exactly the `Cli` that `sealer` parses with.

#[path = "../../src/cli/args.rs"]
#[allow(dead_code)]
mod args;
#[path = "../../src/cli/reference.rs"]
mod reference;

use crate::support::{Sandbox, repo_root, stdout_of};
use args::{Cli, Command, PlanFormat};
use clap::{CommandFactory, Parser};
use serde_json::Value;
use std::path::{Path, PathBuf};

// ---- the CLI reference ----

#[test]
fn cli_reference_matches_the_clap_definitions() {
    let rendered = reference::markdown(&Cli::command());
    let path = repo_root().join("docs/cli.md");
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| !v.is_empty()) {
        std::fs::write(&path, &rendered).expect("write docs/cli.md");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != rendered {
        let diff = similar::TextDiff::from_lines(&current, &rendered)
            .unified_diff()
            .context_radius(2)
            .header("docs/cli.md", "rendered from src/cli/args.rs")
            .to_string();
        let shown: String = diff.lines().take(60).map(|l| format!("{l}\n")).collect();
        panic!(
            "docs/cli.md is out of date with the clap definitions:\n{shown}\n\
             run `UPDATE_DOCS=1 cargo test --test it cli_docs` to rewrite it, then review the diff"
        );
    }
}

#[test]
fn cli_reference_covers_every_command_and_is_deterministic() {
    let doc = reference::markdown(&Cli::command());
    assert_eq!(doc, reference::markdown(&Cli::command()));
    for (name, cmd) in commands() {
        assert!(
            doc.contains(&format!("`{name}`\n")),
            "no section for {name}"
        );
        for arg in cmd.get_arguments().filter(|a| a.get_id() != "help") {
            if let Some(long) = arg.get_long() {
                assert!(
                    doc.contains(&format!("--{long}")),
                    "{name}: --{long} missing"
                );
            }
        }
    }
    assert!(doc.contains("## `sealer state`\n"));
    assert!(doc.contains("### `sealer state unlock`\n"));
    assert!(doc.contains("- [`sealer state unlock`](#sealer-state-unlock)"));
    assert!(
        !doc.contains("sealer help"),
        "the generated help command is not documented"
    );
    assert!(doc.contains("Default: `10m`."), "defaults are shown");
    assert!(doc.contains("Possible values: `human`, `json`, `markdown`."));
}

// ---- examples in --help ----

#[test]
fn every_command_has_an_example() {
    let missing: Vec<String> = commands()
        .into_iter()
        .filter(|(_, cmd)| {
            let after = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            !(after.starts_with("Example:\n  ") || after.starts_with("Examples:\n  "))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        missing.is_empty(),
        "commands without an \"Example:\" in after_help: {missing:?}"
    );
}

#[test]
fn help_examples_are_valid_commands() {
    for (name, cmd) in commands() {
        let after = cmd
            .get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let examples = sealer_commands(&after);
        assert!(
            !examples.is_empty(),
            "{name}: no sealer command in its example"
        );
        let path: Vec<&str> = name.split(' ').collect();
        for argv in examples {
            assert_parses(&argv, &format!("the example of `{name}`"));
            assert_eq!(
                argv.get(..path.len()),
                Some(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]),
                "the example of `{name}` runs another command: {argv:?}"
            );
        }
    }
}

// ---- completions ----

#[test]
fn completions_print_a_script_for_each_shell() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        // Shells load completions anywhere: no SEALER_HOME or HOME needed.
        let script = stdout_of(
            sb.sealer()
                .env_remove("SEALER_HOME")
                .env_remove("HOME")
                .args(["completions", shell]),
        );
        for word in ["sealer", "apply", "plan", "unlock", "detailed-exitcode"] {
            assert!(
                script.contains(word),
                "{shell} script does not mention {word}"
            );
        }
        let file = sb.path(&format!("sealer.{shell}"));
        std::fs::write(&file, &script).unwrap();
        match std::process::Command::new(shell)
            .arg("-n")
            .arg(&file)
            .output()
        {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n rejects the script: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            // bash is always there; zsh and fish are checked where they are installed.
            Err(e) if shell != "bash" && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot run {shell}: {e}"),
        }
    }
    sb.sealer()
        .args(["completions", "tcsh"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "possible values: bash, zsh, fish",
        ));
}

// ---- CI examples and the pull-request guide ----

#[test]
fn ci_workflows_run_valid_sealer_commands() {
    let files = workflow_files();
    assert!(
        files.len() >= 2,
        "examples/ci/ holds the plan and apply workflows"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let commands = check_workflow(&text, &file.display().to_string());
        assert!(
            !commands.is_empty(),
            "{}: runs no sealer command",
            file.display()
        );
    }
}

#[test]
fn plan_workflow_plans_comments_once_and_fails_forks() {
    let text =
        std::fs::read_to_string(repo_root().join("examples/ci/github-actions-plan.yml")).unwrap();
    let workflow: Value = serde_saphyr::from_str(&text).expect("workflow YAML");
    assert!(
        workflow["on"].get("pull_request").is_some(),
        "runs on pull requests"
    );
    assert!(
        workflow["on"].get("merge_group").is_some(),
        "plans in the merge queue"
    );
    assert!(
        workflow["env"]["SEALER_HOME"].is_string(),
        "the state is the runner's SEALER_HOME, shared with apply"
    );
    let commands = check_workflow(&text, "github-actions-plan.yml");
    let parsed: Vec<Cli> = commands
        .iter()
        .map(|argv| Cli::try_parse_from(argv).unwrap())
        .collect();
    assert!(
        parsed.iter().any(|cli| matches!(&cli.command,
            Command::Plan(p) if p.out.as_deref() == Some(Path::new("plan.bin")) && p.detailed_exitcode)),
        "plans with --out plan.bin --detailed-exitcode: {commands:?}"
    );
    assert!(
        parsed.iter().any(|cli| matches!(&cli.command,
            Command::Show(s) if s.file == Path::new("plan.bin") && s.render.format() == PlanFormat::Markdown)),
        "renders plan.bin as Markdown: {commands:?}"
    );

    // The plan job: on the state's runner, for this repository's pull requests and the merge
    // queue only, with a read-only token; it keeps the plan.
    let plan = &workflow["jobs"]["plan"];
    assert!(runs_on(plan).contains(&"self-hosted"));
    let only = plan["if"].as_str().unwrap_or_default();
    assert!(
        only.contains("github.event.pull_request.head.repo.full_name == github.repository")
            && only.contains("merge_group"),
        "forks never reach the state's runner: {only}"
    );
    assert_eq!(plan["permissions"], serde_json::json!({"contents": "read"}));
    let upload = job_steps(plan)
        .into_iter()
        .filter(|s| uses(s, "actions/upload-artifact"))
        .collect::<Vec<_>>();
    assert_eq!(upload.len(), 1, "uploads the plan");
    assert!(
        upload[0]["with"]["path"]
            .as_str()
            .is_some_and(|p| p.lines().any(|l| l.trim() == "plan.bin"))
    );

    // The required check: it runs whatever the plan job did, and fails (not skips) for forks.
    let check = workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .find(|job| job["name"] == "sealer plan")
        .expect("a job named `sealer plan`: the required check");
    assert_eq!(check["needs"], "plan");
    assert_eq!(check["if"], "${{ !cancelled() }}", "never skipped");
    assert!(
        !runs_on(check).contains(&"self-hosted"),
        "runs where a fork may run"
    );
    let verdict = scripts(check);
    for needle in [
        "fork",
        "exit 1",
        "GITHUB_STEP_SUMMARY",
        "$PLAN_RESULT\" != success",
    ] {
        assert!(
            verdict.contains(needle),
            "the check's script lacks {needle}"
        );
    }

    // One comment per pull request, updated on every push, new after it was outdated.
    let comment = &workflow["jobs"]["comment"];
    assert_eq!(
        comment["permissions"]["pull-requests"], "write",
        "the only job that may write"
    );
    let script = job_steps(comment)
        .into_iter()
        .filter(|s| uses(s, "actions/github-script"))
        .collect::<Vec<_>>();
    assert_eq!(script.len(), 1, "one step comments");
    let js = script[0]["with"]["script"].as_str().unwrap_or_default();
    for needle in [
        "<!-- sealer-plan -->",
        "<!-- sealer-plan-outdated -->",
        "<!-- sealer-plan-state lineage=",
        "updateComment",
        "createComment",
        "paginate",
    ] {
        assert!(js.contains(needle), "the comment script lacks {needle}");
    }
}

#[test]
fn apply_workflow_shows_the_plan_before_the_approval_and_applies_exactly_it() {
    let text =
        std::fs::read_to_string(repo_root().join("examples/ci/github-actions-apply.yml")).unwrap();
    let workflow: Value = serde_saphyr::from_str(&text).expect("workflow YAML");
    let commands = check_workflow(&text, "github-actions-apply.yml");
    assert!(
        commands.iter().any(|argv| matches!(
            Cli::try_parse_from(argv).unwrap().command,
            Command::Apply(a) if a.plan_file.as_deref() == Some(Path::new("plan.bin"))
        )),
        "applies plan.bin: {commands:?}"
    );
    assert_eq!(
        workflow["concurrency"]["cancel-in-progress"], false,
        "an apply is never cancelled"
    );
    assert!(workflow["on"].get("workflow_dispatch").is_some());

    // The job that waits for the approval needs a job, without an environment, that plans
    // the head of main and shows the plan in its summary.
    let jobs = workflow["jobs"].as_object().unwrap();
    let (name, apply) = jobs
        .iter()
        .find(|(_, job)| job.get("environment").is_some())
        .expect("a job behind an environment's approval");
    assert_eq!(apply["needs"], "plan", "{name} follows the plan job");
    let plan = &jobs["plan"];
    assert!(
        plan.get("environment").is_none(),
        "shown before any approval"
    );
    let checkout = job_steps(plan)
        .into_iter()
        .find(|s| uses(s, "actions/checkout"))
        .unwrap();
    assert_eq!(
        checkout["with"]["ref"], "main",
        "plans the head of main, never an older commit"
    );
    let show = job_steps(plan)
        .into_iter()
        .filter(|s| uses(s, "actions/github-script"))
        .map(|s| s["with"]["script"].as_str().unwrap_or_default())
        .collect::<String>();
    for needle in [
        "core.summary",
        "plan.md",
        "merge_commit_sha === sha",
        "length !== 1",
    ] {
        assert!(
            show.contains(needle),
            "the plan job's summary lacks {needle}"
        );
    }
    assert!(
        !show.contains("[0]"),
        "the one pull request a commit merged is found by equality, not as the first of a list"
    );

    // It applies the file the plan job showed, and a stale plan starts a new run.
    let run = scripts(apply);
    assert!(
        run.contains("sha256sum --check"),
        "checks the plan's digest"
    );
    assert!(run.contains("3)"), "tells a stale plan from a failure");
    let replan = jobs
        .values()
        .find(|job| {
            job["if"]
                .as_str()
                .is_some_and(|c| c.contains("outputs.code == '3'"))
        })
        .expect("a job for a stale plan");
    assert_eq!(replan["permissions"]["actions"], "write");
    assert!(job_steps(replan).iter().any(|s| {
        s["with"]["script"]
            .as_str()
            .is_some_and(|js| js.contains("createWorkflowDispatch"))
    }));

    // After the apply, open pull requests' plan comments are marked outdated.
    let outdate = &jobs["outdate"];
    let js = job_steps(outdate)
        .into_iter()
        .filter_map(|s| s["with"]["script"].as_str())
        .collect::<String>();
    for needle in [
        "<!-- sealer-plan-outdated -->",
        "state: 'open'",
        "minimizeComment",
        "updateComment",
    ] {
        assert!(js.contains(needle), "the outdate script lacks {needle}");
    }
}

/// What a reviewer of a workflow looks for first, in every file of examples/ci/.
#[test]
fn ci_workflows_pin_what_they_run_and_hold_no_more_than_they_need() {
    for file in workflow_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.display().to_string();
        let workflow: Value = serde_saphyr::from_str(&text).unwrap();
        for trigger in ["pull_request_target", "workflow_run"] {
            assert!(
                workflow["on"].get(trigger).is_none(),
                "{name}: runs on {trigger}"
            );
        }
        assert_eq!(
            workflow["permissions"],
            serde_json::json!({}),
            "{name}: no permission for the whole workflow"
        );
        let rev = workflow["env"]["SEALER_REV"].as_str().unwrap_or_default();
        assert!(
            rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: SEALER_REV is a full commit SHA"
        );
        assert!(
            text.contains("--rev \"$SEALER_REV\""),
            "{name}: sealer is installed at SEALER_REV"
        );
        for (job_name, job) in workflow["jobs"].as_object().unwrap() {
            assert!(
                job["permissions"].is_object(),
                "{name}: job {job_name} says which permissions it needs"
            );
            for step in job_steps(job) {
                if let Some(script) = step["run"].as_str() {
                    assert!(
                        !script.contains("${{"),
                        "{name}: an expression in a run script of {job_name}: pass it in env"
                    );
                }
                if let Some(js) = step["with"]["script"].as_str() {
                    assert!(
                        !js.contains("${{"),
                        "{name}: an expression in a script of {job_name}"
                    );
                }
                let Some(action) = step["uses"].as_str() else {
                    continue;
                };
                let sha = action.split_once('@').map_or("", |(_, r)| r);
                assert!(
                    sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                    "{name}: {action} is not pinned to a commit"
                );
                assert!(
                    text.lines()
                        .any(|l| l.contains(action) && l.contains(&format!("{sha} # v"))),
                    "{name}: {action} has no `# vX.Y.Z` comment naming its version"
                );
                if action.starts_with("actions/checkout@") {
                    assert_eq!(
                        step["with"]["persist-credentials"], false,
                        "{name}: a checkout in {job_name} keeps the token"
                    );
                }
            }
        }
    }
}

#[test]
fn pr_review_guide_runs_valid_sealer_commands_and_shows_the_workflows() {
    let doc = std::fs::read_to_string(repo_root().join("docs/pr-review.md")).unwrap();
    let workflows: Vec<(PathBuf, String)> = workflow_files()
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let mut shown = vec![false; workflows.len()];
    let mut count = 0;
    for (lang, body) in fenced_blocks(&doc) {
        match lang.as_str() {
            "sh" | "bash" | "shell" => {
                for argv in sealer_commands(&body) {
                    assert_parses(&argv, "docs/pr-review.md");
                    count += 1;
                }
            }
            "yaml" | "yml" => {
                count += check_workflow(&body, "a YAML block of docs/pr-review.md").len();
                let i = workflows.iter().position(|(_, text)| *text == body);
                let i = i.unwrap_or_else(|| {
                    panic!("a YAML block of docs/pr-review.md is none of examples/ci/*.yml: copy the file again")
                });
                shown[i] = true;
            }
            _ => {}
        }
    }
    for ((file, _), shown) in workflows.iter().zip(shown) {
        assert!(shown, "docs/pr-review.md does not show {}", file.display());
    }
    assert!(count >= 8, "the guide shows its commands ({count} found)");
    for needle in [
        "<!-- sealer-plan -->",
        "SEALER_HOME",
        "self-hosted",
        "--detailed-exitcode",
    ] {
        assert!(
            doc.contains(needle),
            "docs/pr-review.md does not mention {needle}"
        );
    }
}

#[test]
fn sealer_commands_reads_enough_shell() {
    let script = "# a comment: sealer plan\n\
        code=0\n\
        sealer plan -f Clusterfile --out plan.bin 2> plan.err || code=$?\n\
        echo \"$PW\" | sealer login r.example -u me --password-stdin\n\
        sealer show plan.bin \\\n  --format markdown > plan.md  # trailing\n\
        x=$(sealer state list --cluster 'my cluster')\n\
        echo \"not sealer apply\"; ./target/release/sealer apply plan.bin >&2\n";
    assert_eq!(
        sealer_commands(script),
        vec![
            argv(&["sealer", "plan", "-f", "Clusterfile", "--out", "plan.bin"]),
            argv(&[
                "sealer",
                "login",
                "r.example",
                "-u",
                "me",
                "--password-stdin"
            ]),
            argv(&["sealer", "show", "plan.bin", "--format", "markdown"]),
            argv(&["sealer", "state", "list", "--cluster", "my cluster"]),
            argv(&["sealer", "apply", "plan.bin"]),
        ]
    );
}

// ---- helpers ----

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Every subcommand, recursively, with its full name (`sealer state list`); not `help`.
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(cmd: &clap::Command, name: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub_name = format!("{name} {}", sub.get_name());
            out.push((sub_name.clone(), sub.clone()));
            walk(sub, &sub_name, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "sealer", &mut out);
    assert!(out.len() > 20, "found {} commands", out.len());
    out
}

fn assert_parses(argv: &[String], source: &str) {
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!(
            "{source}: `{}` is not a valid sealer command:\n{e}",
            argv.join(" ")
        );
    }
}

fn workflow_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples/ci"))
        .expect("examples/ci")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The steps of every job of a workflow.
fn steps(workflow: &Value) -> Vec<&Value> {
    workflow["jobs"]
        .as_object()
        .expect("jobs")
        .values()
        .flat_map(job_steps)
        .collect()
}

fn job_steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().expect("steps").iter().collect()
}

/// The `run:` scripts of a job, one after the other.
fn scripts(job: &Value) -> String {
    job_steps(job)
        .into_iter()
        .filter_map(|s| s["run"].as_str())
        .collect()
}

/// The labels of a job's `runs-on` (one label or a list).
fn runs_on(job: &Value) -> Vec<&str> {
    match &job["runs-on"] {
        Value::String(label) => vec![label.as_str()],
        Value::Array(labels) => labels.iter().filter_map(Value::as_str).collect(),
        other => panic!("runs-on: {other}"),
    }
}

/// Whether a step uses an action (any version).
fn uses(step: &Value, action: &str) -> bool {
    step["uses"]
        .as_str()
        .is_some_and(|u| u.split_once('@').is_some_and(|(a, _)| a == action))
}

/// Parses a workflow, checks that bash accepts each `run:` script and that each `sealer`
/// command in them parses; returns those commands.
fn check_workflow(text: &str, source: &str) -> Vec<Vec<String>> {
    let workflow: Value =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{source}: not valid YAML: {e}"));
    let mut commands = Vec::new();
    for step in steps(&workflow) {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        let syntax = std::process::Command::new("bash")
            .args(["-n", "-c", script])
            .output()
            .expect("bash");
        assert!(
            syntax.status.success(),
            "{source}: bash rejects the run script of step {}: {}",
            step["name"],
            String::from_utf8_lossy(&syntax.stderr)
        );
        for argv in sealer_commands(script) {
            assert_parses(&argv, source);
            commands.push(argv);
        }
    }
    commands
}

/// The fenced code blocks of a Markdown text: (info string, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match open.as_mut() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some((info.trim().to_string(), String::new()));
                }
            }
            Some((_, body)) => {
                if line.trim_end() == "```" {
                    blocks.extend(open.take());
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    blocks
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// `;`, a newline, `|`, `||`, `&`, `&&`, `$(`, `(`, `)`.
    Separator,
    /// `>`, `>>`, `<`, `2>`, `>&`, ...: the next word is its target.
    Redirect,
}

/// The `sealer` commands of a shell script, as argv. Enough of the shell for docs and CI
/// scripts: quotes, `\` line continuations, comments, pipes and lists, redirections,
/// `$(...)`, `${...}` and GitHub's `${{ ... }}`. Variables are kept as written.
fn sealer_commands(script: &str) -> Vec<Vec<String>> {
    const KEYWORDS: [&str; 10] = [
        "if", "then", "else", "elif", "do", "while", "until", "!", "{", "exec",
    ];
    let tokens = lex(script);
    let mut commands = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut at_start = true;
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            Token::Separator => {
                commands.extend(current.take());
                at_start = true;
            }
            Token::Redirect => {
                tokens.next();
            }
            Token::Word(word) => {
                if let Some(argv) = current.as_mut() {
                    argv.push(word);
                } else if at_start {
                    let assignment = word.split_once('=').is_some_and(|(name, _)| {
                        !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                    if assignment || KEYWORDS.contains(&word.as_str()) {
                        continue;
                    }
                    at_start = false;
                    if word == "sealer" || word.ends_with("/sealer") {
                        current = Some(vec!["sealer".to_string()]);
                    }
                }
            }
        }
    }
    commands.extend(current);
    commands
}

fn lex(script: &str) -> Vec<Token> {
    let chars: Vec<char> = script.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' if next == Some('\n') => i += 1,
            '\\' => {
                if let Some(n) = next {
                    word.push(n);
                    in_word = true;
                }
                i += 1;
            }
            ' ' | '\t' => flush(&mut word, &mut in_word, &mut tokens),
            '\n' | ';' | '(' | ')' => {
                flush(&mut word, &mut in_word, &mut tokens);
                tokens.push(Token::Separator);
            }
            '#' if !in_word => {
                while i + 1 < chars.len() && chars[i + 1] != '\n' {
                    i += 1;
                }
            }
            '|' | '&' => {
                flush(&mut word, &mut in_word, &mut tokens);
                if next == Some(c) {
                    i += 1;
                }
                tokens.push(Token::Separator);
            }
            '>' | '<' => {
                // `2>`: the digits belong to the redirection.
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                flush(&mut word, &mut in_word, &mut tokens);
                if next == Some(c) {
                    i += 1;
                }
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                }
                tokens.push(Token::Redirect);
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '$' if next == Some('(') => {
                flush(&mut word, &mut in_word, &mut tokens);
                i += 1;
                tokens.push(Token::Separator);
            }
            '$' if next == Some('{') => {
                // `${VAR}` and GitHub's `${{ expression }}` stay one piece of the word.
                let close = if chars.get(i + 2) == Some(&'{') {
                    "}}"
                } else {
                    "}"
                };
                let rest: String = chars[i..].iter().collect();
                let end = rest.find(close).map_or(rest.len(), |e| e + close.len());
                word.push_str(&rest[..end]);
                in_word = true;
                i += rest[..end].chars().count() - 1;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    flush(&mut word, &mut in_word, &mut tokens);
    tokens
}

/// Every test docs/ARCHITECTURE.md names as the guard of an invariant exists, so an
/// invariant cannot silently lose its test.
#[test]
fn every_invariant_names_a_test_that_exists() {
    let doc = std::fs::read_to_string(repo_root().join("docs/ARCHITECTURE.md")).unwrap();
    let invariants = doc
        .split("## Invariants")
        .nth(1)
        .expect("an Invariants section");
    let mut sources = String::new();
    for dir in ["src", "tests/it", "providers/src"] {
        collect_rust(&repo_root().join(dir), &mut sources);
    }
    let mut named = 0;
    for quoted in invariants.split('`').skip(1).step_by(2) {
        // `module::test_name` (a test), not code like `sealer_providers::quote`.
        let Some(name) = quoted.rsplit("::").next() else {
            continue;
        };
        if !quoted.contains("::") || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        if name.matches('_').count() < 3 {
            continue;
        }
        named += 1;
        assert!(
            sources.contains(&format!("fn {name}(")),
            "docs/ARCHITECTURE.md names test `{quoted}`, which does not exist"
        );
    }
    assert!(named >= 10, "only {named} tests named");
}

fn collect_rust(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn time_flags_take_durations_as_people_write_them() {
    use std::time::Duration;
    for (text, secs) in [
        ("30", 30),
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("0", 0),
    ] {
        assert_eq!(
            args::parse_duration(text),
            Ok(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in ["", "s", "1.5m", "10 m", "5d", "-1", "200h"] {
        assert!(args::parse_duration(bad).is_err(), "{bad:?} accepted");
    }
    let cli = Cli::try_parse_from([
        "sealer",
        "apply",
        "-f",
        "C",
        "--lock-timeout",
        "30s",
        "--step-timeout",
        "2m",
    ])
    .unwrap();
    let Command::Apply(apply) = cli.command else {
        panic!("not apply")
    };
    assert_eq!(apply.exec.lock_timeout, Duration::from_secs(30));
    assert_eq!(apply.exec.step_timeout, Duration::from_secs(120));
    let err = Cli::try_parse_from(["sealer", "destroy", "--lock-timeout", "soon"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not a duration: write 30, 30s, 10m or 1h"),
        "{err}"
    );
}
