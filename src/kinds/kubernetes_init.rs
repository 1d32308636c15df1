//! `kubernetes.init`: Kubernetes initialised on master0 (`deploy.md`). Create writes the
//! kubeadm configuration (the image's `etc/kubeadm.yml` < the Clusterfile's kubeadm
//! documents < forced values), maps `apiserver.cluster.local` to master0, runs
//! `init-kube.sh` and `kubeadm init --upload-certs`; the admin kubeconfig stays on the
//! masters. Destroy is `kubeadm reset -f` and the image's `clean-kube.sh`. A change of the
//! configuration, certificate SANs or CIDRs replaces it (and with it the whole cluster: the
//! reset wipes etcd); a version change (an upgrade) or another master0 is a plan error.

use super::read::ReadBack;
use super::{Foundation, Schema};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::{ClusterInput, HostInput};
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const SCHEMA: Schema = Schema {
    resource_type: ResourceType::KubernetesInit,
    replace_on: &["kubeadm_config", "cert_sans", "svc_cidr", "pod_cidr"],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[Foundation::Host, Foundation::ContainerRuntime],
};

/// The address: there is one init per cluster.
pub const ADDRESS: &str = "kubernetes.init";

/// Where every node reaches the API server: in every certificate's SANs, mapped in
/// `/etc/hosts` to a master or to the VIP (`deploy.md`, API endpoint).
pub const API_SERVER: &str = "apiserver.cluster.local:6443";

/// What the init is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitAttrs {
    /// The IP of the master the cluster is initialised on.
    pub master0: String,
    pub kube_version: String,
    /// The kubeadm configuration, byte for byte as `kubeadm init` receives it: the plan
    /// shows exactly what runs.
    pub kubeadm_config: String,
    pub cert_sans: Vec<String>,
    pub svc_cidr: String,
    pub pod_cidr: String,
    pub api_server: String,
}

impl InitAttrs {
    pub fn from_input(input: &ClusterInput, master0: &HostInput) -> InitAttrs {
        InitAttrs {
            master0: master0.ip.clone(),
            kube_version: input.kube_version.clone(),
            kubeadm_config: input.kubeadm_config.clone(),
            cert_sans: input.cert_sans.clone(),
            svc_cidr: input.svc_cidr.clone(),
            pod_cidr: input.pod_cidr.clone(),
            api_server: API_SERVER.to_string(),
        }
    }
}

/// `kubernetes.init` on master0, after its container runtime and registry client (the
/// init pulls the control-plane images from the cluster registry).
pub fn desired(input: &ClusterInput, master0: &HostInput) -> Desired {
    let ip = master0.ip.as_str();
    SCHEMA.desired(
        ADDRESS.to_string(),
        Some(ip),
        &InitAttrs::from_input(input, master0),
        vec![
            format!("container_runtime.{ip}"),
            format!("registry_client.{ip}"),
        ],
    )
}

/// Why a change of `attribute` cannot be planned, when it cannot: master0 holds the
/// cluster's certificates. (A version change is an upgrade: `plan::upgrade`.)
pub fn unsupported_change(attribute: &str) -> Option<&'static str> {
    match attribute {
        "master0" => Some(
            "master0 cannot be removed or changed: it holds the cluster's certificates and was \
             initialised with kubeadm init",
        ),
        _ => None,
    }
}

/// Runs `kubeadm init` with the configuration the plan showed, on stdin.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let init: InitAttrs = super::step_attributes(change, change.after())?;
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    // kubeadm init prints join commands with a token and certificate key: its output is
    // a secret.
    r.run_with(
        &change.address,
        &host,
        steps::kube_init(&ctx.cluster, &ctx.rootfs, r.exports(&host), &ctx.master0),
        Stdin::Bytes(init.kubeadm_config.into_bytes()),
        true,
    )
    .await?;
    Ok(Attributes::new())
}

/// An upgrade, the only update of an init (`plan::upgrade`): the new binaries, the
/// configuration the plan showed (kept as `/etc/kubernetes/kubeadm.yaml`), `kubeadm upgrade
/// plan` and `apply` to the new version, the kubelet restarted.
pub async fn update(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let init: InitAttrs = super::step_attributes(change, change.after())?;
    let host = super::step_host(r, change);
    r.run(
        &change.address,
        &host,
        steps::kube_upgrade_apply(&r.ctx.rootfs, r.exports(&host), &init.kube_version),
        Stdin::Bytes(init.kubeadm_config.into_bytes()),
    )
    .await?;
    Ok(Attributes::new())
}

/// Reads the control plane back: the admin kubeconfig kubeadm wrote, the configuration it
/// was given (byte for byte the plan's), and an API server that answers.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let init: InitAttrs = super::read::attributes(recorded)?;
    let host = super::read::host_of(r, recorded);
    let paths = [
        "/etc/kubernetes/admin.conf".to_string(),
        "/etc/kubernetes/kubeadm.yaml".to_string(),
    ];
    let found = super::read::file_digests(r, &host, &paths).await?;
    if found[0].is_none() {
        return Ok(ReadBack::gone(format!(
            "{} is not there: kubeadm init has not run on {host}, or it was reset",
            paths[0]
        )));
    }
    let mut findings = Vec::new();
    let given = sealer_providers::sync::manifest::sha256_hex(init.kubeadm_config.as_bytes());
    if found[1].as_deref() != Some(given.as_str()) {
        findings.push(format!(
            "{} is not the configuration kubeadm init was given",
            paths[1]
        ));
    }
    if let Err(down) = super::read::api_nodes(r).await? {
        findings.push(down);
    }
    Ok(ReadBack::of_findings(findings))
}

/// Resets master0 (`kubeadm reset -f`, `clean-kube.sh`, its `/etc/hosts` line).
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let host = super::step_host(r, change);
    r.run(
        &change.address,
        &host,
        steps::kube_reset(&ctx.cluster, &ctx.rootfs, r.exports(&host)),
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

    fn attrs() -> InitAttrs {
        InitAttrs {
            master0: "10.0.0.2".into(),
            kube_version: "v1.22.15".into(),
            kubeadm_config: "a: 1\n".into(),
            cert_sans: vec!["vip.example".into()],
            svc_cidr: "10.96.0.0/22".into(),
            pod_cidr: "100.64.0.0/10".into(),
            api_server: API_SERVER.into(),
        }
    }

    #[test]
    fn attributes_round_trip() {
        let map = to_attributes(&attrs());
        assert_eq!(
            from_attributes::<InitAttrs>(ADDRESS, &map).unwrap(),
            attrs()
        );
    }

    #[test]
    fn a_recorded_init_reads_back() {
        let recorded: Attributes = [
            ("master0", json!("10.0.0.2")),
            ("kube_version", json!("v1.22.15")),
            ("kubeadm_config", json!("a: 1\n")),
            ("cert_sans", json!(["vip.example"])),
            ("svc_cidr", json!("10.96.0.0/22")),
            ("pod_cidr", json!("100.64.0.0/10")),
            ("api_server", json!("apiserver.cluster.local:6443")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            from_attributes::<InitAttrs>(ADDRESS, &recorded).unwrap(),
            attrs()
        );
        assert_eq!(to_attributes(&attrs()), recorded);
    }

    #[test]
    fn only_the_version_and_master0_cannot_change() {
        assert!(unsupported_change("kube_version").is_none());
        assert!(unsupported_change("master0").is_some());
        assert_eq!(unsupported_change("kubeadm_config"), None);
    }
}
