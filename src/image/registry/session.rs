//! The distribution API: `/v2/`, the token service, manifests and blobs, pulled and pushed,
//! with every response body read incrementally against a limit. Manifests, indexes and token
//! answers stop at [`DOCUMENT_MAX`], blobs at their declared size, error bodies at a few KiB,
//! and the answers to a push are never read but for errors. Blobs are pushed streamed from
//! the store, never held in memory whole.
//!
//! oci-client reads whole bodies (`Response::bytes`, also of error answers and of the token
//! service a registry names) and pushes blobs from memory, so a registry that never ends a
//! response could take all the memory there is, and so could a large layer: both directions
//! therefore speak HTTP here.

use super::login::parse_challenge;
use super::{Connection, scheme};
use crate::diag::{Error, Result, error_chain};
use crate::image::auth::Credentials;
use crate::image::layout::{BlobWriter, check_digest};
use crate::image::oci::Descriptor;
use crate::image::reference::{DEFAULT_REGISTRY, Reference};
use crate::limits::{DOCUMENT_MAX, format_size};
use std::io::Write as _;
use std::time::Duration;

/// Enough of an error answer to quote the registry's message.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// Docker Hub's API host for the `docker.io` of image names.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What the registry asked for at `GET /v2/`.
enum Challenge {
    /// Nothing: an open registry (or one that answers 401 later, per repository).
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// What a session is for: the token scope it asks for, and the verb of its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// A connection to one repository of a registry, authenticated for pulls or pushes.
pub struct Session {
    access: Access,
    http: reqwest::Client,
    /// `SCHEME://HOST/v2/REPOSITORY/`
    base: String,
    repository: String,
    /// The image being pulled, for messages.
    reference: Reference,
    credentials: Option<Credentials>,
    challenge: Challenge,
    authorization: Option<String>,
}

/// A body read up to a limit.
enum Body {
    Whole(Vec<u8>),
    /// More than the limit: the rest was not read.
    TooLarge,
}

impl Session {
    /// Pings the registry and authenticates as its challenge asks (a Bearer token for
    /// `access` to this repository, or basic auth with the stored credentials).
    pub async fn open(
        reference: &Reference,
        credentials: Option<Credentials>,
        connection: Connection,
        access: Access,
    ) -> Result<Session> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("sealer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::msg(format!("cannot create an HTTP client: {e}")))?;
        let host = match reference.registry() {
            DEFAULT_REGISTRY => DOCKER_HUB_API,
            other => other,
        };
        let root = format!("{}://{host}/v2/", scheme(reference.registry(), connection));
        let repository = reference.remote_repository();
        let mut session = Session {
            access,
            http,
            base: format!("{root}{repository}/"),
            repository,
            reference: reference.clone(),
            credentials,
            challenge: Challenge::None,
            authorization: None,
        };
        // The body of `/v2/` is never read: only its status and challenge matter.
        let ping = session
            .http
            .get(&root)
            .send()
            .await
            .map_err(|e| session.request_error(&root, e))?;
        let header = ping
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        session.challenge = if ping.status() != reqwest::StatusCode::UNAUTHORIZED {
            Challenge::None
        } else if header.to_ascii_lowercase().starts_with("bearer") {
            let params = parse_challenge(header);
            let find = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let realm = find("realm").ok_or_else(|| {
                session.error(format!("{host} sent a Bearer challenge without a realm"))
            })?;
            Challenge::Bearer {
                realm,
                service: find("service"),
            }
        } else {
            Challenge::Basic
        };
        session.authenticate().await?;
        Ok(session)
    }

