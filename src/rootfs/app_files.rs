//! The files of an image's apps as the image ships them, read from its unpacked tree, so a
//! plan can show what each app file becomes (`graph::explain::app_texts`) and a later plan
//! can diff against it. What is read is bounded: texts up to [`MAX_TEXT`] each, at most
//! [`MAX_FILES`] files per app; anything else is named with its size and why it is not shown.

use crate::diag::{IoContext, Result};
use crate::image::metadata::app_root;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;

/// The longest file shown as text; longer ones are named with their size.
pub const MAX_TEXT: u64 = 32 * 1024;
/// Files read per app; an app directory with more keeps the first ones in path order.
pub const MAX_FILES: usize = 1_000;

/// A file of an app, as a plan may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFile {
    Text(String),
    /// Binary, or over [`MAX_TEXT`]: not shown.
    Unshown {
        size: u64,
        why: &'static str,
    },
}

/// App name → path relative to the app's directory → file.
pub type AppFiles = BTreeMap<String, BTreeMap<String, ImageFile>>;

/// The files of `apps` in the unpacked image `tree` (an app without a directory has none).
pub fn app_files<'a>(tree: &Path, apps: impl IntoIterator<Item = &'a str>) -> Result<AppFiles> {
    let mut out = AppFiles::new();
    for app in apps {
        let dir = tree.join(app_root(app));
        let mut files = BTreeMap::new();
        if super::paths::is_real_dir(&dir) {
            walk(&dir, "", &mut files)?;
        }
        out.insert(app.to_string(), files);
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, files: &mut BTreeMap<String, ImageFile>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_path("cannot read", dir)?
        .collect::<std::io::Result<_>>()
        .with_path("cannot read", dir)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if files.len() >= MAX_FILES {
            return Ok(());
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = entry.path();
        let rel = format!("{prefix}{name}");
        let meta = fs::symlink_metadata(&path).with_path("cannot stat", &path)?;
        if meta.is_dir() {
            walk(&path, &format!("{rel}/"), files)?;
        } else if meta.is_file() {
            files.insert(rel, read(&path, meta.len())?);
        }
    }
    Ok(())
}

fn read(path: &Path, size: u64) -> Result<ImageFile> {
    if size > MAX_TEXT {
        return Ok(ImageFile::Unshown {
            size,
            why: "over 32 KiB",
        });
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_TEXT + 1).read_to_end(&mut bytes))
        .with_path("cannot read", path)?;
    let size = bytes.len() as u64;
    Ok(match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => ImageFile::Text(text),
        _ => ImageFile::Unshown {
            size,
            why: "binary",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_read_and_binary_or_long_files_named_by_size() {
        let tree = tempfile::tempdir().unwrap();
        let app = tree.path().join("application/apps/web");
        fs::create_dir_all(app.join("sub")).unwrap();
        fs::write(app.join("a.yaml"), "kind: Deployment\n").unwrap();
        fs::write(app.join("sub/bin"), [0u8, 1, 2]).unwrap();
        fs::write(app.join("big.yaml"), "x".repeat(MAX_TEXT as usize + 1)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", app.join("link")).unwrap();
        let files = app_files(tree.path(), ["web", "absent"]).unwrap();
        let web = &files["web"];
        assert_eq!(web["a.yaml"], ImageFile::Text("kind: Deployment\n".into()));
        assert_eq!(
            web["sub/bin"],
            ImageFile::Unshown {
                size: 3,
                why: "binary"
            }
        );
        assert!(matches!(
            web["big.yaml"],
            ImageFile::Unshown {
                why: "over 32 KiB",
                ..
            }
        ));
        assert!(!web.contains_key("link"), "symlinks are not followed");
        assert!(files["absent"].is_empty());
    }
}
