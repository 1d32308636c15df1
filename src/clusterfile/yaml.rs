//! YAML → a tree that keeps, for every node, where it was written and its text as written.
//!
//! We read serde-saphyr's event parser (`granit_parser`) instead of deriving `Deserialize`:
//! serde stops at the first error, and typing scalars early would turn `1.10` into `1.1`.
//! Scalars are resolved with the YAML 1.2 core schema only where a type is wanted, so an
//! unquoted `n`, `yes` or `on` is a string (spec, deliberate difference 1).

use super::span::Span;
use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};
use std::collections::HashMap;

/// A node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub text: String,
    /// Plain scalars are typed by the core schema; quoted, block and `!!str` ones are strings.
    pub plain: bool,
}

/// A mapping entry; keys are scalars (others are reported while the tree is built).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// A scalar's meaning under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub fn typed(&self) -> Typed<'_> {
        if !self.plain {
            return Typed::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
            "true" | "True" | "TRUE" => return Typed::Bool(true),
            "false" | "False" | "FALSE" => return Typed::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Typed::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
            _ => {}
        }
        if let Some(int) = parse_int(t) {
            return Typed::Int(int);
        }
        if is_float(t)
            && let Ok(f) = t.parse::<f64>()
        {
            return Typed::Float(f);
        }
        Typed::Str(t)
    }

    pub fn is_null(&self) -> bool {
        self.typed() == Typed::Null
    }
}

/// A YAML 1.2 core-schema integer (decimal, `0x` hex, `0o` octal).
pub(crate) fn parse_int(t: &str) -> Option<i128> {
    if let Some(hex) = t.strip_prefix("0x") {
        return (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| i128::from_str_radix(hex, 16).ok())
            .flatten();
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return (!oct.is_empty() && oct.chars().all(|c| c.is_digit(8)))
            .then(|| i128::from_str_radix(oct, 8).ok())
            .flatten();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<i128>().ok()
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
pub(crate) fn is_float(t: &str) -> bool {
    let s = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(frac) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
        None => true,
    };
    mantissa_ok && exponent_ok
}

/// One YAML document: its root (`None` when empty).
#[derive(Debug)]
pub(crate) struct Document {
    pub root: Option<Node>,
}

/// A problem found while reading YAML.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

/// Alias expansion is capped so that a "billion laughs" file cannot exhaust memory.
const MAX_ALIAS_NODES: usize = 100_000;

/// The documents of `source`. A syntax error abandons its document only; later documents
/// are still read, so their problems are reported in the same run.
pub(crate) fn parse(source: &str) -> (Vec<Document>, Vec<YamlError>) {
    let mut options = serde_saphyr::granit_parser::Options::default();
    options.set_emit_comments(false);
    let mut parser = Parser::new_from_str_with_options(source, options);
    let mut builder = Builder::default();
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => {
                let tag_at = span.tag_start.as_ref().map(to_span);
                builder.event(event, to_span(&span.start), tag_at)
            }
            Some(Err(error)) => {
                builder.syntax_error(&error);
                match parser.proceed_next_document() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        builder.syntax_error(&error);
                        break;
                    }
                }
            }
        }
    }
    (builder.documents, builder.errors)
}

fn to_span(marker: &Marker) -> Span {
    Span::new(marker.line().max(1), marker.col() + 1)
}

/// A collection being read.
enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        /// Where each key was first written, to find duplicates without a scan.
        seen: HashMap<String, Span>,
        key: Option<(Option<String>, Span)>,
        span: Span,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<Document>,
    errors: Vec<YamlError>,
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes in nodes, to charge aliases without walking them.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    /// Set when this document already failed (a bad tag or an alias bomb): its events are
    /// still consumed, but nothing more is reported or kept for it.
    abandoned: bool,
    alias_nodes: usize,
}

impl Builder {
    fn error(&mut self, span: Span, message: impl Into<String>, hint: Option<&str>) {
        self.errors.push(YamlError {
            span,
            message: message.into(),
            hint: hint.map(str::to_string),
        });
    }

