//! `sealer build`: Kubefile + context (+ base image) → a reproducible OCI image in the store.
//!
//! Two phases so the caller can fetch the base image in between: [`prepare`] parses and
//! resolves the Kubefile and names the base; [`build`] assembles and stores the image.

mod context;
mod fetch;
mod layer;
pub mod recipe;

use self::context::{Context, Found, rootfs_path};
use self::layer::{Tree, write_layer};
use self::recipe::{CNI_LABEL_PREFIX, CSI_LABEL_PREFIX, KUBE_VERSION_LABEL, Recipe, Step};
use crate::diag::{Diagnostic, Error, IoContext, Result};
use crate::image::layout::sha256_digest;
use crate::image::metadata::{
    App, AppDigest, AppType, ImageMetadata, ImageType, Platform, app_root,
};
use crate::image::oci::{
    CONFIG_MEDIA_TYPE, ContainerConfig, Descriptor, ImageConfig, MANIFEST_MEDIA_TYPE, Manifest,
    RootFs,
};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};
use crate::kubefile::{self, AppKind, Kubefile, Pos, Word};
use crate::limits::{DOCUMENT_MAX, format_size};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What `sealer build` was asked to do, after flag parsing.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub kubefile: PathBuf,
    pub context: PathBuf,
    pub tags: Vec<Reference>,
    pub image_type: Option<ImageType>,
    pub build_args: BTreeMap<String, String>,
    pub labels: Vec<(String, String)>,
    pub platform: Option<Platform>,
    /// Record the build time in the config (makes the digest change every build).
    pub timestamp: bool,
}

/// A parsed and resolved Kubefile, waiting for its base image.
#[derive(Debug)]
pub struct Prepared {
    kubefile: Kubefile,
    recipe: Recipe,
    platform: Platform,
    /// The base image to load (or pull) before [`build`]; `None` for `FROM scratch`.
    pub base: Option<Reference>,
    pub warnings: Vec<Diagnostic>,
}

impl Prepared {
    /// The platform being built for (the base image must have it).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }
}

/// The image a build stored, and what it warned about.
#[derive(Debug)]
pub struct Built {
    pub image: Image,
    pub warnings: Vec<Diagnostic>,
}

impl Prepared {
    /// A failure to fetch the base image, located at the FROM that names it, with what
    /// the fetch said.
    /// `near` is the local image whose name is closest, when the name looks like a typo.
    pub fn base_unavailable(&self, error: Error, near: Option<String>) -> Error {
        let recipe::From::Image { name, .. } = &self.recipe.from else {
            return error;
        };
        let inner = error.diagnostics();
        let said: Vec<&str> = inner.iter().map(|d| d.message.as_str()).collect();
        let mut located = self.kubefile.error_at(
            name.pos,
            format!(
                "base image {} is not in the local store and cannot be pulled: {}",
                name.text,
                said.join("; ")
            ),
        );
        // What the pull knew to advise (e.g. `sealer login` after a 401) comes first.
        located.notes = inner.iter().flat_map(|d| d.notes.clone()).collect();
        // A near local name is the likelier cause than the registry.
        located.hints = match near {
            Some(near) => vec![format!("did you mean {near} (in the local store)?")],
            None => inner.iter().flat_map(|d| d.hints.clone()).collect(),
        };
        if located.hints.is_empty() {
            located = located.hint(
                "check the name and that its registry is reachable, or `sealer load` / `sealer build` it first",
            );
        }
        Error::from(located)
    }
}

