//! Pushing to and pulling from OCI distribution registries.
//!
//! Manifests travel as raw bytes so digests survive the round trip; blobs are verified
//! against their descriptors before they become visible in the store. Anonymous, basic and
//! token (Bearer) auth, from the stored credentials. Both directions go through
//! [`session`], which bounds every body it reads (manifests at [`DOCUMENT_MAX`], blobs at
//! their declared size) and streams pushed blobs from the store.

mod login;
mod session;

pub use login::login;

use self::session::{Access, Session};
use super::auth::AuthStore;
use super::layout::{check_digest, digest_reader, sha256_digest};
use super::metadata::Platform;
use super::oci::{
    DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE, Manifest,
};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::diag::{Error, Result};
use crate::limits::{DOCUMENT_MAX, format_size};

use super::oci::DOCKER_LIST_MEDIA_TYPE;

/// How to reach a registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connection {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub reference: Reference,
    pub digest: String,
    pub uploaded: usize,
    pub skipped: usize,
}

/// Loopback registries speak plain HTTP unless told otherwise, as Docker allows for
/// 127.0.0.0/8: a registry on the operator's own machine needs no certificate.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn scheme(registry: &str, connection: Connection) -> &'static str {
    if connection.insecure || is_loopback(registry) {
        "http"
    } else {
        "https"
    }
}

/// Uploads an image of the store under its name. Blobs the registry has are skipped.
pub async fn push(
    store: &Store,
    auth: &AuthStore,
    name: &str,
    connection: Connection,
) -> Result<PushReport> {
    let (reference, image) = store.get(name)?;
    let Some(tag) = reference.tag().map(str::to_string) else {
        return Err(Error::msg(format!(
            "cannot push {reference}: a registry names images by tag"
        ))
        .hint("tag it first: sealer tag IMAGE REGISTRY/REPO:TAG"));
    };
    let credentials = auth.get(reference.registry())?;
    let mut session = Session::open(&reference, credentials, connection, Access::Push).await?;
    let mut uploaded = 0;
    let mut skipped = 0;
    for blob in image.manifest.blobs() {
        if session.has_blob(&blob.digest).await? {
            skipped += 1;
            continue;
        }
        // Checked as it is read, so a blob damaged on disk is named before it is sent.
        let path = store.layout().blob_path(&blob.digest)?;
        let file = std::fs::File::open(&path)
            .map_err(|e| crate::diag::io_error("cannot read blob", &path, e))?;
        let (digest, size) = digest_reader(std::io::BufReader::new(file))
            .map_err(|e| crate::diag::io_error("cannot read blob", &path, e))?;
        if digest != blob.digest || size != blob.size {
            return Err(Error::msg(format!(
                "corrupt blob {} in the local store",
                path.display()
            ))
            .hint("`sealer rmi` the images that use it, then build, pull or load them again"));
        }
        session.push_blob(blob, &path).await?;
        uploaded += 1;
    }
    let manifest_bytes = store.layout().read_document(image.digest())?;
    let media_type = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());
    session
        .push_manifest(&tag, &media_type, &manifest_bytes)
        .await?;
    Ok(PushReport {
        reference,
        digest: image.digest().to_string(),
        uploaded,
        skipped,
    })
}

/// Downloads an image into the store and names it as asked. For a multi-platform index the
/// manifest of `platform` is taken.
///
/// Nothing the registry sends is trusted before it is checked: manifests are read up to
/// [`DOCUMENT_MAX`] and verified against the digest asked for; every digest they name is
/// validated before it is put in a URL or a path; a blob stops at its declared size and
/// becomes visible only with the digest it was declared with.
pub async fn pull(
    store: &Store,
    auth: &AuthStore,
    reference: &Reference,
    platform: &Platform,
    connection: Connection,
) -> Result<Image> {
    let fail = |message: String| Error::msg(format!("cannot pull {reference}: {message}"));
    let mut session = Session::open(
        reference,
        auth.get(reference.registry())?,
        connection,
        Access::Pull,
    )
    .await?;
    let accepted = [
        MANIFEST_MEDIA_TYPE,
        DOCKER_MANIFEST_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        DOCKER_LIST_MEDIA_TYPE,
    ];
    let wanted = reference.digest().or(reference.tag()).unwrap_or("latest");
    let (mut bytes, said) = session.manifest(wanted, &accepted).await?;
    let mut digest = sha256_digest(&bytes);
    if let Some(want) = reference.digest()
        && digest != want
    {
        return Err(fail(format!(
            "the registry sent a manifest with digest {digest}"
        )));
    }
    if let Some(said) = said
        && said.starts_with("sha256:")
        && said != digest
    {
        return Err(fail(format!(
            "manifest digest mismatch (registry said {said})"
        )));
    }
    let mut media_type = media_type_of(&bytes);
    if media_type == INDEX_MEDIA_TYPE || media_type == DOCKER_LIST_MEDIA_TYPE {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("invalid index: {e}")))?;
        let chosen = index
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == platform.os && p.architecture == platform.architecture)
            })
            .ok_or_else(|| {
                let mut offered: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                offered.sort();
                offered.dedup();
                fail(format!(
                    "the multi-platform index has no image for {platform} (it has {})",
                    if offered.is_empty() {
                        "none with a platform".to_string()
                    } else {
                        offered.join(", ")
                    }
                ))
                .hint("`sealer pull --platform OS/ARCH NAME` fetches another platform's image")
            })?;
        check_digest(&chosen.digest).map_err(|e| {
            e.context(format!(
                "cannot pull {reference}: the index's {platform} image"
            ))
        })?;
        (bytes, _) = session.manifest(&chosen.digest, &accepted).await?;
        digest = sha256_digest(&bytes);
        if digest != chosen.digest {
            return Err(fail(format!(
                "the registry sent a manifest with digest {digest} for {}",
                chosen.digest
            )));
        }
        media_type = media_type_of(&bytes);
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("invalid manifest: {e}")))?;
    check_blobs(&manifest).map_err(|e| e.context(format!("cannot pull {reference}")))?;
    let _writer = store.writer_lock()?;
    for blob in manifest.blobs() {
        if store.layout().has_blob(&blob.digest) {
            continue;
        }
        // Dropped on any error, the writer removes its temp file.
        let mut writer = store.layout().blob_writer()?;
        session.blob(blob, &mut writer).await?;
        writer.commit_expecting(blob)?;
    }
    let manifest_digest = store.layout().write_blob(&bytes)?;
    let mut descriptor = Descriptor::new(&media_type, manifest_digest, bytes.len() as u64);
    let image = Image::read(store.layout(), &descriptor)?;
    descriptor.platform = Some(image.config.platform());
    store.tag(reference, &descriptor)?;
    Ok(image)
}

/// Checks what a manifest names before anything is requested: every digest valid, and a
/// config no larger than a document may be (it is read whole).
fn check_blobs(manifest: &Manifest) -> Result<()> {
    for blob in manifest.blobs() {
        check_digest(&blob.digest)?;
    }
    if manifest.config.size > DOCUMENT_MAX {
        return Err(Error::msg(format!(
            "its config {} declares {} bytes, over the {} limit of an image config",
            manifest.config.digest,
            manifest.config.size,
            format_size(DOCUMENT_MAX)
        )));
    }
    Ok(())
}

fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
