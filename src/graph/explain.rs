//! What lies behind a digest, kept beside it so a plan can say why it changed: the texts of
//! the Config documents and Application files that shape a rootfs or an app, and a short
//! digest per env key. These are *explanations*: the digests decide whether a resource
//! changes (`kinds::Schema::explains`); the explanations only name the cause and show the
//! diff. Secrets never enter them: values under secret-looking keys are masked, and a
//! Config processed `toSecret` is kept as a line count only.

use super::launch::FileOverride;
use crate::clusterfile::DigestKey;
use crate::clusterfile::env::Env;
use crate::rootfs::app_files::ImageFile;
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
pub fn env_digests(key: &DigestKey, env: &Env) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| (k.clone(), value_digest(key, k, &v.to_string())))
        .collect()
}

/// The first 12 hex digits of the keyed digest of the key and value; [`MASKED`] for a key that
/// looks secret, whose value a digest could be guessed back from (a change of it is then
/// named as `env changed`, from the env digest, without the key).
pub fn value_digest(key: &DigestKey, name: &str, value: &str) -> String {
    if looks_secret(name) {
        return MASKED.to_string();
    }
    let digest = key.digest(format!("sealer-env\0{name}\0{value}").as_bytes());
    let hex = digest.rsplit(':').next().unwrap_or(&digest);
    hex[..hex.len().min(12)].to_string()
}
/// Text shown of one app, at most: past it, files are named with their digest only.
pub const MAX_APP_TEXT: usize = 256 * 1024;

/// What each file of an app holds once the image's file has had the Config documents, then
/// the Application files, written over it (the render's order): the text the host gets,
/// secrets masked. Files the plan cannot show (binary, long, or past [`MAX_APP_TEXT`]) are
/// named with their digest in `digests`, so a change of them still shows.
pub fn app_texts(
    image: &BTreeMap<String, ImageFile>,
    overrides: &[FileOverride],
    digests: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut ordered: Vec<&FileOverride> = overrides.iter().collect();
    ordered.sort_by_key(|o| !o.from_config);
    let paths: std::collections::BTreeSet<&String> = image
        .keys()
        .chain(ordered.iter().map(|o| &o.path))
        .collect();
    let mut shown = 0;
    let mut out = BTreeMap::new();
    for path in paths {
        let unshown = |why: &str| {
            let digest = digests.get(path).map(String::as_str).unwrap_or("");
            let short = &digest[..digest.len().min("sha256:".len() + 12)];
            format!("(not shown: {why}; {short}…)\n")
        };
        let mut text = match image.get(path) {
            Some(ImageFile::Text(text)) => Some(text.clone()),
            Some(ImageFile::Unshown { size, why }) => {
                out.insert(path.clone(), unshown(&format!("{why}, {size} bytes")));
                continue;
            }
            None => None,
        };
        let mut secret = false;
        let mut failed = None;
        for o in ordered.iter().filter(|o| &o.path == path) {
            secret |= o.secret;
            let written = crate::rootfs::config::process(&o.data, &o.steps).and_then(|p| {
                crate::rootfs::config::rewritten(text.as_deref(), p, o.strategy, &o.name, path)
            });
            match written {
                Ok(t) => text = Some(t),
                Err(why) => failed = Some(why),
            }
        }
        let entry = match (failed, text) {
            (Some(why), _) => unshown(&why),
            (None, None) => continue,
            (None, Some(text)) if shown + text.len() > MAX_APP_TEXT => {
                unshown("the app's texts are over 256 KiB")
            }
            (None, Some(text)) => {
                shown += text.len();
                explained_text(&text, secret || is_kubernetes_secret(&text))
            }
        };
        out.insert(path.clone(), entry);
    }
    out
}

/// Whether a manifest holds a Kubernetes Secret, whose data is secret as a whole.
fn is_kubernetes_secret(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_end() == "kind: Secret" || l.trim_end() == "kind: \"Secret\"")
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
    fn app_texts_write_configs_then_application_files_and_name_what_they_cannot_show() {
        use crate::clusterfile::{ProcessStep, Strategy};
        let image = BTreeMap::from([
            (
                "d.yaml".to_string(),
                ImageFile::Text("spec:\n  replicas: 1\n  password: x\n".into()),
            ),
            (
                "bin".to_string(),
                ImageFile::Unshown {
                    size: 9,
                    why: "binary",
                },
            ),
            ("list.yaml".to_string(), ImageFile::Text("- a\n".into())),
        ]);
        let o = |path: &str, data: &str, from_config: bool, steps: Vec<ProcessStep>| FileOverride {
            path: path.into(),
            strategy: Strategy::Merge,
            data: data.into(),
            steps,
            name: "n".into(),
            source: "s".into(),
            from_config,
            secret: false,
        };
        // The Application file is listed first but written last, as the render does.
        let overrides = [
            o("d.yaml", "spec: {replicas: 3}", false, vec![]),
            o("d.yaml", "spec: {replicas: 2, paused: true}", true, vec![]),
            o("list.yaml", "k: v", true, vec![]),
            o("new.yaml", "a: b", true, vec![ProcessStep::ToSecret]),
        ];
        let digests = BTreeMap::from([("bin".to_string(), "sha256:0123456789abcdef".to_string())]);
        let texts = app_texts(&image, &overrides, &digests);
        assert_eq!(
            texts["d.yaml"],
            "spec:\n  replicas: 3\n  password: (sensitive value)\n  paused: true\n"
        );
        assert_eq!(
            texts["bin"],
            "(not shown: binary, 9 bytes; sha256:0123456789ab…)\n"
        );
        assert!(
            texts["list.yaml"].starts_with("(not shown: cannot merge into document 1 of list.yaml"),
            "{texts:?}"
        );
        assert_eq!(texts["new.yaml"], "(sensitive value) (7 lines)\n");
    }

    #[test]
    fn differences_name_each_key_once() {
        let a = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".into(), "2".into())]);
        let b = BTreeMap::from([("B".to_string(), "3".to_string()), ("C".into(), "4".into())]);
        assert_eq!(
            differences("env ", &a, &b),
            ["env A removed", "env B changed", "env C added"]
        );
        let key = DigestKey::new([7; 32]);
        assert_ne!(value_digest(&key, "K", "v1"), value_digest(&key, "K", "v2"));
        assert_ne!(
            value_digest(&key, "K", "v1"),
            value_digest(&DigestKey::new([8; 32]), "K", "v1"),
            "another state's key gives another digest"
        );
        assert_eq!(value_digest(&key, "K", "v1").len(), 12);
        assert_eq!(value_digest(&key, "DB_PASSWORD", "hunter2"), MASKED);
    }
}
