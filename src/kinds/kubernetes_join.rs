//! `kubernetes.master.<ip>` and `kubernetes.worker.<ip>`: a node joined to the cluster
//! (`deploy.md`). Both share their steps. Create asks master0 for a fresh join command (and,
//! for a master, a certificate key), then runs `init-kube.sh` and `kubeadm join` on the node
//! with them on stdin; a joined master then maps the API server to itself. Destroy drains
//! the node, resets it (`kubeadm reset -f`, `clean-kube.sh`) and deletes it from the
//! cluster. Masters join one at a time (each after the previous), workers in parallel after
//! every master. A master has no in-place update: any change replaces it. A worker's only
//! update is where it reaches the API server (master0, or the VIP's IPVS rule over the
//! masters), which changes when masters come or go.

use super::read::ReadBack;
use super::{Foundation, Schema, kubernetes_init};
use crate::exec::StepFailure;
use crate::exec::runner::Runner;
use crate::graph::input::{ClusterInput, HostInput};
use crate::plan::Change;
use crate::resource::{Attributes, Desired, Recorded, ResourceType};
use sealer_providers::Stdin;
use sealer_providers::steps;
use serde::{Deserialize, Serialize};

pub const MASTER_SCHEMA: Schema = Schema {
    resource_type: ResourceType::KubernetesMaster,
    // Every attribute: a master has no in-place update.
    replace_on: &["kube_version", "kubeadm_config_digest", "master0"],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[
        Foundation::Host,
        Foundation::ContainerRuntime,
        Foundation::Etcd,
    ],
};

pub const WORKER_SCHEMA: Schema = Schema {
    resource_type: ResourceType::KubernetesWorker,
    replace_on: &["kube_version", "kubeadm_config_digest"],
    sensitive: &[],
    computed: &[],
    explains: &[],
    lives_on: &[
        Foundation::Host,
        Foundation::ContainerRuntime,
        Foundation::Etcd,
    ],
};

/// What a master's join is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterAttrs {
    pub kube_version: String,
    /// The digest of `kubernetes.init`'s kubeadm configuration: the text is shown once, on
    /// the init, instead of once per node (5,000 copies at 5,000 hosts).
    pub kubeadm_config_digest: String,
    /// The IP of the master it joins through.
    pub master0: String,
}

/// What a worker's join is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerAttrs {
    pub kube_version: String,
    /// As [`MasterAttrs::kubeadm_config_digest`].
    pub kubeadm_config_digest: String,
    /// Where the worker reaches the API server: master0 alone, else the VIP.
    pub api_endpoint: String,
    /// The masters' IPs, which the VIP balances over.
    pub masters: Vec<String>,
}

/// The address of a host's join: `kubernetes.init` for master0; none for a host that is
/// neither master nor worker, or in a cluster without a master.
pub fn join_address(input: &ClusterInput, host: &HostInput) -> Option<String> {
    let master0 = input.hosts.iter().find(|h| h.is_master())?;
    if host.ip == master0.ip {
        Some(kubernetes_init::ADDRESS.to_string())
    } else if host.is_master() {
        Some(format!("kubernetes.master.{}", host.ip))
    } else if host.is_worker() {
        Some(format!("kubernetes.worker.{}", host.ip))
    } else {
        None
    }
}

/// What every join of a cluster shares, worked out once for all of them: a worker list
/// can be thousands long.
pub struct Joins {
    kube_version: String,
    kubeadm_config_digest: String,
    master0: String,
    api_endpoint: String,
    masters: Vec<String>,
}

impl Joins {
    /// The joins of `input`, whose first master is `master0`.
    pub fn new(input: &ClusterInput, master0: &HostInput) -> Joins {
        let masters = input.master_ips();
        // One master serves the API itself; several are reached through the VIP.
        let api_endpoint = if masters.len() == 1 {
            master0.ip.clone()
        } else {
            input.vip.clone()
        };
        Joins {
            kube_version: input.kube_version.clone(),
            kubeadm_config_digest: crate::image::layout::sha256_digest(
                input.kubeadm_config.as_bytes(),
            ),
            master0: master0.ip.clone(),
            api_endpoint,
            masters,
        }
    }

