//! What an SSH connection needs: address, user, credentials, host key policy, timers.
//! Secrets (password, key passphrase) never show in `Debug`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How long a TCP connect, and then the SSH handshake with authentication, may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive interval; a connection is dropped after [`KEEPALIVE_MAX`] unanswered keepalives.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(5);
/// Unanswered keepalives before a connection counts as dead (OpenSSH's `ServerAliveCountMax`).
pub const KEEPALIVE_MAX: usize = 3;

/// One host's SSH connection settings.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// The address as the Clusterfile writes it (an IP, or a name).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub host_keys: HostKeyPolicy,
    /// Bounds the TCP connect, the SSH handshake and authentication, each; and opening a
    /// channel on an open connection (a connection that cannot is presumed dead).
    pub connect_timeout: Duration,
    /// Keepalive interval (zero: no keepalives). [`KEEPALIVE_MAX`] unanswered keepalives
    /// end the connection, so a dead host's open connection is noticed.
    pub keepalive: Duration,
}

impl SshConfig {
    /// Port 22, ssh-agent authentication, `~/.ssh/known_hosts`, default timers.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> SshConfig {
        SshConfig {
            host: host.into(),
            port: 22,
            user: user.into(),
            auth: SshAuth::default(),
            host_keys: HostKeyPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keepalive: DEFAULT_KEEPALIVE,
        }
    }
}

/// Credentials, tried in this order: the key file, then the password. With neither, the
/// keys of the ssh-agent at `SSH_AUTH_SOCK`. A configured password also answers `sudo`.
#[derive(Clone, Default)]
pub struct SshAuth {
    pub key_file: Option<PathBuf>,
    pub key_passphrase: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("SshAuth")
            .field("key_file", &self.key_file)
            .field("key_passphrase", &redacted(&self.key_passphrase))
            .field("password", &redacted(&self.password))
            .finish()
    }
}

/// Which host keys are trusted. A key matching `pinned` or a `known_hosts` entry is accepted;
/// an unknown host only with `accept_new`; a changed key never.
#[derive(Debug, Clone, Default)]
pub struct HostKeyPolicy {
    /// Default: `~/.ssh/known_hosts`. Hashed entries and `[host]:port` entries are understood.
    pub known_hosts: Option<PathBuf>,
    /// An OpenSSH SHA256 fingerprint (`SHA256:...`) recorded in the state. When set, it alone
    /// decides: any other key is a changed key.
    pub pinned: Option<String>,
    /// Accept a host that neither `pinned` nor `known_hosts` knows (`--accept-new-host-keys`);
    /// the caller pins [`SshTransport::host_key_fingerprint`](super::SshTransport::host_key_fingerprint).
    pub accept_new: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut config = SshConfig::new("10.0.0.2", "deploy");
        config.auth = SshAuth {
            key_file: Some("/keys/id".into()),
            key_passphrase: Some("hunter2-passphrase".into()),
            password: Some("hunter2-password".into()),
        };
        let text = format!("{config:?} {config:#?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("<redacted>") && text.contains("/keys/id"),
            "{text}"
        );
    }
}
