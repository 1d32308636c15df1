//! The plan for people, in the terminal: Terraform's layout, which operators read fluently.

use super::{Action, Change, Plan};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colors (only on a TTY, never with `NO_COLOR`; the caller decides).
    pub color: bool,
}

const SENSITIVE: &str = "(sensitive value)";
const UNKNOWN: &str = "(known after apply)";
/// The most lines one text diff shows.
const DIFF_LINES: usize = 60;

/// Text from outside (scripts, Config data, tool output) as the terminal should show it: a
/// control character, which could move the cursor or rewrite the lines a reviewer reads,
/// becomes a visible escape (`\u{1b}`); tabs stay.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn marker_color(marker: &str) -> &'static str {
    match marker {
        "+" => "32",
        "-" => "31",
        "~" => "33",
        _ => "35",
    }
}

/// The whole plan as the terminal shows it.
pub fn render(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.is_new_cluster() && !plan.destroy {
        let _ = writeln!(
            out,
            "Cluster \"{}\" has no state yet: this plan creates it.\n",
            plan.cluster
        );
    }
    if !plan.has_changes() {
        render_targeting(&mut out, plan, style);
        let _ = writeln!(
            out,
            "No changes. Cluster \"{}\" matches the configuration.",
            plan.cluster
        );
        return out;
    }
    let _ = writeln!(
        out,
        "sealer will perform the following actions on cluster \"{}\":\n",
        plan.cluster
    );
    for change in &plan.changes {
        render_change(&mut out, change, style);
        out.push('\n');
    }
    render_distribution(&mut out, plan, style);
    render_warnings(&mut out, plan, style);
    render_targeting(&mut out, plan, style);
    let _ = writeln!(out, "{}", plan.summary().line());
    out
}

/// Where each host's rootfs comes from, when hosts pass it on (`--rootfs-distribution`).
fn render_distribution(out: &mut String, plan: &Plan, style: Style) {
    let tree = super::distribution::tree(&plan.changes, plan.rootfs_distribution);
    if tree.sources.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        paint(
            style,
            "1",
            "Rootfs distribution (tree): hosts pass the rootfs on over SSH; a host its seeder\n  cannot serve gets it from the operator"
        )
    );
    for change in &plan.changes {
        if let Some(source) = tree.source(&change.address) {
            let _ = writeln!(out, "  {} {}", visible(&change.address), source.describe());
        }
    }
    out.push('\n');
}

/// A `--target` plan is partial: said next to the summary, as Terraform does.
fn render_targeting(out: &mut String, plan: &Plan, style: Style) {
    if plan.targets.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}\n  --target {} limits it to those resources, what they depend on and what their\n  replacements take with them; other changes are neither shown nor applied. Plan\n  without --target to see everything.\n",
        paint(style, "1;33", "Warning: this plan is partial"),
        plan.targets.join(", --target ")
    );
}

/// Every disruptive change once more, after the details and before the summary: what a
/// reviewer must not miss, including what replacements take with them.
fn render_warnings(out: &mut String, plan: &Plan, style: Style) {
    let disruptive: Vec<&Change> = plan.changes.iter().filter(|c| c.disruptive).collect();
    if disruptive.is_empty() {
        return;
    }
    let taken = disruptive.iter().filter(|c| c.caused_by.is_some()).count();
    let mut title = format!(
        "Warning: {} disruptive change{}",
        disruptive.len(),
        if disruptive.len() == 1 { "" } else { "s" }
    );
    if taken > 0 {
        title.push_str(&format!(", {taken} of them taken with a replacement"));
    }
    let _ = writeln!(out, "{}", paint(style, "1;33", &title));
    for c in disruptive {
        let _ = writeln!(
            out,
            "  - {} {} ({})",
            visible(&c.address),
            c.action.phrase(),
            visible(&c.reason)
        );
    }
    out.push('\n');
}

