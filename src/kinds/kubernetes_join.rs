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
    /// With several masters, the image of the lvscare static pod
    /// (`/etc/kubernetes/manifests/kube-lvscare.yaml`) that keeps the VIP's rule: from the
    /// cluster's registry, as Sealer does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvscare_image: Option<String>,
}

/// lvscare's repository and tag in the cluster registry (Sealer's `LvsCareRepoAndTag`).
pub const LVSCARE_REPO_AND_TAG: &str = "sealerio/lvscare:v1.1.3-beta.8";

/// The lvscare image in the registry at `endpoint` (`DOMAIN[:PORT]`).
pub fn lvscare_image(registry_endpoint: &str) -> String {
    format!("{registry_endpoint}/{LVSCARE_REPO_AND_TAG}")
}

/// The static pod caring for the API server's VIP on a worker.
pub const KUBE_LVSCARE: &str = "kube-lvscare";

/// The API server's virtual server over the masters.
fn api_virtual_server<'a>(vip: &'a str, masters: &'a [String]) -> steps::VirtualServer<'a> {
    steps::VirtualServer {
        vip,
        port: 6443,
        real_servers: masters,
        health_path: "/healthz",
    }
}

/// A worker's way to several masters: the one-shot IPVS rule (seautil, installed by
/// `init-kube.sh`, or from the rootfs before it ran), then the lvscare static pod that
/// keeps it.
fn api_balancing(r: &Runner, seautil_dir: Option<&str>) -> String {
    let ctx = &r.ctx;
    let vs = api_virtual_server(&ctx.vip, &ctx.masters);
    let pod = steps::lvscare_static_pod(KUBE_LVSCARE, &vs, &lvscare_image(&ctx.registry_endpoint));
    format!(
        "{}{}",
        steps::ipvs_rule(&vs, seautil_dir),
        steps::write_static_pod(KUBE_LVSCARE, &pod).trim_start_matches("set -e\n")
    )
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
    lvscare_image: Option<String>,
}

