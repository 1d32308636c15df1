//! Unpacking an image's layers, in order, into `$SEALER_HOME/cache/rootfs/<digest hex>/`.
//!
//! OCI whiteouts are applied to what lower layers left: `.wh.NAME` removes `NAME`,
//! `.wh..wh..opq` empties its directory. Entries of the layer being unpacked are never
//! hidden by whiteouts of that same layer, in whatever order the tar lists them (the image
//! spec's rule). Entries that would land outside the tree are refused: absolute paths, `..`,
//! symlinks whose target leaves the tree, hard links to anything but a file of the tree,
//! whiteouts of anything but a name in their directory (`.wh..`, `.wh...`, `.wh.`).
//! Modes are kept; ownership is ignored (files belong to whoever runs sealer).
//!
//! The tree is unpacked into a temp dir and renamed into place, so a cache directory that
//! exists is complete and is reused as it is. What the layers decompress to is metered
//! against the unpacked-size limit ([`budget`](super::budget)); past it, unpacking stops and
//! the temp dir is removed.

use super::budget::{Budget, Metered};
use super::paths::{self, InTheWay};
use super::{TempDir, stale_temps_removed};
use crate::diag::{Error, IoContext, Result};
use crate::image::layout::{Layout, check_digest, hex};
use crate::image::oci::Descriptor;
use crate::image::{Image, Store};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// `$SEALER_HOME/cache`: the store lives in `$SEALER_HOME/images`.
pub fn cache_dir(store: &Store) -> PathBuf {
    let images = store.layout().root();
    images.parent().unwrap_or(images).join("cache")
}

/// Unpacks `image` (once) and returns its tree. Its layers together may decompress to at
/// most `max_unpacked` bytes (`Settings::max_unpacked`).
pub fn extract(store: &Store, image: &Image, max_unpacked: u64) -> Result<PathBuf> {
    let hex = check_digest(image.digest())?;
    let cache = cache_dir(store).join("rootfs");
    let dest = cache.join(hex);
    if paths::is_real_dir(&dest) {
        return Ok(dest);
    }
    // `cache/` first: made by an older sealer, it is tightened too.
    crate::home::private_dir(&cache_dir(store))?;
    crate::home::private_dir(&cache)?;
    stale_temps_removed(&cache);
    let tmp = TempDir::create(&cache, hex)?;
    let mut dir_modes = BTreeMap::new();
    let budget = Budget::new(max_unpacked);
    for layer in &image.manifest.layers {
        unpack_layer(store.layout(), layer, tmp.path(), &mut dir_modes, &budget).map_err(|e| {
            e.context(format!(
                "cannot unpack layer {} of image {}",
                layer.digest,
                image.digest()
            ))
        })?;
    }
    apply_dir_modes(tmp.path(), &dir_modes)?;
    match tmp.persist(&dest) {
        Ok(()) => Ok(dest),
        // Another sealer unpacked the same image meanwhile: its tree is as good as ours.
        Err(_) if paths::is_real_dir(&dest) => Ok(dest),
        Err(e) => Err(e),
    }
}

/// Sets recorded directory modes, deepest first (a parent without `x` would hide the rest).
pub fn apply_dir_modes(root: &Path, modes: &BTreeMap<String, u32>) -> Result<()> {
    for (rel, mode) in modes.iter().rev() {
        let path = root.join(rel);
        if paths::is_real_dir(&path) {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .with_path("cannot set the mode of", &path)?;
        }
    }
    Ok(())
}

/// Hashes what is read through it, to check a blob while it is unpacked.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn unpack_layer(
    layout: &Layout,
    layer: &Descriptor,
    root: &Path,
    dir_modes: &mut BTreeMap<String, u32>,
    budget: &Budget,
) -> Result<()> {
    let media = layer.media_type.as_str();
    let gzip = media.ends_with("tar+gzip") || media.ends_with("tar.gzip");
    if !gzip && !media.ends_with(".tar") {
        return Err(Error::msg(format!(
            "unsupported layer media type {media} (expected a tar or tar+gzip layer)"
        )));
    }
    let blob = layout.blob_path(&layer.digest)?;
    let file = File::open(&blob).with_path("missing blob", &blob)?;
    let mut hashing = HashingReader {
        inner: io::BufReader::new(file),
        hasher: Sha256::new(),
        size: 0,
    };
    {
        let decompressed: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(&mut hashing))
        } else {
            Box::new(&mut hashing)
        };
        let mut reader = Metered {
            inner: decompressed,
            budget,
        };
        let unpacked = unpack_tar(&mut reader, root, dir_modes, budget).and_then(|()| {
            // Whatever follows the end of the archive still counts for the digest.
            io::copy(&mut reader, &mut io::sink())
                .map(|_| ())
                .with_path("cannot read", &blob)
        });
        // An error the meter caused is the limit's, whatever the tar reader made of it.
        if let Some(over) = budget.exceeded() {
            return Err(over);
        }
        unpacked?;
    }
    io::copy(&mut hashing, &mut io::sink()).with_path("cannot read", &blob)?;
    let digest = format!("sha256:{}", hex(&hashing.hasher.finalize()));
    if digest != layer.digest || hashing.size != layer.size {
        return Err(Error::msg(format!(
            "corrupt blob {}: expected {} ({} bytes), found {digest} ({} bytes)",
            blob.display(),
            layer.digest,
            layer.size,
            hashing.size
        )));
    }
    Ok(())
}

/// The relative path of `parts` joined with `/`.
fn rel(parts: &[String]) -> String {
    parts.join("/")
}

