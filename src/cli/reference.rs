//! The CLI reference (`docs/cli.md`), rendered from the clap definitions.
//!
//! Pure and deterministic: the same `clap::Command` always gives the same text. The binary
//! does not need it; the test suite compiles this file (and `args.rs`) by path and checks that
//! `docs/cli.md` is what [`markdown`] renders (`tests/it/cli_docs.rs`).

use clap::{Arg, Command};
use std::fmt::Write;

/// The Markdown reference of `cmd` and all its subcommands (except `help` and hidden ones).
pub fn markdown(cmd: &Command) -> String {
    let mut cmd = cmd.clone();
    // Building propagates the `sealer state list` names to the subcommands' usage lines.
    cmd.build();
    let name = display_name(&cmd);
    let mut doc = String::new();
    let _ = writeln!(doc, "# CLI reference\n");
    let _ = writeln!(
        doc,
        "<!-- Generated from the clap definitions (src/cli/args.rs) by src/cli/reference.rs: do not edit.\n     After changing a command, run `UPDATE_DOCS=1 cargo test --test it cli_docs`. -->\n"
    );
    section(&mut doc, &mut cmd, &name, 1);
    doc
}

/// One command's section, then its subcommands' sections one level deeper.
fn section(doc: &mut String, cmd: &mut Command, name: &str, level: usize) {
    if level > 1 {
        let _ = writeln!(doc, "{} `{name}`\n", "#".repeat(level.min(6)));
    }
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(doc, "{}\n", text(&about.to_string()));
    }
    let usage = cmd.render_usage().to_string();
    let usage: Vec<&str> = usage
        .lines()
        .map(|line| line.trim().trim_start_matches("Usage:").trim())
        .filter(|line| !line.is_empty())
        .collect();
    let _ = writeln!(doc, "```text\n{}\n```\n", usage.join("\n"));
    if level == 1 {
        let _ = writeln!(
            doc,
            "Every command also takes `-h, --help`, which prints its part of this page.\n"
        );
    }

    let subcommands: Vec<&Command> = visible_subcommands(cmd).collect();
    if !subcommands.is_empty() {
        let _ = writeln!(doc, "**Commands**\n");
        command_list(doc, cmd, name, 0);
        doc.push('\n');
    }
    let positionals: Vec<&Arg> = visible_args(cmd).filter(|a| a.is_positional()).collect();
    if !positionals.is_empty() {
        let _ = writeln!(doc, "**Arguments**\n");
        for arg in positionals {
            let _ = writeln!(doc, "- `{}`: {}", positional(arg), arg_help(cmd, arg));
        }
        doc.push('\n');
    }
    let options: Vec<&Arg> = visible_args(cmd).filter(|a| !a.is_positional()).collect();
    if !options.is_empty() {
        let _ = writeln!(doc, "**Options**\n");
        for arg in options {
            let _ = writeln!(doc, "- `{}`: {}", option(arg), arg_help(cmd, arg));
        }
        doc.push('\n');
    }
    if let Some(after) = cmd.get_after_help() {
        after_help(doc, &after.to_string());
    }

    let names: Vec<String> = visible_subcommands(cmd)
        .map(|sub| sub.get_name().to_string())
        .collect();
    for sub_name in names {
        if let Some(sub) = cmd.find_subcommand_mut(&sub_name) {
            let sub_display = format!("{name} {sub_name}");
            section(doc, sub, &sub_display, level + 1);
        }
    }
}

/// A nested list of the subcommands of `cmd`, each linked to its section.
fn command_list(doc: &mut String, cmd: &Command, name: &str, depth: usize) {
    for sub in visible_subcommands(cmd) {
        let sub_name = format!("{name} {}", sub.get_name());
        let about = sub
            .get_about()
            .map(|a| format!(": {}", text(&a.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            doc,
            "{}- [`{sub_name}`](#{}){about}",
            "  ".repeat(depth),
            anchor(&sub_name)
        );
        command_list(doc, sub, &sub_name, depth + 1);
    }
}

/// The "Example:" block of `after_help` as a shell code block; other paragraphs as text.
fn after_help(doc: &mut String, after: &str) {
    for paragraph in after.split("\n\n") {
        let mut lines = paragraph.lines();
        let first = lines.next().unwrap_or_default().trim_end();
        let rest: Vec<&str> = lines.collect();
        let indented = !rest.is_empty() && rest.iter().all(|l| l.starts_with("  "));
        if let (Some(title), true) = (first.strip_suffix(':'), indented) {
            let body: Vec<&str> = rest.iter().map(|l| &l[2..]).collect();
            let _ = writeln!(doc, "**{title}**\n\n```sh\n{}\n```\n", body.join("\n"));
        } else {
            let _ = writeln!(doc, "{}\n", text(paragraph.trim()));
        }
    }
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
}

/// Arguments worth documenting: `--help` is on every command, so it is said once at the top.
fn visible_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|arg| !arg.is_hide_set() && arg.get_id() != "help")
}

