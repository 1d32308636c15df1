//! The transport trait: how a command reaches a host. SSH and local implement it; the
//! executor only ever talks to hosts through it.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// A command to run on a host.
#[derive(Debug, Clone)]
pub struct Exec {
    /// A bash script. Every value interpolated into it was quoted with [`crate::quote`].
    pub script: String,
    /// What the script reads on stdin.
    pub stdin: Stdin,
    /// The command is killed after this long (remotely, with `timeout`), and the call
    /// returns within it plus a short grace even when the host stops answering.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub enum Stdin {
    #[default]
    Null,
    Bytes(Vec<u8>),
    /// Streamed from a local file (e.g. a tar of files to sync), never loaded whole.
    File(PathBuf),
}

impl Exec {
    pub fn new(script: impl Into<String>, timeout: Duration) -> Exec {
        Exec {
            script: script.into(),
            stdin: Stdin::Null,
            timeout,
        }
    }

    pub fn with_stdin(mut self, stdin: Stdin) -> Exec {
        self.stdin = stdin;
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    /// Killed by a signal (remote: the SSH exit-signal).
    Signal,
    /// The step timeout expired.
    TimedOut,
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal => f.write_str("killed by a signal"),
            ExitStatus::TimedOut => f.write_str("timed out"),
        }
    }
}

/// The most output (stdout and stderr each) a command's result keeps: a host that floods its
/// output cannot exhaust the operator's memory. Beyond it the command fails with
/// [`TransportErrorKind::Output`]; what was streamed to a sink was streamed.
pub const MAX_OUTPUT: usize = 256 << 20;

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A piece of a running command's output, for live progress and `--json` events.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub stderr: bool,
    pub bytes: Vec<u8>,
}

pub type OutputSink = tokio::sync::mpsc::UnboundedSender<OutputChunk>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// TCP connect failed or timed out.
    Connect,
    /// The host key is unknown (and not accepted) or changed.
    HostKey,
    /// Authentication failed, or sudo needs a password.
    Auth,
    /// The connection broke or a channel could not be opened.
    Connection,
    /// Local I/O (reading a key file, a stdin file).
    Io,
    /// The command printed more than [`MAX_OUTPUT`].
    Output,
}

/// A failure to run a command at all (a command that ran and failed is an [`ExecOutput`]).
#[derive(Debug, Clone)]
pub struct TransportError {
    pub host: String,
    pub kind: TransportErrorKind,
    pub message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.host, self.message)
    }
}

impl std::error::Error for TransportError {}

/// A host commands run on.
pub trait Transport: Send + Sync {
    /// The host's address, as the Clusterfile names it.
    fn host(&self) -> &str;

    /// Runs a command; streams its output to `sink` as it comes.
    fn exec(
        &self,
        exec: &Exec,
        sink: Option<&OutputSink>,
    ) -> impl Future<Output = Result<ExecOutput, TransportError>> + Send;
}
