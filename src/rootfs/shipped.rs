//! What a cluster image's rootfs ships for the deployer besides its apps: the kubeadm
//! defaults in `etc/kubeadm.yml` and the Plugin documents in `plugins/*.yaml`, read from its
//! unpacked tree.
//!
//! Images sealer builds also record both in their `io.sealer.rs/metadata` annotation; images
//! Go Sealer built do not, so for them this is the only place they come from (without it an
//! official cluster image would run kubeadm against public registries and its plugins would
//! never run). What is read is bounded: each file up to [`MAX_FILE`], at most
//! [`MAX_PLUGINS`] plugin files; past either, an error names the limit.

use crate::diag::{Error, IoContext, Result};
use crate::limits::{MIB, format_size};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;

/// The largest `etc/kubeadm.yml` or plugin file read (the builder's limit as well).
pub const MAX_FILE: u64 = MIB;
/// Plugin files read from `plugins/`.
pub const MAX_PLUGINS: usize = 256;

pub const KUBEADM_PATH: &str = "etc/kubeadm.yml";
pub const PLUGINS_DIR: &str = "plugins";

/// The kubeadm defaults and plugin documents of an image's rootfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shipped {
    /// `etc/kubeadm.yml`, if the image has one.
    pub kubeadm: Option<String>,
    /// `plugins/*.yaml` and `plugins/*.yml` (directly in `plugins/`) by file name.
    pub plugins: BTreeMap<String, String>,
}

/// Whether a file in `plugins/` is a Plugin document, as the builder decides too.
pub fn is_plugin_file(name: &str) -> bool {
    !name.contains('/') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Reads what `tree` (an unpacked image) ships for the deployer.
pub fn read(tree: &Path) -> Result<Shipped> {
    let kubeadm = read_text(tree, KUBEADM_PATH)?;
    let mut plugins = BTreeMap::new();
    let dir = tree.join(PLUGINS_DIR);
    if super::paths::is_real_dir(&dir) {
        let mut names: Vec<String> = fs::read_dir(&dir)
            .with_path("cannot read", &dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .with_path("cannot read", &dir)?;
        names.retain(|n| is_plugin_file(n));
        names.sort();
        if names.len() > MAX_PLUGINS {
            return Err(Error::msg(format!(
                "{PLUGINS_DIR}/ has {} plugin files, more than the {MAX_PLUGINS} sealer reads",
                names.len()
            ))
            .hint("merge plugins into fewer files: one file may hold many documents"));
        }
        for name in names {
            if let Some(text) = read_text(tree, &format!("{PLUGINS_DIR}/{name}"))? {
                plugins.insert(name, text);
            }
        }
    }
    Ok(Shipped { kubeadm, plugins })
}

/// The text of the regular file at `rel`, `None` when there is none. A symlink is refused:
/// the deployer reads what the image ships, not what a link points at.
fn read_text(tree: &Path, rel: &str) -> Result<Option<String>> {
    let path = tree.join(rel);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_path("cannot stat", &path),
    };
    if meta.file_type().is_symlink() {
        return Err(Error::msg(format!("{rel} is a symbolic link"))
            .hint("ship the file itself in the image"));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .with_path("cannot read", &path)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Error::msg(format!(
            "{rel} is larger than {} ({} bytes), the most sealer reads",
            format_size(MAX_FILE),
            meta.len()
        ))
        .hint("kubeadm defaults and plugins are small YAML documents"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::msg(format!("{rel} is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubeadm_defaults_and_plugin_documents() {
        let tree = tempfile::tempdir().unwrap();
        fs::create_dir_all(tree.path().join("etc")).unwrap();
        fs::create_dir_all(tree.path().join("plugins/sub")).unwrap();
        fs::write(
            tree.path().join(KUBEADM_PATH),
            "kind: ClusterConfiguration\n",
        )
        .unwrap();
        fs::write(tree.path().join("plugins/b.yaml"), "b").unwrap();
        fs::write(tree.path().join("plugins/a.yml"), "a").unwrap();
        fs::write(tree.path().join("plugins/README"), "not a plugin").unwrap();
        fs::write(tree.path().join("plugins/sub/c.yaml"), "nested").unwrap();
        let shipped = read(tree.path()).unwrap();
        assert_eq!(
            shipped.kubeadm.as_deref(),
            Some("kind: ClusterConfiguration\n")
        );
        let names: Vec<&str> = shipped.plugins.keys().map(String::as_str).collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
        assert_eq!(
            read(tempfile::tempdir().unwrap().path()).unwrap(),
            Shipped::default()
        );
    }

    #[test]
    fn oversized_many_linked_or_binary_files_are_errors_naming_why() {
        let tree = tempfile::tempdir().unwrap();
        fs::create_dir_all(tree.path().join("etc")).unwrap();
        fs::write(
            tree.path().join(KUBEADM_PATH),
            "x".repeat(MAX_FILE as usize + 1),
        )
        .unwrap();
        let err = read(tree.path()).unwrap_err().to_string();
        assert!(
            err.contains("etc/kubeadm.yml is larger than 1 MiB"),
            "{err}"
        );

        fs::remove_file(tree.path().join(KUBEADM_PATH)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tree.path().join(KUBEADM_PATH)).unwrap();
        let err = read(tree.path()).unwrap_err().to_string();
        assert!(err.contains("etc/kubeadm.yml is a symbolic link"), "{err}");
        fs::remove_file(tree.path().join(KUBEADM_PATH)).unwrap();

        fs::create_dir_all(tree.path().join("plugins")).unwrap();
        fs::write(tree.path().join("plugins/p.yaml"), [0xffu8, 0xfe]).unwrap();
        let err = read(tree.path()).unwrap_err().to_string();
        assert!(err.contains("plugins/p.yaml is not UTF-8 text"), "{err}");

        for i in 0..=MAX_PLUGINS {
            fs::write(tree.path().join(format!("plugins/{i:04}.yaml")), "").unwrap();
        }
        let err = read(tree.path()).unwrap_err().to_string();
        assert!(err.contains("more than the 256 sealer reads"), "{err}");
    }
}
