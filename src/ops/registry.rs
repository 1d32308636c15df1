//! Registry operations: login, logout, push, pull.

use super::Settings;
use crate::diag::Result;
use crate::image::auth::{AuthStore, Credentials};
use crate::image::registry::{self, Connection, PushReport};
use crate::image::{Image, Platform, Reference};

pub async fn login(
    settings: &Settings,
    registry: &str,
    username: &str,
    password: &str,
    insecure: bool,
) -> Result<()> {
    let credentials = Credentials {
        username: username.to_string(),
        password: password.to_string(),
    };
    registry::login(registry, &credentials, Connection { insecure }).await?;
    AuthStore::new(&settings.home).set(registry, &credentials)
}

pub fn logout(settings: &Settings, registry: &str) -> Result<bool> {
    AuthStore::new(&settings.home).remove(registry)
}

pub async fn push(settings: &Settings, name: &str, insecure: bool) -> Result<PushReport> {
    let store = settings.store()?;
    let auth = AuthStore::new(&settings.home);
    registry::push(&store, &auth, name, Connection { insecure }).await
}

/// Pulls `name`; of a multi-platform index, the image of `platform` (default: this
/// machine's).
pub async fn pull(
    settings: &Settings,
    name: &str,
    platform: Option<&Platform>,
    insecure: bool,
) -> Result<(Reference, Image)> {
    let reference = Reference::parse(name)?;
    let store = settings.store()?;
    let auth = AuthStore::new(&settings.home);
    let platform = platform.cloned().unwrap_or_else(Platform::host);
    let image = registry::pull(
        &store,
        &auth,
        &reference,
        &platform,
        Connection { insecure },
    )
    .await
    .map_err(|e| match store.nearest_name(&reference) {
        // A near local name is the likelier cause than the registry.
        Some(near) => e.replace_hints(vec![format!("did you mean {near} (in the local store)?")]),
        None => e,
    })?;
    Ok((reference, image))
}

/// Fetches the base image of a build that is not in the store (no extra context: the
/// build locates a failure at the Kubefile's FROM).
pub async fn pull_base(
    settings: &Settings,
    reference: &Reference,
    platform: &Platform,
) -> Result<Image> {
    let store = settings.store()?;
    let auth = AuthStore::new(&settings.home);
    registry::pull(&store, &auth, reference, platform, Connection::default()).await
}

/// Fetches an image a Clusterfile names that is not in the store (no extra context: the
/// caller says which Clusterfile line needs it).
pub async fn fetch_image(
    settings: &Settings,
    reference: &Reference,
    platform: &Platform,
) -> Result<Image> {
    let store = settings.store()?;
    let auth = AuthStore::new(&settings.home);
    registry::pull(&store, &auth, reference, platform, Connection::default()).await
}
