//! sealer: build, share and run clusters as a declarative plan/apply engine.
//!
//! Module map (and the on-disk files each one owns):
//! - [`diag`]: the error type and its compiler-style rendering.
//! - [`kubeversion`]: the KUBEVERSION constraint language (Masterminds/semver v3).
//! - [`kubefile`]: Kubefile lexing and parsing.
//! - [`clusterfile`]: the Clusterfile (`-f FILE`): strict, located validation, the typed model
//!   with positions, and its resolved view (hosts, registry, env defaults and derived keys).
//! - [`home`]: the modes of what sealer keeps in `$SEALER_HOME` (directories 0700, files 0600).
//! - [`image`]: Sealer Images: references, metadata, OCI layouts, the local store
//!   (`$SEALER_HOME/images`), builds, registries and credentials (`$SEALER_HOME/auth.json`).
//! - [`limits`]: what untrusted input may make sealer hold or write (docs/operations.md,
//!   "Limits").
//! - [`resource`]: resources, the unit of graphs, plans and state.
//! - [`kinds`]: one module per resource kind: typed attributes, compilation, steps.
//! - [`rootfs`]: images unpacked (`$SEALER_HOME/cache/rootfs/`) and each cluster's rendered
//!   rootfs (`$SEALER_HOME/cache/rendered/<cluster>/`): Configs, app files, templates.
//! - [`state`]: the state store (`$SEALER_HOME/state.db`, SQLite; schema in `state-schema/`).
//! - [`ops`]: one function per CLI command; the CLI layer only parses flags and renders.

pub mod clock;
pub mod clusterfile;
pub mod diag;
pub mod exec;
pub mod graph;
pub mod home;
pub mod image;
pub mod kinds;
pub mod kubefile;
pub mod kubeversion;
pub mod limits;
pub mod ops;
pub mod plan;
pub mod resource;
pub mod rootfs;
pub mod state;

pub use diag::{Diagnostic, Error, Result};
