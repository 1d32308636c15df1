//! One operation per CLI command. The CLI parses flags into these arguments and renders
//! what they return; the operations never print.

mod apply;
mod images;
mod plan;
mod registry;
mod state;

pub use apply::*;
pub use images::*;
pub use plan::*;
pub use registry::*;
pub use state::*;

use std::path::PathBuf;

/// Settings resolved once from flags and the environment before any command runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$SEALER_HOME`, default `~/.sealer`: the image store, credentials and state live here.
    pub home: PathBuf,
    /// The state database: `--state PATH`, else `$SEALER_HOME/state.db`.
    pub state_path: PathBuf,
}

impl Settings {
    /// Reads `SEALER_HOME` (else `$HOME/.sealer`).
    pub fn from_env() -> crate::Result<Settings> {
        let home =
            match std::env::var_os("SEALER_HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home),
                None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                    Some(home) => PathBuf::from(home).join(".sealer"),
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
