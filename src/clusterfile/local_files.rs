//! Checks against the operator machine: the files a Clusterfile names there.

use super::hosts::{anchor, expand_home};
use super::model::Clusterfile;
use super::span::Spanned;
use crate::diag::{Diagnostic, io_reason};
use std::fs::File;
use std::path::Path;

/// Every `pk` (private key) must be a readable file here, `~` being `home` and a relative
/// path being anchored like the plan's; errors point at the `pk` value.
pub fn check_local_files(file: &Clusterfile, home: Option<&Path>) -> Vec<Diagnostic> {
    let cluster = &file.cluster;
    let keys: Vec<&Spanned<String>> = cluster
        .ssh
        .pk
        .iter()
        .chain(cluster.hosts.iter().filter_map(|g| g.ssh.pk.as_ref()))
        .collect();
    let mut out = Vec::new();
    for pk in keys {
        let path = expand_home(&anchor(&pk.value, file.dir()), home);
        let shown = if path.as_os_str() == pk.value.as_str() {
            format!("`{}`", pk.value)
        } else {
            format!("`{}` ({})", pk.value, path.display())
        };
        let problem = match File::open(&path) {
            Ok(f) => match f.metadata() {
                Ok(m) if m.is_dir() => Some("is a directory".to_string()),
                Ok(_) => None,
                Err(e) => Some(io_reason(&e)),
            },
            Err(e) => Some(io_reason(&e)),
        };
        if let Some(why) = problem {
            out.push(
                Diagnostic::error(format!("private key {shown}: {why}"))
                    .at(file.location(pk.span))
                    .hint("pk is a path on this machine, read to log in to the hosts"),
            );
        }
    }
    out
}
