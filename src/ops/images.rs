//! Local image operations: build, images, inspect, tag, rmi, save, load.

use super::Settings;
use crate::diag::{Diagnostic, Error, IoContext, Result};
use crate::image::build::{self, BuildOptions};
use crate::image::{Image, Platform, Reference, inspect, transfer};
use std::path::Path;

/// A summary row of `sealer images`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub name: String,
    pub id: String,
    pub digest: String,
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    pub platform: String,
    pub size: u64,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildOutcome {
    pub names: Vec<Reference>,
    pub image: Image,
    pub warnings: Vec<Diagnostic>,
}

/// Builds an image. A base image missing from the store is fetched with `pull_base`
/// (given its name and the target platform).
pub async fn build<F, Fut>(
    settings: &Settings,
    options: &BuildOptions,
    pull_base: F,
) -> Result<BuildOutcome>
where
    F: FnOnce(Reference, Platform) -> Fut,
    Fut: std::future::Future<Output = Result<Image>>,
{
    if options.tags.is_empty() {
        return Err(Error::msg("sealer build needs a name").hint("pass -t NAME[:TAG]"));
    }
    let store = settings.store()?;
    let prepared = build::prepare(options)?;
    let mut base = match &prepared.base {
        None => None,
        Some(reference) => match store.find(&reference.to_string())? {
            Some((_, image)) => Some(image),
            None => Some(
                pull_base(reference.clone(), prepared.platform().clone())
                    .await
                    .map_err(|e| prepared.base_unavailable(e, store.nearest_name(reference)))?,
            ),
        },
    };
    // A base Go Sealer built records its kubeadm defaults and plugins only in its rootfs:
    // read them there, so the new image's metadata inherits them as it does ours.
    if let (Some(reference), Some(image)) = (&prepared.base, base.as_mut())
        && let Some(shipped) = super::plan::shipped_by_rootfs(settings, &store, (reference, image))?
        && let Some(meta) = image.metadata.as_mut()
    {
        meta.kubeadm_config = shipped.kubeadm;
        meta.plugins = shipped.plugins;
    }
    let built = build::build(&store, prepared, base, options).await?;
    Ok(BuildOutcome {
        names: options.tags.clone(),
        image: built.image,
        warnings: built.warnings,
    })
}

pub fn list_images(settings: &Settings) -> Result<Vec<ImageSummary>> {
    let store = settings.store()?;
    let mut rows = Vec::new();
    for (name, descriptor) in store.list()? {
        let image = Image::read(store.layout(), &descriptor)
            .map_err(|e| e.context(format!("image {name}")))?;
        rows.push(ImageSummary {
            name: name.to_string(),
            id: image.id().to_string(),
            digest: image.digest().to_string(),
            image_type: image
                .metadata
                .as_ref()
                .map(|m| m.image_type.as_str().to_string()),
            platform: image.config.platform().to_string(),
            size: image.size(),
        });
    }
    Ok(rows)
}

pub fn inspect_image(settings: &Settings, name: &str) -> Result<serde_json::Value> {
    let store = settings.store()?;
    let (reference, image) = store.get(name)?;
    Ok(inspect::inspect_json(&reference, &image))
}

pub fn tag_image(settings: &Settings, source: &str, target: &str) -> Result<Reference> {
    let store = settings.store()?;
    let target = Reference::parse(target)?;
    if target.digest().is_some() {
        return Err(
            Error::msg(format!("cannot tag with a digest reference: {target}"))
                .hint("a tag names an image; a digest is fixed by its content"),
        );
    }
    let (_, image) = store.get(source)?;
    let mut descriptor = image.manifest_descriptor.clone();
    descriptor.platform = Some(image.config.platform());
    store.tag(&target, &descriptor)?;
    Ok(target)
}

/// Removes names; blobs no remaining name uses are deleted. Returns the removed names.
pub fn remove_images(settings: &Settings, names: &[String]) -> Result<Vec<Reference>> {
    let store = settings.store()?;
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let found = match Reference::parse(name) {
            Ok(r) if store.list()?.iter().any(|(n, _)| *n == r) => Some(r),
            _ => store.find(name)?.map(|(r, _)| r),
        };
        match found {
            Some(reference) => {
                store.untag(&reference)?;
                removed.push(reference);
            }
            None => {
                let d = Diagnostic::error(format!("no image {name} in the local store"));
                let near = Reference::parse(name)
                    .ok()
                    .and_then(|r| store.nearest_name(&r));
                errors.push(match near {
                    Some(near) => d.hint(format!("did you mean {near}?")),
                    None => d.hint("`sealer images` lists the local images"),
                });
            }
        }
    }
    store.gc()?;
    if errors.is_empty() {
        Ok(removed)
    } else {
        Err(Error::many(errors))
    }
}

pub fn save_image(settings: &Settings, name: &str, dir: &Path) -> Result<Reference> {
    let store = settings.store()?;
    let (reference, image) = store.get(name)?;
    transfer::save(&store, &reference, &image, dir)?;
    Ok(reference)
}

/// Loads the images of an OCI layout directory, or of an archive (OCI or docker) at `input`.
/// Of a multi-platform index, `platform`'s image is loaded (default: this machine's).
pub fn load_images(
    settings: &Settings,
    input: &Path,
    name: Option<&str>,
    platform: Option<&Platform>,
) -> Result<Vec<Reference>> {
    let store = settings.store()?;
    let name = name.map(Reference::parse).transpose()?;
    let platform = platform.cloned().unwrap_or_else(Platform::host);
    if input.is_dir() {
        return transfer::load(&store, input, input, name.as_ref(), &platform);
    }
    if !input.exists() {
        return Err(Error::msg(format!("{} does not exist", input.display()))
            .hint("load an OCI layout directory or an image archive (.tar)"));
    }
    // Unpacked next to the store, so the blobs are copied within one filesystem; the temp
    // directory goes when this returns.
    let cache = crate::rootfs::cache_dir(&store);
    crate::home::private_dir(&cache)?;
    // A load killed midway left its directory: the PID in the name tells it is gone.
    crate::rootfs::stale_temps_removed(&cache);
    let temp = tempfile::Builder::new()
        .prefix(&format!(".tmp-load-{}-", std::process::id()))
        .tempdir_in(&cache)
        .with_path("cannot create a temp directory in", &cache)?;
    let layout = crate::image::archive::unpack(input, temp.path(), settings.max_unpacked)?;
    transfer::load(&store, &layout, input, name.as_ref(), &platform)
}
