//! The build context: turning source paths into files, never leaving the context directory.
//!
//! Symlinks are followed when they resolve inside the context (the image gets the target's
//! content) and refused when they point outside; loops are refused too.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// A regular file found in the context, with its path relative to the copied source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the source it was found under (`""`-free, `/`-separated).
    pub relative: String,
    pub path: PathBuf,
    pub executable: bool,
    pub size: u64,
}

/// What a source path turned out to be.
#[derive(Debug)]
pub enum Found {
    File(ContextFile),
    /// A directory and every regular file below it, sorted by relative path.
    Dir {
        path: PathBuf,
        files: Vec<ContextFile>,
    },
}

pub struct Context {
    root: PathBuf,
}

impl Context {
    pub fn new(root: &Path) -> Result<Context, String> {
        let root = fs::canonicalize(root).map_err(|e| {
            format!(
                "build context {}: {}",
                root.display(),
                crate::diag::io_reason(&e)
            )
        })?;
        if !root.is_dir() {
            return Err(format!(
                "build context {} is not a directory",
                root.display()
            ));
        }
        Ok(Context { root })
    }

    /// Resolves `source` (relative to the context) and lists what it contains.
    pub fn find(&self, source: &str) -> Result<Found, String> {
        let relative = lexical_relative(source)?;
        let joined = self.root.join(&relative);
        let real = self.inside(&joined, source)?;
        let meta =
            fs::metadata(&real).map_err(|e| format!("{source}: {}", crate::diag::io_reason(&e)))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let mut visiting = BTreeSet::from([real.clone()]);
            self.walk(&real, "", source, &mut files, &mut visiting)?;
            files.sort_by(|a, b| a.relative.cmp(&b.relative));
            Ok(Found::Dir { path: real, files })
        } else if meta.is_file() {
            let name = relative
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Found::File(file_entry(name, real, &meta)))
        } else {
            Err(format!("{source} is not a regular file or directory"))
        }
    }

    /// The canonical path of `path`, which must exist and stay inside the context.
    fn inside(&self, path: &Path, shown: &str) -> Result<PathBuf, String> {
        let real = fs::canonicalize(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                if fs::symlink_metadata(path).is_ok() {
                    format!("{shown} is a dangling symlink")
                } else {
                    format!("{shown} does not exist in the build context")
                }
            } else {
                format!("{shown}: {}", crate::diag::io_reason(&e))
            }
        })?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "{shown} leaves the build context (it resolves to {})",
                real.display()
            ));
        }
        Ok(real)
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        shown: &str,
        files: &mut Vec<ContextFile>,
        visiting: &mut BTreeSet<PathBuf>,
    ) -> Result<(), String> {
        let entries =
            fs::read_dir(dir).map_err(|e| format!("{shown}: {}", crate::diag::io_reason(&e)))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{shown}: {}", crate::diag::io_reason(&e)))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(format!(
                    "{shown}: file name {:?} is not UTF-8",
                    entry.file_name()
                ));
            };
            names.push(name.to_string());
        }
        names.sort();
        for name in names {
            let relative = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let shown_here = format!("{}/{relative}", shown.trim_end_matches('/'));
            let real = self.inside(&dir.join(&name), &shown_here)?;
            let meta = fs::metadata(&real)
                .map_err(|e| format!("{shown_here}: {}", crate::diag::io_reason(&e)))?;
            if meta.is_dir() {
                if !visiting.insert(real.clone()) {
                    return Err(format!("{shown_here} is a symlink loop"));
                }
                self.walk(&real, &relative, shown, files, visiting)?;
                visiting.remove(&real);
            } else if meta.is_file() {
                files.push(file_entry(relative, real, &meta));
            } else {
                return Err(format!("{shown_here} is not a regular file or directory"));
            }
        }
        Ok(())
    }
}

fn file_entry(relative: String, path: PathBuf, meta: &fs::Metadata) -> ContextFile {
    use std::os::unix::fs::PermissionsExt;
    ContextFile {
        relative,
        path,
        executable: meta.permissions().mode() & 0o111 != 0,
        size: meta.len(),
    }
}

/// A relative path without `.`; refuses absolute paths and `..` that climb out.
pub fn lexical_relative(source: &str) -> Result<PathBuf, String> {
    if source.is_empty() {
        return Err("empty path".to_string());
    }
    let path = Path::new(source);
    if path.is_absolute() {
        return Err(format!(
            "{source} is an absolute path: sources are relative to the build context"
        ));
    }
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("{source} leaves the build context (..)"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{source} is an absolute path"));
            }
        }
    }
    Ok(out)
}

/// Normalizes a destination inside the rootfs: `/`-separated, no leading `/`, no `..` out.
pub fn rootfs_path(dest: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("{dest} leaves the rootfs (..)"));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths() {
        assert_eq!(
            lexical_relative("a/./b/../c").unwrap(),
            PathBuf::from("a/c")
        );
        assert!(lexical_relative("../x").is_err());
        assert!(lexical_relative("a/../../x").is_err());
        assert!(lexical_relative("/etc/passwd").is_err());
        assert_eq!(lexical_relative(".").unwrap(), PathBuf::new());
    }

    #[test]
    fn rootfs_paths() {
        assert_eq!(rootfs_path("/etc/").unwrap(), "etc");
        assert_eq!(rootfs_path("./a//b/../c").unwrap(), "a/c");
        assert_eq!(rootfs_path("/").unwrap(), "");
        assert!(rootfs_path("../x").is_err());
    }

    #[test]
    fn symlinks_out_of_the_context_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(ctx.join("d")).unwrap();
        fs::write(dir.path().join("secret"), "x").unwrap();
        fs::write(ctx.join("d/ok"), "y").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("out")).unwrap();
        std::os::unix::fs::symlink("../../secret", ctx.join("d/out2")).unwrap();
        std::os::unix::fs::symlink("ok", ctx.join("d/in")).unwrap();
        let c = Context::new(&ctx).unwrap();
        assert!(
            c.find("out")
                .unwrap_err()
                .contains("leaves the build context")
        );
        assert!(
            c.find("d")
                .unwrap_err()
                .contains("leaves the build context")
        );
        fs::remove_file(ctx.join("d/out2")).unwrap();
        let Found::Dir { files, .. } = c.find("d").unwrap() else {
            panic!("expected a directory")
        };
        let names: Vec<_> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, vec!["in", "ok"]);
    }

    #[test]
    fn symlink_loops_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("a/up")).unwrap();
        let c = Context::new(dir.path()).unwrap();
        assert!(c.find("a").unwrap_err().contains("loop"));
    }
}
