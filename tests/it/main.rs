//! End-to-end tests of the `sealer` binary with real parts: a real OCI registry
//! (Debian's docker-registry), real skopeo, real files. One test binary, shared support.

mod support;

mod apply;
mod archives;
mod build;
mod cli_docs;
mod containerd;
mod distribution;
mod examples;
mod fuzz;
mod go_sealer;
mod hostile;
mod import;
mod interop;
mod plan;
mod plan_is_what_runs;
mod quickstart;
mod readme;
mod registry;
mod reliability;
mod rootfs;
mod ssh;
mod state;
mod state_postgres;
mod status;
mod store;
mod testbed;
mod upgrade;
mod validate;