    /// Sets the `Authorization` of the next requests; for a Bearer challenge, asks the token
    /// service for a fresh token.
    async fn authenticate(&mut self) -> Result<()> {
        let credentials = self.credentials.clone();
        self.authorization = match (&self.challenge, &credentials) {
            (Challenge::None, _) | (Challenge::Basic, None) => None,
            (Challenge::Basic, Some(c)) => Some(basic(c)),
            (Challenge::Bearer { realm, service }, _) => {
                let actions = match self.access {
                    Access::Pull => "pull",
                    Access::Push => "pull,push",
                };
                let mut query =
                    vec![("scope", format!("repository:{}:{actions}", self.repository))];
                if let Some(service) = service {
                    query.push(("service", service.clone()));
                }
                if let Some(c) = &credentials {
                    query.push(("account", c.username.clone()));
                }
                let mut request = self.http.get(realm).query(&query);
                if let Some(c) = &credentials {
                    request = request.basic_auth(&c.username, Some(&c.password));
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| self.request_error(realm, e))?;
                if !response.status().is_success() {
                    return Err(self.status_error("the token service", response).await);
                }
                let bytes = match read_at_most(response, DOCUMENT_MAX).await {
                    Ok(Body::Whole(bytes)) => bytes,
                    Ok(Body::TooLarge) => {
                        return Err(self.error(format!(
                            "the token service sent more than {}",
                            format_size(DOCUMENT_MAX)
                        )));
                    }
                    Err(e) => return Err(self.request_error(realm, e)),
                };
                let answer: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| self.error(format!("the token service sent no JSON: {e}")))?;
                let token = ["token", "access_token"]
                    .iter()
                    .find_map(|k| answer.get(k).and_then(|t| t.as_str()))
                    .ok_or_else(|| self.error("the token service sent no token"))?;
                Some(format!("Bearer {token}"))
            }
        };
        Ok(())
    }

    /// `GET` with the session's authorization; a 401 to a Bearer token (expired during a
    /// long pull) gets one fresh token and one retry.
    async fn get(&mut self, url: &str, accept: &str) -> Result<reqwest::Response> {
        self.send(url, |http| {
            http.get(url).header(reqwest::header::ACCEPT, accept)
        })
        .await
    }

    /// A request `build` makes (again, for the retry), with the session's authorization and
    /// one retry with a fresh token after a 401 to a Bearer token.
    async fn send(
        &mut self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut retried = false;
        loop {
            let mut request = build(&self.http);
            if let Some(authorization) = &self.authorization {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(url, e))?;
            let bearer = matches!(self.challenge, Challenge::Bearer { .. });
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && bearer && !retried {
                retried = true;
                self.authenticate().await?;
                continue;
            }
            return Ok(response);
        }
    }

