//! Opening one authenticated SSH connection: TCP connect, handshake with host key check,
//! authentication (key file, password, or ssh-agent).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{MethodKind, MethodSet};
use tokio::net::TcpStream;

use super::config::{KEEPALIVE_MAX, SshConfig};
use super::host_keys::{HostKeyCheck, Verdict, fingerprint};
use crate::transport::{TransportError, TransportErrorKind};

/// An authenticated connection.
pub(crate) type Handle = client::Handle<Client>;

/// Receives the host key during the handshake and applies the policy; the verdict is kept for
/// the error message, as russh itself only reports "unknown server key".
pub(crate) struct Client {
    check: Arc<HostKeyCheck>,
    seen: Arc<Mutex<Option<(String, Verdict, String)>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = server_public_key.public_key();
        let verdict = self.check.check(&key);
        let accepted = match verdict {
            Verdict::Accepted => true,
            Verdict::Unknown => self.check.accept_new,
            Verdict::Changed { .. } => false,
        };
        if let Ok(mut seen) = self.seen.lock() {
            // The OpenSSH form too: what a known_hosts line for another client says.
            let openssh = key.to_openssh().unwrap_or_default();
            *seen = Some((fingerprint(&key), verdict, openssh));
        }
        Ok(accepted)
    }
}

/// A freshly authenticated connection and the host key it accepted: its fingerprint and
/// its OpenSSH form (`ssh-ed25519 AAAA...`).
pub(crate) struct Dialed {
    pub(crate) handle: Handle,
    pub(crate) fingerprint: String,
    pub(crate) host_key: String,
}

/// Key exchange methods in order of preference: curve25519 first (about a third cheaper in
/// CPU than OpenSSH's default post-quantum hybrid, which matters when fanning out on 2 cores).
const KEX: &[russh::kex::Name] = &[
    russh::kex::CURVE25519,
    russh::kex::CURVE25519_PRE_RFC_8731,
    russh::kex::MLKEM768X25519_SHA256,
    russh::kex::DH_GEX_SHA256,
    russh::kex::DH_G16_SHA512,
    russh::kex::DH_G14_SHA256,
    russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
    russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// AES-GCM first: with AES-NI it moves files several times faster than ChaCha20-Poly1305.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_CTR,
];

pub(crate) fn error(
    config: &SshConfig,
    kind: TransportErrorKind,
    message: String,
) -> TransportError {
    TransportError {
        host: config.host.clone(),
        kind,
        message,
    }
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Connects, checks the host key (`pin` overrides the configured pin), authenticates.
pub(crate) async fn dial(config: &SshConfig, pin: Option<&str>) -> Result<Dialed, TransportError> {
    let check = HostKeyCheck::load(&config.host, config.port, &config.host_keys, pin)
        .map_err(|m| error(config, TransportErrorKind::HostKey, m))?;
    let check = Arc::new(check);
    let timeout = config.connect_timeout;
    let target = format!("{}:{}", config.host, config.port);

    let tcp = match tokio::time::timeout(timeout, connect_tcp(&config.host, config.port)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(error(
                config,
                TransportErrorKind::Connect,
                format!("cannot connect to {target}: {e}"),
            ));
        }
        Err(_) => {
            return Err(error(
                config,
                TransportErrorKind::Connect,
                format!(
                    "cannot connect to {target}: timed out after {}",
                    seconds(timeout)
                ),
            ));
        }
    };
    // Small requests and replies: do not let Nagle hold them back.
    let _ = tcp.set_nodelay(true);

    let keepalive = (!config.keepalive.is_zero()).then_some(config.keepalive);
    let russh_config = client::Config {
        client_id: russh::SshId::Standard(Cow::Borrowed(concat!(
            "SSH-2.0-sealer_",
            env!("CARGO_PKG_VERSION")
        ))),
        preferred: russh::Preferred {
            kex: Cow::Borrowed(KEX),
            key: Cow::Owned(check.preferred_algorithms()),
            cipher: Cow::Borrowed(CIPHERS),
            ..russh::Preferred::DEFAULT
        },
        keepalive_interval: keepalive,
        keepalive_max: KEEPALIVE_MAX,
        // Bounds a write stalled on a dead peer, which keepalives alone do not interrupt;
        // answered keepalives keep an idle connection from reaching it.
        inactivity_timeout: keepalive.and_then(|k| k.checked_mul(KEEPALIVE_MAX as u32 + 2)),
        ..client::Config::default()
    };
    let seen = Arc::new(Mutex::new(None));
    let handler = Client {
        check: Arc::clone(&check),
        seen: Arc::clone(&seen),
    };
    let handshake = client::connect_stream(Arc::new(russh_config), tcp, handler);
    let handle = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            let seen = seen.lock().ok().and_then(|s| s.clone());
            return Err(match seen {
                Some((got, Verdict::Changed { expected }, _)) => error(
                    config,
                    TransportErrorKind::HostKey,
                    format!(
                        "host key changed: expected {expected}, got {got}\n\
                         hint: if the host was reinstalled, remove its old key from {}; \
                         otherwise the connection may be intercepted",
                        check.sources()
                    ),
                ),
                Some((got, Verdict::Unknown, _)) if !check.accept_new => error(
                    config,
                    TransportErrorKind::HostKey,
                    format!(
                        "host key unknown: the host offered {got}, which neither {} nor a pin \
                         in the state knows\n\
                         hint: check the fingerprint, then pass --accept-new-host-keys to pin it",
                        check.sources()
                    ),
                ),
                _ => error(
                    config,
                    TransportErrorKind::Connection,
                    format!("SSH handshake with {target} failed: {e}"),
                ),
            });
        }
        Err(_) => {
            return Err(error(
                config,
                TransportErrorKind::Connect,
                format!(
                    "SSH handshake with {target} timed out after {}",
                    seconds(timeout)
                ),
            ));
        }
    };
    let (fingerprint, host_key) = match seen.lock().ok().and_then(|s| s.clone()) {
        Some((fp, _, key)) => (fp, key),
        None => {
            return Err(error(
                config,
                TransportErrorKind::HostKey,
                "the handshake finished without a host key".to_string(),
            ));
        }
    };
    let mut handle = handle;
    match tokio::time::timeout(timeout, authenticate(config, &mut handle)).await {
        Ok(Ok(())) => Ok(Dialed {
            handle,
            fingerprint,
            host_key,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(error(
            config,
            TransportErrorKind::Auth,
            format!(
                "authentication as {} timed out after {}",
                config.user,
                seconds(timeout)
            ),
        )),
    }
}

/// An IP literal connects directly; a name is resolved first (every address tried in turn).
async fn connect_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => TcpStream::connect((ip, port)).await,
        Err(_) => TcpStream::connect((host, port)).await,
    }
}

