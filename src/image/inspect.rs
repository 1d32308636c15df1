//! The JSON `sealer inspect` prints (spec `image.md`): keys in a fixed order, labels sorted,
//! each app with the command launching it alone would run.

use super::build::recipe::{CNI_LABEL_PREFIX, CSI_LABEL_PREFIX};
use super::reference::Reference;
use super::store::Image;
use serde_json::{Map, Value, json};

pub fn inspect_json(name: &Reference, image: &Image) -> Value {
    let meta = image.metadata.as_ref();
    let mut labels: std::collections::BTreeMap<String, String> = image.config.config.labels.clone();
    for prefix in [CNI_LABEL_PREFIX, CSI_LABEL_PREFIX] {
        let dash = format!("{prefix}-");
        let mut names: Vec<&str> = labels
            .iter()
            .filter(|(_, v)| v.as_str() == "true")
            .filter_map(|(k, _)| k.strip_prefix(&dash))
            .collect();
        if !names.is_empty() {
            names.sort_unstable();
            let folded = serde_json::to_string(&names).unwrap_or_default();
            labels.insert(prefix.to_string(), folded);
        }
    }
    let applications: Vec<Value> = meta
        .map(|m| {
            m.apps
                .iter()
                .map(|app| {
                    let mut entry = Map::new();
                    entry.insert("name".into(), json!(app.name));
                    if let Some(t) = app.app_type {
                        entry.insert("type".into(), json!(t.as_str()));
                    }
                    entry.insert("files".into(), json!(app.files));
                    entry.insert("version".into(), json!(app.version));
                    if !app.cmds.is_empty() {
                        entry.insert("cmds".into(), json!(app.cmds));
                    }
                    if !app.env.is_empty() {
                        entry.insert("env".into(), json!(app.env));
                    }
                    entry.insert("launchCmd".into(), json!(app.launch_cmd()));
                    Value::Object(entry)
                })
                .collect()
        })
        .unwrap_or_default();
    let launch = meta.map_or(Value::Null, |m| {
        let app_configs: Vec<Value> = m
            .apps
            .iter()
            .filter(|a| !a.cmds.is_empty())
            .map(|a| json!({"name": a.name, "launch": {"cmds": a.cmds}}))
            .collect();
        json!({"cmds": m.cmds, "app_names": m.launch_apps, "appConfigs": app_configs})
    });
    let layers: Vec<Value> = image
        .manifest
        .layers
        .iter()
        .map(|l| json!({"digest": l.digest, "size": l.size, "mediaType": l.media_type}))
        .collect();
    let platform = image.config.platform();
    json!({
        "name": name.to_string(),
        "id": image.id(),
        "digest": image.digest(),
        "type": meta.map(|m| m.image_type.as_str()),
        "labels": labels,
        "applications": applications,
        "launch": launch,
        "env": meta.map(|m| json!(m.env)).unwrap_or(json!({})),
        "containerImages": meta.map(|m| json!(m.container_images)).unwrap_or(json!([])),
        "platform": platform.to_string(),
        "layers": layers,
    })
}