    /// A manifest or index by tag or digest, at most [`DOCUMENT_MAX`] bytes, with the
    /// digest the registry says it has (`Docker-Content-Digest`), if it says one.
    pub async fn manifest(
        &mut self,
        tag_or_digest: &str,
        accepted: &[&str],
    ) -> Result<(Vec<u8>, Option<String>)> {
        // Tags cannot hold a `:`; digests must.
        if tag_or_digest.contains(':') {
            check_digest(tag_or_digest).map_err(|e| e.context(self.action()))?;
        }
        let url = format!("{}manifests/{tag_or_digest}", self.base);
        let response = self.get(&url, &accepted.join(", ")).await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(&format!("manifest {tag_or_digest}"), response)
                .await);
        }
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        match read_at_most(response, DOCUMENT_MAX).await {
            Ok(Body::Whole(bytes)) => Ok((bytes, digest)),
            Ok(Body::TooLarge) => Err(self
                .error(format!(
                    "the manifest of {tag_or_digest} is larger than {}, the limit of a manifest",
                    format_size(DOCUMENT_MAX)
                ))
                .hint(
                    "registries and container runtimes refuse manifests that large too; \
                     check the image reference and the registry",
                )),
            Err(e) => Err(self.request_error(&url, e)),
        }
    }

    /// Downloads a blob into `out`, stopping as soon as the registry sends more than the
    /// descriptor declares. The caller commits `out` (which verifies size and digest) or
    /// drops it (which removes the temp file).
    pub async fn blob(&mut self, blob: &Descriptor, out: &mut BlobWriter) -> Result<()> {
        check_digest(&blob.digest).map_err(|e| e.context(self.action()))?;
        let url = format!("{}blobs/{}", self.base, blob.digest);
        let mut response = self.get(&url, "*/*").await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(&format!("blob {}", blob.digest), response)
                .await);
        }
        if let Some(announced) = response.content_length()
            && announced > blob.size
        {
            return Err(self.error(format!(
                "blob {} is larger than its manifest declares: {} bytes declared, {announced} announced",
                blob.digest, blob.size
            )));
        }
        let mut received: u64 = 0;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(self.request_error(&url, e)),
            };
            received += chunk.len() as u64;
            if received > blob.size {
                return Err(self.error(format!(
                    "blob {} is larger than its manifest declares: {} bytes declared, \
                     {received} received so far",
                    blob.digest, blob.size
                )));
            }
            out.write_all(&chunk)
                .map_err(|e| Error::msg(format!("cannot store blob {}: {e}", blob.digest)))?;
        }
        Ok(())
    }

    /// Whether the repository has blob `digest` already (`HEAD`).
    pub async fn has_blob(&mut self, digest: &str) -> Result<bool> {
        check_digest(digest).map_err(|e| e.context(self.action()))?;
        let url = format!("{}blobs/{digest}", self.base);
        let response = self.send(&url, |http| http.head(&url)).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&format!("blob {digest}"), response).await),
        }
    }

    /// Uploads blob `blob` from the file at `path`, streamed (`POST` an upload, then one
    /// `PUT` of the whole file with its digest, the monolithic upload every registry takes).
    /// A token that expires meanwhile gets one fresh token and the upload starts again.
    pub async fn push_blob(&mut self, blob: &Descriptor, path: &std::path::Path) -> Result<()> {
        check_digest(&blob.digest).map_err(|e| e.context(self.action()))?;
        let bearer = matches!(self.challenge, Challenge::Bearer { .. });
        for attempt in 0..2 {
            let uploads = format!("{}blobs/uploads/", self.base);
            let started = self.send(&uploads, |http| http.post(&uploads)).await?;
            if started.status() != reqwest::StatusCode::ACCEPTED {
                return Err(self
                    .status_error(&format!("the upload of blob {}", blob.digest), started)
                    .await);
            }
            let location = started
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| self.error("the registry started an upload without a Location"))?;
            let mut url = reqwest::Url::parse(&uploads)
                .and_then(|base| base.join(location))
                .map_err(|e| self.error(format!("the upload Location {location:?}: {e}")))?;
            url.query_pairs_mut().append_pair("digest", &blob.digest);
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| crate::diag::io_error("cannot read blob", path, e))?;
            let mut request = self
                .http
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, blob.size)
                .body(reqwest::Body::from(file));
            if let Some(authorization) = &self.authorization {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.request_error(url.as_str(), e))?;
            match response.status() {
                reqwest::StatusCode::CREATED => return Ok(()),
                reqwest::StatusCode::UNAUTHORIZED if bearer && attempt == 0 => {
                    self.authenticate().await?;
                }
                _ => {
                    return Err(self
                        .status_error(&format!("blob {}", blob.digest), response)
                        .await);
                }
            }
        }
        Err(self.error(format!(
            "blob {}: the registry refused the upload with a fresh token too",
            blob.digest
        )))
    }

    /// Puts the manifest `bytes` of media type `media_type` under `tag`.
    pub async fn push_manifest(&mut self, tag: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let url = format!("{}manifests/{tag}", self.base);
        let response = self
            .send(&url, |http| {
                http.put(&url)
                    .header(reqwest::header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self
                .status_error(&format!("manifest {tag}"), response)
                .await)
        }
    }

    fn action(&self) -> String {
        let verb = match self.access {
            Access::Pull => "pull",
            Access::Push => "push",
        };
        format!("cannot {verb} {}", self.reference.full_name())
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::msg(format!("{}: {message}", self.action()))
    }

    fn request_error(&self, url: &str, error: reqwest::Error) -> Error {
        if error.is_connect() {
            // The root cause (a DNS failure, a refused connection) says it all; the layers
            // of "error sending request" above it do not.
            let host = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| {
                    let host = u.host_str()?.to_string();
                    Some(match u.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
                })
                .unwrap_or_else(|| url.to_string());
            return self
                .error(unreachable(&host, &root_cause(&error), &self.reference))
                .hint(unreachable_hint(&host, &self.reference));
        }
        let text = error_chain(&error.without_url());
        let mut err = self.error(format!("{url}: {text}"));
        let lower = text.to_ascii_lowercase();
        let tls = ["tls", "certificate", "invalidcontenttype", "handshake"];
        if url.starts_with("https:") && tls.iter().any(|word| lower.contains(word)) {
            err = err.hint("for a registry that speaks plain HTTP, pass --insecure");
        }
        err
    }

    /// An error answer: its status and, from the first KiB of its body, the registry's own
    /// message; 401 and 403 say how to log in.
    async fn status_error(&self, what: &str, response: reqwest::Response) -> Error {
        let status = response.status();
        let body = match read_at_most(response, ERROR_BODY_MAX as u64).await {
            Ok(Body::Whole(bytes)) => bytes,
            _ => Vec::new(),
        };
        let mut message = format!("{what}: the registry answered {status}");
        if let Some(said) = registry_message(&body) {
            message.push_str(&format!(" ({said})"));
        }
        let mut err = self.error(message);
        if matches!(status.as_u16(), 401 | 403) {
            err = err.hint(format!(
                "log in with `sealer login {} -u USER --password-stdin`",
                self.reference.registry()
            ));
        }
        err
    }
}

