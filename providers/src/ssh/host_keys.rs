//! Host key verification: a key pinned in the state, or `known_hosts` entries (read with
//! `russh::keys::known_hosts`, which understands hashed and `[host]:port` entries).

use std::path::{Path, PathBuf};

use russh::keys::known_hosts::known_host_keys_path;
use russh::keys::{Algorithm, HashAlg, PublicKey};

use super::config::HostKeyPolicy;

/// The OpenSSH form of a key's fingerprint: `SHA256:` + unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What the policy says about the key a host offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// Neither pinned nor in known_hosts (accepted only with `accept_new`).
    Unknown,
    /// Pinned or known_hosts holds another key for this host.
    Changed {
        expected: String,
    },
}

/// The policy for one host, with its known_hosts entries read up front (so the handshake
/// does no file I/O, and the host key algorithms already known can be preferred).
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    pinned: Option<String>,
    known: Vec<PublicKey>,
    known_hosts: Option<PathBuf>,
    pub(crate) accept_new: bool,
}

impl HostKeyCheck {
    /// Reads `policy.known_hosts` (default `~/.ssh/known_hosts`; a missing file knows no host).
    /// `pin` overrides `policy.pinned`: a transport that reconnects holds on to the key it
    /// accepted first.
    pub(crate) fn load(
        host: &str,
        port: u16,
        policy: &HostKeyPolicy,
        pin: Option<&str>,
    ) -> Result<HostKeyCheck, String> {
        let known_hosts = policy.known_hosts.clone().or_else(default_known_hosts);
        let known = match &known_hosts {
            Some(path) => known_host_keys_path(host, port, path)
                .map_err(|e| format!("cannot read known hosts file {}: {e}", path.display()))?
                .into_iter()
                .map(|(_, key)| key)
                .collect(),
            None => Vec::new(),
        };
        Ok(HostKeyCheck {
            pinned: pin
                .or(policy.pinned.as_deref())
                .map(|p| p.trim().to_string()),
            known,
            known_hosts,
            accept_new: policy.accept_new,
        })
    }

    pub(crate) fn check(&self, key: &PublicKey) -> Verdict {
        let got = fingerprint(key);
        if let Some(pinned) = &self.pinned {
            return if *pinned == got {
                Verdict::Accepted
            } else {
                Verdict::Changed {
                    expected: pinned.clone(),
                }
            };
        }
        if self.known.iter().any(|k| k.key_data() == key.key_data()) {
            return Verdict::Accepted;
        }
        // Another key of the same type is the classic changed key; a key of another type
        // only (the host stopped offering the recorded one) is refused all the same, so a
        // man in the middle cannot pass as "new" by offering a different algorithm.
        let recorded = self
            .known
            .iter()
            .find(|k| k.algorithm() == key.algorithm())
            .or(self.known.first());
        match recorded {
            Some(k) => Verdict::Changed {
                expected: fingerprint(k),
            },
            None => Verdict::Unknown,
        }
    }

    /// Host key algorithms in order of preference: those known_hosts records for this host
    /// first (as OpenSSH does, so the host offers the key we can check), then ed25519, ECDSA, RSA.
    pub(crate) fn preferred_algorithms(&self) -> Vec<Algorithm> {
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for key in &self.known {
            let known: Vec<Algorithm> = match key.algorithm() {
                Algorithm::Rsa { .. } => vec![
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    },
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha256),
                    },
                ],
                other => vec![other],
            };
            for a in known {
                if !algorithms.contains(&a) {
                    algorithms.push(a);
                }
            }
        }
        for a in russh::Preferred::DEFAULT.key.iter() {
            if !algorithms.contains(a) {
                algorithms.push(a.clone());
            }
        }
        algorithms
    }

    /// Where the trusted keys came from, for messages.
    pub(crate) fn sources(&self) -> String {
        let file = self
            .known_hosts
            .as_deref()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "~/.ssh/known_hosts".to_string());
        match &self.pinned {
            Some(_) => format!("the key pinned in the state ({file} not consulted)"),
            None => file,
        }
    }
}

fn default_known_hosts() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".ssh").join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::parse_public_key_base64;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";
    /// `example.com`, hashed (from russh's own known_hosts tests).
    const HASHED: &str = "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";
    const HASHED_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(b64: &str) -> PublicKey {
        parse_public_key_base64(b64).unwrap()
    }

    fn check_with(known_hosts: &str, host: &str, port: u16, pinned: Option<&str>) -> HostKeyCheck {
        let dir = tempfile_dir();
        let path = dir.join("known_hosts");
        std::fs::write(&path, known_hosts).unwrap();
        let policy = HostKeyPolicy {
            known_hosts: Some(path),
            pinned: pinned.map(str::to_string),
            accept_new: false,
        };
        let check = HostKeyCheck::load(host, port, &policy, None).unwrap();
        let _ = std::fs::remove_dir_all(dir);
        check
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sealer-hostkeys-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn known_hosts_entries_plain_bracketed_and_hashed() {
        let file = format!(
            "# comment\n10.0.0.2 ssh-ed25519 {KEY_A}\n[10.0.0.3]:2222 ssh-ed25519 {KEY_B}\n{HASHED}\n"
        );
        let a = check_with(&file, "10.0.0.2", 22, None);
        assert_eq!(a.check(&key(KEY_A)), Verdict::Accepted);
        assert_eq!(
            a.check(&key(KEY_B)),
            Verdict::Changed {
                expected: fingerprint(&key(KEY_A))
            }
        );
        let b = check_with(&file, "10.0.0.3", 2222, None);
        assert_eq!(b.check(&key(KEY_B)), Verdict::Accepted);
        // The same address on port 22 is another host for known_hosts.
        let b22 = check_with(&file, "10.0.0.3", 22, None);
        assert_eq!(b22.check(&key(KEY_B)), Verdict::Unknown);
        let hashed = check_with(&file, "example.com", 22, None);
        assert_eq!(hashed.check(&key(HASHED_KEY)), Verdict::Accepted);
        assert_eq!(
            check_with(&file, "10.9.9.9", 22, None).check(&key(KEY_A)),
            Verdict::Unknown
        );
    }

    #[test]
    fn a_pin_alone_decides() {
        let file = format!("10.0.0.2 ssh-ed25519 {KEY_A}\n");
        let pin_b = fingerprint(&key(KEY_B));
        let pinned = check_with(&file, "10.0.0.2", 22, Some(&pin_b));
        assert_eq!(pinned.check(&key(KEY_B)), Verdict::Accepted);
        assert_eq!(
            pinned.check(&key(KEY_A)),
            Verdict::Changed { expected: pin_b }
        );
    }

    #[test]
    fn fingerprints_are_openssh_sha256() {
        let fp = fingerprint(&key(KEY_A));
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 43);
    }

    #[test]
    fn known_algorithms_are_preferred() {
        let check = check_with("", "10.0.0.2", 22, None);
        assert_eq!(check.preferred_algorithms()[0], Algorithm::Ed25519);
    }
}