/// `<NAME>`, `[NAME]` when optional, with `...` when it takes several values.
fn positional(arg: &Arg) -> String {
    let name = value_names(arg).join(" ");
    let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    let dots = if many { "..." } else { "" };
    if arg.is_required_set() {
        format!("<{name}>{dots}")
    } else {
        format!("[{name}]{dots}")
    }
}

/// `-f, --file <CLUSTERFILE>`.
fn option(arg: &Arg) -> String {
    let mut flags = Vec::new();
    if let Some(short) = arg.get_short() {
        flags.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        flags.push(format!("--{long}"));
    }
    let mut out = flags.join(", ");
    if arg.get_action().takes_values() {
        for value in value_names(arg) {
            let _ = write!(out, " <{value}>");
        }
    }
    out
}

fn value_names(arg: &Arg) -> Vec<String> {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names.iter().map(|n| n.to_string()).collect(),
        _ => vec![arg.get_id().as_str().to_uppercase()],
    }
}

/// The help line, then what clap's help shows in brackets (values, default, environment)
/// and the arguments it cannot be used with.
fn arg_help(cmd: &Command, arg: &Arg) -> String {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| text(&h.to_string()))
        .unwrap_or_default();
    let mut parts = Vec::new();
    if !help.is_empty() {
        parts.push(sentence(&help));
    }
    if arg.get_action().takes_values() {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !values.is_empty() {
            parts.push(format!("Possible values: {}.", values.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        if !defaults.is_empty() {
            parts.push(format!("Default: {}.", defaults.join(", ")));
        }
    }
    if arg.is_required_set() && !arg.is_positional() {
        parts.push("Required.".to_string());
    }
    if let Some(env) = arg.get_env() {
        parts.push(format!("Environment: `{}`.", env.to_string_lossy()));
    }
    let conflicts: Vec<String> = visible_args(cmd)
        .filter(|other| other.get_id() != arg.get_id())
        .filter(|other| {
            let declared = |a: &Arg, b: &Arg| {
                cmd.get_arg_conflicts_with(a)
                    .iter()
                    .any(|c| c.get_id() == b.get_id())
            };
            declared(arg, other) || declared(other, arg)
        })
        .map(|other| match (other.get_long(), other.get_short()) {
            (Some(long), _) => format!("`--{long}`"),
            (None, Some(short)) => format!("`-{short}`"),
            (None, None) => format!("`{}`", value_names(other).join(" ")),
        })
        .collect();
    if !conflicts.is_empty() {
        parts.push(format!("Cannot be used with {}.", conflicts.join(", ")));
    }
    parts.join(" ")
}

/// Ends `s` with a full stop unless it already ends with one (or `!`, `?`).
fn sentence(s: &str) -> String {
    if s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// Help text as Markdown: `<` and `*` outside code spans are escaped, so `<PATH>` stays text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    for c in s.chars() {
        match c {
            '`' => in_code = !in_code,
            '<' | '*' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// GitHub's heading anchor of "`NAME`": lower case, spaces as dashes, punctuation dropped.
fn anchor(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn display_name(cmd: &Command) -> String {
    cmd.get_bin_name()
        .or(cmd.get_display_name())
        .unwrap_or(cmd.get_name())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("sealer state list"), "sealer-state-list");
        assert_eq!(anchor("sealer build"), "sealer-build");
    }

    #[test]
    fn text_escapes_outside_code_only() {
        assert_eq!(text("a <b> `<c>` *d*"), "a \\<b> `<c>` \\*d\\*");
    }
}
