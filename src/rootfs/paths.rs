//! Paths inside a rootfs tree, handled without ever following a symlink: an image or a
//! Config must not make us read or write outside the tree.

use crate::diag::{IoContext, Result};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};

/// The components of a relative path, `.` dropped; an error for an absolute path, a `..`,
/// or a name that is not UTF-8 (names travel in manifests and scripts as text).
pub fn clean(path: &Path) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => match name.to_str() {
                Some(name) => parts.push(name.to_string()),
                None => return Err(format!("{} is not a UTF-8 name", path.display())),
            },
            Component::ParentDir => {
                return Err(format!("{} goes up with `..`", path.display()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{} is absolute", path.display()));
            }
        }
    }
    Ok(parts)
}

/// Whether `name` names an entry of its directory: not empty, `.` or `..`, and without a
/// `/` or a NUL. Only such names are ever joined to a tree's paths.
pub fn is_plain_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..") && !name.contains(['/', '\0'])
}

/// Whether a symlink at `link` (clean components) with this target stays inside the tree.
///
/// The target must be relative, of the form `(../)*name(/name)*`: its `..` come first and do
/// not climb above the root from the link's directory. Since no accepted symlink points
/// outside and no `..` follows a name, chains of symlinks cannot leave the tree either.
pub fn symlink_stays_inside(link: &[String], target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') {
        return false;
    }
    let depth = link.len().saturating_sub(1);
    let mut ups = 0;
    let mut seen_name = false;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if seen_name => return false,
            ".." => ups += 1,
            _ => seen_name = true,
        }
    }
    ups <= depth
}

/// Removes whatever is at `path` (a symlink itself, never its target).
pub fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).with_path("cannot remove", path),
        Ok(_) => fs::remove_file(path).with_path("cannot remove", path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::diag::io_error("cannot inspect", path, e)),
    }
}

pub fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// What to do with a non-directory found where a parent directory must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InTheWay {
    /// Replace it by a directory (a layer that puts files under a path a lower layer had
    /// as a file or symlink replaces it, as overlay filesystems do).
    Replace,
    /// Refuse (a Config must not write through or over what the image has there).
    Refuse,
}

/// Makes sure `root/parts[..]` are real directories, creating missing ones; returns the
/// full path of `parts`. The last component itself is not touched.
pub fn prepare_parents(root: &Path, parts: &[String], in_the_way: InTheWay) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    let Some((last, parents)) = parts.split_last() else {
        return Ok(path);
    };
    if let Some(bad) = parts.iter().find(|p| !is_plain_name(p)) {
        return Err(crate::diag::Error::msg(format!(
            "{bad:?} in {} is not a name in its directory",
            parts.join("/")
        )));
    }
    for (i, part) in parents.iter().enumerate() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(meta) => {
                if in_the_way == InTheWay::Refuse {
                    let what = if meta.file_type().is_symlink() {
                        "a symlink"
                    } else {
                        "not a directory"
                    };
                    return Err(crate::diag::Error::msg(format!(
                        "{} is {what}",
                        parts[..=i].join("/")
                    )));
                }
                remove_any(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::diag::io_error("cannot inspect", &path, e)),
        }
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .with_path("cannot create", &path)?;
    }
    path.push(last);
    Ok(path)
}

/// `root/parts` when every parent is a real directory (no symlink on the way), else `None`;
/// `None` too when a part is not a plain name (`..` would leave the tree, `.` name it).
pub fn resolve_existing(root: &Path, parts: &[String]) -> Option<PathBuf> {
    if !parts.iter().all(|p| is_plain_name(p)) {
        return None;
    }
    let mut path = root.to_path_buf();
    let (last, parents) = parts.split_last()?;
    for part in parents {
        path.push(part);
        if !is_real_dir(&path) {
            return None;
        }
    }
    path.push(last);
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Vec<String> {
        clean(Path::new(path)).unwrap()
    }

    #[test]
    fn clean_paths_refuse_escapes() {
        assert_eq!(parts("./a/b/"), ["a", "b"]);
        assert!(parts(".").is_empty());
        assert!(clean(Path::new("../a")).is_err());
        assert!(clean(Path::new("a/../../b")).is_err());
        assert!(clean(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn plain_names_are_entries_of_their_directory() {
        for good in ["a", ".a", "..a", "a..", "...", ".wh.x"] {
            assert!(is_plain_name(good), "{good:?}");
        }
        for bad in ["", ".", "..", "a/b", "/", "a\0"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        let root = Path::new("/tree");
        let up = vec!["..".to_string()];
        assert_eq!(resolve_existing(root, &up), None);
        assert!(prepare_parents(root, &up, InTheWay::Refuse).is_err());
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(symlink_stays_inside(&parts("bin/kubectl"), "kubeadm"));
        assert!(symlink_stays_inside(&parts("bin/kubectl"), "../etc/x"));
        assert!(symlink_stays_inside(&parts("a/b/c"), "../../x/./y"));
        assert!(!symlink_stays_inside(&parts("a/b/c"), "../../../x"));
        assert!(!symlink_stays_inside(&parts("top"), ".."));
        assert!(!symlink_stays_inside(&parts("a/b"), "x/../../.."));
        assert!(!symlink_stays_inside(&parts("a/b"), "/etc/passwd"));
        assert!(!symlink_stays_inside(&parts("a/b"), ""));
    }
}
