//! Pushing to and pulling from OCI distribution registries.
//!
//! Manifests travel as raw bytes so digests survive the round trip; blobs are verified
//! against their descriptors before they become visible in the store. Anonymous, basic and
//! token (Bearer) auth, from the stored credentials. Pushes go through `oci-client`; pulls,
//! where the registry is the one sending, through [`session`], which bounds every body it
//! reads (manifests at [`DOCUMENT_MAX`], blobs at their declared size).

mod login;
mod session;

pub use login::login;

use self::session::Session;
use super::auth::{AuthStore, Credentials};
use super::layout::{check_digest, sha256_digest};
use super::metadata::Platform;
use super::oci::{
    DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE, Manifest,
};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::diag::{Error, Result};
use crate::limits::{DOCUMENT_MAX, format_size};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use std::time::Duration;

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

fn client(registry: &str, connection: Connection) -> Client {
    let protocol = match scheme(registry, connection) {
        "http" => ClientProtocol::Http,
        _ => ClientProtocol::Https,
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(300)),
        user_agent: concat!("sealer/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

fn remote_reference(reference: &Reference) -> oci_client::Reference {
    let registry = reference.registry().to_string();
    let repository = reference.remote_repository();
    match (reference.tag(), reference.digest()) {
        (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
            registry,
            repository,
            tag.to_string(),
            digest.to_string(),
        ),
        (None, Some(digest)) => {
            oci_client::Reference::with_digest(registry, repository, digest.to_string())
        }
        (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag.to_string()),
        (None, None) => oci_client::Reference::with_tag(registry, repository, "latest".into()),
    }
}

fn registry_auth(auth: &AuthStore, registry: &str) -> Result<RegistryAuth> {
    Ok(match auth.get(registry)? {
        Some(Credentials { username, password }) => RegistryAuth::Basic(username, password),
        None => RegistryAuth::Anonymous,
    })
}

/// A registry error with the cause chain and a hint for the usual suspects.
fn remote_error(
    action: &str,
    reference: &Reference,
    error: oci_client::errors::OciDistributionError,
) -> Error {
    use oci_client::errors::OciDistributionError as E;
    let text = crate::diag::error_chain(&error);
    let mut err = Error::msg(format!("{action} {reference}: {text}"));
    // A 401/403 comes back in several shapes: oci-client's own auth errors, a reqwest status
    // error (e.g. from the HEAD of `blob_exists`), a server error, or an error envelope.
    let refused = |status: u16| status == 401 || status == 403;
    let denied = match &error {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => true,
        E::RequestError(e) => e.status().is_some_and(|s| refused(s.as_u16())),
        E::ServerError { code, .. } => refused(*code),
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::Unauthorized
                    | oci_client::errors::OciErrorCode::Denied
            )
        }),
        _ => false,
    };
    match &error {
        _ if denied => {
            err = err.hint(format!(
                "log in with `sealer login {} -u USER --password-stdin`",
                reference.registry()
            ));
        }
        E::RequestError(_)
            if text.contains("https") || text.contains("tls") || text.contains("certificate") =>
        {
            err = err.hint("for a registry that speaks plain HTTP, pass --insecure");
        }
        _ => {}
    }
    err
}

/// Uploads an image of the store under its name. Blobs the registry has are skipped.
pub async fn push(
    store: &Store,
    auth: &AuthStore,
    name: &str,
    connection: Connection,
) -> Result<PushReport> {
    let (reference, image) = store.get(name)?;
    if reference.digest().is_some() && reference.tag().is_none() {
        return Err(Error::msg(format!(
            "cannot push {reference}: a registry names images by tag"
        ))
        .hint("tag it first: sealer tag IMAGE REGISTRY/REPO:TAG"));
    }
    let remote = remote_reference(&reference);
    let client = client(reference.registry(), connection);
    let registry_auth = registry_auth(auth, reference.registry())?;
    client
        .auth(&remote, &registry_auth, RegistryOperation::Push)
        .await
        .map_err(|e| remote_error("cannot push", &reference, e))?;
    let mut uploaded = 0;
    let mut skipped = 0;
    for blob in image.manifest.blobs() {
        let exists = client
            .blob_exists(&remote, &blob.digest)
            .await
            .map_err(|e| remote_error("cannot push", &reference, e))?;
        if exists {
            skipped += 1;
            continue;
        }
        let path = store.layout().blob_path(&blob.digest)?;
        let data = tokio::fs::read(&path)
            .await
            .map_err(|e| crate::diag::io_error("cannot read blob", &path, e))?;
        if sha256_digest(&data) != blob.digest {
            return Err(Error::msg(format!(
                "corrupt blob {} in the local store",
                path.display()
            )));
        }
        client
            .push_blob(&remote, data, &blob.digest)
            .await
            .map_err(|e| remote_error("cannot push", &reference, e))?;
        uploaded += 1;
    }
    let manifest_bytes = store.layout().read_document(image.digest())?;
    let media_type = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());
    let content_type = media_type
        .parse()
        .map_err(|_| Error::msg(format!("invalid manifest media type {media_type}")))?;
    client
        .push_manifest_raw(&remote, manifest_bytes, content_type)
        .await
        .map_err(|e| remote_error("cannot push", &reference, e))?;
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
    let mut session = Session::open(reference, auth.get(reference.registry())?, connection).await?;
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
            .ok_or_else(|| fail(format!("the index has no image for {platform}")))?;
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
