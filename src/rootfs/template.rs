//! `*.tmpl` templates, rendered with the cluster env into the same path without `.tmpl`.
//!
//! The language is the part of Go's `text/template` that Sealer's images use, and nothing
//! else: an action is `{{ .Key }}` with an optional pipeline of `b64enc` / `b64dec`
//! (`{{ .Key | b64enc }}`, applied left to right), and `{{- ` / ` -}}` trim the white space
//! before / after the action, as in Go. Text outside actions is copied as it is. Anything
//! else inside `{{ }}` (conditions, ranges, other functions, comments) is an error naming
//! the file and line: a template we cannot render must never reach a host half-rendered.
//!
//! Values: a key missing from the env is an error naming the file and key (Go Sealer writes
//! `<no value>`). A list value (`K=a;b`) renders as written, `a;b`. `b64enc` is standard
//! padded base64; `b64dec` accepts it and fails on anything else.

use crate::clusterfile::{Env, EnvValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A template error: the 1-based line of the action and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Renders `text` with `env`.
pub fn render(text: &str, env: &Env) -> Result<Vec<u8>, TemplateError> {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut literal = &rest[..open];
        if trim_next {
            literal = literal.trim_start();
        }
        let line = line_at(text, offset + open);
        let error = |message: String| TemplateError { line, message };
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            return Err(error("`{{` without a closing `}}`".into()));
        };
        let mut inner = &after_open[..close];
        // `{{- ` trims before, ` -}}` after; the space is what tells them from a number.
        let trim_before = inner.starts_with("- ") || inner == "-";
        if trim_before {
            inner = &inner[1..];
            literal = literal.trim_end();
        }
        trim_next = inner.ends_with(" -");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        out.extend_from_slice(literal.as_bytes());
        out.extend(action(inner, env).map_err(error)?);
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    let literal = if trim_next { rest.trim_start() } else { rest };
    out.extend_from_slice(literal.as_bytes());
    Ok(out)
}

/// Evaluates one action: `.Key` then `| fn` steps.
fn action(inner: &str, env: &Env) -> Result<Vec<u8>, String> {
    let unsupported = || {
        format!(
            "unsupported template syntax `{{{{{inner}}}}}` (only `{{{{ .Key }}}}`, optionally \
             piped to b64enc or b64dec, is supported)"
        )
    };
    let mut stages = inner.split('|').map(str::trim);
    let first = stages.next().unwrap_or_default();
    let key = first.strip_prefix('.').ok_or_else(unsupported)?;
    let is_name = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return Err(unsupported());
    }
    let mut value = match env.get(key) {
        Some(EnvValue::Scalar(s)) => s.clone().into_bytes(),
        Some(list @ EnvValue::List(_)) => list.to_string().into_bytes(),
        None => return Err(format!("no value for key `{key}` in the cluster env")),
    };
    for stage in stages {
        value = match stage {
            "b64enc" => BASE64.encode(&value).into_bytes(),
            "b64dec" => BASE64
                .decode(&value)
                .map_err(|e| format!("b64dec: the value of `{key}` is not base64: {e}"))?,
            _ => return Err(unsupported()),
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        let mut env = Env::new();
        env.insert_scalar("Domain", "sea.hub");
        env.insert_scalar("Secret", "czNjcjN0");
        env.insert("Cidrs", EnvValue::List(vec!["a".into(), "b".into()]));
        env
    }

    fn ok(text: &str) -> String {
        String::from_utf8(render(text, &env()).unwrap()).unwrap()
    }

    fn err(text: &str) -> TemplateError {
        render(text, &env()).unwrap_err()
    }

    #[test]
    fn keys_and_pipelines() {
        assert_eq!(ok("url: {{ .Domain }}:5000\n"), "url: sea.hub:5000\n");
        assert_eq!(ok("{{.Domain|b64enc}}"), "c2VhLmh1Yg==");
        assert_eq!(ok("{{ .Secret | b64dec }}"), "s3cr3t");
        assert_eq!(ok("{{ .Domain | b64enc | b64dec }}"), "sea.hub");
        assert_eq!(ok("{{ .Cidrs }}"), "a;b");
        assert_eq!(ok("a:\n  {{- .Domain -}}\n  ;"), "a:sea.hub;");
        assert_eq!(ok("no actions } { }}"), "no actions } { }}");
    }

    #[test]
    fn missing_keys_and_unknown_syntax_are_errors() {
        let e = err("a\nb: {{ .Nope }}\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`Nope`"), "{e:?}");
        for bad in [
            "{{ if .Domain }}x{{ end }}",
            "{{ .Domain | upper }}",
            "{{ range .Cidrs }}",
            "{{/* comment */}}",
            "{{ . }}",
            "{{ .a.b }}",
            "{{ \"text\" }}",
            "{{ .Domain }",
        ] {
            assert!(err(bad).message.len() > 10, "{bad}");
        }
        assert!(err("{{ .Domain | b64dec }}").message.contains("not base64"));
    }
}
