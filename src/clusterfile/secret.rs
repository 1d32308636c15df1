//! User-supplied secrets (SSH and registry passwords, key passphrases): never shown, never
//! stored in clear text; the state keeps their digest (spec, deliberate difference 7), keyed
//! with the state's own random key ([`DigestKey`]) so that a digest in a plan artifact
//! cannot be checked against a dictionary by whoever reads the artifact.

use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest, Sha256};
use std::fmt;

/// What keyed digests start with.
pub const KEYED_PREFIX: &str = "hmac-sha256:";

/// The key digests of secrets (and of what may hold one: env, Config data) are made with:
/// 32 random bytes the state keeps and no plan carries.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey(Option<[u8; 32]>);

impl DigestKey {
    pub fn new(key: [u8; 32]) -> DigestKey {
        DigestKey(Some(key))
    }

    /// The plain SHA-256 digests sealer recorded before it keyed them: only to recognise
    /// what an older state holds (`plan::rekey`).
    pub fn legacy() -> DigestKey {
        DigestKey(None)
    }

    /// A random key for what never leaves this process (`validate`, `graph`).
    pub fn throwaway() -> crate::diag::Result<DigestKey> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| crate::diag::Error::msg(format!("no randomness from the OS: {e}")))?;
        Ok(DigestKey::new(key))
    }

    /// `hmac-sha256:` and the hex HMAC of `bytes` (`sha256:` and the plain digest for
    /// [`DigestKey::legacy`]).
    pub fn digest(&self, bytes: &[u8]) -> String {
        match &self.0 {
            Some(key) => {
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key)
                    .expect("HMAC takes a key of any length");
                mac.update(bytes);
                format!("{KEYED_PREFIX}{}", hex(&mac.finalize().into_bytes()))
            }
            None => format!("sha256:{}", hex(&Sha256::digest(bytes))),
        }
    }
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "DigestKey(keyed)"
        } else {
            "DigestKey(legacy)"
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret string. `Debug` and `Display` print `(sensitive value)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Its digest with `key`: enough to detect a change without keeping the value.
    pub fn digest(&self, key: &DigestKey) -> String {
        key.digest(self.0.as_bytes())
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
