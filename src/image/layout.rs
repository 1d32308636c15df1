//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/...`): the local
//! store and the directories of `save`/`load` are both one.
//!
//! Every write is atomic: a temp file in the same directory, fsync, rename. A crash leaves
//! at most a `.tmp-*` file behind, never a half-written blob or index.

use super::oci::{Descriptor, Index};
use crate::diag::{Error, IoContext, Result, io_error};
use crate::limits::{DOCUMENT_MAX, format_size};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub const TMP_PREFIX: &str = ".tmp-";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What is wrong with a digest, if anything. Only `sha256:` + 64 lowercase hex digits is
/// taken: sealer verifies sha256 alone, and nothing else is safe to put in a URL or a path
/// (a digest comes from manifests, which come from registries and layouts).
pub fn digest_problem(digest: &str) -> Option<String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Some("not a digest (expected sha256:<64 lowercase hex digits>)".into());
    };
    // The image spec's algorithm grammar: a well-formed name of another algorithm is
    // unsupported; anything else is malformed.
    let well_formed = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'+' | b'.' | b'_' | b'-'));
    if algorithm != "sha256" {
        return Some(if well_formed {
            format!("digest algorithm {algorithm} is not supported (sealer verifies sha256 only)")
        } else {
            "not a digest (expected sha256:<64 lowercase hex digits>)".into()
        });
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Some("a sha256 digest is 64 lowercase hex digits".into());
    }
    None
}

/// The hex part of a valid digest (see [`digest_problem`]), else an error quoting it.
pub fn check_digest(digest: &str) -> Result<&str> {
    match digest_problem(digest) {
        None => Ok(&digest["sha256:".len()..]),
        Some(why) => Err(Error::msg(format!(
            "invalid digest {}: {why}",
            quoted_prefix(digest)
        ))),
    }
}

/// A string from untrusted input, quoted and cut short enough for one line of a message.
pub fn quoted_prefix(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    /// The mode new files get (the umask may lower it): 0600 in the store, where nobody else
    /// has business; the umask's choice in layouts `save` writes to share.
    file_mode: u32,
}

/// Files of a layout meant to be shared: as the umask says.
const SHARED_FILE_MODE: u32 = 0o666;

