//! What sealer runs on hosts.
//!
//! - [`transport`]: the one trait every host is reached through, and its errors.
//! - [`local`]: the operator machine itself (`ssh: {transport: local}`).
//! - [`quote`]: shell quoting; every value interpolated into a remote command goes through it.
//!
//! Nothing here knows about plans or state: the executor in the `sealer` crate decides what
//! runs where, and records what finished.

pub mod local;
pub mod quote;
pub mod steps;
pub mod transport;

pub use transport::{
    Exec, ExecOutput, ExitStatus, OutputChunk, OutputSink, Stdin, Transport, TransportError,
    TransportErrorKind,
};
