//! Reading typed values out of the YAML tree while collecting every problem.
//!
//! Each reader reports what is wrong at the value's position and returns `None`, so the
//! caller goes on with the rest of the document.

use crate::clusterfile::secret::Secret;
use crate::clusterfile::span::{Source, Span, Spanned};
use crate::clusterfile::suggest;
use crate::clusterfile::yaml::{Entry, Node, Typed, Value};
use crate::diag::Diagnostic;
use std::net::IpAddr;

pub(crate) struct Ctx<'s> {
    source: &'s Source,
    pub errors: Vec<Diagnostic>,
}

/// A mapping whose keys were checked against the known fields.
pub(crate) struct Fields<'n> {
    entries: &'n [Entry],
    /// Where "missing field" errors point: the key that holds this mapping.
    pub at: Span,
    pub path: String,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn value(&self, key: &str) -> Option<&'n Node> {
        self.get(key).map(|e| &e.value)
    }

    /// `PATH.key`, for messages about a field.
    pub fn path_of(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

impl<'s> Ctx<'s> {
    pub fn new(source: &'s Source) -> Ctx<'s> {
        Ctx {
            source,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(message).at(self.source.location(span)));
    }

    pub fn error_hint(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.error_hints(span, message, vec![hint.into()]);
    }

    pub fn error_hints(&mut self, span: Span, message: impl Into<String>, hints: Vec<String>) {
        let mut d = Diagnostic::error(message).at(self.source.location(span));
        d.hints = hints;
        self.errors.push(d);
    }

    /// `node` as a mapping with only `known` keys; null reads as an empty mapping.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        at: Span,
        path: &str,
        known: &[&str],
    ) -> Option<Fields<'n>> {
        let entries: &'n [Entry] = match &node.value {
            Value::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => {
                self.wrong_type(node, path, "a mapping");
                return None;
            }
        };
        for entry in entries {
            if !known.contains(&entry.key.as_str()) {
                let mut hints = Vec::new();
                // Valid YAML, wrong place: a key indented one level too little lands in the
                // mapping above the one it belongs to.
                for (child, fields) in nested(path) {
                    if known.contains(child) && fields.contains(&entry.key.as_str()) {
                        hints.push(format!(
                            "`{}` is a field of {path}.{child}: indent it under `{child}:`",
                            entry.key
                        ));
                    }
                }
                if let Some(near) = suggest::closest(&entry.key, known) {
                    hints.push(format!("did you mean `{near}`?"));
                }
                hints.push(format!("fields of {path}: {}", known.join(", ")));
                self.error_hints(
                    entry.key_span,
                    format!("unknown field `{}` in {path}", entry.key),
                    hints,
                );
            }
        }
        Some(Fields {
            entries,
            at,
            path: path.to_string(),
        })
    }

    /// `node` as a mapping with any keys.
    pub fn any_fields<'n>(&mut self, node: &'n Node, at: Span, path: &str) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                entries,
                at,
                path: path.to_string(),
            }),
            _ => {
                self.wrong_type(node, path, "a mapping");
                None
            }
        }
    }

    pub fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let message = format!("{path} must be {expected}, not {}", node.kind_name());
        // How YAML writes what is expected: the likely slip is the form, not the intent.
        let hint = match expected {
            "a list" => Some("write a list as `[a, b]`, or as `- a` lines indented under its key"),
            "a mapping" => Some("write a mapping as `key: value` lines indented under its key"),
            "a string" => Some(
                "write one value after the colon; quote it when it starts with `[`, `{` or `-`",
            ),
            "true or false" => Some("write `true` or `false`"),
            _ => None,
        };
        match hint {
            Some(hint) => self.error_hint(node.span, message, hint),
            None => self.error(node.span, message),
        }
    }

    pub fn missing(&mut self, fields: &Fields<'_>, key: &str) {
        self.error_hint(
            fields.at,
            format!("missing field `{key}` in {}", fields.path),
            format!("add `{key}:` to {}", fields.path),
        );
    }

    /// A scalar's text as written; `None` for null.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        match &node.value {
            Value::Scalar(s) if s.is_null() => None,
            Value::Scalar(s) => Some(Spanned::new(s.text.clone(), node.span)),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    pub fn opt_string(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<String>> {
        let node = fields.value(key)?;
        self.string(node, &fields.path_of(key))
    }

    /// A field that must be present and non-empty.
    pub fn req_string(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<String>> {
        let Some(entry) = fields.get(key) else {
            self.missing(fields, key);
            return None;
        };
        let path = fields.path_of(key);
        match self.string(&entry.value, &path) {
            Some(s) if !s.value.is_empty() => Some(s),
            Some(s) => {
                self.error(s.span, format!("{path} must not be empty"));
                None
            }
            // An empty value has no position of its own: point at its key.
            None if entry.value.is_null() => {
                self.error(entry.key_span, format!("{path} must not be empty"));
                None
            }
            None => None,
        }
    }

    /// A field that must be present, possibly empty (file data, scripts).
    pub fn req_text(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<String>> {
        let Some(node) = fields.value(key) else {
            self.missing(fields, key);
            return None;
        };
        if node.is_null() {
            return Some(Spanned::new(String::new(), node.span));
        }
        self.string(node, &fields.path_of(key))
    }

    /// A list's items; `None` for null (same as absent) or a wrong type (reported).
    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => None,
            _ => {
                self.wrong_type(node, path, "a list");
                None
            }
        }
    }

    /// A list of strings; a null item reads as "".
    pub fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<Spanned<String>>> {
        let items = self.seq(node, path)?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.is_null() {
                out.push(Spanned::new(String::new(), item.span));
            } else if let Some(s) = self.string(item, &format!("{path}[{i}]")) {
                out.push(s);
            }
        }
        Some(out)
    }

    pub fn opt_strings(&mut self, fields: &Fields<'_>, key: &str) -> Option<Vec<Spanned<String>>> {
        let node = fields.value(key)?;
        self.strings(node, &fields.path_of(key))
    }

    /// YAML 1.2 booleans only: `yes`, `on`, `y` are strings, and a string is not a boolean.
    pub fn bool(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<bool>> {
        let node = fields.value(key)?;
        match &node.value {
            Value::Scalar(s) => match s.typed() {
                Typed::Bool(b) => Some(Spanned::new(b, node.span)),
                // A quoted "true" cannot mean anything else.
                Typed::Str("true") => Some(Spanned::new(true, node.span)),
                Typed::Str("false") => Some(Spanned::new(false, node.span)),
                Typed::Null => None,
                _ => {
                    self.error_hint(
                        node.span,
                        format!(
                            "{} must be true or false, not `{}`",
                            fields.path_of(key),
                            s.text
                        ),
                        "YAML 1.2: yes, no, on and off are strings, not booleans",
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(node, &fields.path_of(key), "true or false");
                None
            }
        }
    }

    /// A TCP port, written as a number or a string (Sealer writes `"22"`).
    pub fn port(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<u16>> {
        let node = fields.value(key)?;
        let text = self.string(node, &fields.path_of(key))?;
        match text.value.trim().parse::<u16>() {
            Ok(port) if port > 0 && text.value.trim().chars().all(|c| c.is_ascii_digit()) => {
                Some(Spanned::new(port, node.span))
            }
            _ => {
                self.error_hint(
                    node.span,
                    format!("invalid port `{}`", text.value),
                    "a port is a number from 1 to 65535",
                );
                None
            }
        }
    }

    pub fn ip(&mut self, node: &Node, path: &str) -> Option<Spanned<IpAddr>> {
        let text = self.string(node, path)?;
        match text.value.parse::<IpAddr>() {
            Ok(ip) => Some(Spanned::new(ip, node.span)),
            Err(_) => {
                self.error_hint(
                    node.span,
                    format!("invalid IP address `{}`", text.value),
                    "write an IPv4 address such as 192.168.0.2 or an IPv6 address such as fd00::2",
                );
                None
            }
        }
    }

    /// A secret; an empty one is the same as none.
    pub fn secret(&mut self, fields: &Fields<'_>, key: &str) -> Option<Spanned<Secret>> {
        let text = self.opt_string(fields, key)?;
        (!text.value.is_empty()).then(|| text.map(Secret::new))
    }

    /// A closed set of words (strategies, transports, ...): the one written, or an error
    /// with a suggestion.
    pub fn choice<T: Copy>(
        &mut self,
        text: &Spanned<String>,
        what: &str,
        plural: &str,
        names: &[&str],
        values: &[T],
    ) -> Option<Spanned<T>> {
        match names.iter().position(|n| *n == text.value) {
            Some(i) => values.get(i).map(|v| Spanned::new(*v, text.span)),
            None => {
                let hints = suggest::hints(&text.value, names, plural);
                self.error_hints(text.span, format!("unknown {what} `{}`", text.value), hints);
                None
            }
        }
    }

    /// Where the part of a single-line scalar at `byte_offset` starts; the scalar's own
    /// position when the text cannot be found as written (escapes, block scalars).
    pub fn sub_span(&self, text: &Spanned<String>, byte_offset: usize) -> Span {
        let Some(line) = self.source.line(text.span.line) else {
            return text.span;
        };
        let rest: String = line
            .chars()
            .skip(text.span.column.saturating_sub(1))
            .collect();
        let quote = usize::from(rest.starts_with(['"', '\'']));
        let written: String = rest.chars().skip(quote).collect();
        match (
            written.starts_with(&text.value),
            text.value.get(..byte_offset),
        ) {
            (true, Some(before)) => Span::new(
                text.span.line,
                text.span.column + quote + before.chars().count(),
            ),
            _ => text.span,
        }
    }

    /// A path inside the rootfs (or an app's directory): relative, without `..`.
    pub fn relative_path(&mut self, text: &Spanned<String>, inside: &str) -> bool {
        let hint = format!("paths are relative to {inside} and stay inside it");
        if text.value.starts_with('/') {
            self.error_hint(
                text.span,
                format!("path `{}` is absolute", text.value),
                hint,
            );
            false
        } else if text.value.split(['/', '\\']).any(|part| part == "..") {
            self.error_hint(
                text.span,
                format!("path `{}` leaves {inside}", text.value),
                hint,
            );
            false
        } else {
            true
        }
    }
}

/// The non-empty words of `a|b|c`, trimmed, with their byte offsets in `text`.
pub(crate) fn split_bar(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for part in text.split('|') {
        let trimmed = part.trim_start();
        let offset = start + (part.len() - trimmed.len());
        let trimmed = trimmed.trim_end();
        if !trimmed.is_empty() {
            out.push((offset, trimmed));
        }
        start += part.len() + 1;
    }
    out
}

/// The mappings nested in the mapping at `path`, with their fields: where a key that is
/// unknown at `path` may belong.
fn nested(path: &str) -> &'static [(&'static str, &'static [&'static str])] {
    if path == "Cluster.spec" || (path.starts_with("Cluster.spec.hosts[") && path.ends_with(']')) {
        &[("ssh", super::cluster::SSH)]
    } else {
        &[]
    }
}
