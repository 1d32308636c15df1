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
    for line in text.split_inclusive('\n') {
        out.push_str(&mask_line(line));
    }
    out
}

fn mask_line(line: &str) -> String {
    let Some(sep) = line.find([':', '=']) else {
        return line.to_string();
    };
    let key = line[..sep]
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\'']);
    let plain: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    let value = line[sep + 1..].trim_end_matches(['\n', '\r']);
    let secret = SECRET_KEYS.iter().any(|k| plain.contains(k));
    // A key that opens a block (`password:` alone) has nothing on its line to hide.
    if !secret || value.trim().is_empty() || value.trim() == "|" || value.trim() == ">" {
        return line.to_string();
    }
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    format!("{}{} {MASKED}{newline}", &line[..sep], &line[sep..=sep])
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

/// The first 12 hex digits of SHA-256 over the key and value.
pub fn value_digest(key: &str, value: &str) -> String {
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
        let text =
            "user: admin\nDB_PASSWORD=hunter2\n  apiToken: \"abc\"\npassword:\n  - x\nreplicas: 3";
        assert_eq!(
            mask_secrets(text),
            "user: admin\nDB_PASSWORD= (sensitive value)\n  apiToken: (sensitive value)\npassword:\n  - x\nreplicas: 3"
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
    }
}
