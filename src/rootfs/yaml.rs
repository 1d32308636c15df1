//! YAML for Config and Application files: documents read with serde-saphyr's parser into a
//! small tree that keeps every scalar's text and whether it was plain, deep-merged, and
//! written back with serde-saphyr's serializer.
//!
//! Plain scalars are typed with the YAML 1.2 core schema only when written out or turned
//! into JSON, so `version: 1.10` is read as written and `yes` stays a string. Rewriting a
//! file keeps its keys in order; comments and formatting are not kept (as in Sealer).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Tag};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Yaml>),
    /// Keys are scalars (their text), in the order written.
    Map(Vec<(String, Yaml)>),
}

/// A scalar's meaning under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

/// Alias expansion is capped so that a "billion laughs" file cannot exhaust memory.
const MAX_ALIAS_NODES: usize = 100_000;

impl Yaml {
    pub fn string(text: impl Into<String>) -> Yaml {
        Yaml::Scalar {
            text: text.into(),
            plain: false,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Yaml::Scalar { .. } => "a scalar",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }

    pub fn typed(&self) -> Option<Typed<'_>> {
        match self {
            Yaml::Scalar { text, plain } => Some(typed(text, *plain)),
            _ => None,
        }
    }

    /// Deep merge: every key of `src` overrides this mapping's; mappings present on both
    /// sides merge recursively; anything else (lists included) is replaced whole. A value of
    /// `src` always wins, even null or empty (Go Sealer's mergo skips empty values).
    pub fn merge(&mut self, src: &Yaml) {
        match (self, src) {
            (Yaml::Map(dst), Yaml::Map(src)) => {
                for (key, value) in src {
                    match dst.iter_mut().find(|(k, _)| k == key) {
                        Some((_, existing)) => existing.merge(value),
                        None => dst.push((key.clone(), value.clone())),
                    }
                }
            }
            (dst, src) => *dst = src.clone(),
        }
    }

    /// The value as JSON under the core schema, keys in the order written. Numbers JSON
    /// cannot hold (NaN, infinities, integers beyond 64 bits) are kept as their text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Yaml::Scalar { text, plain } => match typed(text, *plain) {
                Typed::Null => J::Null,
                Typed::Bool(b) => J::Bool(b),
                Typed::Int(i) => i64::try_from(i)
                    .map(J::from)
                    .or_else(|_| u64::try_from(i).map(J::from))
                    .unwrap_or_else(|_| J::String(text.clone())),
                Typed::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| J::String(text.clone()), J::Number),
                Typed::Str(s) => J::String(s.to_string()),
            },
            Yaml::Seq(items) => J::Array(items.iter().map(Yaml::to_json).collect()),
            Yaml::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl Serialize for Yaml {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Yaml::Scalar { text, plain } => match typed(text, *plain) {
                Typed::Null => s.serialize_unit(),
                Typed::Bool(b) => s.serialize_bool(b),
                Typed::Int(i) => match i64::try_from(i) {
                    Ok(i) => s.serialize_i64(i),
                    Err(_) => match u64::try_from(i) {
                        Ok(u) => s.serialize_u64(u),
                        Err(_) => s.serialize_str(text),
                    },
                },
                Typed::Float(f) => s.serialize_f64(f),
                Typed::Str(t) => s.serialize_str(t),
            },
            Yaml::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Yaml::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Writes documents back as YAML, separated by `---`.
pub fn to_string(documents: &[Yaml]) -> Result<String, String> {
    let mut out = String::new();
    for (i, doc) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = serde_saphyr::to_string(doc).map_err(|e| format!("cannot write YAML: {e}"))?;
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn typed(text: &str, plain: bool) -> Typed<'_> {
    if !plain {
        return Typed::Str(text);
    }
    match text {
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
    if let Some(int) = crate::clusterfile::yaml::parse_int(text) {
        return Typed::Int(int);
    }
    if crate::clusterfile::yaml::is_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Typed::Float(f);
    }
    Typed::Str(text)
}

/// The documents of `text`; an empty document is `None`. Errors name the line.
pub fn parse(text: &str) -> Result<Vec<Option<Yaml>>, String> {
    let mut options = serde_saphyr::granit_parser::Options::default();
    options.set_emit_comments(false);
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut builder = Builder::default();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            format!(
                "invalid YAML at line {}: {}",
                e.marker().line().max(1),
                e.info()
            )
        })?;
        builder
            .event(event)
            .map_err(|why| format!("line {}: {why}", span.start.line().max(1)))?;
    }
    Ok(builder.documents)
}

