//! Pushing to and pulling from OCI distribution registries with `oci-client`.
//!
//! Manifests travel as raw bytes so digests survive the round trip; blobs are verified
//! against their descriptors before they become visible in the store. Anonymous, basic and
//! token (Bearer) auth are handled by `oci-client` from the stored credentials.

use super::auth::{AuthStore, Credentials};
use super::layout::sha256_digest;
use super::metadata::Platform;
use super::oci::{
    DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE, Manifest,
};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::diag::{Error, Result};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use std::io::Write;
use std::time::Duration;

const DOCKER_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

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

fn client(registry: &str, connection: Connection) -> Client {
    let protocol = if connection.insecure || is_loopback(registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
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
    let manifest_bytes = store.layout().read_blob(image.digest())?;
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
pub async fn pull(
    store: &Store,
    auth: &AuthStore,
    reference: &Reference,
    platform: &Platform,
    connection: Connection,
) -> Result<Image> {
    let remote = remote_reference(reference);
    let client = client(reference.registry(), connection);
    let registry_auth = registry_auth(auth, reference.registry())?;
    client
        .auth(&remote, &registry_auth, RegistryOperation::Pull)
        .await
        .map_err(|e| remote_error("cannot pull", reference, e))?;
    let accepted = [
        MANIFEST_MEDIA_TYPE,
        DOCKER_MANIFEST_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        DOCKER_LIST_MEDIA_TYPE,
    ];
    let (mut bytes, mut digest) = client
        .pull_manifest_raw(&remote, &registry_auth, &accepted)
        .await
        .map_err(|e| remote_error("cannot pull", reference, e))?;
    if let Some(want) = reference.digest()
        && sha256_digest(&bytes) != want
    {
        return Err(Error::msg(format!(
            "cannot pull {reference}: the registry sent a manifest with digest {}",
            sha256_digest(&bytes)
        )));
    }
    let mut media_type = media_type_of(&bytes);
    if media_type == INDEX_MEDIA_TYPE || media_type == DOCKER_LIST_MEDIA_TYPE {
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("cannot pull {reference}: invalid index: {e}")))?;
        let chosen = index
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == platform.os && p.architecture == platform.architecture)
            })
            .ok_or_else(|| {
                Error::msg(format!(
                    "cannot pull {reference}: the index has no image for {platform}"
                ))
            })?;
        let by_digest = remote.clone_with_digest(chosen.digest.clone());
        (bytes, digest) = client
            .pull_manifest_raw(&by_digest, &registry_auth, &accepted)
            .await
            .map_err(|e| remote_error("cannot pull", reference, e))?;
        media_type = media_type_of(&bytes);
    }
    if sha256_digest(&bytes) != digest {
        return Err(Error::msg(format!(
            "cannot pull {reference}: manifest digest mismatch (registry said {digest})"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::msg(format!("cannot pull {reference}: invalid manifest: {e}")))?;
    let _writer = store.writer_lock()?;
    for blob in manifest.blobs() {
        if store.layout().has_blob(&blob.digest) {
            continue;
        }
        let mut stream = client
            .pull_blob_stream(&remote, blob.digest.as_str())
            .await
            .map_err(|e| remote_error("cannot pull", reference, e))?;
        let mut writer = store.layout().blob_writer()?;
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::msg(format!(
                    "cannot pull {reference}: blob {}: {e}",
                    blob.digest
                ))
            })?;
            writer
                .write_all(&chunk)
                .map_err(|e| Error::msg(format!("cannot store blob {}: {e}", blob.digest)))?;
        }
        writer.commit_expecting(blob)?;
    }
    let manifest_digest = store.layout().write_blob(&bytes)?;
    let mut descriptor = Descriptor::new(&media_type, manifest_digest, bytes.len() as u64);
    let image = Image::read(store.layout(), &descriptor)?;
    descriptor.platform = Some(image.config.platform());
    store.tag(reference, &descriptor)?;
    Ok(image)
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

/// Checks credentials the way `docker login` does: `GET /v2/` with them, following a
/// Bearer challenge to the token service.
pub async fn login(
    registry: &str,
    credentials: &Credentials,
    connection: Connection,
) -> Result<()> {
    let scheme = if connection.insecure || is_loopback(registry) {
        "http"
    } else {
        "https"
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::msg(format!("cannot create an HTTP client: {e}")))?;
    let url = format!("{scheme}://{registry}/v2/");
    let fail = |e: reqwest::Error| {
        let mut err = Error::msg(format!(
            "cannot reach {url}: {}",
            crate::diag::error_chain(&e)
        ));
        if scheme == "https" {
            err = err.hint("for a registry that speaks plain HTTP, pass --insecure");
        }
        err
    };
    let first = http.get(&url).send().await.map_err(fail)?;
    if first.status().is_success() {
        // Open registry: credentials are not needed, but they may be for pushes; check them.
        let again = http
            .get(&url)
            .basic_auth(&credentials.username, Some(&credentials.password))
            .send()
            .await
            .map_err(fail)?;
        return check_status(registry, again.status());
    }
    let challenge = first
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if challenge.to_ascii_lowercase().starts_with("bearer") {
        let params = parse_challenge(&challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::msg(format!("{registry}: Bearer challenge without a realm")))?;
        let mut query: Vec<(String, String)> =
            vec![("account".into(), credentials.username.clone())];
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            query.push(("service".into(), service.clone()));
        }
        let answer = http
            .get(&realm)
            .query(&query)
            .basic_auth(&credentials.username, Some(&credentials.password))
            .send()
            .await
            .map_err(fail)?;
        return check_status(registry, answer.status());
    }
    let answer = http
        .get(&url)
        .basic_auth(&credentials.username, Some(&credentials.password))
        .send()
        .await
        .map_err(fail)?;
    check_status(registry, answer.status())
}

fn check_status(registry: &str, status: reqwest::StatusCode) -> Result<()> {
    if status.is_success() {
        Ok(())
    } else if status == reqwest::StatusCode::UNAUTHORIZED
        || status == reqwest::StatusCode::FORBIDDEN
    {
        Err(Error::msg(format!(
            "login to {registry} failed: wrong user name or password ({status})"
        )))
    } else {
        Err(Error::msg(format!(
            "login to {registry} failed: the registry answered {status}"
        )))
    }
}

/// `Bearer realm="...",service="..."` → pairs.
fn parse_challenge(header: &str) -> Vec<(String, String)> {
    let rest = header.split_once(' ').map_or("", |(_, r)| r);
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .skip_while(|c| *c == ',' || c.is_whitespace())
            .take_while(|c| *c != '=')
            .collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    out
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

    #[test]
    fn challenge_parsing() {
        let p = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:9/token",service="reg",scope="a:b:pull""#,
        );
        assert_eq!(
            p[0],
            ("realm".to_string(), "http://127.0.0.1:9/token".to_string())
        );
        assert_eq!(p[1], ("service".to_string(), "reg".to_string()));
        assert_eq!(p.len(), 3);
    }
}
