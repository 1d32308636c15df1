//! What sealer runs on hosts.
//!
//! - [`transport`]: the one trait every host is reached through, and its errors.
//! - [`local`]: the operator machine itself (`ssh: {transport: local}`).
//! - [`quote`]: shell quoting; every value interpolated into a remote command goes through it.
//! - [`sync`]: content-addressed sync of a local tree to a host (the rendered rootfs).
//! - [`ssh`]: the SSH transport (russh): one connection per host, host keys, sudo, timeouts.
//!
//! Nothing here knows about plans or state: the executor in the `sealer` crate decides what
//! runs where, and records what finished.

pub mod local;
pub mod quote;
pub mod ssh;
pub mod steps;
pub mod sync;
pub mod transport;

pub use ssh::{HostKeyPolicy, SshAuth, SshConfig, SshTransport};
pub use transport::{
    Exec, ExecOutput, ExitStatus, MAX_OUTPUT, OutputChunk, OutputSink, Stdin, Transport,
    TransportError, TransportErrorKind,
};