/// The one document of `text`, which must be a mapping (Config `data`, a merge source).
pub fn parse_mapping(text: &str) -> Result<Vec<(String, Yaml)>, String> {
    let mut docs = parse(text)?;
    match (docs.len(), docs.pop()) {
        (1, Some(Some(Yaml::Map(entries)))) => Ok(entries),
        (1, Some(None)) | (0, _) => Ok(Vec::new()),
        (1, Some(Some(other))) => Err(format!("it is {}, not a mapping", other.kind_name())),
        (n, _) => Err(format!("it holds {n} YAML documents, not one mapping")),
    }
}

enum Frame {
    Seq(Vec<Yaml>, usize),
    Map {
        entries: Vec<(String, Yaml)>,
        key: Option<String>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<Option<Yaml>>,
    stack: Vec<Frame>,
    root: Option<Yaml>,
    anchors: HashMap<usize, (Yaml, usize)>,
    alias_nodes: usize,
}

fn count_nodes(node: &Yaml) -> usize {
    match node {
        Yaml::Scalar { .. } => 1,
        Yaml::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Yaml::Map(entries) => 1 + entries.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
    }
}

impl Builder {
    fn event(&mut self, event: Event<'_>) -> Result<(), String> {
        match event {
            Event::DocumentStart(..) => {
                self.stack.clear();
                self.anchors.clear();
                self.root = None;
                self.alias_nodes = 0;
            }
            Event::DocumentEnd => self.documents.push(self.root.take()),
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && !is_string_tag(tag.as_deref())?;
                let node = Yaml::Scalar {
                    text: text.into_owned(),
                    plain,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.push(node)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                is_string_tag(tag.as_deref())?;
                self.stack.push(Frame::Seq(Vec::new(), anchor));
            }
            Event::MappingStart(_, anchor, tag) => {
                is_string_tag(tag.as_deref())?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, anchor)) => (Yaml::Seq(items), anchor),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Yaml::Map(entries), anchor),
                    None => return Ok(()),
                };
                if anchor != 0 {
                    let size = count_nodes(&node);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node)?;
            }
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id) else {
                    return Err("an alias refers to a node that contains it".into());
                };
                self.alias_nodes = self.alias_nodes.saturating_add(*size);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err("aliases expand to too many nodes".into());
                }
                let node = node.clone();
                self.push(node)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Yaml) -> Result<(), String> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => match node {
                    Yaml::Scalar { text, .. } => *key = Some(text),
                    _ => return Err("mapping keys must be scalars".into()),
                },
                Some(k) => {
                    if entries.iter().any(|(e, _)| *e == k) {
                        return Err(format!("duplicate key `{k}`"));
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

/// Whether a tag makes a scalar a string; unknown (application) tags are refused, since
/// writing the file back would lose them.
fn is_string_tag(tag: Option<&Tag>) -> Result<bool, String> {
    let Some(tag) = tag else {
        return Ok(false);
    };
    match tag.core_suffix() {
        Some("str") => Ok(true),
        Some(_) => Ok(false),
        None if tag.handle() == "!" && tag.suffix().is_empty() => Ok(true),
        None => Err(format!("unsupported YAML tag `{}`", tag.original())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Yaml {
        parse(text).unwrap().into_iter().next().flatten().unwrap()
    }

    #[test]
    fn scalars_keep_their_meaning_through_a_rewrite() {
        let text =
            "a: n\nb: yes\nc: '1.10'\nd: 1.5\ne: 0x1F\nf: ~\ng: \"x: y\"\nh: |\n  line1\n  line2\n";
        let out = to_string(&[doc(text)]).unwrap();
        let again = doc(&out);
        assert_eq!(again.to_json(), doc(text).to_json(), "{out}");
        assert_eq!(again.to_json()["c"], "1.10");
        assert_eq!(again.to_json()["e"], 31);
        assert!(out.contains("line1\n"), "{out}");
    }

    #[test]
    fn deep_merge_overrides_adds_and_replaces_lists() {
        let mut dst = doc("metadata: {name: a, labels: {x: '1'}}\nspec: {ports: [1, 2]}\n");
        dst.merge(&doc(
            "metadata: {namespace: web, labels: {y: '2'}}\nspec: {ports: [3]}\n",
        ));
        assert_eq!(
            dst.to_json(),
            serde_json::json!({
                "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "namespace": "web"},
                "spec": {"ports": [3]}
            })
        );
    }

    #[test]
    fn bad_yaml_is_an_error_with_its_line() {
        assert!(parse("a: [1\n").unwrap_err().contains("line"));
        assert!(
            parse("a: 1\na: 2\n")
                .unwrap_err()
                .contains("duplicate key `a`")
        );
        assert!(
            parse("a: !custom x\n")
                .unwrap_err()
                .contains("unsupported YAML tag")
        );
        assert_eq!(
            parse_mapping("- a\n").unwrap_err(),
            "it is a list, not a mapping"
        );
    }
}
