//! Kubeadm documents: passed through whole, checked only for their kind and apiVersion.

use super::api_version;
use super::reader::Ctx;
use crate::clusterfile::model::{KubeadmDocument, KubeadmKind};
use crate::clusterfile::span::Spanned;
use crate::clusterfile::yaml::Node;

pub(super) fn decode(
    ctx: &mut Ctx<'_>,
    root: &Node,
    kind: Spanned<KubeadmKind>,
) -> Option<KubeadmDocument> {
    let name = kind.value.as_str();
    // Any field is allowed: kubeadm validates its own configuration.
    let fields = ctx.any_fields(root, kind.span, name)?;
    let api_version = api_version(ctx, &fields, name, kind.value.api_versions())?;
    let serde_json::Value::Object(value) = root.to_json() else {
        return None;
    };
    Some(KubeadmDocument {
        span: kind.span,
        kind,
        api_version,
        value,
    })
}
