//! User-supplied secrets (SSH and registry passwords, key passphrases): never shown, never
//! stored in clear text; the state keeps their digest (spec, deliberate difference 7).

use sha2::{Digest, Sha256};
use std::fmt;

/// A secret string. `Debug` and `Display` print `(sensitive value)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// `sha256:` and the hex digest: enough to detect a change without keeping the value.
    pub fn digest(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for byte in hash.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// The clear text, for the transport that needs it (SSH login, registry auth) only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive value)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive value)")
    }
}