impl Layout {
    /// Opens an existing layout, checking its `oci-layout` marker.
    pub fn open(root: &Path) -> Result<Layout> {
        let marker = root.join(LAYOUT_FILE);
        let text = fs::read(&marker).map_err(|e| {
            io_error("cannot read", &marker, e)
                .hint(format!("{} is not an OCI image layout", root.display()))
        })?;
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::msg(format!("{}: invalid JSON: {e}", marker.display())))?;
        if value.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::msg(format!(
                "{}: unsupported imageLayoutVersion (expected \"1.0.0\")",
                marker.display()
            )));
        }
        Ok(Layout {
            root: root.to_path_buf(),
            file_mode: SHARED_FILE_MODE,
        })
    }

    /// Creates the layout if it does not exist yet (an empty index), else opens it.
    pub fn create(root: &Path) -> Result<Layout> {
        Layout::create_with(root, SHARED_FILE_MODE)
    }

    /// Like [`Layout::create`], for a layout whose new files have mode `file_mode` (the
    /// store's: [`crate::home::FILE_MODE`]). The caller makes its directories as private.
    pub fn create_with(root: &Path, file_mode: u32) -> Result<Layout> {
        fs::create_dir_all(root.join("blobs/sha256")).with_path("cannot create", root)?;
        let layout = Layout {
            root: root.to_path_buf(),
            file_mode,
        };
        if !root.join(LAYOUT_FILE).exists() {
            layout.write_atomic(&root.join(LAYOUT_FILE), LAYOUT_CONTENT)?;
        }
        if !root.join("index.json").exists() {
            layout.write_index(&Index::default())?;
        }
        Ok(Layout {
            file_mode,
            ..Layout::open(root)?
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = check_digest(digest)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Reads a document blob (a manifest or an image config) and verifies its digest. Such
    /// blobs are read whole, so one larger than [`DOCUMENT_MAX`] is refused unread.
    pub fn read_document(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = read_at_most(&path, DOCUMENT_MAX)?.ok_or_else(|| {
            Error::msg(format!(
                "blob {digest} is larger than {}, the limit of a manifest or an image config",
                format_size(DOCUMENT_MAX)
            ))
        })?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::msg(format!(
                "corrupt blob {}: its content has digest {actual}",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Verifies a blob's size and digest without loading it whole.
    pub fn verify_blob(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.blob_path(&descriptor.digest)?;
        let file = File::open(&path).with_path("missing blob", &path)?;
        let mut hasher = HashingWriter::new(io::sink());
        let size = io::copy(&mut io::BufReader::new(file), &mut hasher)
            .with_path("cannot read blob", &path)?;
        let (_, digest, _) = hasher.finish();
        if digest != descriptor.digest || size != descriptor.size {
            return Err(Error::msg(format!(
                "corrupt blob {}: expected {} ({} bytes), found {digest} ({size} bytes)",
                path.display(),
                descriptor.digest,
                descriptor.size
            )));
        }
        Ok(())
    }

    /// Stores `bytes` as a blob; returns its digest. An existing blob is not rewritten.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest)?;
        if !path.is_file() {
            self.write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// A writer for a new blob whose digest is known only at the end.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("blobs/sha256");
        let tmp = temp_name(&dir);
        let file = create_file(&tmp, self.file_mode).with_path("cannot create", &tmp)?;
        Ok(BlobWriter {
            dir,
            tmp,
            inner: Some(HashingWriter::new(io::BufWriter::new(file))),
        })
    }

    /// Copies a blob of another layout (or store) into this one, verifying it.
    pub fn copy_blob_from(&self, other: &Layout, descriptor: &Descriptor) -> Result<()> {
        if self.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let source = other.blob_path(&descriptor.digest)?;
        let file = File::open(&source).with_path("missing blob", &source)?;
        let mut writer = self.blob_writer()?;
        io::copy(&mut io::BufReader::new(file), &mut writer)
            .with_path("cannot read blob", &source)?;
        writer.commit_expecting(descriptor)?;
        Ok(())
    }

    /// The index of a layout sealer wrote (the store's own, which grows with its names).
    pub fn read_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes = fs::read(&path).with_path("cannot read", &path)?;
        parse_index(&path, &bytes)
    }

    /// The index of a layout from elsewhere (`sealer load`), at most [`DOCUMENT_MAX`] bytes.
    pub fn read_foreign_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes = read_at_most(&path, DOCUMENT_MAX)?.ok_or_else(|| {
            Error::msg(format!(
                "{} is larger than {}, the limit of an index",
                path.display(),
                format_size(DOCUMENT_MAX)
            ))
        })?;
        parse_index(&path, &bytes)
    }

    pub fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec(index)
            .map_err(|e| Error::msg(format!("cannot encode index.json: {e}")))?;
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Deletes blobs not in `keep` and leftover temp files. The caller holds the store's
    /// exclusive lock, so no writer is active.
    pub fn remove_blobs_except(&self, keep: &std::collections::BTreeSet<String>) -> Result<u64> {
        let dir = self.root.join("blobs/sha256");
        let mut freed = 0;
        for entry in fs::read_dir(&dir).with_path("cannot list", &dir)? {
            let entry = entry.with_path("cannot list", &dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            if name.starts_with(TMP_PREFIX) || !keep.contains(&digest) {
                let path = entry.path();
                freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).with_path("cannot remove", &path)?;
            }
        }
        Ok(freed)
    }

    /// Removes temp files older than `age` (best effort): what killed writers left. A live
    /// writer's file is younger, as it is written to all along.
    pub fn remove_stale_temps(&self, age: std::time::Duration) {
        for dir in [self.root.clone(), self.root.join("blobs/sha256")] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let stale = entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
                    && entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().is_ok_and(|elapsed| elapsed > age));
                if stale {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic(path, bytes, self.file_mode)
    }
}

fn parse_index(path: &Path, bytes: &[u8]) -> Result<Index> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::msg(format!("{}: invalid index: {e}", path.display())))
}

/// A file's bytes, or `None` when it has more than `max`: never more than that is read.
fn read_at_most(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let file = File::open(path).with_path("cannot read", path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_path("cannot read", path)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

fn create_file(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
}

/// Writes a file atomically, created with `mode`: temp file in the same directory, fsync,
/// rename, fsync the dir.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_name(dir);
    let result = (|| -> io::Result<()> {
        let mut file = create_file(&tmp, mode)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir);
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("cannot write", path, e));
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    // Best effort: makes the rename durable; some filesystems refuse fsync on directories.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn temp_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TMP_PREFIX}{}-{n}", std::process::id()))
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the `sha256:` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex(&self.hasher.finalize()));
        (self.inner, digest, self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blob being written; becomes visible under its digest on [`BlobWriter::commit`].
/// Dropped without commit, it leaves nothing behind.
pub struct BlobWriter {
    dir: PathBuf,
    tmp: PathBuf,
    inner: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter {
    /// Finishes the blob; returns its digest and size.
    pub fn commit(self) -> Result<(String, u64)> {
        self.finish(None)
    }

    /// Commits only if the content matches `descriptor`, else discards it.
    pub fn commit_expecting(self, descriptor: &Descriptor) -> Result<()> {
        self.finish(Some(descriptor)).map(|_| ())
    }

    fn finish(mut self, expected: Option<&Descriptor>) -> Result<(String, u64)> {
        let Some(inner) = self.inner.take() else {
            return Err(Error::msg("blob writer used after commit"));
        };
        let (buffered, digest, size) = inner.finish();
        let synced = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all());
        if let Err(e) = synced {
            return Err(io_error("cannot write", &self.tmp, e));
        }
        if let Some(want) = expected
            && (digest != want.digest || size != want.size)
        {
            // Never let content become visible under a digest it does not have.
            return Err(Error::msg(format!(
                "blob {} is corrupt: got {size} bytes with digest {digest}, expected {} bytes",
                want.digest, want.size
            )));
        }
        let path = self.dir.join(check_digest(&digest)?);
        if !path.is_file() {
            fs::rename(&self.tmp, &path).with_path("cannot store blob", &path)?;
            sync_dir(&self.dir);
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(inner) => inner.write(buf),
            None => Err(io::Error::other("blob writer used after commit")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a commit the temp name is gone and this does nothing.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Reads a whole file while hashing it (used for downloads and context files).
pub fn digest_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut hasher)?;
    let (_, digest, size) = hasher.finish();
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_digests_in_lowercase_hex_are_taken() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(digest_problem(&good), None);
        assert_eq!(check_digest(&good).unwrap(), "0a".repeat(32));
        let sha512 = format!("sha512:{}", "0".repeat(128));
        assert!(
            digest_problem(&sha512)
                .unwrap()
                .contains("algorithm sha512 is not supported")
        );
        for bad in [
            String::new(),
            "sha256".into(),
            "sha256:".into(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "0".repeat(63)),
            format!("sha256:{}/..", "0".repeat(62)),
            format!("sha256:../../{}", "0".repeat(58)),
            format!("SHA256:{}", "0".repeat(64)),
            format!("../x:{}", "0".repeat(64)),
            "sha256:?x=1".into(),
        ] {
            let why = digest_problem(&bad).unwrap_or_else(|| panic!("{bad:?} was taken"));
            assert!(!why.contains("is not supported"), "{bad:?}: {why}");
            assert!(check_digest(&bad).is_err());
        }
    }

    #[test]
    fn stale_temp_files_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let blobs = dir.path().join("blobs/sha256");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for (name, modified) in [
            (".tmp-1-0", Some(old)),
            (".tmp-1-1", None),
            ("not-a-temp", Some(old)),
        ] {
            for dir in [dir.path(), blobs.as_path()] {
                let file = File::create(dir.join(name)).unwrap();
                if let Some(time) = modified {
                    file.set_modified(time).unwrap();
                }
            }
        }
        layout.remove_stale_temps(std::time::Duration::from_secs(3600));
        for dir in [dir.path(), blobs.as_path()] {
            assert!(!dir.join(".tmp-1-0").exists());
            assert!(dir.join(".tmp-1-1").exists(), "a live writer's file stays");
            assert!(dir.join("not-a-temp").exists());
        }
    }

    #[test]
    fn documents_are_read_whole_only_up_to_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let small = layout.write_blob(b"{}").unwrap();
        assert_eq!(layout.read_document(&small).unwrap(), b"{}");
        let large = layout
            .write_blob(&vec![b' '; DOCUMENT_MAX as usize + 1])
            .unwrap();
        let err = layout.read_document(&large).unwrap_err().to_string();
        assert!(err.contains("is larger than 4 MiB"), "{err}");
        fs::write(dir.path().join("index.json"), vec![b' '; 5 << 20]).unwrap();
        let err = layout.read_foreign_index().unwrap_err().to_string();
        assert!(
            err.contains("larger than 4 MiB, the limit of an index"),
            "{err}"
        );
    }

    #[test]
    fn quoted_untrusted_text_is_cut_short() {
        assert_eq!(quoted_prefix("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(500);
        assert_eq!(quoted_prefix(&long), format!("\"{}\"...", "x".repeat(80)));
    }
}