pub fn prepare(options: &BuildOptions) -> Result<Prepared> {
    let path = &options.kubefile;
    if !options.context.is_dir() {
        return Err(Error::msg(format!(
            "build context {} is not a directory",
            options.context.display()
        ))
        .hint("pass the directory that holds the Kubefile and what it copies: `sealer build -t NAME DIR`"));
    }
    let source = std::fs::read_to_string(path)
        .with_path("cannot read Kubefile", path)
        .map_err(|e| e.hint("pass the Kubefile with -f PATH"))?;
    let kubefile = kubefile::parse(path, &source)?;
    // The target platform decides ${ARCH}; FROM --platform only selects the base's.
    let from_platform = kubefile.nodes.iter().find_map(|n| match &n.instruction {
        kubefile::Instruction::From {
            platform: Some(p), ..
        } => Some(p.clone()),
        _ => None,
    });
    let platform = match (&options.platform, &from_platform) {
        (Some(p), _) => p.clone(),
        (None, Some(word)) => Platform::parse(&word.text).ok_or_else(|| {
            Error::from(
                kubefile
                    .error_at(word.pos, format!("invalid platform {:?}", word.text))
                    .hint("write os/arch, e.g. linux/amd64"),
            )
        })?,
        (None, None) => Platform::host(),
    };
    let recipe = recipe::resolve(&kubefile, &options.build_args, &platform.architecture)?;
    let base = match &recipe.from {
        recipe::From::Scratch => None,
        recipe::From::Image { name, platform: p } => {
            if let Some(p) = p
                && Platform::parse(&p.text).as_ref() != Some(&platform)
            {
                return Err(kubefile
                    .error_at(
                        p.pos,
                        format!(
                            "FROM --platform={} differs from the target platform {platform}",
                            p.text
                        ),
                    )
                    .hint("pass the same --platform to sealer build")
                    .into());
            }
            Some(Reference::parse(&name.text).map_err(|e| {
                Error::from(kubefile.error_at(name.pos, e.diagnostics()[0].message.clone()))
            })?)
        }
    };
    let warnings = recipe.warnings.clone();
    Ok(Prepared {
        kubefile,
        recipe,
        platform,
        base,
        warnings,
    })
}

/// An app of the image being built, with where it was declared.
struct NewApp {
    kind: AppKind,
    pos: Pos,
    helm: bool,
}

