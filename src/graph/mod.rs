//! Graph compilation: a Clusterfile and the metadata of its images become the resources of
//! `deploy.md` with their dependencies. Pure and deterministic; opens no connection.

pub mod compile;
pub mod explain;
pub mod input;
pub mod kubeadm;
pub mod launch;
pub mod policy;
pub mod resolve;

pub use compile::{compile, to_dot};
pub use input::ClusterInput;

#[cfg(test)]
pub(crate) mod tests;
