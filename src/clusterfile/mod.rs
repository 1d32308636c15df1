//! The Clusterfile: a multi-document YAML file with one Cluster, at most one Application,
//! any number of Config and Plugin documents, and kubeadm documents passed through.
//!
//! [`load`] reads and validates a file strictly: unknown kinds and fields, bad values and
//! broken rules between hosts are all reported together, each located at its value with a
//! hint. The result keeps the position of every user value ([`Spanned`]) so that checks made
//! later, by code that has the image metadata, can point at them via
//! [`Clusterfile::location`]. The resolved view (`hosts()`, `registry()`, the env helpers)
//! applies the defaults of the spec. Nothing here prints; only [`check_local_files`] looks at
//! the operator machine.
//!
//! The result is the same whatever the working directory and `$HOME`: [`load`] anchors
//! relative `sandbox` and `pk` paths at the Clusterfile's directory and keeps `~` as written
//! (expanded at apply, with the home the caller passes).

mod decode;
pub mod env;
pub mod hosts;
pub(crate) mod local_files;
pub mod model;
mod names;
pub mod registry;
mod resolve;
mod secret;
mod span;
pub(crate) mod suggest;
pub mod taint;
pub(crate) mod yaml;

pub use env::{DERIVED_KEYS, Env, EnvValue, IpNet};
pub use hosts::{Host, SshSettings, anchor, expand_home, normalize as normalize_path};
pub use local_files::check_local_files;
pub use model::*;
pub use registry::{RegistryEndpoint, RegistryKind};
pub use resolve::DEFAULT_DATA_ROOT;
pub use secret::{DigestKey, KEYED_PREFIX, Secret};
pub use span::{Span, Spanned};
pub use taint::{Taint, TaintEffect, TaintError};

use crate::diag::{Diagnostic, Error, IoContext, Location, Result};
use std::path::{Path, PathBuf};

/// Reads and validates a Clusterfile; every problem of the file is in the error. Its
/// relative `sandbox` and `pk` paths are anchored at its directory.
pub fn load(path: &Path) -> Result<Clusterfile> {
    let bytes = read_clusterfile(path)?;
    from_bytes(path, bytes)
}

/// Validates a Clusterfile read from `path` (UTF-8 checked here).
fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Clusterfile> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(not_utf8(path, e.as_bytes(), e.utf8_error().valid_up_to()).into()),
    };
    let mut file = parse(path, &text)?;
    file.origin = Some(absolute(path)?);
    Ok(file)
}

/// `path` made absolute from the working directory, once, lexically (see
/// [`hosts::normalize`]): the only place the working directory counts.
fn absolute(path: &Path) -> Result<PathBuf> {
    let path = std::path::absolute(path).with_path("cannot resolve", path)?;
    Ok(hosts::normalize(&path))
}

/// Validates the text of a Clusterfile; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Clusterfile> {
    decode::decode(path, text)
}

/// Parses an image's `plugins/*.yaml` file: Plugin documents only. `path` names it in
/// errors (e.g. `IMAGE:plugins/taint.yaml`).
pub fn parse_plugins(path: &Path, text: &str) -> Result<Vec<Plugin>> {
    decode::decode_plugins(path, text)
}

/// [`load`], with the digest of the bytes it read: a saved plan is bound to exactly them.
/// What `sealer validate` checks without images. The files it names on this machine (private
/// keys) are not read: validating and planning need no secret, only connecting does
/// ([`check_local_files`], at apply).
pub fn validate_file(path: &Path) -> Result<(Clusterfile, String)> {
    let bytes = read_clusterfile(path)?;
    let digest = crate::image::layout::sha256_digest(&bytes);
    let file = from_bytes(path, bytes)?;
    Ok((file, digest))
}

/// The bytes of the Clusterfile at `path`; a missing one says how to name another.
fn read_clusterfile(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::msg(format!(
            "no Clusterfile at {}",
            path.display()
        ))
        .hint("pass the file with -f PATH (the default is ./Clusterfile); examples/clusterfiles/ has some to start from")),
        other => other.with_path("read", path),
    }
}

fn not_utf8(path: &Path, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let valid = String::from_utf8_lossy(&bytes[..valid_up_to.min(bytes.len())]);
    let line = valid.matches('\n').count() + 1;
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let column = valid[line_start..].chars().count() + 1;
    Diagnostic::error("the file is not UTF-8 text")
        .at(Location::new(path, line, column))
        .hint("save the Clusterfile as UTF-8")
}

#[cfg(test)]
mod tests;