    fn syntax_error(&mut self, error: &ScanError) {
        let info = error.info();
        let message = if info.is_empty() {
            "invalid YAML".to_string()
        } else {
            format!("invalid YAML: {info}")
        };
        // These are what a line indented too far or not far enough gives; the scanner's
        // position is on that line, at its first token (or at the `:` that cannot be there).
        let indentation = [
            "did not find expected key",
            "did not find expected '-' indicator",
            "mapping values are not allowed",
        ]
        .iter()
        .any(|m| info.contains(m));
        let hint = indentation.then_some(
            "check this line's indentation: a key lines up with the other keys of its mapping, \
             a `-` with the other items of its list (spaces only)",
        );
        self.error(to_span(error.marker()), message, hint);
        self.stack.clear();
        self.root = None;
        self.abandoned = false;
    }

    fn event(&mut self, event: Event<'_>, span: Span, tag_at: Option<Span>) {
        let tag_at = tag_at.unwrap_or(span);
        match event {
            Event::DocumentStart(..) => {
                self.stack.clear();
                self.anchors.clear();
                self.root = None;
                self.abandoned = false;
                self.alias_nodes = 0;
            }
            Event::DocumentEnd => {
                let root = self.root.take();
                if !self.abandoned {
                    self.documents.push(Document { root });
                }
                self.stack.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let plain = match self.check_tag(tag.as_deref(), tag_at) {
                    TagMeaning::String => false,
                    TagMeaning::AsWritten => plain,
                };
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    }),
                    span,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.push(node);
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), tag_at);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), tag_at);
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    span,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        items,
                        span,
                        anchor,
                    } => (
                        Node {
                            value: Value::Seq(items),
                            span,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        entries,
                        span,
                        anchor,
                        ..
                    } => (
                        Node {
                            value: Value::Map(entries),
                            span,
                        },
                        anchor,
                    ),
                };
                if anchor != 0 {
                    let size = count_nodes(&node);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((target, size)) => {
                    self.alias_nodes = self.alias_nodes.saturating_add(*size);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        if !self.abandoned {
                            self.error(
                                span,
                                "YAML aliases expand to too many nodes",
                                Some("write the values out instead of nesting aliases"),
                            );
                        }
                        self.abandoned = true;
                        self.push(null_node(span));
                    } else {
                        let node = Node {
                            value: target.value.clone(),
                            span,
                        };
                        self.push(node);
                    }
                }
                None => {
                    // The anchored collection is still open: a recursive structure.
                    if !self.abandoned {
                        self.error(span, "a YAML alias refers to a node that contains it", None);
                    }
                    self.abandoned = true;
                    self.push(null_node(span));
                }
            },
            _ => {}
        }
    }

    fn check_tag(&mut self, tag: Option<&Tag>, span: Span) -> TagMeaning {
        let Some(tag) = tag else {
            return TagMeaning::AsWritten;
        };
        match tag.core_suffix() {
            Some("str") => TagMeaning::String,
            Some(_) => TagMeaning::AsWritten,
            // The non-specific tag `!` marks a string.
            None if tag.handle() == "!" && tag.suffix().is_empty() => TagMeaning::String,
            None => {
                if !self.abandoned {
                    self.error(
                        span,
                        format!("unsupported YAML tag `{}`", tag.original()),
                        Some("only the standard tags (!!str, !!int, !!bool, ...) are allowed"),
                    );
                }
                TagMeaning::AsWritten
            }
        }
    }

    /// Adds a finished node to the open collection, or makes it the document's root.
    fn push(&mut self, node: Node) {
        let mut duplicate = None;
        let mut bad_key = None;
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, seen, key, ..
            }) => match key.take() {
                None => {
                    let text = match &node.value {
                        Value::Scalar(s) => Some(s.text.clone()),
                        _ => {
                            bad_key = Some(node.span);
                            None
                        }
                    };
                    *key = Some((text, node.span));
                }
                Some((None, _)) => {}
                Some((Some(text), key_span)) => {
                    if let Some(first) = seen.get(&text) {
                        duplicate = Some((text, key_span, *first));
                    } else {
                        seen.insert(text.clone(), key_span);
                        entries.push(Entry {
                            key: text,
                            key_span,
                            value: node,
                        });
                    }
                }
            },
        }
        if let Some(span) = bad_key
            && !self.abandoned
        {
            self.error(span, "mapping keys must be strings", None);
        }
        if let Some((text, span, first)) = duplicate
            && !self.abandoned
        {
            self.error(
                span,
                format!("duplicate key `{text}` (first at line {})", first.line),
                Some("a key appears once in a mapping"),
            );
        }
    }
}

enum TagMeaning {
    String,
    AsWritten,
}

