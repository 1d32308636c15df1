//! One operation per CLI command. The CLI parses flags into these arguments and renders
//! what they return; the operations never print.

mod apply;
mod images;
mod import;
mod plan;
mod preflight;
mod refresh;
mod registry;
mod run;
mod state;
pub mod status;

pub use apply::*;
pub use images::*;
pub use import::{Adopted, Import, ImportedResource, import};
pub use plan::*;
pub use preflight::{
    Check, Facts, Finding, HostReport, Preflight, Severity, check as check_hosts, preflight,
};
pub use refresh::*;
pub use registry::*;
pub use run::*;
pub use state::*;
pub use status::*;

use std::path::PathBuf;

/// Settings resolved once from flags and the environment before any command runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$SEALER_HOME`, default `~/.sealer`: the image store, credentials and state live here.
    pub home: PathBuf,
    /// The state database: `--state PATH`, else `$SEALER_HOME/state.db`.
    pub state_path: PathBuf,
    /// The operator's `$HOME`: what `~` in the Clusterfile's `pk` and `sandbox` stands for
    /// where those files are used (validation, apply). Plans keep `~` as written.
    pub user_home: Option<PathBuf>,
    /// What an image's layers may unpack to, together: `$SEALER_MAX_UNPACKED`, else
    /// [`UNPACKED_DEFAULT`](crate::limits::UNPACKED_DEFAULT).
    pub max_unpacked: u64,
    /// The least a rootfs relay must save the operator's uplink: `$SEALER_RELAY_MIN`, else
    /// [`RELAY_MIN_DEFAULT`](crate::limits::RELAY_MIN_DEFAULT).
    pub relay_min: u64,
}

impl Settings {
    /// Reads `SEALER_HOME` (else `$HOME/.sealer`), `HOME` and `SEALER_MAX_UNPACKED`.
    pub fn from_env() -> crate::Result<Settings> {
        let user_home = user_home();
        let home =
            match std::env::var_os("SEALER_HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home),
                None => match &user_home {
                    Some(home) => home.join(".sealer"),
                    None => {
                        return Err(crate::Error::msg("neither SEALER_HOME nor HOME is set").hint(
                        "set SEALER_HOME to the directory sealer keeps its images and state in",
                    ));
                    }
                },
            };
        Ok(Settings {
            state_path: home.join(crate::state::STATE_FILE_NAME),
            home,
            user_home,
            max_unpacked: size_var(
                crate::limits::UNPACKED_VAR,
                crate::limits::UNPACKED_DEFAULT,
                "16GiB or 512MiB",
                false,
            )?,
            relay_min: size_var(
                crate::limits::RELAY_MIN_VAR,
                crate::limits::RELAY_MIN_DEFAULT,
                "0 (always relay) or 256MiB",
                true,
            )?,
        })
    }

    /// Uses another state database (`--state PATH`).
    pub fn with_state_path(mut self, path: Option<PathBuf>) -> Settings {
        if let Some(path) = path {
            self.state_path = path;
        }
        self
    }

    pub fn store(&self) -> crate::Result<crate::image::Store> {
        crate::image::Store::open(&self.home)
    }
}

/// A size from the environment (`$SEALER_MAX_UNPACKED`, `$SEALER_RELAY_MIN`; unset or
/// empty: the default), read once, when settings are resolved; a value that is not a size is
/// an error, never the default in silence.
/// `zero_ok`: the value is a threshold, for which nothing is meaningful; a limit of nothing
/// is not (`parse_size` refuses it).
fn size_var(var: &str, default: u64, example: &str, zero_ok: bool) -> crate::Result<u64> {
    match std::env::var(var) {
        Ok(text) if zero_ok && text.trim() == "0" => Ok(0),
        Ok(text) if !text.trim().is_empty() => crate::limits::parse_size(&text).map_err(|why| {
            crate::Error::msg(format!("{var}: {why}"))
                .hint(format!("{var} is a size: bytes, or e.g. {example}"))
        }),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(crate::Error::msg(format!(
            "{var}: not a size (not even UTF-8)"
        ))),
    }
}

/// `$HOME` (unset or empty: none), read once, when settings are resolved.
fn user_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}