pub async fn build(
    store: &Store,
    prepared: Prepared,
    base: Option<Image>,
    options: &BuildOptions,
) -> Result<Built> {
    let Prepared {
        kubefile: file,
        recipe,
        platform,
        warnings: mut all_warnings,
        ..
    } = prepared;
    let base_meta = match &base {
        None => None,
        Some(image) => {
            let from_word = match &recipe.from {
                recipe::From::Image { name, .. } => name.clone(),
                recipe::From::Scratch => Word {
                    text: String::new(),
                    pos: recipe.from_pos,
                },
            };
            let Some(meta) = image.metadata.clone() else {
                return Err(file
                    .error_at(
                        from_word.pos,
                        format!("{} is not a Sealer Image (its manifest has no sealer.image.extension annotation)", from_word.text),
                    )
                    .hint("FROM takes scratch or an image built by sealer")
                    .into());
            };
            let base_platform = image.config.platform();
            if base_platform.os != platform.os
                || base_platform.architecture != platform.architecture
            {
                return Err(file
                    .error_at(
                        from_word.pos,
                        format!("{} is built for {base_platform}, not for the target platform {platform}", from_word.text),
                    )
                    .hint("pass --platform to build for the base image's platform")
                    .into());
            }
            Some(meta)
        }
    };

    let ctx = Context::new(&options.context).map_err(Error::msg)?;
    let downloads = tempfile::Builder::new()
        .prefix("sealer-build-")
        .tempdir()
        .map_err(|e| Error::msg(format!("cannot create a temp directory: {e}")))?;
    let mut tree = Tree::default();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut new_apps: BTreeMap<String, NewApp> = BTreeMap::new();
    let mut app_order: Vec<String> = Vec::new();
    let mut http: Option<reqwest::Client> = None;

    for step in &recipe.steps {
        match step {
            Step::Copy { sources, dest, .. } => {
                if let Err(d) = copy_step(&file, &ctx, &mut tree, sources, dest) {
                    errors.push(d);
                }
            }
            Step::App {
                pos,
                kind,
                name,
                sources,
            } => {
                let root = app_root(&name.text).trim_end_matches('/').to_string();
                if new_apps.remove(&name.text).is_some() {
                    tree.clear_dir(&root);
                    app_order.retain(|n| n != &name.text);
                } else if base_meta
                    .as_ref()
                    .is_some_and(|m| m.app(&name.text).is_some())
                {
                    tree.add_opaque(&root);
                }
                tree.add_dir(&root);
                let mut helm = false;
                for source in sources {
                    let placed = place_app_source(
                        &file,
                        &ctx,
                        &mut tree,
                        &root,
                        name,
                        source,
                        downloads.path(),
                        &mut http,
                    )
                    .await;
                    match placed {
                        Ok((is_helm, warnings)) => {
                            helm |= is_helm;
                            all_warnings.extend(warnings);
                        }
                        Err(d) => errors.push(d),
                    }
                }
                new_apps.insert(
                    name.text.clone(),
                    NewApp {
                        kind: *kind,
                        pos: *pos,
                        helm,
                    },
                );
                app_order.push(name.text.clone());
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::many(errors));
    }

    // Merge the apps: inherited ones keep their place, redefined ones are replaced there.
    let mut apps: Vec<App> = base_meta
        .as_ref()
        .map(|m| m.apps.clone())
        .unwrap_or_default();
    for name in &app_order {
        let new = &new_apps[name];
        let root = app_root(name).trim_end_matches('/').to_string();
        let files = tree.files_under(&root);
        let files: Vec<String> = files
            .into_iter()
            .filter(|f| !f.ends_with(layer::OPAQUE_WHITEOUT))
            .collect();
        let app = App {
            name: name.clone(),
            app_type: if new.helm {
                Some(AppType::Helm)
            } else {
                detect_type(&files)
            },
            files,
            cmds: Vec::new(),
            env: BTreeMap::new(),
            version: "v1".to_string(),
        };
        match apps.iter_mut().find(|a| a.name == *name) {
            Some(slot) => *slot = app,
            None => apps.push(app),
        }
    }
    let known: BTreeSet<String> = apps.iter().map(|a| a.name.clone()).collect();
    let known_list = || known.iter().cloned().collect::<Vec<_>>().join(", ");
    for (name, (cmd, pos)) in &recipe.app_cmds {
        match apps.iter_mut().find(|a| a.name == *name) {
            Some(app) => app.cmds = vec![cmd.clone()],
            None => errors.push(
                file.error_at(*pos, format!("APPCMDS for unknown app {name}"))
                    .hint(format!(
                        "declare it with APP {name} ... first (known apps: {})",
                        known_list()
                    )),
            ),
        }
    }
    for (name, (env, pos)) in &recipe.app_env {
        match apps.iter_mut().find(|a| a.name == *name) {
            Some(app) => app.env.extend(env.clone()),
            None => errors.push(
                file.error_at(*pos, format!("APPENV for unknown app {name}"))
                    .hint(format!("known apps: {}", known_list())),
            ),
        }
    }
    for name in &app_order {
        let Some(app) = apps.iter().find(|a| a.name == *name) else {
            continue;
        };
        if app.app_type.is_none() && app.cmds.is_empty() {
            let listed = if app.files.is_empty() {
                "none".to_string()
            } else {
                app.files.join(", ")
            };
            errors.push(
                file.error_at(
                    new_apps[name].pos,
                    format!("app {name}: cannot detect its type (files: {listed}): add APPCMDS {name} [...]"),
                )
                .hint("an app is helm (a chart directory), kube (only .yaml/.yml files) or shell (only .sh files); anything else needs APPCMDS"),
            );
        }
    }
    let mut launch_apps = Vec::new();
    if let Some((_, names)) = &recipe.launch {
        for word in names {
            if known.contains(&word.text) {
                launch_apps.push(word.text.clone());
            } else {
                errors.push(
                    file.error_at(word.pos, format!("LAUNCH names unknown app {}", word.text))
                        .hint(if known.is_empty() {
                            "declare apps with APP NAME local://PATH before launching them"
                                .to_string()
                        } else {
                            format!("known apps: {}", known_list())
                        }),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::many(errors));
    }

    // Labels: inherited (minus KUBEVERSION, which is not inherited), then the Kubefile's,
    // then --label, then the generated ones.
    let mut labels: BTreeMap<String, String> = base
        .as_ref()
        .map(|b| b.config.config.labels.clone())
        .unwrap_or_default();
    labels.remove(KUBE_VERSION_LABEL);
    for (key, value) in &recipe.labels {
        labels.insert(key.text.clone(), value.clone());
    }
    for (key, value) in &options.labels {
        labels.insert(key.clone(), value.clone());
    }
    for name in &app_order {
        let prefix = match new_apps[name].kind {
            AppKind::Cni => CNI_LABEL_PREFIX,
            AppKind::Csi => CSI_LABEL_PREFIX,
            AppKind::App => continue,
        };
        labels.insert(format!("{prefix}-{name}"), "true".to_string());
    }

    let _writer = store.writer_lock()?;
    let base_layers: Vec<Descriptor> = base
        .as_ref()
        .map(|b| b.manifest.layers.clone())
        .unwrap_or_default();
    let mut diff_ids: Vec<String> = base
        .as_ref()
        .map(|b| b.config.rootfs.diff_ids.clone())
        .unwrap_or_default();
    let mut layers = base_layers;
    let mut app_digests = base_meta
        .as_ref()
        .map(|m| m.app_digests.clone())
        .unwrap_or_default();
    for name in &app_order {
        app_digests.remove(name);
    }
    if !tree.is_empty() || layers.is_empty() {
        let layer = write_layer(store.layout(), &tree)?;
        for name in &app_order {
            let prefix = app_root(name);
            let files: BTreeMap<String, String> = layer
                .file_digests
                .iter()
                .filter_map(|(p, d)| {
                    p.strip_prefix(&prefix)
                        .map(|rel| (rel.to_string(), d.clone()))
                })
                .filter(|(rel, _)| !rel.ends_with(layer::OPAQUE_WHITEOUT))
                .collect();
            app_digests.insert(
                name.clone(),
                AppDigest {
                    digest: digest_of_files(&files),
                    files,
                },
            );
        }
        layers.push(layer.descriptor);
        diff_ids.push(layer.diff_id);
    }

    let image_type = options
        .image_type
        .or(base_meta.as_ref().map(|m| m.image_type))
        .unwrap_or(ImageType::KubeInstaller);
    // Sealer's default type is a cluster image, but one that does not say its Kubernetes
    // version cannot be deployed (`sealer validate` refuses it): say so now, while the fix
    // is one flag away.
    let runtime_version = crate::graph::resolve::RUNTIME_VERSION_LABEL;
    if image_type == ImageType::KubeInstaller
        && labels
            .get(runtime_version)
            .is_none_or(|v| v.trim().is_empty())
    {
        all_warnings.push(
            Diagnostic::warning(format!(
                "this is a cluster image (--type kube-installer{}) that does not say its \
                 Kubernetes version (label {runtime_version}): a Cluster cannot use it as \
                 spec.image",
                if options.image_type.is_some() {
                    ""
                } else {
                    ", the default"
                }
            ))
            .hint("an image of apps only is an app image: build it with --type app-installer")
            .hint(format!(
                "a cluster image is built FROM one (e.g. FROM my-kubernetes:v1.26.15) or sets \
                 LABEL {runtime_version}=v1.26.15"
            )),
        );
    }
    let mut env = base_meta
        .as_ref()
        .map(|m| m.env.clone())
        .unwrap_or_default();
    env.extend(recipe.env.clone());
    let metadata = ImageMetadata {
        image_type,
        apps,
        launch_apps,
        cmds: recipe.cmds.clone(),
        env,
        container_images: base_meta
            .as_ref()
            .map(|m| m.container_images.clone())
            .unwrap_or_default(),
        app_digests,
        kubeadm_config: match read_text(&tree, "etc/kubeadm.yml")? {
            Some(text) => Some(text),
            None => base_meta.as_ref().and_then(|m| m.kubeadm_config.clone()),
        },
        plugins: {
            let mut plugins = base_meta
                .as_ref()
                .map(|m| m.plugins.clone())
                .unwrap_or_default();
            for name in tree.files_under("plugins") {
                if !name.contains('/')
                    && (name.ends_with(".yaml") || name.ends_with(".yml"))
                    && let Some(text) = read_text(&tree, &format!("plugins/{name}"))?
                {
                    plugins.insert(name, text);
                }
            }
            plugins
        },
        built_by: env!("CARGO_PKG_VERSION").to_string(),
    };

    let config = ImageConfig {
        created: options.timestamp.then(crate::clock::now_rfc3339),
        author: recipe
            .maintainer
            .clone()
            .or_else(|| base.as_ref().and_then(|b| b.config.author.clone())),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: ContainerConfig {
            env: Vec::new(),
            labels,
        },
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids,
        },
    };
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| Error::msg(format!("cannot encode the image config: {e}")))?;
    within_document_limit("image config", &config_bytes)
        .map_err(|e| e.hint("LABELs and ENV make up the config: keep large content in files"))?;
    let config_digest = store.layout().write_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        config: Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, config_bytes.len() as u64),
        layers,
        annotations: metadata.to_annotations(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::msg(format!("cannot encode the manifest: {e}")))?;
    within_document_limit("manifest", &manifest_bytes)?;
    let manifest_digest = store.layout().write_blob(&manifest_bytes)?;
    let mut descriptor = Descriptor::new(
        MANIFEST_MEDIA_TYPE,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    descriptor.platform = Some(platform);
    for tag in &options.tags {
        store.tag(tag, &descriptor)?;
    }
    let image = Image::read(store.layout(), &descriptor)?;
    Ok(Built {
        image,
        warnings: all_warnings,
    })
}

/// An image whose manifest or config is over the limit could not be read back, nor pushed:
/// registries refuse such documents too.
fn within_document_limit(what: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() as u64 > DOCUMENT_MAX {
        return Err(Error::msg(format!(
            "the {what} would be {} bytes, over the {} limit of a {what}",
            bytes.len(),
            format_size(DOCUMENT_MAX)
        )));
    }
    Ok(())
}

/// The text of a small rootfs file the deployer reads at plan time (kubeadm defaults,
/// plugins), so plans never need to unpack layers.
fn read_text(tree: &Tree, path: &str) -> Result<Option<String>> {
    const LIMIT: u64 = 1 << 20;
    let Some(source) = tree.file_source(path) else {
        return Ok(None);
    };
    let size = std::fs::metadata(source)
        .with_path("cannot read", source)?
        .len();
    if size > LIMIT {
        return Err(
            Error::msg(format!("{path} is larger than 1 MiB ({size} bytes)"))
                .hint("kubeadm defaults and plugins are small YAML documents"),
        );
    }
    let text = std::fs::read_to_string(source)
        .with_path("cannot read", source)
        .map_err(|e| e.hint(format!("{path} must be UTF-8 text")))?;
    Ok(Some(text))
}

fn located(file: &Kubefile, word: &Word, message: String) -> Diagnostic {
    file.error_at(word.pos, message)
}

fn copy_step(
    file: &Kubefile,
    ctx: &Context,
    tree: &mut Tree,
    sources: &[Word],
    dest: &Word,
) -> Result<(), Diagnostic> {
    let dest_path =
        rootfs_path(&dest.text).map_err(|e| located(file, dest, format!("COPY: {e}")))?;
    let into_dir = sources.len() > 1 || dest.text.ends_with('/') || tree.is_dir(&dest_path);
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    for source in sources {
        let found = ctx
            .find(&source.text)
            .map_err(|e| located(file, source, format!("COPY: {e}")))?;
        match found {
            Found::File(f) => {
                let target = if into_dir || dest_path.is_empty() {
                    join(&dest_path, &f.relative)
                } else {
                    dest_path.clone()
                };
                tree.add_file(&target, f.path, f.executable, f.size);
            }
            Found::Dir { files, .. } => {
                tree.add_dir(&dest_path);
                for f in files {
                    tree.add_file(&join(&dest_path, &f.relative), f.path, f.executable, f.size);
                }
            }
        }
    }
    Ok(())
}

/// Puts one APP source into the app directory. Returns whether it was a helm chart.
#[allow(clippy::too_many_arguments)]
async fn place_app_source(
    file: &Kubefile,
    ctx: &Context,
    tree: &mut Tree,
    root: &str,
    app: &Word,
    source: &Word,
    downloads: &Path,
    http: &mut Option<reqwest::Client>,
) -> Result<(bool, Vec<Diagnostic>), Diagnostic> {
    let mut warnings = Vec::new();
    let mut put = |tree: &mut Tree, relative: &str, path: PathBuf, executable: bool, size: u64| {
        if tree
            .add_file(&format!("{root}/{relative}"), path, executable, size)
            .is_some()
        {
            warnings.push(
                Diagnostic::warning(format!(
                    "app {}: {} overwrites {relative} from an earlier source",
                    app.text, source.text
                ))
                .at(file.location(source.pos)),
            );
        }
    };
    if let Some(path) = source.text.strip_prefix("local://") {
        let found = ctx
            .find(path)
            .map_err(|e| located(file, source, format!("app {}: {e}", app.text)))?;
        return match found {
            Found::File(f) => {
                put(tree, &f.relative, f.path, f.executable, f.size);
                Ok((false, warnings))
            }
            Found::Dir { path: dir, files } => {
                let helm = dir.join("Chart.yaml").is_file()
                    && dir.join("values.yaml").is_file()
                    && dir.join("templates").is_dir();
                for f in files {
                    put(tree, &f.relative, f.path, f.executable, f.size);
                }
                Ok((helm, warnings))
            }
        };
    }
    if source.text.starts_with("http://") || source.text.starts_with("https://") {
        if http.is_none() {
            *http = Some(fetch::client().map_err(|e| located(file, source, e))?);
        }
        let client = http
            .as_ref()
            .ok_or_else(|| located(file, source, "no HTTP client".into()))?;
        let got = fetch::download(client, &source.text, downloads, crate::limits::DOWNLOAD_MAX)
            .await
            .map_err(|e| located(file, source, format!("app {}: {e}", app.text)))?;
        put(tree, &got.name, got.path, false, got.size);
        return Ok((false, warnings));
    }
    let hint = if source.text.contains("://") {
        "APP sources are local://PATH (in the build context) or http(s)://URL"
    } else {
        "write local://PATH for a file of the build context"
    };
    Err(file
        .error_at(
            source.pos,
            format!("app {}: unsupported source {:?}", app.text, source.text),
        )
        .hint(hint))
}

/// kube when every file is YAML, shell when every file is a script; else undetectable.
fn detect_type(files: &[String]) -> Option<AppType> {
    let kind = |f: &String| {
        if f.ends_with(".yaml") || f.ends_with(".yml") {
            Some(AppType::Kube)
        } else if f.ends_with(".sh") {
            Some(AppType::Shell)
        } else {
            None
        }
    };
    let first = kind(files.first()?)?;
    files
        .iter()
        .all(|f| kind(f) == Some(first))
        .then_some(first)
}

/// One digest over an app's (path, content digest) pairs, for change detection.
pub fn digest_of_files(files: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (path, digest) in files {
        text.push_str(path);
        text.push('\0');
        text.push_str(digest);
        text.push('\n');
    }
    sha256_digest(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_detection() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(detect_type(&v(&["a.yaml", "b/c.yml"])), Some(AppType::Kube));
        assert_eq!(detect_type(&v(&["a.sh"])), Some(AppType::Shell));
        assert_eq!(detect_type(&v(&["a.sh", "b.yaml"])), None);
        assert_eq!(detect_type(&v(&["README"])), None);
        assert_eq!(detect_type(&[]), None);
    }
}
