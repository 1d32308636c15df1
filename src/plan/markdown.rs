//! The plan for pull-request review: a Markdown comment that fits one GitHub comment.
//!
//! Order of importance, kept in this order when the budget runs out: the title, where the
//! plan comes from (state serial, lineage, sealer) and its targeting, a summary by resource
//! type and action, the disruptive changes, the tables of changes (destroys and replacements
//! first, addresses in natural order), the full plan (folded, updates marked `!` so GitHub
//! colors them).

use super::human::{Style, render};
use super::{Action, Change, Plan};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// GitHub's limit for a comment is 65,536 characters; stay under it with room to spare.
pub const DEFAULT_LIMIT: usize = 65_000;

pub fn render_markdown(plan: &Plan, limit: usize) -> String {
    let summary = plan.summary();
    let mut head = String::new();
    let kind = if plan.destroy {
        " (destroy)"
    } else if plan.is_new_cluster() {
        " (new cluster)"
    } else {
        ""
    };
    let title = if plan.has_changes() {
        summary.line()
    } else {
        "no changes".to_string()
    };
    let _ = writeln!(
        head,
        "### sealer plan for cluster `{}`{kind}: {title}\n",
        plan.cluster
    );
    let _ = writeln!(head, "{}\n", provenance(plan));
    head.push_str(&targeting(plan));
    if !plan.has_changes() {
        let _ = writeln!(
            head,
            "Cluster `{}` matches the configuration.",
            plan.cluster
        );
        return head;
    }
    head.push_str(&summary_by_type(plan));
    head.push_str(&distribution(plan));

    let warnings = disruptive_warning(plan, limit / 3);
    let details_reserve = 400;
    let table_budget = limit.saturating_sub(head.len() + warnings.len() + details_reserve);
    let table = change_tables(plan, table_budget);

    let mut out = head;
    out.push_str(&warnings);
    out.push_str(&table);
    full_plan(&mut out, plan, limit);
    out
}

/// One line on how the rootfs travels, when hosts pass it on (the full plan lists each).
fn distribution(plan: &Plan) -> String {
    use super::distribution::Source;
    let tree = super::distribution::tree(&plan.changes, plan.rootfs_distribution);
    let first = tree.sources.iter().find(|(_, s)| **s == Source::Operator);
    let Some((first, _)) = first else {
        return String::new();
    };
    format!(
        "Rootfs distribution (tree): `{first}` from the operator, {} more from hosts that got it, over SSH.\n\n",
        tree.sources.len() - 1
    )
}

/// Where the plan comes from: the state it was made against and the sealer that made it.
fn provenance(plan: &Plan) -> String {
    let state = match &plan.lineage {
        Some(lineage) => format!(
            "state serial {} · lineage `{}`",
            plan.serial,
            &lineage[..lineage.len().min(8)]
        ),
        None => "no state yet".to_string(),
    };
    format!(
        "<sub>{state} · sealer {}</sub>",
        super::saved::SEALER_VERSION
    )
}

/// `--target` makes a partial plan and `--replace` forces replacements: both said first.
fn targeting(plan: &Plan) -> String {
    let mut out = String::new();
    let list = |addresses: &[String]| {
        addresses
            .iter()
            .map(|a| format!("`{}`", escape_cell(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !plan.targets.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Partial plan**: `--target` {} limits it to those resources, what they depend on and what their replacements take with them; other changes are neither shown nor applied.\n",
            list(&plan.targets)
        );
    }
    if !plan.replace.is_empty() {
        let _ = writeln!(
            out,
            "**Replaced on request** (`--replace`): {}\n",
            list(&plan.replace)
        );
    }
    out
}

/// How many changes of each action, per resource type: the shape of a big plan at a glance.
fn summary_by_type(plan: &Plan) -> String {
    let actions = [
        Action::Create,
        Action::Update,
        Action::Replace,
        Action::Delete,
    ];
    let mut counts: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for c in &plan.changes {
        let row = counts.entry(c.resource_type.as_str()).or_default();
        if let Some(i) = actions.iter().position(|a| *a == c.action) {
            row[i] += 1;
        }
    }
    let mut out = String::from(
        "| resource type | + create | ~ update | -/+ replace | - delete |\n|---|--:|--:|--:|--:|\n",
    );
    for (kind, row) in &counts {
        let cell = |n: usize| if n == 0 { String::new() } else { n.to_string() };
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} |",
            cell(row[0]),
            cell(row[1]),
            cell(row[2]),
            cell(row[3])
        );
    }
    out.push('\n');
    out
}

/// The disruptive changes, within `budget` characters.
fn disruptive_warning(plan: &Plan, budget: usize) -> String {
    let disruptive: Vec<&Change> = sorted(plan.changes.iter().filter(|c| c.disruptive));
    let mut warnings = String::new();
    if disruptive.is_empty() {
        return warnings;
    }
    let _ = writeln!(
        warnings,
        "> [!WARNING]\n> **{} disruptive change{}** (workloads on these nodes are drained, reset or restarted):",
        disruptive.len(),
        if disruptive.len() == 1 { "" } else { "s" }
    );
    let mut used = warnings.len();
    for (i, c) in disruptive.iter().enumerate() {
        let line = format!(
            "> - `{}` {} ({})\n",
            c.address,
            c.action.phrase(),
            escape_cell(&c.reason)
        );
        if used + line.len() + 64 > budget {
            let _ = writeln!(warnings, "> - … and {} more", disruptive.len() - i);
            break;
        }
        used += line.len();
        warnings.push_str(&line);
    }
    warnings.push('\n');
    warnings
}

