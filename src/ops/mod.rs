//! One operation per CLI command. The CLI parses flags into these arguments and renders
//! what they return; the operations never print.

mod images;
mod registry;

pub use images::*;
pub use registry::*;

use std::path::PathBuf;

/// Settings resolved once from flags and the environment before any command runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$SEALER_HOME`, default `~/.sealer`: the image store, credentials and state live here.
    pub home: PathBuf,
}

impl Settings {
    /// Reads `SEALER_HOME` (else `$HOME/.sealer`).
    pub fn from_env() -> crate::Result<Settings> {
        if let Some(home) = std::env::var_os("SEALER_HOME").filter(|h| !h.is_empty()) {
            return Ok(Settings {
                home: PathBuf::from(home),
            });
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(Settings {
                home: PathBuf::from(home).join(".sealer"),
            }),
            None => Err(crate::Error::msg("neither SEALER_HOME nor HOME is set")
                .hint("set SEALER_HOME to the directory sealer keeps its images and state in")),
        }
    }

    pub fn store(&self) -> crate::Result<crate::image::Store> {
        crate::image::Store::open(&self.home)
    }
}
