//! `kind: Application`: app images, launch overrides and per-app configs.

use super::Header;
use super::cluster::image_reference;
use super::config::{check_merge_data, strategy};
use super::reader::Ctx;
use crate::clusterfile::model::{AppConfig, AppFile, Application};
use crate::clusterfile::yaml::Node;
use std::collections::HashMap;

pub(super) fn decode(ctx: &mut Ctx<'_>, h: Header<'_>) -> Option<Application> {
    let spec_node = h.spec?;
    let known = ["images", "cmds", "launchApps", "configs"];
    let spec = ctx.fields(spec_node, h.spec_at, "Application.spec", &known)?;
    let images = ctx
        .opt_strings(&spec, "images")
        .unwrap_or_default()
        .iter()
        .filter_map(|text| image_reference(ctx, text))
        .collect();
    let cmds = ctx.opt_strings(&spec, "cmds");
    let launch_apps = ctx.opt_strings(&spec, "launchApps");
    let mut configs: Vec<AppConfig> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    if let Some(node) = spec.value("configs") {
        for (i, item) in ctx
            .seq(node, "Application.spec.configs")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let Some(config) = app_config(ctx, item, &format!("Application.spec.configs[{i}]"))
            else {
                continue;
            };
            if let Some(first_line) = names.get(&config.name.value) {
                ctx.error_hint(
                    config.name.span,
                    format!(
                        "a second config for app `{}` (the first is at line {first_line})",
                        config.name.value
                    ),
                    "merge them into one entry",
                );
                continue;
            }
            names.insert(config.name.value.clone(), config.name.span.line);
            configs.push(config);
        }
    }
    Some(Application {
        span: h.kind_span,
        api_version: h.api_version?,
        name: h.name?,
        images,
        cmds,
        launch_apps,
        configs,
    })
}

fn app_config(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<AppConfig> {
    let fields = ctx.fields(node, node.span, path, &["name", "launch", "files"])?;
    let name = ctx.req_string(&fields, "name");
    let launch_cmds = fields.get("launch").and_then(|entry| {
        let launch = ctx.fields(
            &entry.value,
            entry.key_span,
            &fields.path_of("launch"),
            &["cmds"],
        )?;
        ctx.opt_strings(&launch, "cmds")
    });
    let mut files: Vec<AppFile> = Vec::new();
    let mut paths: HashMap<String, usize> = HashMap::new();
    if let Some(node) = fields.value("files") {
        let files_path = fields.path_of("files");
        for (i, item) in ctx
            .seq(node, &files_path)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let Some(file) = app_file(ctx, item, &format!("{files_path}[{i}]")) else {
                continue;
            };
            let normal = file.path.value.trim_start_matches("./").to_string();
            if let Some(first_line) = paths.get(&normal) {
                ctx.error(
                    file.path.span,
                    format!(
                        "a second entry for file `{}` (the first is at line {first_line})",
                        file.path.value
                    ),
                );
                continue;
            }
            paths.insert(normal, file.path.span.line);
            files.push(file);
        }
    }
    Some(AppConfig {
        span: node.span,
        name: name?,
        launch_cmds,
        files,
    })
}

fn app_file(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<AppFile> {
    let fields = ctx.fields(node, node.span, path, &["path", "strategy", "data"])?;
    let file_path = ctx
        .req_string(&fields, "path")
        .filter(|p| ctx.relative_path(p, "the app's directory"));
    let strategy = strategy(ctx, &fields, node);
    let data = ctx.req_text(&fields, "data");
    if let (Some(strategy), Some(data)) = (&strategy, &data) {
        check_merge_data(ctx, strategy, data);
    }
    Some(AppFile {
        span: node.span,
        path: file_path?,
        strategy: strategy?,
        data: data?,
    })
}