fn method_names(methods: &MethodSet) -> String {
    let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

async fn authenticate(config: &SshConfig, handle: &mut Handle) -> Result<(), TransportError> {
    let auth = &config.auth;
    let user = config.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let mut offered: Option<MethodSet> = None;
    let auth_error = |m: String| error(config, TransportErrorKind::Auth, m);
    let lost = |e: russh::Error| {
        error(
            config,
            TransportErrorKind::Connection,
            format!("connection lost during authentication: {e}"),
        )
    };

    if let Some(path) = &auth.key_file {
        let key = russh::keys::load_secret_key(path, auth.key_passphrase.as_deref()).map_err(
            |e| match e {
                russh::keys::Error::KeyIsEncrypted => auth_error(format!(
                    "key file {} is encrypted: configure its passphrase",
                    path.display()
                )),
                russh::keys::Error::IO(io) => error(
                    config,
                    TransportErrorKind::Io,
                    format!("cannot read key file {}: {io}", path.display()),
                ),
                _ if auth.key_passphrase.is_some() => auth_error(format!(
                    "cannot load key file {} with the configured passphrase (wrong passphrase, \
                     or not a private key)",
                    path.display()
                )),
                other => auth_error(format!("cannot load key file {}: {other}", path.display())),
            },
        )?;
        let hash = if key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(lost)?
                .flatten()
        } else {
            None
        };
        let result = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(lost)?;
        tried.push(format!("publickey with {}", path.display()));
        match result {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => offered = Some(remaining_methods),
        }
    }

    if let Some(password) = &auth.password {
        let result = handle
            .authenticate_password(user, password.as_str())
            .await
            .map_err(lost)?;
        tried.push("password".to_string());
        match result {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                // PAM setups take passwords through keyboard-interactive only.
                if remaining_methods.contains(&MethodKind::KeyboardInteractive) {
                    tried.push("keyboard-interactive".to_string());
                    if keyboard_interactive(handle, user, password)
                        .await
                        .map_err(lost)?
                    {
                        return Ok(());
                    }
                }
                offered = Some(remaining_methods);
            }
        }
    }

    if auth.key_file.is_none() && auth.password.is_none() {
        let mut agent = AgentClient::connect_env().await.map_err(|e| {
            auth_error(format!(
                "no key file or password is configured for {user}, and the ssh-agent is not \
                 usable: {e}\nhint: set a key file or password in the Clusterfile, or start \
                 an ssh-agent and export SSH_AUTH_SOCK"
            ))
        })?;
        let identities = agent
            .request_identities()
            .await
            .map_err(|e| auth_error(format!("cannot list the ssh-agent's keys: {e}")))?;
        let mut count = 0;
        for identity in identities {
            let AgentIdentity::PublicKey { key, .. } = identity else {
                continue;
            };
            count += 1;
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(lost)?
                    .flatten()
            } else {
                None
            };
            match handle
                .authenticate_publickey_with(user, key, hash, &mut agent)
                .await
            {
                Ok(AuthResult::Success) => return Ok(()),
                Ok(AuthResult::Failure {
                    remaining_methods, ..
                }) => offered = Some(remaining_methods),
                // The agent would not sign with this key: try the next one.
                Err(_) => {}
            }
        }
        tried.push(format!("publickey with {count} key(s) of the ssh-agent"));
    }

    let server = offered
        .map(|m| format!("; the server accepts: {}", method_names(&m)))
        .unwrap_or_default();
    Err(auth_error(format!(
        "authentication failed for user {user} (tried: {}{server})",
        tried.join(", ")
    )))
}

/// Answers every prompt with the password, for a few rounds.
async fn keyboard_interactive(
    handle: &mut Handle,
    user: &str,
    password: &str,
) -> Result<bool, russh::Error> {
    let mut response = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    for _ in 0..4 {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| password.to_string()).collect();
                response = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}
