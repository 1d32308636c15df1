//! The SSH transport (russh): one connection per host, reused by every command as channels.
//!
//! - `config`: [`SshConfig`], [`SshAuth`], [`HostKeyPolicy`] (secrets never in `Debug`).
//! - `host_keys`: the host key check (pinned fingerprint, known_hosts, accept-new).
//! - `connect`: TCP connect, handshake, authentication (key file, password, ssh-agent).
//! - `run`: one command on a channel: remote `timeout`, sudo, stdin, output, deadline.
//!
//! Invariants: at most [`MAX_CHANNELS`] channels are open per connection (OpenSSH's default
//! `MaxSessions` is 10, and a refused channel would fail a step); a command is never sent
//! twice (a reconnect only happens before the command reached the host); every call returns
//! within its step timeout plus a grace (plus the connect timeouts of one reconnect),
//! whatever the host or the network does; passwords and passphrases appear in no command
//! line, message or `Debug` output.

mod config;
mod connect;
mod host_keys;
mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelOpenFailure};
use tokio::sync::{Mutex, Semaphore};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE, HostKeyPolicy, KEEPALIVE_MAX, SshAuth, SshConfig,
};
pub use host_keys::fingerprint;

use crate::transport::{
    Exec, ExecOutput, OutputSink, Stdin, Transport, TransportError, TransportErrorKind,
};
use connect::{Handle, dial, error};
use run::{Data, Ended, Input, Privilege, SudoFailure, remote_command};

/// Channels open at once on one connection; OpenSSH's `MaxSessions` defaults to 10.
pub const MAX_CHANNELS: usize = 8;
/// First pause before asking again for a channel the host refused (doubling, up to 0.5 s,
/// within the connect timeout).
const REFUSED_PAUSE: Duration = Duration::from_millis(10);

/// A host reached over SSH. Concurrent [`exec`]s multiplex over one connection; clones
/// share that connection and its channel cap (clone it into tasks that outlive a borrow).
///
/// [`exec`]: Transport::exec
#[derive(Clone)]
pub struct SshTransport {
    inner: Arc<Inner>,
}

struct Inner {
    config: SshConfig,
    /// The host key accepted by the first connection; reconnects must see the same key.
    fingerprint: String,
    /// That key in OpenSSH form, for a known_hosts line another client checks it with.
    host_key: String,
    connection: Mutex<Option<Arc<Connection>>>,
    next_id: AtomicU64,
    channels: Semaphore,
}

struct Connection {
    id: u64,
    handle: Handle,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("host", &self.inner.config.host)
            .field("port", &self.inner.config.port)
            .field("user", &self.inner.config.user)
            .field("host_key", &self.inner.fingerprint)
            .finish()
    }
}

/// Why a channel could not be started, and whether a new connection may help.
struct StartError {
    error: TransportError,
    /// The connection is dead or stuck; the command did not reach the host.
    reconnect: bool,
}

impl SshTransport {
    /// Connects and authenticates (checking the host key), so a bad host, key or password
    /// fails here, before any step runs.
    pub async fn connect(config: SshConfig) -> Result<SshTransport, TransportError> {
        let dialed = dial(&config, None).await?;
        Ok(SshTransport {
            inner: Arc::new(Inner {
                config,
                fingerprint: dialed.fingerprint,
                host_key: dialed.host_key,
                connection: Mutex::new(Some(Arc::new(Connection {
                    id: 0,
                    handle: dialed.handle,
                }))),
                next_id: AtomicU64::new(1),
                channels: Semaphore::new(MAX_CHANNELS),
            }),
        })
    }

    /// The host key's fingerprint, `SHA256:...` as OpenSSH prints it: what the state pins.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// The host key this transport verified, in OpenSSH form (`ssh-ed25519 AAAA...`): a
    /// known_hosts line made of it lets another client check the same host.
    pub fn host_key_openssh(&self) -> &str {
        &self.inner.host_key
    }

    pub fn config(&self) -> &SshConfig {
        &self.inner.config
    }