/// One change: the comment line, the block with its attributes.
pub fn render_change(out: &mut String, change: &Change, style: Style) {
    let flag = if change.disruptive {
        " [disruptive]"
    } else {
        ""
    };
    let comment = format!(
        "# {} {} ({}){flag}",
        visible(&change.address),
        change.action.phrase(),
        visible(&change.reason)
    );
    let _ = writeln!(out, "  {}", paint(style, "1", &comment));
    let marker = change.action.marker();
    let lead = if marker.len() == 3 { "" } else { "  " };
    let colored = paint(style, marker_color(marker), marker);
    if change.action == Action::Delete {
        let _ = writeln!(out, "{lead}{colored} {} {{ ... }}", change.address);
        return;
    }
    let _ = writeln!(out, "{lead}{colored} {} {{", change.address);
    let none = crate::resource::Attributes::new();
    let after = change.after().unwrap_or(&none);
    let before = change.before.as_ref().unwrap_or(&none);
    let keys: BTreeSet<&String> = after
        .keys()
        .chain(before.keys())
        .chain(change.computed.iter())
        .collect();
    // Explanations say why something changed: a new resource has nothing to explain. A
    // plain string among them (an app's image) still says what the resource is.
    let explains = crate::kinds::schema(change.resource_type).explains;
    let keys: BTreeSet<&String> = keys
        .into_iter()
        .filter(|k| {
            change.before.is_some()
                || !explains.contains(&k.as_str())
                || after.get(*k).is_some_and(serde_json::Value::is_string)
        })
        .collect();
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut hidden = 0;
    for key in keys {
        let sensitive = change.sensitive.contains(key);
        let computed = change.computed.contains(key);
        let old = before.get(key);
        let new = after.get(key);
        let attr = Attr {
            key,
            width,
            sensitive,
            style,
        };
        if change.before.is_none() {
            if computed {
                attr.line(out, "+", UNKNOWN);
            } else if let Some(v) = new {
                attr.value_line(out, "+", v);
            }
            continue;
        }
        if computed {
            hidden += 1;
            continue;
        }
        match (old, new) {
            (Some(o), Some(n)) if o == n => hidden += 1,
            (Some(o), Some(n)) => {
                let forces = change.forcing.contains(key);
                attr.update_line(out, o, n, forces);
            }
            (None, Some(_))
                if change.resource_type == crate::resource::ResourceType::App
                    && key == crate::kinds::app::TEXTS =>
            {
                hidden += 1
            }
            (None, Some(n)) => attr.value_line(out, "+", n),
            (Some(o), None) => attr.value_line(out, "-", o),
            (None, None) => {}
        }
    }
    if hidden > 0 {
        let noun = if hidden == 1 {
            "attribute"
        } else {
            "attributes"
        };
        let _ = writeln!(out, "        # ({hidden} unchanged {noun} hidden)");
    }
    let _ = writeln!(out, "    }}");
}

struct Attr<'a> {
    key: &'a str,
    width: usize,
    sensitive: bool,
    style: Style,
}

