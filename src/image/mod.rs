//! Sealer Images: references, metadata, OCI layouts, the local store, builds, `save`/`load`,
//! registries and their credentials.

pub mod archive;
pub mod auth;
pub mod build;
pub mod inspect;
pub mod layout;
pub mod metadata;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod store;
pub mod transfer;

pub use metadata::{App, AppType, ImageMetadata, ImageType, Platform};
pub use reference::Reference;
pub use store::{Image, Store};
