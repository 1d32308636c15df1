//! Image references: `[registry/]repository[:tag|@sha256:digest]`, Docker's grammar.
//!
//! Names are kept as the user wrote them, minus the implied parts: `docker.io/library/x`
//! and `x` are the same image, displayed as `x:latest`.

use crate::diag::{Error, Result};
use std::fmt;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `None` means Docker Hub.
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |why: &str| {
            Error::msg(format!("invalid image reference {text:?}: {why}")).hint(
                "references look like NAME[:TAG], REGISTRY[:PORT]/NAME[:TAG] or NAME@sha256:DIGEST",
            )
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.len() > 255 + 128 + 72 {
            return Err(invalid("too long"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|why| invalid(&why))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|why| invalid(&why))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_registry(first).map_err(|why| invalid(&why))?;
                (Some(first.to_string()), remainder)
            }
            _ => (None, name),
        };
        check_repository(repository).map_err(|why| invalid(&why))?;
        let mut reference = Reference {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        };
        // Docker Hub spellings all mean the same image.
        if matches!(
            reference.registry.as_deref(),
            Some("docker.io" | "index.docker.io" | "registry-1.docker.io")
        ) {
            reference.registry = None;
        }
        if reference.registry.is_none()
            && let Some(short) = reference.repository.strip_prefix("library/")
            && !short.contains('/')
        {
            reference.repository = short.to_string();
        }
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// The registry host[:port] to talk to (Docker Hub when none was written).
    pub fn registry(&self) -> &str {
        self.registry.as_deref().unwrap_or(DEFAULT_REGISTRY)
    }

    /// The name in full, as the registry is asked for it: `docker.io/library/x:v1` for `x:v1`.
    pub fn full_name(&self) -> String {
        let mut out = format!("{}/{}", self.registry(), self.remote_repository());
        if let Some(tag) = &self.tag {
            out.push_str(&format!(":{tag}"));
        }
        if let Some(digest) = &self.digest {
            out.push_str(&format!("@{digest}"));
        }
        out
    }

    pub fn has_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// The repository path as the registry knows it (`library/x` for Docker Hub officials).
    pub fn remote_repository(&self) -> String {
        if self.registry.is_none() && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same name with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// `[registry/]repository` without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn check_digest(digest: &str) -> std::result::Result<(), String> {
    match super::layout::digest_problem(digest) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok
        || tag.len() > 128
        || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!(
            "invalid tag {tag:?} (letters, digits, '_', '.', '-'; at most 128)"
        ));
    }
    Ok(())
}

fn check_registry(host: &str) -> std::result::Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5)
    {
        return Err(format!("invalid registry port in {host:?}"));
    }
    let bracketed = name.starts_with('[') && name.ends_with(']');
    let ok = !name.is_empty()
        && (bracketed
            || name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !ok {
        return Err(format!("invalid registry host {host:?}"));
    }
    Ok(())
}

fn check_repository(repo: &str) -> std::result::Result<(), String> {
    if repo.is_empty() {
        return Err("empty repository name".into());
    }
    for component in repo.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && alnum(bytes[0])
            && alnum(bytes[bytes.len() - 1])
            && bytes
                .iter()
                .all(|&b| alnum(b) || b == b'.' || b == b'_' || b == b'-');
        if !ok {
            return Err(format!(
                "invalid repository component {component:?} (lowercase letters, digits and \
                 separators '.', '_', '-', not at either end)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_docker_hub_and_default_tag() {
        assert_eq!(norm("redis"), "redis:latest");
        assert_eq!(norm("docker.io/library/redis:7"), "redis:7");
        let full = |s: &str| Reference::parse(s).unwrap().full_name();
        assert_eq!(
            full("my-kubernetes:v1.26.15"),
            "docker.io/library/my-kubernetes:v1.26.15"
        );
        assert_eq!(full("sealerio/k8s"), "docker.io/sealerio/k8s:latest");
        assert_eq!(full("reg.example:5000/a/b:v1"), "reg.example:5000/a/b:v1");
        assert_eq!(norm("index.docker.io/sealerio/k8s:v1"), "sealerio/k8s:v1");
        assert_eq!(
            Reference::parse("redis").unwrap().remote_repository(),
            "library/redis"
        );
    }

    #[test]
    fn registries_with_ports() {
        let r = Reference::parse("127.0.0.1:5000/apps/nginx:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "apps/nginx");
        assert_eq!(r.tag(), Some("v1"));
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x:latest");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("x@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(d.as_str()));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:xyz",
            "a@md5:00",
            "a b",
            "reg.io:x/a",
            ":tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