    /// Closes the connection politely (dropping the last clone closes it too); a later
    /// command connects again.
    pub async fn disconnect(&self) {
        if let Some(conn) = self.inner.connection.lock().await.take() {
            let _ = conn
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}

impl Inner {
    fn error(&self, kind: TransportErrorKind, message: String) -> TransportError {
        error(&self.config, kind, message)
    }

    fn privilege(&self) -> Privilege<'_> {
        if self.config.user == "root" {
            Privilege::Root
        } else {
            match &self.config.auth.password {
                Some(password) => Privilege::SudoPassword(password),
                None => Privilege::Sudo,
            }
        }
    }

    /// The open connection, or a new one if there is none or it died. `fresh` says whether
    /// this call made it.
    async fn connection(&self) -> Result<(Arc<Connection>, bool), TransportError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.handle.is_closed()
        {
            return Ok((Arc::clone(conn), false));
        }
        // Dropped here, so the old connection ends once its last channel is done.
        *slot = None;
        let dialed = dial(&self.config, Some(&self.fingerprint)).await?;
        let conn = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            handle: dialed.handle,
        });
        *slot = Some(Arc::clone(&conn));
        Ok((conn, true))
    }

    /// Forgets connection `id` if it is still the current one; the next call reconnects.
    async fn forget(&self, id: u64) {
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_some_and(|c| c.id == id) {
            *slot = None;
        }
    }

    /// Opens a channel and sends the command, reconnecting once if the connection turns out
    /// dead before the command was sent.
    async fn start(
        &self,
        command: &str,
    ) -> Result<(Arc<Connection>, Channel<Msg>), TransportError> {
        loop {
            let (conn, fresh) = self.connection().await?;
            match self.open(&conn, command).await {
                Ok(channel) => return Ok((conn, channel)),
                Err(e) if e.reconnect => {
                    self.forget(conn.id).await;
                    if fresh {
                        return Err(e.error);
                    }
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    async fn open(&self, conn: &Connection, command: &str) -> Result<Channel<Msg>, StartError> {
        let timeout = self.config.connect_timeout;
        let lost = |message: String| StartError {
            error: self.error(TransportErrorKind::Connection, message),
            reconnect: true,
        };
        let started = tokio::time::Instant::now();
        let mut pause = REFUSED_PAUSE;
        let channel = loop {
            match tokio::time::timeout(timeout, conn.handle.channel_open_session()).await {
                Ok(Ok(channel)) => break channel,
                // sshd frees a finished session's slot a moment after it confirmed the close,
                // so an open right behind a close can find all MaxSessions slots taken: a
                // refused open ran nothing, try again shortly.
                Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                    if started.elapsed() + pause > timeout {
                        return Err(StartError {
                            error: self.error(
                                TransportErrorKind::Connection,
                                format!(
                                    "the host refused to open a channel: {}",
                                    describe(&reason)
                                ),
                            ),
                            reconnect: false,
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Ok(Err(e)) => return Err(lost(format!("cannot open a channel: {e}"))),
                Err(_) => {
                    return Err(lost(format!(
                        "cannot open a channel: no answer within {}s (connection dead?)",
                        timeout.as_secs_f64()
                    )));
                }
            }
        };
        // The request only queues the message: if it fails, nothing reached the host.
        channel
            .exec(true, command)
            .await
            .map_err(|e| lost(format!("cannot send the command: {e}")))?;
        Ok(channel)
    }
}

fn describe(reason: &ChannelOpenFailure) -> String {
    match reason {
        ChannelOpenFailure::AdministrativelyProhibited => {
            "administratively prohibited (too many sessions? see MaxSessions)".to_string()
        }
        ChannelOpenFailure::ConnectFailed => {
            "no session slot free (sshd's MaxSessions reached?)".to_string()
        }
        ChannelOpenFailure::ResourceShortage => "resource shortage".to_string(),
        ChannelOpenFailure::Other { code, reason } => format!("{reason} (code {code})"),
        other => format!("{other:?}"),
    }
}

impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.inner.config.host
    }

    async fn exec(
        &self,
        exec: &Exec,
        sink: Option<&OutputSink>,
    ) -> Result<ExecOutput, TransportError> {
        self.inner.exec(exec, sink).await
    }
}

impl Inner {
    async fn exec(
        &self,
        exec: &Exec,
        sink: Option<&OutputSink>,
    ) -> Result<ExecOutput, TransportError> {
        // Opened before a channel is: a missing file fails without touching the host.
        let data = match &exec.stdin {
            Stdin::Null => Data::Null,
            Stdin::Bytes(bytes) => Data::Bytes(bytes.clone()),
            Stdin::File(path) => Data::File(tokio::fs::File::open(path).await.map_err(|e| {
                self.error(
                    TransportErrorKind::Io,
                    format!("cannot open stdin file {}: {e}", path.display()),
                )
            })?),
        };
        let input = Input {
            script: exec.script.clone().into_bytes(),
            data,
        };
        let _permit = self.channels.acquire().await.map_err(|_| {
            self.error(
                TransportErrorKind::Connection,
                "the transport is closed".to_string(),
            )
        })?;
        let privilege = self.privilege();
        let command = remote_command(exec.script.len(), exec.timeout, privilege);
        let (conn, channel) = self.start(&command).await?;
        let (rx, tx) = channel.split();
        let user = &self.config.user;
        match run::run(rx, tx, input, exec.timeout, privilege, sink).await {
            Ended::Exited(output) => Ok(output),
            Ended::Deadline(output) => {
                // The remote `timeout` should have ended it long ago: the host or the link
                // is not answering. A later call starts over with a new connection.
                self.forget(conn.id).await;
                Ok(output)
            }
            Ended::Lost => {
                let what = if conn.handle.is_closed() {
                    "the connection was lost"
                } else {
                    "the channel closed"
                };
                self.forget(conn.id).await;
                Err(self.error(
                    TransportErrorKind::Connection,
                    format!(
                        "{what} before the command finished (it may have partly run); \
                         host down or unreachable?"
                    ),
                ))
            }
            Ended::TooMuchOutput => Err(self.error(
                TransportErrorKind::Output,
                format!(
                    "the command printed more than {} MiB, the most sealer keeps of a command",
                    crate::transport::MAX_OUTPUT >> 20
                ),
            )),
            Ended::Refused => Err(self.error(
                TransportErrorKind::Connection,
                "the host refused to run the command".to_string(),
            )),
            Ended::StdinIo(e) => Err(self.error(
                TransportErrorKind::Io,
                format!("reading the command's stdin file failed: {e}"),
            )),
            Ended::Sudo(failure) => Err(self.error(
                TransportErrorKind::Auth,
                match failure {
                    SudoFailure::NeedsPassword(said) => format!(
                        "sudo needs a password for {user} ({said}): allow {user} NOPASSWD in \
                         sudoers, or configure the user's password for sudo"
                    ),
                    SudoFailure::WrongPassword => {
                        format!("sudo rejected the configured password for {user}")
                    }
                    SudoFailure::Other(said) => format!(
                        "sudo failed for {user}: {said}\nhint: {user} needs sudo rights, with \
                         NOPASSWD or a configured password"
                    ),
                },
            )),
        }
    }
}
