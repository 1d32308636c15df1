//! POSIX shell quoting. Values are wrapped in single quotes, with each `'` written as
//! `'\''`, so nothing in them (`;`, `$(...)`, backticks, newlines) is interpreted.

/// One shell word holding exactly `value`.
pub fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if safe {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `export K='v'` lines for an environment; keys must be shell names (checked by the
/// Clusterfile loader), values are quoted. A list value becomes a bash array.
pub fn exports(env: &[(String, EnvItem)]) -> String {
    let mut out = String::new();
    for (key, value) in env {
        match value {
            EnvItem::Scalar(v) => out.push_str(&format!("export {key}={}\n", quote(v))),
            EnvItem::List(items) => {
                let words: Vec<String> = items.iter().map(|i| quote(i)).collect();
                out.push_str(&format!("{key}=({})\nexport {key}\n", words.join(" ")));
            }
        }
    }
    out
}

/// An env value: a string, or a list (from `K=a;b` in a Clusterfile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvItem {
    Scalar(String),
    List(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn echo_through_bash(value: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {}", quote(value)))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_come_back_unchanged() {
        for value in [
            "plain",
            "",
            "a b",
            "it's",
            "$(touch /tmp/sealer-pwned)",
            "`id`",
            "a;rm -rf /",
            "line1\nline2",
            "'\"\\",
            "--flag=x",
            "ünïcødé",
        ] {
            assert_eq!(echo_through_bash(value), value, "{value:?}");
        }
        assert!(!std::path::Path::new("/tmp/sealer-pwned").exists());
    }

    #[test]
    fn exports_keep_values_inside_their_export() {
        let env = vec![
            (
                "A".to_string(),
                EnvItem::Scalar("x; echo pwned".to_string()),
            ),
            (
                "L".to_string(),
                EnvItem::List(vec!["a b".into(), "$(c)".into()]),
            ),
        ];
        let script = format!("{}printf '%s|' \"$A\" \"${{L[@]}}\"", exports(&env));
        let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "x; echo pwned|a b|$(c)|"
        );
    }
}