    /// `kubernetes.master.<ip>`, joining after `previous` (the init or the master before).
    pub fn master(&self, ip: &str, previous: &str) -> Desired {
        let attrs = MasterAttrs {
            kube_version: self.kube_version.clone(),
            kubeadm_config_digest: self.kubeadm_config_digest.clone(),
            master0: self.master0.clone(),
        };
        let depends_on = vec![
            kubernetes_init::ADDRESS.to_string(),
            format!("container_runtime.{ip}"),
            previous.to_string(),
            format!("registry_client.{ip}"),
        ];
        MASTER_SCHEMA.desired(
            format!("kubernetes.master.{ip}"),
            Some(ip),
            &attrs,
            depends_on,
        )
    }

    /// `kubernetes.worker.<ip>`, joining after every master (`master_joins`).
    pub fn worker(&self, ip: &str, master_joins: &[String]) -> Desired {
        let attrs = WorkerAttrs {
            kube_version: self.kube_version.clone(),
            kubeadm_config_digest: self.kubeadm_config_digest.clone(),
            api_endpoint: self.api_endpoint.clone(),
            masters: self.masters.clone(),
        };
        let mut depends_on = vec![
            kubernetes_init::ADDRESS.to_string(),
            format!("container_runtime.{ip}"),
        ];
        depends_on.extend(master_joins.iter().cloned());
        depends_on.push(format!("registry_client.{ip}"));
        WORKER_SCHEMA.desired(
            format!("kubernetes.worker.{ip}"),
            Some(ip),
            &attrs,
            depends_on,
        )
    }
}

/// The last line of a secret command's output, remembered as a secret so that no output
/// ever shows it.
fn last_secret_line(r: &Runner, output: &[u8]) -> String {
    let line = String::from_utf8_lossy(output)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    r.remember_secrets(&line);
    line
}

/// The join command from master0, and a certificate key for a master, one per line: what
/// `kubeadm join` reads on stdin, so neither reaches a command line, a log or an error.
async fn join_secrets(
    r: &Runner,
    address: &str,
    control_plane: bool,
) -> Result<String, StepFailure> {
    let master0 = r.ctx.master0.as_str();
    let join = r
        .run_secret(address, master0, steps::join_command().to_string())
        .await?;
    let mut secret = last_secret_line(r, &join);
    secret.push('\n');
    if control_plane {
        let key = r
            .run_secret(address, master0, steps::certificate_key().to_string())
            .await?;
        secret.push_str(&last_secret_line(r, &key));
        secret.push('\n');
    }
    Ok(secret)
}

/// Joins the node (as a control plane for a master) with fresh secrets from master0.
pub async fn create(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    let control_plane = change.resource_type == ResourceType::KubernetesMaster;
    let secret = join_secrets(r, a, control_plane).await?;
    let endpoint = if control_plane || ctx.masters.len() == 1 {
        ctx.master0.clone()
    } else {
        ctx.vip.clone()
    };
    // Workers of several masters reach them through the VIP's IPVS rule, set up once
    // init-kube.sh has installed seautil and before the join needs it.
    let pre_join = if !control_plane && ctx.masters.len() > 1 {
        steps::ipvs_rule(&ctx.vip, &ctx.masters)
    } else {
        String::new()
    };
    r.run(
        a,
        &host,
        steps::kube_join(
            &ctx.cluster,
            &ctx.rootfs,
            r.exports(&host),
            &endpoint,
            control_plane,
            &pre_join,
        ),
        Stdin::Bytes(secret.into_bytes()),
    )
    .await?;
    // A joined master serves the API itself.
    if control_plane {
        r.run(
            a,
            &host,
            steps::point_apiserver_at(&ctx.cluster, &host),
            Stdin::Null,
        )
        .await?;
    }
    Ok(Attributes::new())
}

/// A worker's update: the masters changed, so it moves where it reaches the API server
/// (the VIP's IPVS rule over the masters, or master0 when it is the only one). Nothing
/// else of a join changes in place.
pub async fn update(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let host = change.host.clone().unwrap_or_default();
    let script = if ctx.masters.len() > 1 {
        steps::ipvs_rule(&ctx.vip, &ctx.masters)
    } else {
        steps::point_apiserver_at(&ctx.cluster, &ctx.master0)
    };
    r.run(&change.address, &host, script, Stdin::Null).await?;
    Ok(Attributes::new())
}

