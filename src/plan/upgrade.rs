//! Kubernetes upgrades: a cluster image of the next minor version (or another patch) is
//! planned as updates of the control plane and the nodes, in kubeadm's order, never as a
//! replacement (`deploy.md`, "Upgrades"). Which versions may follow which is decided here,
//! as plan errors that say why; so is the order the upgrade steps run in, as dependencies
//! the plan shows.

use super::{Action, Change, ReasonCode};
use crate::diag::Diagnostic;
use crate::kinds::kubernetes_init;
use crate::kubeversion::Version;
use crate::resource::{Desired, Recorded, ResourceType, Status};
use std::collections::BTreeMap;

/// The attributes an upgrade changes on the control plane and the joins: the version, and
/// the kubeadm configuration whose `kubernetesVersion` says it.
const UPGRADED: [&str; 3] = ["kube_version", "kubeadm_config", "kubeadm_config_digest"];

/// A Kubernetes upgrade the configuration asks for: every node recorded at an older
/// version goes to `to`. Nodes may be recorded at different versions: an upgrade that was
/// interrupted after master0 resumes with the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub to: String,
    /// The kubeadm configuration the plan wants (`kubernetes.init`'s).
    config: String,
}

fn text(a: &crate::resource::Attributes, key: &str) -> String {
    a.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn is_kube(resource_type: ResourceType) -> bool {
    matches!(
        resource_type,
        ResourceType::KubernetesInit
            | ResourceType::KubernetesMaster
            | ResourceType::KubernetesWorker
    )
}

/// `config` with its `kubernetesVersion` line moved from `from` to `to`.
fn carried(config: &str, from: &str, to: &str) -> String {
    config.replacen(
        &format!("kubernetesVersion: {from}"),
        &format!("kubernetesVersion: {to}"),
        1,
    )
}

impl Upgrade {
    /// Whether an attribute's change is the upgrade's own (not a reason to replace).
    pub fn covers(attribute: &str) -> bool {
        UPGRADED.contains(&attribute)
    }

    /// The version `have` is upgraded from in place to `want`, when it is: a node of the
    /// control plane or a join, recorded at another version, whose kubeadm configuration
    /// differs in nothing but that version.
    pub fn applies_to(&self, want: &Desired, have: &Recorded) -> Option<String> {
        let from = text(&have.attributes, "kube_version");
        if !is_kube(want.resource_type)
            || have.status != Status::Ready
            || from == self.to
            || text(&want.attributes, "kube_version") != self.to
        {
            return None;
        }
        let same_configuration = match want.resource_type {
            ResourceType::KubernetesInit => {
                carried(&text(&have.attributes, "kubeadm_config"), &from, &self.to) == self.config
            }
            // A join records the digest of the configuration it joined with.
            _ => {
                crate::image::layout::sha256_digest(
                    carried(&self.config, &self.to, &from).as_bytes(),
                ) == text(&have.attributes, "kubeadm_config_digest")
            }
        };
        same_configuration.then_some(from)
    }

    /// What the step does, for the change's reason.
    pub fn reason(&self, resource_type: ResourceType, from: &str) -> String {
        let how = match resource_type {
            ResourceType::KubernetesInit => "`kubeadm upgrade apply` on master0",
            ResourceType::KubernetesMaster => "`kubeadm upgrade node`, one master at a time",
            _ => "drained, `kubeadm upgrade node`, kubelet restarted, uncordoned",
        };
        format!("upgrade Kubernetes {from} -> {}: {how}", self.to)
    }
}

/// The upgrade to the configured version when the state records nodes of the control plane
/// or joins at another one; a plan error in `errors` when that is not an upgrade kubeadm can
/// make: a downgrade, a skipped minor version, another major version, or (while master0 is
/// still to upgrade) a kubeadm configuration that changes in more than its version (`kubeadm
/// upgrade apply` keeps the configuration).
pub fn detect(
    desired: &[Desired],
    recorded: &BTreeMap<String, Recorded>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Upgrade> {
    let want = desired
        .iter()
        .find(|d| d.address == kubernetes_init::ADDRESS)?;
    let to = text(&want.attributes, "kube_version");
    let config = text(&want.attributes, "kubeadm_config");
    let froms: std::collections::BTreeSet<String> = recorded
        .values()
        .filter(|r| is_kube(r.resource_type) && r.status == Status::Ready)
        .map(|r| text(&r.attributes, "kube_version"))
        .filter(|v| *v != to)
        .collect();
    if froms.is_empty() {
        return None;
    }
    let address = kubernetes_init::ADDRESS;
    let error_count = errors.len();
    for from in &froms {
        check_versions(from, &to, errors);
    }
    if let Some(have) = recorded.get(address)
        && have.status == Status::Ready
    {
        let from = text(&have.attributes, "kube_version");
        if from != to && carried(&text(&have.attributes, "kubeadm_config"), &from, &to) != config {
            errors.push(
                Diagnostic::error(format!(
                    "{address}: upgrading Kubernetes from {from} to {to} would also change the kubeadm configuration, which `kubeadm upgrade apply` keeps"
                ))
                .hint("upgrade with the kubeadm configuration the cluster has (the Clusterfile's kubeadm documents, the image's etc/kubeadm.yml), and change it in another apply"),
            );
        }
    }
    (errors.len() == error_count).then_some(Upgrade { to, config })
}

/// A plan error in `errors` unless kubeadm can upgrade `from` to `to`.
fn check_versions(from: &str, to: &str, errors: &mut Vec<Diagnostic>) {
    let address = kubernetes_init::ADDRESS;
    let (old, new) = match (Version::parse(from), Version::parse(to)) {
        (Ok(old), Ok(new)) => (old, new),
        _ => {
            errors.push(Diagnostic::error(format!(
                "{address}: cannot compare Kubernetes versions {from:?} and {to:?}"
            )));
            return;
        }
    };
    if new < old {
        errors.push(
            Diagnostic::error(format!(
                "{address}: downgrading Kubernetes from {from} to {to} is not supported: kubeadm cannot downgrade a cluster"
            ))
            .hint(format!("use a cluster image of {from} or newer")),
        );
    } else if new.major() != old.major() || new.minor() > old.minor() + 1 {
        errors.push(
            Diagnostic::error(format!(
                "{address}: upgrading Kubernetes from {from} to {to} skips a minor version: kubeadm upgrades one minor version at a time"
            ))
            .hint(format!(
                "apply a cluster image of v{}.{}.x first, then this one",
                old.major(),
                old.minor() + 1
            )),
        );
    }
}

/// Orders the upgrade's steps as kubeadm's docs do, by adding dependencies the plan shows:
/// every upgraded node after its host's rootfs (which brings the new binaries) and workers
/// at most `max_unavailable` at a time (each waits for the one that many places before it;
/// masters already follow one another and the workers follow them).
pub fn order(changes: &mut [Change], max_unavailable: usize) {
    let in_plan: std::collections::HashSet<String> =
        changes.iter().map(|c| c.address.clone()).collect();
    let mut workers: Vec<usize> = Vec::new();
    for (i, c) in changes.iter_mut().enumerate() {
        if c.reason_code != ReasonCode::UpdateBecauseKubernetesUpgrade {
            continue;
        }
        if let Some(host) = &c.host {
            let rootfs = format!("rootfs.{host}");
            if in_plan.contains(&rootfs) && !c.depends_on.contains(&rootfs) {
                c.depends_on.push(rootfs);
            }
        }
        if c.resource_type == ResourceType::KubernetesWorker && c.action == Action::Update {
            workers.push(i);
        }
    }
    let lanes = max_unavailable.max(1);
    for k in lanes..workers.len() {
        let before = changes[workers[k - lanes]].address.clone();
        changes[workers[k]].depends_on.push(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn init(version: &str, config: &str) -> (Desired, Recorded) {
        let attrs: crate::resource::Attributes = [
            ("kube_version".to_string(), json!(version)),
            ("kubeadm_config".to_string(), json!(config)),
        ]
        .into_iter()
        .collect();
        let d = Desired {
            address: kubernetes_init::ADDRESS.into(),
            resource_type: ResourceType::KubernetesInit,
            host: Some("10.0.0.1".into()),
            attributes: attrs,
            sensitive: Default::default(),
            computed: Default::default(),
            replace_on: Default::default(),
            depends_on: Vec::new(),
        };
        let r = Recorded::applied(&d, Default::default());
        (d, r)
    }

    fn detect_between(
        from: &str,
        to: &str,
        new_config: Option<&str>,
    ) -> (Option<Upgrade>, Vec<String>) {
        let old_config = format!("kind: ClusterConfiguration\nkubernetesVersion: {from}\n");
        let (_, have) = init(from, &old_config);
        let config = new_config.map_or_else(
            || format!("kind: ClusterConfiguration\nkubernetesVersion: {to}\n"),
            str::to_string,
        );
        let (want, _) = init(to, &config);
        let recorded = BTreeMap::from([(have.address.clone(), have)]);
        let mut errors = Vec::new();
        let upgrade = detect(&[want], &recorded, &mut errors);
        (upgrade, errors.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn the_next_minor_and_patches_are_upgrades() {
        for (from, to) in [("v1.22.15", "v1.23.17"), ("v1.22.15", "v1.22.17")] {
            let (upgrade, errors) = detect_between(from, to, None);
            assert_eq!(upgrade.map(|u| u.to), Some(to.to_string()));
            assert!(errors.is_empty(), "{errors:?}");
        }
        assert_eq!(detect_between("v1.22.15", "v1.22.15", None).0, None);
    }

    #[test]
    fn downgrades_skipped_minors_and_other_configurations_are_errors_that_say_why() {
        let (_, errors) = detect_between("v1.23.1", "v1.22.15", None);
        assert!(
            errors[0].contains("downgrading Kubernetes from v1.23.1 to v1.22.15"),
            "{errors:?}"
        );
        let (_, errors) = detect_between("v1.22.15", "v1.24.0", None);
        assert!(errors[0].contains("skips a minor version"), "{errors:?}");
        let (_, errors) = detect_between("v1.22.15", "v2.0.0", None);
        assert!(errors[0].contains("skips a minor version"), "{errors:?}");
        let (_, errors) = detect_between(
            "v1.22.15",
            "v1.23.17",
            Some("kind: ClusterConfiguration\nkubernetesVersion: v1.23.17\nfeatureGates: {}\n"),
        );
        assert!(
            errors[0].contains("would also change the kubeadm configuration"),
            "{errors:?}"
        );
    }
}
