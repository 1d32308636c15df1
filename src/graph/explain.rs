//! What lies behind a digest, kept beside it so a plan can say why it changed: the texts of
//! the Config documents and Application files that shape a rootfs or an app, and a short
//! digest per env key. These are *explanations*: the digests decide whether a resource
//! changes (`kinds::Schema::explains`); the explanations only name the cause and show the
//! diff. Secrets never enter them: values under secret-looking keys are masked, and a
//! Config processed `toSecret` is kept as a line count only.

use crate::clusterfile::env::Env;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// What a masked value reads as.
pub const MASKED: &str = "(sensitive value)";

/// Key fragments that mark a value as secret, compared lowercase without `-` and `_`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "certificatekey",
];

/// `text` with the value of every `key: value` or `key=value` line whose key looks secret
/// replaced by [`MASKED`]. YAML, env files and INI read the same way; anything else is
/// kept as written.
pub fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The indentation of a secret key whose value is a block below it (`password: |`, or a
    // nested mapping or list): the lines indented deeper are its value.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let blank = line.trim().is_empty();
        if let Some(at) = block {
            if blank {
                out.push_str(line);
                continue;
            }
            if indent > at {
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&format!("{}{MASKED}{newline}", &line[..indent]));
                continue;
            }
            block = None;
        }
        let (masked, opens_block) = mask_line(line);
        if opens_block {
            block = Some(indent);
        }
        out.push_str(&masked);
    }
    out
}

/// The line with a secret-looking key's value masked, and whether that key's value is the
/// block of lines below it.
fn mask_line(line: &str) -> (String, bool) {
    let Some(sep) = line.find([':', '=']) else {
        return (line.to_string(), false);
    };
    let key = line[..sep]
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\'']);
    let value = line[sep + 1..].trim_end_matches(['\n', '\r']).trim();
    if !looks_secret(key) {
        return (line.to_string(), false);
    }
    if value.is_empty() || value.starts_with('|') || value.starts_with('>') {
        return (line.to_string(), true);
    }
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    (
        format!("{}{} {MASKED}{newline}", &line[..sep], &line[sep..=sep]),
        false,
    )
}

/// Whether a key names a secret (`DB_PASSWORD`, `apiToken`, `tls.privateKey`...).
fn looks_secret(key: &str) -> bool {
    let plain: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.iter().any(|k| plain.contains(k))
}

/// A text kept whole unless it is secret as a whole (a Config processed `toSecret`).
pub fn explained_text(text: &str, secret: bool) -> String {
    if secret {
        let lines = text.lines().count();
        format!(
            "{MASKED} ({lines} line{})\n",
            if lines == 1 { "" } else { "s" }
        )
    } else {
        mask_secrets(text)
    }
}

/// A short digest per env key: enough to tell which key changed, too short to be a useful
/// fingerprint of the value on its own.
pub fn env_digests(env: &Env) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| (k.clone(), value_digest(k, &v.to_string())))
        .collect()
}

/// The first 12 hex digits of SHA-256 over the key and value; [`MASKED`] for a key that
/// looks secret, whose value a digest could be guessed back from (a change of it is then
/// named as `env changed`, from the env digest, without the key).
pub fn value_digest(key: &str, value: &str) -> String {
    if looks_secret(key) {
        return MASKED.to_string();
    }
    let digest = Sha256::digest(format!("sealer-env\0{key}\0{value}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What differs between two explanations (`Config x`, `env K`...), in words: `NAME changed`,
/// `NAME added`, `NAME removed`, in key order, each with `what` before its name.
pub fn differences(
    what: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(_), Some(_)) => Some(format!("{what}{k} changed")),
            (None, Some(_)) => Some(format!("{what}{k} added")),
            (Some(_), None) => Some(format!("{what}{k} removed")),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_values_are_masked_and_the_rest_kept() {
        let text = "user: admin\nDB_PASSWORD=hunter2\n  apiToken: \"abc\"\npassword:\n  - x\nreplicas: 3\ntls:\n  privateKey: |\n    -----BEGIN\n    abc\n\n  cert: x\n";
        assert_eq!(
            mask_secrets(text),
            "user: admin\nDB_PASSWORD= (sensitive value)\n  apiToken: (sensitive value)\npassword:\n  (sensitive value)\nreplicas: 3\ntls:\n  privateKey: |\n    (sensitive value)\n    (sensitive value)\n\n  cert: x\n"
        );
        assert_eq!(
            explained_text("a: 1\nb: 2\n", true),
            "(sensitive value) (2 lines)\n"
        );
    }

    #[test]
    fn differences_name_each_key_once() {
        let a = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".into(), "2".into())]);
        let b = BTreeMap::from([("B".to_string(), "3".to_string()), ("C".into(), "4".into())]);
        assert_eq!(
            differences("env ", &a, &b),
            ["env A removed", "env B changed", "env C added"]
        );
        assert_ne!(value_digest("K", "v1"), value_digest("K", "v2"));
        assert_eq!(value_digest("K", "v1").len(), 12);
        assert_eq!(value_digest("DB_PASSWORD", "hunter2"), MASKED);
    }
}