/// Reads a join back: the kubelet's kubeconfig that the join wrote on the host, and the
/// node in the API.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let host = super::read::host_of(r, recorded);
    let kubelet = "/etc/kubernetes/kubelet.conf".to_string();
    let found = super::read::file_digests(r, &host, std::slice::from_ref(&kubelet)).await?;
    if found[0].is_none() {
        return Ok(ReadBack::gone(format!(
            "{kubelet} is not there: {host} has not joined, or it was reset"
        )));
    }
    let node = r.node_name(&recorded.address, &host).await?;
    Ok(match super::read::api_nodes(r).await? {
        Err(down) => ReadBack::unreadable(down),
        Ok(nodes) if !nodes.contains(&node) => {
            ReadBack::gone(format!("node {node} is not in `kubectl get nodes`"))
        }
        Ok(_) => ReadBack::AsRecorded,
    })
}

/// Drains the node, resets it and deletes it from the cluster.
pub async fn destroy(r: &Runner, change: &Change) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    let a = change.address.as_str();
    let host = super::step_host(r, change);
    let node = r.node_name(a, &host).await?;
    // Drain and delete go through master0's kubectl: not when the node is master0 itself.
    let master0_alive = host != ctx.master0;
    if master0_alive {
        r.run(
            a,
            &ctx.master0,
            steps::drain(&node, ctx.drain_timeout.as_secs()),
            Stdin::Null,
        )
        .await?;
    }
    r.run(
        a,
        &host,
        steps::kube_reset(&ctx.cluster, &ctx.rootfs, r.exports(&host)),
        Stdin::Null,
    )
    .await?;
    if master0_alive {
        r.run(a, &ctx.master0, steps::delete_node(&node), Stdin::Null)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{from_attributes, to_attributes};
    use serde_json::json;

    fn master() -> MasterAttrs {
        MasterAttrs {
            kube_version: "v1.22.15".into(),
            kubeadm_config_digest: "sha256:ab".into(),
            master0: "10.0.0.2".into(),
        }
    }

    fn worker() -> WorkerAttrs {
        WorkerAttrs {
            kube_version: "v1.22.15".into(),
            kubeadm_config_digest: "sha256:ab".into(),
            api_endpoint: "10.103.97.2".into(),
            masters: vec!["10.0.0.2".into(), "10.0.0.3".into()],
        }
    }

    fn map(pairs: &[(&str, serde_json::Value)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn attributes_round_trip() {
        let a = "kubernetes.master.10.0.0.3";
        assert_eq!(
            from_attributes::<MasterAttrs>(a, &to_attributes(&master())).unwrap(),
            master()
        );
        let a = "kubernetes.worker.10.0.0.5";
        assert_eq!(
            from_attributes::<WorkerAttrs>(a, &to_attributes(&worker())).unwrap(),
            worker()
        );
    }

    #[test]
    fn recorded_joins_read_back() {
        let recorded = map(&[
            ("kube_version", json!("v1.22.15")),
            ("kubeadm_config_digest", json!("sha256:ab")),
            ("master0", json!("10.0.0.2")),
        ]);
        let read: MasterAttrs = from_attributes("kubernetes.master.10.0.0.3", &recorded).unwrap();
        assert_eq!(read, master());
        assert_eq!(to_attributes(&read), recorded);

        let recorded = map(&[
            ("kube_version", json!("v1.22.15")),
            ("kubeadm_config_digest", json!("sha256:ab")),
            ("api_endpoint", json!("10.103.97.2")),
            ("masters", json!(["10.0.0.2", "10.0.0.3"])),
        ]);
        let read: WorkerAttrs = from_attributes("kubernetes.worker.10.0.0.5", &recorded).unwrap();
        assert_eq!(read, worker());
        assert_eq!(to_attributes(&read), recorded);
    }

    #[test]
    fn a_master_is_replaced_on_every_attribute() {
        let names: Vec<String> = to_attributes(&master()).into_keys().collect();
        let mut replace_on: Vec<&str> = MASTER_SCHEMA.replace_on.to_vec();
        replace_on.sort_unstable();
        assert_eq!(names, replace_on);
    }
}
