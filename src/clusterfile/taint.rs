//! Node taints, `key[=value]:Effect`.

use super::names::{is_label_value, is_qualified_name};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    NoSchedule,
    NoExecute,
    PreferNoSchedule,
}

impl TaintEffect {
    pub const NAMES: &[&str] = &["NoSchedule", "NoExecute", "PreferNoSchedule"];

    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::NoExecute => "NoExecute",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        }
    }

    fn parse(text: &str) -> Option<TaintEffect> {
        match text {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: TaintEffect,
}

/// Why a taint does not parse: a message and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintError {
    pub message: String,
    pub hints: Vec<String>,
}

pub(crate) const TAINT_FORM: &str =
    "taints look like key[=value]:Effect, Effect one of NoSchedule, NoExecute, PreferNoSchedule";

impl Taint {
    pub fn parse(text: &str) -> Result<Taint, TaintError> {
        let fail = |why: String, extra: Vec<String>| {
            let mut hints = extra;
            hints.push(TAINT_FORM.to_string());
            Err(TaintError {
                message: format!("invalid taint `{text}`: {why}"),
                hints,
            })
        };
        let Some((key_value, effect_text)) = text.rsplit_once(':') else {
            return fail("no effect".to_string(), Vec::new());
        };
        let Some(effect) = TaintEffect::parse(effect_text) else {
            if let Some(removed) = effect_text.strip_suffix('-')
                && TaintEffect::parse(removed).is_some()
            {
                return fail(
                    format!("`{effect_text}` removes a taint"),
                    vec!["delete the taint from the list instead: the plan removes it".into()],
                );
            }
            let near = super::suggest::closest(effect_text, TaintEffect::NAMES)
                .map(|n| vec![format!("did you mean `{n}`?")])
                .unwrap_or_default();
            return fail(format!("unknown effect `{effect_text}`"), near);
        };
        let (key, value) = match key_value.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (key_value, None),
        };
        if !is_qualified_name(key) {
            return fail(format!("invalid key `{key}`"), Vec::new());
        }
        if let Some(value) = value
            && !is_label_value(value)
        {
            return fail(format!("invalid value `{value}`"), Vec::new());
        }
        Ok(Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect,
        })
    }
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        write!(f, ":{}", self.effect.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_and_print_back() {
        for text in [
            "key1=value1:NoSchedule",
            "key2:NoExecute",
            "node-role.kubernetes.io/master:PreferNoSchedule",
            "k=:NoSchedule",
        ] {
            assert_eq!(Taint::parse(text).unwrap().to_string(), text);
        }
        let t = Taint::parse("key1=value1:NoSchedule").unwrap();
        assert_eq!(t.key, "key1");
        assert_eq!(t.value.as_deref(), Some("value1"));
        assert_eq!(t.effect, TaintEffect::NoSchedule);
    }

    #[test]
    fn bad_taints_say_why() {
        let cases = [
            ("key1", "invalid taint `key1`: no effect"),
            (
                "k:NoSchedul",
                "invalid taint `k:NoSchedul`: unknown effect `NoSchedul`",
            ),
            (
                "k:NoSchedule-",
                "invalid taint `k:NoSchedule-`: `NoSchedule-` removes a taint",
            ),
            (
                "-k:NoSchedule",
                "invalid taint `-k:NoSchedule`: invalid key `-k`",
            ),
            (
                "k=a b:NoSchedule",
                "invalid taint `k=a b:NoSchedule`: invalid value `a b`",
            ),
            (":NoSchedule", "invalid taint `:NoSchedule`: invalid key ``"),
        ];
        for (text, message) in cases {
            assert_eq!(Taint::parse(text).unwrap_err().message, message, "{text}");
        }
        let e = Taint::parse("k:noschedule").unwrap_err();
        assert_eq!(e.hints[0], "did you mean `NoSchedule`?");
    }
}