fn unpack_tar(
    reader: &mut dyn Read,
    root: &Path,
    dir_modes: &mut BTreeMap<String, u32>,
    budget: &Budget,
) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    // Paths this layer wrote, with their ancestors: whiteouts of the layer spare them.
    let mut current: HashSet<String> = HashSet::new();
    let mut entries = archive
        .entries()
        .map_err(|e| Error::msg(format!("not a tar archive: {e}")))?;
    while let Some(entry) = budget.next_entry(&mut entries) {
        let mut entry = entry.map_err(|e| Error::msg(format!("broken tar archive: {e}")))?;
        unpack_entry(&mut entry, root, dir_modes, budget, &mut current)?;
        // Data an entry did not use (a whiteout's, a link's) is read here, not as headers
        // of the next entry.
        io::copy(&mut entry, &mut io::sink())
            .map_err(|e| Error::msg(format!("broken tar archive: {e}")))?;
    }
    Ok(())
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: &Path,
    dir_modes: &mut BTreeMap<String, u32>,
    budget: &Budget,
    current: &mut HashSet<String>,
) -> Result<()> {
    let raw_path = entry
        .path()
        .map_err(|e| Error::msg(format!("broken tar entry: {e}")))?
        .into_owned();
    let parts =
        paths::clean(&raw_path).map_err(|why| Error::msg(format!("entry refused: {why}")))?;
    let kind = entry.header().entry_type();
    let Some(name) = parts.last().cloned() else {
        return Ok(()); // `./` itself
    };
    let parent = &parts[..parts.len() - 1];
    if name == OPAQUE {
        if let Some(dir) = paths::resolve_existing(root, &parts).and_then(|p| {
            let dir = p.parent()?.to_path_buf();
            paths::is_real_dir(&dir).then_some(dir)
        }) {
            clear_lower(root, &dir, current)?;
        }
        return Ok(());
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        // `.wh...` would remove the tree's parent (the cache of every image), `.wh..`
        // the tree itself: a whiteout names an entry of its directory, or is refused.
        if !paths::is_plain_name(hidden) {
            return Err(Error::msg(format!(
                "entry refused: whiteout {} hides {hidden:?}, which is not a name in its directory",
                rel(&parts)
            )));
        }
        let mut target = parent.to_vec();
        target.push(hidden.to_string());
        if current.contains(&rel(&target)) {
            return Ok(());
        }
        if let Some(path) = paths::resolve_existing(root, &target) {
            paths::remove_any(&path)?;
        }
        return Ok(());
    }
    for i in 1..=parts.len() {
        current.insert(rel(&parts[..i]));
    }
    let path = paths::prepare_parents(root, &parts, InTheWay::Replace)?;
    let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
    let shown = rel(&parts);
    match kind {
        tar::EntryType::Directory => {
            if !paths::is_real_dir(&path) {
                paths::remove_any(&path)?;
                fs::create_dir(&path).with_path("cannot create", &path)?;
            }
            dir_modes.insert(shown, mode);
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            // Refused from its header, before any of it is written.
            let size = entry.size();
            if size > budget.remaining() {
                return Err(budget.over_total_at(&shown, size));
            }
            paths::remove_any(&path)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_path("cannot create", &path)?;
            io::copy(entry, &mut file).with_path("cannot write", &path)?;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .with_path("cannot set the mode of", &path)?;
        }
        tar::EntryType::Symlink => {
            let target = link_name(entry, &shown)?;
            if !paths::symlink_stays_inside(&parts, &target) {
                return Err(Error::msg(format!(
                    "entry refused: symlink {shown} -> {target} points outside the rootfs"
                )));
            }
            paths::remove_any(&path)?;
            std::os::unix::fs::symlink(&target, &path).with_path("cannot create", &path)?;
        }
        tar::EntryType::Link => {
            let target = link_name(entry, &shown)?;
            let source = paths::clean(Path::new(&target))
                .ok()
                .and_then(|t| paths::resolve_existing(root, &t))
                .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
            let Some(source) = source else {
                return Err(Error::msg(format!(
                    "entry refused: hard link {shown} -> {target} is not to a file of the rootfs"
                )));
            };
            if source != path {
                paths::remove_any(&path)?;
                fs::hard_link(&source, &path)
                    .or_else(|_| fs::copy(&source, &path).map(|_| ()))
                    .with_path("cannot link", &path)?;
            }
        }
        // PAX global headers carry nothing for us.
        tar::EntryType::XGlobalHeader => {}
        other => {
            return Err(Error::msg(format!(
                "entry refused: {shown} is a {other:?}, not a file, directory or link"
            )));
        }
    }
    Ok(())
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<String> {
    let target = entry
        .link_name()
        .map_err(|e| Error::msg(format!("broken tar entry {shown}: {e}")))?
        .ok_or_else(|| Error::msg(format!("link {shown} has no target")))?;
    target
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::msg(format!("link {shown} has a target that is not UTF-8")))
}

/// Empties `dir` of what lower layers put there (an opaque whiteout), keeping what the
/// current layer wrote.
fn clear_lower(root: &Path, dir: &Path, current: &HashSet<String>) -> Result<()> {
    for child in fs::read_dir(dir).with_path("cannot list", dir)? {
        let child = child.with_path("cannot list", dir)?.path();
        let Some(rel) = child
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_string)
        else {
            continue;
        };
        if current.contains(&rel) {
            if paths::is_real_dir(&child) {
                clear_lower(root, &child, current)?;
            }
        } else {
            paths::remove_any(&child)?;
        }
    }
    Ok(())
}
