//! What sealer keeps under `$SEALER_HOME` (images, their unpacked trees, credentials, the
//! state) is the operator's alone: directories 0700, files 0600. Directories made before
//! that rule (or by hand, under a permissive umask) are tightened when sealer opens them.

use crate::diag::{IoContext, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

/// The mode of every file sealer writes under `$SEALER_HOME` (the umask may only lower it).
pub const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// What sealer itself keeps at the top of `$SEALER_HOME` (a name, or a prefix of names).
const OWN_ENTRIES: &[&str] = &[
    "images",
    "cache",
    "auth.json",
    ".auth.json",
    "state.db",
    ".state.db",
];

/// Makes sure `dir` (one of sealer's directories under `$SEALER_HOME`) exists, private:
/// created 0700 with any missing parent, or tightened to 0700 if it is more open.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_path("cannot create directory", dir)?;
    tighten(dir);
    Ok(())
}

/// Opens `$SEALER_HOME` as [`private_dir`] does, except that an existing one holding
/// anything but sealer's own files keeps its mode: it is also something else (a home
/// directory, `/tmp`), whose mode is its owner's business. What sealer keeps in it is
/// private either way (its directories 0700, its files 0600).
pub fn open_home(home: &Path) -> Result<()> {
    if !home.exists() {
        return private_dir(home);
    }
    let only_sealers = fs::read_dir(home)
        .with_path("cannot list", home)?
        .flatten()
        .all(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            OWN_ENTRIES.iter().any(|own| name.starts_with(own))
        });
    if only_sealers {
        tighten(home);
    }
    Ok(())
}

/// Removes group and other access from a directory (never through a symlink). Best effort:
/// a directory sealer cannot change (not its owner's) stays as it is.
fn tighten(dir: &Path) {
    if let Ok(meta) = fs::symlink_metadata(dir)
        && meta.is_dir()
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn sealers_directories_are_created_or_tightened_to_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        open_home(&home).unwrap();
        assert_eq!(mode(&home), 0o700);
        private_dir(&home.join("cache/rootfs")).unwrap();
        assert_eq!(mode(&home.join("cache")), 0o700);
        assert_eq!(mode(&home.join("cache/rootfs")), 0o700);

        // Made 0755 by an older sealer: tightened when opened.
        for dir in [&home, &home.join("cache")] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(home.join("state.db"), "").unwrap();
        open_home(&home).unwrap();
        private_dir(&home.join("cache")).unwrap();
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&home.join("cache")), 0o700);
    }

    #[test]
    fn a_home_that_is_also_something_else_keeps_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("shared");
        fs::create_dir(&home).unwrap();
        fs::write(home.join("notes.txt"), "").unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        open_home(&home).unwrap();
        assert_eq!(mode(&home), 0o755);
    }
}
