//! The plan for pull-request review: a Markdown comment that fits one GitHub comment.
//!
//! Order of importance, kept in this order when the budget runs out: the title and summary,
//! the disruptive changes, the table of changes, the full plan (folded).

use super::human::{Style, render};
use super::{Action, Plan};
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
    if plan.has_changes() {
        let _ = writeln!(
            head,
            "### sealer plan for cluster `{}`{kind}: {}\n",
            plan.cluster,
            summary.line()
        );
    } else {
        let _ = writeln!(
            head,
            "### sealer plan for cluster `{}`: no changes\n\nCluster `{}` matches the configuration.",
            plan.cluster, plan.cluster
        );
        return head;
    }

    let disruptive: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.disruptive)
        .map(|c| {
            format!(
                "> - `{}` {} ({})\n",
                c.address,
                c.action.phrase(),
                escape_cell(&c.reason)
            )
        })
        .collect();
    let mut warnings = String::new();
    if !disruptive.is_empty() {
        let _ = writeln!(
            warnings,
            "> [!WARNING]\n> **{} disruptive change{}** (workloads on these nodes are drained, reset or restarted):",
            disruptive.len(),
            if disruptive.len() == 1 { "" } else { "s" }
        );
        // The warnings may use at most a third of the budget; the table needs room too.
        let budget = limit / 3;
        let mut used = warnings.len();
        for (i, line) in disruptive.iter().enumerate() {
            let rest = disruptive.len() - i;
            if used + line.len() + 64 > budget {
                let _ = writeln!(warnings, "> - … and {rest} more");
                break;
            }
            warnings.push_str(line);
            used += line.len();
        }
        warnings.push('\n');
    }

    let mut rows: Vec<String> = Vec::new();
    for action in [
        Action::Delete,
        Action::Replace,
        Action::Update,
        Action::Create,
    ] {
        for c in plan.changes.iter().filter(|c| c.action == action) {
            rows.push(format!(
                "| {} {} | `{}` | {} | {} |\n",
                c.action.marker(),
                c.action.as_str(),
                c.address,
                c.host.as_deref().unwrap_or(""),
                escape_cell(&c.reason)
            ));
        }
    }
    let table_head = "| action | address | host | reason |\n|---|---|---|---|\n";
    let details_reserve = 400;
    let table_budget = limit.saturating_sub(head.len() + warnings.len() + details_reserve);
    let mut table = String::from(table_head);
    let mut shown = 0;
    for row in &rows {
        if table.len() + row.len() + 120 > table_budget {
            break;
        }
        table.push_str(row);
        shown += 1;
    }
    if shown < rows.len() {
        let _ = writeln!(
            table,
            "\n*… {} more changes not shown: run `sealer show PLANFILE` for all of them.*",
            rows.len() - shown
        );
    }
    table.push('\n');

    let mut out = head;
    out.push_str(&warnings);
    out.push_str(&table);

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
    out
}

/// `      + arch = x` → `+     arch = x`: GitHub colors a diff line by its first character.
fn marker_to_column_zero(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let mut chars = trimmed.chars();
    match (chars.next(), chars.next()) {
        (Some(m @ ('+' | '-' | '~')), Some(' ')) if indent > 0 => {
            format!("{m}{}{}", " ".repeat(indent), &trimmed[1..])
        }
        _ => line.to_string(),
    }
}

/// Keeps a table cell on one line and its pipes literal.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::marker_to_column_zero;

    #[test]
    fn markers_move_to_column_zero_keeping_alignment() {
        assert_eq!(marker_to_column_zero("  + host.a {"), "+   host.a {");
        assert_eq!(
            marker_to_column_zero("      ~ x = 1 -> 2"),
            "~       x = 1 -> 2"
        );
        assert_eq!(
            marker_to_column_zero("-/+ kubernetes.init {"),
            "-/+ kubernetes.init {"
        );
        assert_eq!(marker_to_column_zero("  # comment"), "  # comment");
    }
}