/// Why a registry could not be reached, saying so when the host is Docker Hub's only because
/// the name had no registry host (a mistyped local name lands there).
fn unreachable(host: &str, cause: &str, reference: &Reference) -> String {
    let mut message = format!("cannot reach {host}: {cause}");
    if !reference.has_registry() {
        message.push_str(" (docker.io is where a name without a registry host points)");
    }
    message
}

/// What to do about a registry that cannot be reached: for a name without a registry host,
/// most often a local name mistyped; otherwise the host in the name, or the registry down.
fn unreachable_hint(host: &str, reference: &Reference) -> String {
    if reference.has_registry() {
        format!(
            "check the registry host in the name, and that the registry at {host} is up and reachable from here"
        )
    } else {
        "`sealer images` lists the local images; a name of another registry starts with its host (HOST:PORT/NAME:TAG)".to_string()
    }
}

/// The innermost cause of `error`, as its own words.
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    crate::diag::without_os_error(&cause.to_string())
}

fn basic(credentials: &Credentials) -> String {
    use base64::Engine as _;
    let pair = format!("{}:{}", credentials.username, credentials.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Reads a body up to `max` bytes: a `Content-Length` over it is refused before reading, and
/// an endless body stops one chunk past it.
async fn read_at_most(
    mut response: reqwest::Response,
    max: u64,
) -> std::result::Result<Body, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > max) {
        return Ok(Body::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > max {
            return Ok(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(body))
}

/// The first `{"errors": [{"code", "message"}]}` of an error body, one line, cut short.
fn registry_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = value.get("errors")?.get(0)?;
    let text = [first.get("code"), first.get("message")]
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(": ");
    let line: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_messages_are_one_short_line() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown"}]}"#;
        assert_eq!(
            registry_message(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifestunknown")
        );
        assert_eq!(registry_message(b"not json"), None);
        let long = format!(r#"{{"errors":[{{"message":"{}"}}]}}"#, "x".repeat(1000));
        assert_eq!(registry_message(long.as_bytes()).unwrap().len(), 200);
    }

    #[test]
    fn an_unreachable_registry_is_named_and_docker_hub_explained() {
        let short = Reference::parse("my-kubernets:v1.26.15").unwrap();
        assert_eq!(
            unreachable(
                "registry-1.docker.io",
                "failed to lookup address information",
                &short
            ),
            "cannot reach registry-1.docker.io: failed to lookup address information (docker.io \
             is where a name without a registry host points)"
        );
        let full = Reference::parse("reg.example:5000/k8s:v1").unwrap();
        assert_eq!(
            unreachable("reg.example:5000", "Connection refused", &full),
            "cannot reach reg.example:5000: Connection refused"
        );
        assert!(
            unreachable_hint("reg.example:5000", &full).contains("registry at reg.example:5000")
        );
        assert!(unreachable_hint("registry-1.docker.io", &short).starts_with("`sealer images`"));
    }
}