fn null_node(span: Span) -> Node {
    Node {
        value: Value::Scalar(Scalar {
            text: String::new(),
            plain: true,
        }),
        span,
    }
}

fn count_nodes(node: &Node) -> usize {
    let mut count = 0usize;
    let mut pending = vec![node];
    while let Some(n) = pending.pop() {
        count += 1;
        match &n.value {
            Value::Scalar(_) => {}
            Value::Seq(items) => pending.extend(items.iter()),
            Value::Map(entries) => pending.extend(entries.iter().map(|e| &e.value)),
        }
    }
    count
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => match s.typed() {
                Typed::Null => "null",
                Typed::Bool(_) => "a boolean",
                Typed::Int(_) | Typed::Float(_) => "a number",
                Typed::Str(_) => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }

    /// The value as JSON under the core schema. Non-finite floats, which JSON cannot hold,
    /// are kept as their text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Scalar(s) => match s.typed() {
                Typed::Null => J::Null,
                Typed::Bool(b) => J::Bool(b),
                Typed::Int(i) => {
                    if let Ok(i) = i64::try_from(i) {
                        J::from(i)
                    } else if let Ok(u) = u64::try_from(i) {
                        J::from(u)
                    } else {
                        J::String(s.text.clone())
                    }
                }
                Typed::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| J::String(s.text.clone()), J::Number),
                Typed::Str(t) => J::String(t.to_string()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        let (docs, errors) = parse(src);
        assert!(errors.is_empty(), "{errors:?}");
        docs.into_iter()
            .next()
            .and_then(|d| d.root)
            .expect("a root")
    }

    #[test]
    fn yaml_1_2_booleans_and_numbers_keep_their_text() {
        let node = root("a: n\nb: yes\nc: 1.10\nd: true\ne: 0x1F\nf: '22'\ng: ~\n");
        let json = node.to_json();
        assert_eq!(json["a"], "n");
        assert_eq!(json["b"], "yes");
        assert_eq!(json["c"], 1.1);
        assert_eq!(json["d"], true);
        assert_eq!(json["e"], 31);
        assert_eq!(json["f"], "22");
        assert_eq!(json["g"], serde_json::Value::Null);
        let Value::Map(entries) = &node.value else {
            panic!()
        };
        let Value::Scalar(c) = &entries[2].value.value else {
            panic!()
        };
        assert_eq!(c.text, "1.10");
        assert_eq!(entries[2].value.span, Span::new(3, 4));
    }

    #[test]
    fn a_syntax_error_abandons_only_its_document() {
        let (docs, errors) = parse("a: [1, 2\n---\nb: 2\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
        assert_eq!(docs.len(), 1);
    }

    /// A line indented too far or not far enough is reported on that line, not the next.
    #[test]
    fn indentation_errors_point_at_the_mis_indented_line() {
        let cases = [
            // A key indented further than its siblings after a scalar.
            ("spec:\n  image: x\n   hosts: []\nkind: y\n", (3, 9)),
            // Less indented than its siblings, more than its parent.
            (
                "spec:\n  ssh:\n    user: root\n   passwd: x\nkind: y\n",
                (4, 4),
            ),
            // A host's key back at the column of the `-`.
            (
                "spec:\n  hosts:\n    - ips: [a]\n    roles: [master]\n",
                (4, 5),
            ),
            // A host's key one column short of the item's other keys.
            (
                "spec:\n  hosts:\n    - ips: [a]\n     roles: [master]\n",
                (4, 6),
            ),
            // A list item out of line with its list, at the end of the file.
            ("a:\n  b:\n  - x\n - y\n", (4, 2)),
        ];
        for (src, (line, column)) in cases {
            let (_, errors) = parse(src);
            assert_eq!(errors.len(), 1, "{src:?}: {errors:?}");
            assert_eq!(
                errors[0].span,
                Span::new(line, column),
                "{src:?}: {errors:?}"
            );
            assert!(
                errors[0]
                    .hint
                    .as_deref()
                    .is_some_and(|h| h.starts_with("check this line's indentation")),
                "{src:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_and_alias_bombs_are_errors() {
        let (_, errors) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(errors[0].message, "duplicate key `a` (first at line 1)");
        assert_eq!(errors[0].span, Span::new(3, 1));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f"][i];
            bomb.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let (_, errors) = parse(&bomb);
        assert_eq!(errors[0].message, "YAML aliases expand to too many nodes");
    }
}