/// Destroys and replacements first (what they take with them is in their reason), then
/// updates and creates; addresses in natural order (IPs by number); within `budget`.
fn change_tables(plan: &Plan, budget: usize) -> String {
    let groups = [
        ("Destroyed and replaced", [Action::Delete, Action::Replace]),
        ("Updated and created", [Action::Update, Action::Create]),
    ];
    let mut out = String::new();
    let mut not_shown = 0;
    for (title, actions) in groups {
        let rows: Vec<String> = actions
            .iter()
            .flat_map(|a| sorted(plan.changes.iter().filter(move |c| c.action == *a)))
            .map(|c| {
                format!(
                    "| {} {} | `{}` | {} | {} |\n",
                    c.action.marker(),
                    c.action.as_str(),
                    c.address,
                    c.host.as_deref().unwrap_or(""),
                    escape_cell(&c.reason)
                )
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let table_head =
            format!("#### {title}\n\n| action | address | host | reason |\n|---|---|---|---|\n");
        if out.len() + table_head.len() + 240 > budget {
            not_shown += rows.len();
            continue;
        }
        out.push_str(&table_head);
        for (i, row) in rows.iter().enumerate() {
            if out.len() + row.len() + 240 > budget {
                not_shown += rows.len() - i;
                break;
            }
            out.push_str(row);
        }
        out.push('\n');
    }
    if not_shown > 0 {
        let _ = writeln!(
            out,
            "*… {not_shown} more changes not shown: run `sealer show PLANFILE` for all of them.*\n"
        );
    }
    out
}

/// The whole human plan, folded, as a diff block cut to what the limit leaves.
fn full_plan(out: &mut String, plan: &Plan, limit: usize) {
    let text = render(plan, Style { color: false });
    let lines: Vec<String> = text.lines().map(marker_to_column_zero).collect();
    let open = format!(
        "<details><summary>Full plan ({} lines)</summary>\n\n```diff\n",
        lines.len()
    );
    let close = "```\n\n</details>\n";
    let room = limit.saturating_sub(out.len() + open.len() + close.len() + 120);
    let mut body = String::new();
    let mut included = 0;
    for line in &lines {
        if body.len() + line.len() + 1 > room {
            break;
        }
        body.push_str(line);
        body.push('\n');
        included += 1;
    }
    out.push_str(&open);
    out.push_str(&body);
    if included < lines.len() {
        let _ = writeln!(
            out,
            "… {} more lines not shown: run `sealer show PLANFILE` for the full plan.",
            lines.len() - included
        );
    }
    out.push_str(close);
}

/// Changes by address in natural order: `10.0.0.2` before `10.0.0.10`.
fn sorted<'a>(changes: impl Iterator<Item = &'a Change>) -> Vec<&'a Change> {
    let mut list: Vec<&Change> = changes.collect();
    list.sort_by_cached_key(|c| natural_key(&c.address));
    list
}

/// Runs of digits compare as numbers, the rest as text.
fn natural_key(text: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            let n = rest[..digits].parse().unwrap_or(u64::MAX);
            key.push((String::new(), n));
            rest = &rest[digits..];
        } else {
            let text_end = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            key.push((rest[..text_end].to_string(), 0));
            rest = &rest[text_end..];
        }
    }
    key
}

/// `      + arch = x` → `+     arch = x`: GitHub colors a diff line by its first character,
/// and an update's `~` as `!` (the changed-line marker it colors).
fn marker_to_column_zero(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let mut chars = trimmed.chars();
    match (chars.next(), chars.next()) {
        (Some(m @ ('+' | '-' | '~')), Some(' ')) => {
            let m = if m == '~' { '!' } else { m };
            format!("{m}{}{}", " ".repeat(indent), &trimmed[1..])
        }
        _ => line.to_string(),
    }
}

/// Keeps a table cell on one line, its pipes literal, no HTML (`<details>` in a name would
/// fold the rest of the comment) and no control character.
fn escape_cell(text: &str) -> String {
    let text = text
        .replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;");
    super::human::visible(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::marker_to_column_zero;

    #[test]
    fn markers_move_to_column_zero_keeping_alignment() {
        assert_eq!(marker_to_column_zero("  + host.a {"), "+   host.a {");
        assert_eq!(
            marker_to_column_zero("      ~ x = 1 -> 2"),
            "!       x = 1 -> 2"
        );
        assert_eq!(marker_to_column_zero("~ app.x {"), "! app.x {");
        assert_eq!(
            marker_to_column_zero("-/+ kubernetes.init {"),
            "-/+ kubernetes.init {"
        );
        assert_eq!(marker_to_column_zero("  # comment"), "  # comment");
    }

    #[test]
    fn addresses_sort_with_numbers_as_numbers() {
        let mut list = vec![
            "host.10.1.0.100",
            "host.10.1.0.2",
            "host.10.1.0.10",
            "app.a",
            "host.9.0.0.1",
        ];
        list.sort_by_cached_key(|a| super::natural_key(a));
        assert_eq!(
            list,
            [
                "app.a",
                "host.9.0.0.1",
                "host.10.1.0.2",
                "host.10.1.0.10",
                "host.10.1.0.100"
            ]
        );
    }

    #[test]
    fn cells_hold_no_html_pipe_newline_or_control_character() {
        assert_eq!(
            super::escape_cell("a|b\n<details>\u{1b}[2K"),
            "a\\|b &lt;details>\\u{1b}[2K"
        );
    }
}
