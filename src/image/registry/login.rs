//! `sealer login`: credentials checked against the registry before they are stored, and the
//! parsing of the `WWW-Authenticate` challenges registries answer with.

use super::Connection;
use super::is_loopback;
use crate::diag::{Error, Result};
use crate::image::auth::Credentials;
use std::time::Duration;

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
        // A refused connection or a DNS failure says it all; the layers above it do not.
        let cause = if e.is_connect() {
            super::session::root_cause(&e)
        } else {
            crate::diag::error_chain(&e)
        };
        let lower = cause.to_ascii_lowercase();
        // Nothing answered at all: the address, not the protocol, is wrong.
        let silent = ["refused", "lookup", "timed out", "unreachable"]
            .iter()
            .any(|word| lower.contains(word));
        let err = Error::msg(format!("cannot reach {url}: {cause}"));
        if scheme == "https" && !silent {
            err.hint("for a registry that speaks plain HTTP, pass --insecure")
        } else {
            err.hint(
                "check the registry's host and port, and that it is up and reachable from here",
            )
        }
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
        ))
        .hint("check the user name (-u) and the password given on stdin (--password-stdin)"))
    } else {
        Err(Error::msg(format!(
            "login to {registry} failed: the registry answered {status}"
        ))
        .hint(format!(
            "check that {registry} is an OCI registry: it answers GET /v2/ with 200 or 401"
        )))
    }
}

/// `Bearer realm="...",service="..."` → pairs.
pub(super) fn parse_challenge(header: &str) -> Vec<(String, String)> {
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