impl Attr<'_> {
    fn marker(&self, m: &str) -> String {
        paint(self.style, marker_color(m), m)
    }

    fn line(&self, out: &mut String, m: &str, text: &str) {
        let _ = writeln!(
            out,
            "      {} {:<w$} = {text}",
            self.marker(m),
            self.key,
            w = self.width
        );
    }

    fn value_line(&self, out: &mut String, m: &str, value: &Value) {
        if self.sensitive {
            return self.line(out, m, SENSITIVE);
        }
        match value {
            Value::String(s) if s.contains('\n') => {
                self.line(out, m, "<<-EOT");
                for l in s.trim_end_matches('\n').lines() {
                    let _ = writeln!(out, "            {}", visible(l));
                }
                let _ = writeln!(out, "        EOT");
            }
            Value::Object(map) if !map.is_empty() => {
                self.line(out, m, "{");
                let w = map.keys().map(|k| quoted(k).len()).max().unwrap_or(0);
                for (k, v) in map {
                    match v {
                        Value::String(s) if s.contains('\n') => {
                            let _ = writeln!(
                                out,
                                "          {} {} = <<-EOT",
                                self.marker(m),
                                quoted(k)
                            );
                            for l in s.trim_end_matches('\n').lines() {
                                let _ = writeln!(out, "              {}", visible(l));
                            }
                            let _ = writeln!(out, "            EOT");
                        }
                        _ => {
                            let _ = writeln!(
                                out,
                                "          {} {:<w$} = {}",
                                self.marker(m),
                                quoted(k),
                                inline(v)
                            );
                        }
                    }
                }
                let _ = writeln!(out, "        }}");
            }
            other => self.line(out, m, &inline(other)),
        }
    }

    /// A unified diff of two texts: changed lines with three lines of context around them,
    /// `@@` between distant hunks, at most [`DIFF_LINES`] lines and then how many were cut.
    fn text_diff(&self, out: &mut String, old: &str, new: &str, indent: &str) {
        let diff = similar::TextDiff::from_lines(old, new);
        let mut shown = 0;
        let mut cut = 0;
        for (i, group) in diff.grouped_ops(3).iter().enumerate() {
            if i > 0 && shown < DIFF_LINES {
                let _ = writeln!(out, "{indent}  @@");
            }
            for op in group {
                for change in diff.iter_changes(op) {
                    if shown >= DIFF_LINES {
                        cut += 1;
                        continue;
                    }
                    let sign = match change.tag() {
                        similar::ChangeTag::Delete => self.marker("-"),
                        similar::ChangeTag::Insert => self.marker("+"),
                        similar::ChangeTag::Equal => " ".to_string(),
                    };
                    let text = visible(change.value().trim_end_matches('\n'));
                    let _ = writeln!(out, "{indent}{sign} {text}");
                    shown += 1;
                }
            }
        }
        if cut > 0 {
            let _ = writeln!(out, "{indent}  # ({cut} more diff lines not shown)");
        }
    }

    fn update_line(&self, out: &mut String, old: &Value, new: &Value, forces: bool) {
        let note = if forces {
            paint(self.style, "31", " # forces replacement")
        } else {
            String::new()
        };
        if self.sensitive {
            return self.line(out, "~", &format!("{SENSITIVE}{note}"));
        }
        match (old, new) {
            (Value::String(a), Value::String(b)) if a.contains('\n') || b.contains('\n') => {
                self.line(out, "~", &format!("<<-EOT{note}"));
                self.text_diff(out, a, b, "          ");
                let _ = writeln!(out, "        EOT");
            }
            (Value::Object(a), Value::Object(b)) => {
                self.line(out, "~", &format!("{{{note}"));
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let w = keys.iter().map(|k| quoted(k).len()).max().unwrap_or(0);
                let mut same = 0;
                for k in keys {
                    let key = quoted(k);
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) if x == y => same += 1,
                        (Some(Value::String(x)), Some(Value::String(y)))
                            if x.contains('\n') || y.contains('\n') =>
                        {
                            let _ = writeln!(out, "          {} {key} = <<-EOT", self.marker("~"));
                            self.text_diff(out, x, y, "              ");
                            let _ = writeln!(out, "            EOT");
                        }
                        (Some(x), Some(y)) => {
                            let _ = writeln!(
                                out,
                                "          {} {key:<w$} = {} -> {}",
                                self.marker("~"),
                                inline(x),
                                inline(y)
                            );
                        }
                        (None, Some(y)) => {
                            let _ = writeln!(
                                out,
                                "          {} {key:<w$} = {}",
                                self.marker("+"),
                                inline(y)
                            );
                        }
                        (Some(x), None) => {
                            let _ = writeln!(
                                out,
                                "          {} {key:<w$} = {}",
                                self.marker("-"),
                                inline(x)
                            );
                        }
                        (None, None) => {}
                    }
                }
                if same > 0 {
                    let noun = if same == 1 { "element" } else { "elements" };
                    let _ = writeln!(out, "            # ({same} unchanged {noun} hidden)");
                }
                let _ = writeln!(out, "        }}");
            }
            _ => self.line(
                out,
                "~",
                &format!("{} -> {}{note}", inline(old), inline(new)),
            ),
        }
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A value on one line: strings quoted (digests shortened), lists and maps inline.
pub fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => quoted(&shorten_digest(s)),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", quoted(k), inline(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// `sha256:` (or `hmac-sha256:`) + 64 hex digits → the first 12 digits and an ellipsis:
/// enough to compare by eye.
fn shorten_digest(s: &str) -> String {
    for prefix in ["sha256:", crate::clusterfile::KEYED_PREFIX] {
        if let Some(hex) = s.strip_prefix(prefix)
            && hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return format!("{prefix}{}…", &hex[..12]);
        }
    }
    s.to_string()
}