impl Joins {
    /// The joins of `input`, whose first master is `master0`.
    pub fn new(input: &ClusterInput, master0: &HostInput) -> Joins {
        let masters = input.master_ips();
        // One master serves the API itself; several are reached through the VIP.
        let (api_endpoint, lvscare_image) = if masters.len() == 1 {
            (master0.ip.clone(), None)
        } else {
            let (domain, port) = super::registry::domain_port(&input.registry);
            let endpoint = port.map_or(domain.clone(), |p| format!("{domain}:{p}"));
            (input.vip.clone(), Some(lvscare_image(&endpoint)))
        };
        Joins {
            kube_version: input.kube_version.clone(),
            kubeadm_config_digest: crate::image::layout::sha256_digest(
                input.kubeadm_config.as_bytes(),
            ),
            master0: master0.ip.clone(),
            api_endpoint,
            masters,
            lvscare_image,
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
            lvscare_image: self.lvscare_image.clone(),
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

/// Why a worker is updated: the masters it balances over changed (the only update a join
/// has), said with who joined or left and what follows on the worker.
pub fn describe_update(
    before: &Attributes,
    after: &Attributes,
    changed: &std::collections::BTreeSet<String>,
) -> Option<String> {
    if !changed.contains("masters") {
        return None;
    }
    let (moves, now) = came_and_went(before, after, "masters");
    let follows = if now.len() > 1 {
        "the VIP's IPVS rule and kube-lvscare.yaml are rewritten"
    } else {
        "the worker reaches master0 directly; kube-lvscare.yaml and the IPVS rule go"
    };
    Some(format!("masters changed ({moves}): {follows}"))
}

/// Who joined and who left the list attribute `key` (`10.0.0.5 joined, 10.0.0.4 left`),
/// and the list now.
pub(crate) fn came_and_went(
    before: &Attributes,
    after: &Attributes,
    key: &str,
) -> (String, Vec<String>) {
    let list = |a: &Attributes| -> Vec<String> {
        a.get(key)
            .and_then(|v| v.as_array())
            .map(|v| {
                v.iter()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was, now) = (list(before), list(after));
    let mut moves = Vec::new();
    let joined: Vec<&str> = now
        .iter()
        .filter(|m| !was.contains(m))
        .map(String::as_str)
        .collect();
    if !joined.is_empty() {
        moves.push(format!("{} joined", joined.join(", ")));
    }
    let left: Vec<&str> = was
        .iter()
        .filter(|m| !now.contains(m))
        .map(String::as_str)
        .collect();
    if !left.is_empty() {
        moves.push(format!("{} left", left.join(", ")));
    }
    (moves.join(", "), now)
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
    // init-kube.sh has installed seautil and before the join needs it, and kept by the
    // lvscare static pod the kubelet starts once joined.
    let mut pre_join = if !control_plane && ctx.masters.len() > 1 {
        api_balancing(r, None)
    } else {
        String::new()
    };
    // The registry's lvscare pod again: a reset of an earlier join emptied the manifests.
    if let Some(pod) = super::registry_client::registry_lvscare_pod(r, &host)
        && !control_plane
    {
        pre_join.push_str(pod.trim_start_matches("set -e\n"));
    }
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

/// Whether the change upgrades Kubernetes on its node (`plan::upgrade`): the recorded
/// version is not the one the plan wants.
fn upgrades(change: &Change) -> bool {
    let version = |a: Option<&Attributes>| a.and_then(|a| a.get("kube_version")).cloned();
    change.before.is_some() && version(change.before.as_ref()) != version(change.after())
}

/// A master's update: a Kubernetes upgrade, after master0's (`kubeadm upgrade node`).
pub async fn update_master(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let host = super::step_host(r, change);
    r.run(
        &change.address,
        &host,
        steps::kube_upgrade_node(&r.ctx.rootfs, r.exports(&host)),
        Stdin::Null,
    )
    .await?;
    Ok(Attributes::new())
}

/// A worker's update: a Kubernetes upgrade (drained from master0, `kubeadm upgrade node`
/// with the new binaries, uncordoned), and when the masters changed, where it reaches the
/// API server.
pub async fn update(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    if upgrades(change) {
        let ctx = &r.ctx;
        let a = change.address.as_str();
        let host = super::step_host(r, change);
        let node = r.node_name(a, &host).await?;
        drain(r, a, &node).await?;
        r.run(
            a,
            &host,
            steps::kube_upgrade_node(&ctx.rootfs, r.exports(&host)),
            Stdin::Null,
        )
        .await?;
        r.run(a, &ctx.master0, steps::uncordon(&node), Stdin::Null)
            .await?;
    }
    let moved = |key: &str| {
        change.before.as_ref().and_then(|b| b.get(key)) != change.after().and_then(|a| a.get(key))
    };
    if upgrades(change) && !moved("masters") && !moved("api_endpoint") && !moved("lvscare_image") {
        return Ok(Attributes::new());
    }
    move_api_endpoint(r, change).await
}

/// The masters changed, so the worker moves where it reaches the API server: the VIP's
/// IPVS rule and lvscare static pod over the masters, or master0 when it is the only one
/// (the rule and the pod go).
async fn move_api_endpoint(r: &Runner, change: &Change) -> Result<Attributes, StepFailure> {
    let ctx = &r.ctx;
    let host = change.host.clone().unwrap_or_default();
    let script = if ctx.masters.len() > 1 {
        format!(
            "set -e\n{}{}",
            steps::point_apiserver_at(&ctx.cluster, &ctx.vip).trim_start_matches("set -e\n"),
            api_balancing(r, None).trim_start_matches("set -e\n")
        )
    } else {
        format!(
            "set -e\n{}{}{}",
            steps::remove_static_pod(KUBE_LVSCARE).trim_start_matches("set -e\n"),
            steps::ipvs_rule_clean(&ctx.vip, 6443, None).trim_start_matches("set -e\n"),
            steps::point_apiserver_at(&ctx.cluster, &ctx.master0).trim_start_matches("set -e\n"),
        )
    };
    r.run(&change.address, &host, script, Stdin::Null).await?;
    Ok(Attributes::new())
}

/// Reads a join back: the kubelet's kubeconfig that the join wrote on the host, and the
/// node in the API.
pub async fn read(r: &Runner, recorded: &Recorded) -> Result<ReadBack, StepFailure> {
    let host = super::read::host_of(r, recorded);
    let kubelet = "/etc/kubernetes/kubelet.conf".to_string();
    let mut paths = vec![kubelet.clone()];
    // A worker of several masters: its lvscare pod, as the recorded masters make it.
    let pod = match recorded.resource_type {
        ResourceType::KubernetesWorker => {
            let attrs: WorkerAttrs = super::read::attributes(recorded)?;
            attrs.lvscare_image.as_ref().map(|image| {
                let vs = api_virtual_server(&attrs.api_endpoint, &attrs.masters);
                steps::lvscare_static_pod(KUBE_LVSCARE, &vs, image)
            })
        }
        _ => None,
    };
    let pod_path = format!("{}/{KUBE_LVSCARE}.yaml", steps::STATIC_POD_DIR);
    if pod.is_some() {
        paths.push(pod_path.clone());
    }
    let found = super::read::file_digests(r, &host, &paths).await?;
    if found[0].is_none() {
        return Ok(ReadBack::gone(format!(
            "{kubelet} is not there: {host} has not joined, or it was reset"
        )));
    }
    let mut findings = Vec::new();
    if let Some(pod) = &pod {
        let want = crate::image::layout::sha256_digest(pod.as_bytes());
        match found.get(1).cloned().flatten() {
            None => findings.push(format!(
                "{pod_path} is missing: no lvscare keeps the route to the masters"
            )),
            Some(d) if d != want.trim_start_matches("sha256:") => findings.push(format!(
                "{pod_path} is not the lvscare pod sealer wrote for masters {:?}",
                recorded
                    .attributes
                    .get("masters")
                    .cloned()
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    let node = r.node_name(&recorded.address, &host).await?;
    Ok(match super::read::api_nodes(r).await? {
        Err(down) => ReadBack::unreadable(down),
        Ok(nodes) if !nodes.contains(&node) => {
            ReadBack::gone(format!("node {node} is not in `kubectl get nodes`"))
        }
        Ok(_) => ReadBack::of_findings(findings),
    })
}

/// Drains `node` from master0 (a node the API no longer has needs none).
async fn drain(r: &Runner, address: &str, node: &str) -> Result<(), StepFailure> {
    let ctx = &r.ctx;
    r.run(
        address,
        &ctx.master0,
        steps::drain(node, ctx.drain_timeout.as_secs()),
        Stdin::Null,
    )
    .await?;
    Ok(())
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
        drain(r, a, &node).await?;
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
            lvscare_image: None,
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
    fn workers_balance_over_the_masters_with_a_one_shot_rule_and_an_lvscare_pod() {
        let masters = vec!["10.0.0.2".to_string(), "10.0.0.3".to_string()];
        let vs = api_virtual_server("10.103.97.2", &masters);
        let rule = steps::ipvs_rule(&vs, None);
        assert_eq!(
            rule,
            "set -e\nseautil ipvs --vs 10.103.97.2:6443 --health-path /healthz --health-schem https --rs 10.0.0.2:6443 --rs 10.0.0.3:6443 --run-once\n"
        );
        let pod = steps::lvscare_static_pod(KUBE_LVSCARE, &vs, &lvscare_image("sea.hub:5000"));
        let pod: serde_json::Value = serde_saphyr::from_str(&pod).unwrap();
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["name"], "kube-lvscare");
        assert_eq!(pod["spec"]["hostNetwork"], true);
        let main = &pod["spec"]["containers"][0];
        assert_eq!(main["image"], "sea.hub:5000/sealerio/lvscare:v1.1.3-beta.8");
        assert_eq!(main["command"], json!(["/usr/bin/lvscare"]));
        assert_eq!(
            main["args"],
            json!([
                "care",
                "--vs",
                "10.103.97.2:6443",
                "--health-path",
                "/healthz",
                "--health-schem",
                "https",
                "--rs",
                "10.0.0.2:6443",
                "--rs",
                "10.0.0.3:6443"
            ])
        );
        assert_eq!(main["securityContext"]["privileged"], true);
    }

    #[test]
    fn a_workers_update_says_which_masters_came_and_went() {
        let attrs = |masters: &[&str]| map(&[("masters", json!(masters))]);
        let changed = ["masters".to_string()].into_iter().collect();
        assert_eq!(
            describe_update(&attrs(&["a", "b", "c"]), &attrs(&["a", "d"]), &changed).unwrap(),
            "masters changed (d joined, b, c left): the VIP's IPVS rule and kube-lvscare.yaml are rewritten"
        );
        assert_eq!(
            describe_update(&attrs(&["a", "b"]), &attrs(&["a"]), &changed).unwrap(),
            "masters changed (b left): the worker reaches master0 directly; kube-lvscare.yaml and the IPVS rule go"
        );
        let other = ["kube_version".to_string()].into_iter().collect();
        assert_eq!(
            describe_update(&attrs(&["a"]), &attrs(&["a"]), &other),
            None
        );
    }

    #[test]
    fn a_master_is_replaced_on_every_attribute() {
        let names: Vec<String> = to_attributes(&master()).into_keys().collect();
        let mut replace_on: Vec<&str> = MASTER_SCHEMA.replace_on.to_vec();
        replace_on.sort_unstable();
        assert_eq!(names, replace_on);
    }
}
