//! `image_policy`: the Kyverno `ClusterPolicy` `sealer-redirect-registry` that makes pods
//! pull from the cluster registry (`deploy.md`, "Image policy"). It follows the app that
//! installs Kyverno, and every app launched after that one waits for it. Create and update:
//! `kubectl apply` of the generated policy on master0; destroy: `kubectl delete` it.

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::ImagePolicyInput;
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::ImagePolicy,
    replace_on: &[],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host, Foundation::Etcd],
};

/// There is one policy per cluster.
pub const ADDRESS: &str = "image_policy";
/// The name of the `ClusterPolicy` it applies.
const POLICY_NAME: &str = "sealer-redirect-registry";

/// What the policy redirects, and the policy itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePolicyAttrs {
    /// Where images are redirected to (`sea.hub:5000`).
    pub registry_url: String,
    /// Namespaces left alone.
    pub exclude: Vec<String>,
    /// The generated `ClusterPolicy` YAML, as applied.
    pub policy: String,
}

impl ImagePolicyAttrs {
    pub fn from_input(policy: &ImagePolicyInput) -> ImagePolicyAttrs {
        ImagePolicyAttrs {
            registry_url: policy.registry_url.clone(),
            exclude: policy.exclude.clone(),
            policy: policy.policy_yaml.clone(),
        }
    }
}

/// `image_policy` on master0, right after `kyverno_app` (the address of the app that
/// installs Kyverno).
pub fn desired(attrs: &ImagePolicyAttrs, master0: &str, kyverno_app: &str) -> Desired {
    SCHEMA.desired(
        ADDRESS.to_string(),
        Some(master0),
        attrs,
        vec![kyverno_app.to_string()],
    )
}

/// Applies the policy: the YAML the plan shows as `policy`, byte for byte.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let attrs: ImagePolicyAttrs = super::step_attributes(change, change.after())?;
    let yaml = attrs.policy;
    r.run(
        &change.address,
        &ctx.master0,
        steps::apply_stdin_manifest().to_string(),
        Stdin::Bytes(yaml.into_bytes()),
    )
    .await?;
    Ok(Attributes::new())
}

/// Deletes the policy.
/// Reads the policy back: `kubectl get clusterpolicy` lists it.
pub async fn read(r: &Runner, _recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let out = r
        .probe(&r.ctx.master0, "kubectl get clusterpolicy\n".to_string())
        .await?;
    if !out.ok {
        return Ok(ReadBack::unreadable(format!(
            "`kubectl get clusterpolicy` fails: {}",
            out.stderr_line()
        )));
    }
    let listed = out.stdout.lines().any(|l| {
        let first = l.split_whitespace().next().unwrap_or_default();
        first.rsplit('/').next() == Some(POLICY_NAME)
    });
    Ok(if listed {
        ReadBack::AsRecorded
    } else {
        ReadBack::gone(format!(
            "clusterpolicy {POLICY_NAME} is not in `kubectl get clusterpolicy`"
        ))
    })
}

pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    r.run(
        &change.address,
        &ctx.master0,
        steps::delete_image_policy().to_string(),
        Stdin::Null,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn input() -> ImagePolicyInput {
        ImagePolicyInput {
            app: "kyverno".to_string(),
            registry_url: "sea.hub:5000".to_string(),
            exclude: vec!["kube-system".to_string(), "kyverno".to_string()],
            policy_yaml: "kind: ClusterPolicy\n".to_string(),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let attrs = ImagePolicyAttrs::from_input(&input());
        let back: ImagePolicyAttrs = from_attributes(ADDRESS, &to_attributes(&attrs)).unwrap();
        assert_eq!(back, attrs);
    }

    #[test]
    fn a_recorded_map_reads_back() {
        let recorded: Attributes = serde_json::from_value(json!({
            "registry_url": "sea.hub:5000",
            "exclude": ["kube-system", "kyverno"],
            "policy": "kind: ClusterPolicy\n",
        }))
        .unwrap();
        let attrs: ImagePolicyAttrs = from_attributes(ADDRESS, &recorded).unwrap();
        assert_eq!(attrs, ImagePolicyAttrs::from_input(&input()));
        assert_eq!(to_attributes(&attrs), recorded);
    }

    #[test]
    fn it_follows_the_kyverno_app() {
        let d = desired(
            &ImagePolicyAttrs::from_input(&input()),
            "10.0.0.1",
            "app.kyverno",
        );
        assert_eq!(d.address, "image_policy");
        assert_eq!(d.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(d.depends_on, ["app.kyverno"]);
    }
}
