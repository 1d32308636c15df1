//! Optional encrypted secrets. Without `SEALER_STATE_KEY` the state keeps nothing secret
//! (digests only); with it, an operator may let the state carry secrets, sealed with
//! XChaCha20-Poly1305 under a key derived from theirs.
//!
//! XChaCha20 rather than ChaCha20: its 192-bit nonces can be drawn at random for every value
//! without any risk of reuse. The associated data binds each ciphertext to its cluster's
//! lineage and its name, so a ciphertext copied to another row or another state fails to
//! open instead of passing for that secret.

use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;

/// The length of the random nonce stored with each secret.
pub(crate) const NONCE_LEN: usize = 24;

/// The operator's key for the state's secrets, as a derived 256-bit key. `Debug` never
/// shows it.
#[derive(Clone)]
pub struct StateKey {
    key: [u8; 32],
}

impl StateKey {
    /// The environment variable the CLI reads the key from.
    pub const ENV: &'static str = "SEALER_STATE_KEY";
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// Derives the key from the operator's key text (the value of `SEALER_STATE_KEY`).
    ///
    /// The derivation is one SHA-256 with a domain prefix, not a password hash: the text
    /// must be a random key (`openssl rand -base64 32`), not a memorable password, and short
    /// ones are refused.
    pub fn new(text: &str) -> Result<StateKey> {
        if text.len() < StateKey::MIN_LEN {
            return Err(Error::msg(format!(
                "{} is too short ({} bytes; at least {} are needed)",
                StateKey::ENV,
                text.len(),
                StateKey::MIN_LEN
            ))
            .hint(generate_hint()));
        }
        let mut hasher = Sha256::new();
        hasher.update(b"sealer state key v1\0");
        hasher.update(text.as_bytes());
        Ok(StateKey {
            key: hasher.finalize().into(),
        })
    }

    /// Seals `value`; returns the random nonce and the ciphertext (with its tag).
    pub(crate) fn seal(&self, aad: &[u8], value: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
        let nonce = super::ids::random_bytes::<NONCE_LEN>()?;
        let cipher = XChaCha20Poly1305::new(&Key::from(self.key));
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: value, aad })
            .map_err(|_| Error::msg("cannot encrypt the secret"))?;
        Ok((nonce, ciphertext))
    }

    /// Opens a sealed value; `None` when the key is not the one it was sealed with, or the
    /// stored bytes were changed.
    pub(crate) fn open(&self, aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let cipher = XChaCha20Poly1305::new(&Key::from(self.key));
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

/// A secret read back from the state. `Debug` and `Display` never show it; [`Secret::expose`]
/// is the one way to the clear text, easy to find in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The clear text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a secret's ciphertext is bound to: its cluster's lineage and its name.
pub(crate) fn associated_data(lineage: &str, name: &str) -> Vec<u8> {
    format!("sealer state secret v1\0{lineage}\0{name}").into_bytes()
}

pub(crate) fn generate_hint() -> String {
    format!(
        "set {} to a random key, e.g. `export {}=\"$(openssl rand -base64 32)\"`, and keep it safe: without it the secrets cannot be read",
        StateKey::ENV,
        StateKey::ENV
    )
}
