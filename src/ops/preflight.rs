//! Preflight: before an apply changes anything, every host the plan creates something on is
//! asked for its facts, in parallel and read-only (one command per host), and the facts are
//! checked against what the plan installs there. Every failure of every host is reported
//! at once; a failure refuses the apply with nothing changed. `sealer check` runs it alone.
//!
//! Which checks a host gets comes from the plan (`needs`): the image's platform and free
//! space where a rootfs is created, `overlay` where a container runtime is, swap,
//! `br_netfilter` and `ip_forward` where Kubernetes is, the ports of what is created there
//! (the control plane's on a host getting `kubeadm init` or a control-plane join, the
//! kubelet's on every node, the registry's where one is created). Hostnames and clocks are
//! compared across the checked hosts. Turning facts into findings is pure (`evaluate`,
//! `across_hosts`), so each rule is unit-tested without a host.

use super::Settings;
use super::apply::{ExecSettings, Prepared, Session, access, base_context, node_names};
use crate::diag::{Error, Result};
use crate::exec::hosts::Pool;
use crate::exec::runner::Runner;
use crate::image::{Image, Platform, Reference};
use crate::kinds::host::HostAttrs;
use crate::kinds::registry::RegistryAttrs;
use crate::plan::{Action, Plan, PlanOptions};
use crate::resource::ResourceType;
use crate::state::{ClusterState, StateStore};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A named check: what `--skip-check` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Platform,
    Swap,
    Ports,
    BrNetfilter,
    Overlay,
    IpForward,
    Disk,
    Hostname,
    Clock,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::Platform,
        Check::Swap,
        Check::Ports,
        Check::BrNetfilter,
        Check::Overlay,
        Check::IpForward,
        Check::Disk,
        Check::Hostname,
        Check::Clock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Platform => "platform",
            Check::Swap => "swap",
            Check::Ports => "ports",
            Check::BrNetfilter => "br_netfilter",
            Check::Overlay => "overlay",
            Check::IpForward => "ip_forward",
            Check::Disk => "disk",
            Check::Hostname => "hostname",
            Check::Clock => "clock",
        }
    }

    /// A check by its name; `all` is not one (the CLI expands it).
    pub fn parse(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a finding refuses the apply, or only tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Fail,
    Warn,
}

/// What a check found wrong on a host, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub severity: Severity,
    pub message: String,
    pub hint: String,
}

impl Finding {
    fn fail(check: Check, message: String, hint: impl Into<String>) -> Finding {
        Finding {
            check,
            severity: Severity::Fail,
            message,
            hint: hint.into(),
        }
    }

    fn warn(check: Check, message: String, hint: impl Into<String>) -> Finding {
        Finding {
            check,
            severity: Severity::Warn,
            message,
            hint: hint.into(),
        }
    }
}

/// What the plan installs on one host: what to check there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNeeds {
    /// A rootfs (the image's binaries) is created: the host must run the image's platform.
    pub platform: bool,
    /// A container runtime is created: it needs the overlay filesystem.
    pub runtime: bool,
    /// Kubernetes is installed (init or join, created or replaced).
    pub kubernetes: bool,
    /// Ports that what is created will listen on, each with what listens.
    pub ports: BTreeMap<u16, &'static str>,
    /// Bytes the rootfs takes under the data root, when one is created.
    pub disk: Option<u64>,
}

/// What an image's unpacked tree takes on a host: everything but `registry/`, which only
/// registry hosts receive, and `registry/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageSizes {
    pub rootfs: u64,
    pub registry: u64,
}

/// The ports of a control-plane node, as kubeadm checks them.
const CONTROL_PLANE_PORTS: [(u16, &str); 6] = [
    (6443, "the API server"),
    (2379, "etcd"),
    (2380, "etcd peers"),
    (10250, "the kubelet"),
    (10257, "the controller manager"),
    (10259, "the scheduler"),
];
const KUBELET_PORT: (u16, &str) = (10250, "the kubelet");

/// Hosts the plan creates something on, and what. Ports and space are checked only for
/// what is created: what a replacement replaces holds them until its teardown.
pub fn needs(plan: &Plan, sizes: ImageSizes) -> BTreeMap<String, HostNeeds> {
    let mut out: BTreeMap<String, HostNeeds> = BTreeMap::new();
    for change in &plan.changes {
        if !matches!(change.action, Action::Create | Action::Replace) {
            continue;
        }
        let created = change.action == Action::Create;
        let Some(host) = change.host.clone().or_else(|| {
            (change.resource_type == ResourceType::KubernetesInit)
                .then(|| plan.context.master0.clone())
        }) else {
            continue;
        };
        let n = || HostNeeds::default();
        match change.resource_type {
            ResourceType::Host => {
                out.entry(host).or_insert_with(n);
            }
            ResourceType::Rootfs => {
                let registry = plan.context.registry.hosts.contains(&host);
                let need = out.entry(host).or_insert_with(n);
                need.platform = true;
                // A replacement removes the old copy first: only a new one needs more room.
                if created {
                    need.disk = Some(sizes.rootfs + if registry { sizes.registry } else { 0 });
                }
            }
            ResourceType::ContainerRuntime => out.entry(host).or_insert_with(n).runtime = true,
            ResourceType::KubernetesInit | ResourceType::KubernetesMaster => {
                let need = out.entry(host).or_insert_with(n);
                need.kubernetes = true;
                if created {
                    need.ports.extend(CONTROL_PLANE_PORTS);
                }
            }
            ResourceType::KubernetesWorker => {
                let need = out.entry(host).or_insert_with(n);
                need.kubernetes = true;
                if created {
                    need.ports.extend([KUBELET_PORT]);
                }
            }
            ResourceType::Registry if created => {
                let port = change
                    .after()
                    .and_then(|a| {
                        crate::kinds::from_attributes::<RegistryAttrs>(&change.address, a).ok()
                    })
                    .and_then(|r| r.port);
                let need = out.entry(host).or_insert_with(n);
                if let Some(port) = port {
                    need.ports.insert(port, "the registry");
                }
            }
            _ => {}
        }
    }
    // A sandboxed local host (`ssh.sandbox`) keeps its files apart, not its network: what
    // runs in it shares the operator machine's ports and serves none of them, so a port
    // the machine itself uses says nothing about it.
    for change in &plan.changes {
        let sandboxed = change.resource_type == ResourceType::Host
            && change
                .after()
                .and_then(|a| a.get("sandbox"))
                .is_some_and(|v| !v.is_null());
        if sandboxed && let Some(need) = change.host.as_ref().and_then(|h| out.get_mut(h)) {
            need.ports.clear();
        }
    }
    out
}

/// A host's facts, as [`sealer_providers::steps::host_facts`] prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub hostname: String,
    /// `uname -s`, `uname -m`, and the distribution's `PRETTY_NAME`.
    pub kernel: String,
    pub machine: String,
    pub os: String,
    /// Seconds since the epoch when the host answered (`None`: no answer it could read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<i64>,
    /// Active swap devices.
    pub swap_devices: u32,
    /// TCP ports something listens on, any address.
    pub listening: BTreeSet<u16>,
    /// `loaded`, `loadable` or `absent`.
    pub br_netfilter: String,
    pub overlay: String,
    /// The sysctl's value, `VALUE-ro` when `/proc/sys` cannot be written, or `absent`.
    pub bridge_nf_call_iptables: String,
    pub ip_forward: String,
    /// Free bytes of the nearest existing directory at or above the data root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_free: Option<u64>,
    pub disk_path: String,
}

/// What a facts command may print: a host that prints more is not answering it.
const FACTS_LIMIT: usize = 1 << 20;

impl Facts {
    pub fn parse(text: &str) -> std::result::Result<Facts, String> {
        if text.len() > FACTS_LIMIT {
            return Err(format!(
                "the host's facts are {} bytes, more than the {FACTS_LIMIT} they may be",
                text.len()
            ));
        }
        let mut facts = Facts::default();
        let mut seen = 0;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            seen += 1;
            match key {
                "clock" => facts.clock = value.parse().ok(),
                "kernel" => facts.kernel = value.to_string(),
                "machine" => facts.machine = value.to_string(),
                "os" => facts.os = value.to_string(),
                "hostname" => facts.hostname = value.to_string(),
                "swap" => facts.swap_devices = value.parse().unwrap_or(0),
                "listening" => {
                    facts.listening = value
                        .split_whitespace()
                        .filter_map(|hex| u16::from_str_radix(hex, 16).ok())
                        .collect();
                }
                "br_netfilter" => facts.br_netfilter = value.to_string(),
                "overlay" => facts.overlay = value.to_string(),
                "bridge_nf_call_iptables" => facts.bridge_nf_call_iptables = value.to_string(),
                "ip_forward" => facts.ip_forward = value.to_string(),
                "disk_free_kib" => {
                    facts.disk_free = value.parse::<u64>().ok().map(|k| k.saturating_mul(1024));
                }
                "disk_path" => facts.disk_path = value.to_string(),
                _ => seen -= 1,
            }
        }
        if seen == 0 {
            return Err("the host printed none of the facts asked for".to_string());
        }
        Ok(facts)
    }
}

/// The OCI name of what `uname -m` prints.
pub fn oci_arch(machine: &str) -> &str {
    match machine {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" | "aarch64_be" => "arm64",
        "i386" | "i486" | "i586" | "i686" => "386",
        m if m.starts_with("armv") => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        m => m,
    }
}

/// The findings of one host's own checks.
pub fn evaluate(
    needs: &HostNeeds,
    facts: &Facts,
    platform: Option<&Platform>,
    data_dir: &str,
    skip: &BTreeSet<Check>,
) -> Vec<Finding> {
    let on = |c: Check| !skip.contains(&c);
    let mut out = Vec::new();
    if needs.platform
        && on(Check::Platform)
        && let Some(platform) = platform
    {
        let os = facts.kernel.to_ascii_lowercase();
        let arch = oci_arch(&facts.machine);
        if os != platform.os || arch != platform.architecture {
            out.push(Finding::fail(
                Check::Platform,
                format!(
                    "the cluster image is for {}/{}, but the host runs {} on {} ({os}/{arch})",
                    platform.os, platform.architecture, facts.kernel, facts.machine
                ),
                format!(
                    "use an image built for {os}/{arch} (`sealer build --platform {os}/{arch}`), or take the host out of the Clusterfile"
                ),
            ));
        }
    }
    if needs.kubernetes && on(Check::Swap) && facts.swap_devices > 0 {
        out.push(Finding::fail(
            Check::Swap,
            format!(
                "swap is on ({} in /proc/swaps): kubeadm refuses it and the kubelet does not start with it",
                plural(facts.swap_devices as usize, "device", "devices")
            ),
            "turn it off (`swapoff -a`) and remove it from /etc/fstab so it stays off after a reboot",
        ));
    }
    if needs.kubernetes && on(Check::BrNetfilter) {
        out.extend(br_netfilter(facts));
    }
    if needs.kubernetes && on(Check::IpForward) {
        out.extend(sysctl(
            Check::IpForward,
            "/proc/sys/net/ipv4/ip_forward",
            &facts.ip_forward,
        ));
    }
    if needs.runtime && on(Check::Overlay) && facts.overlay == "absent" {
        out.push(Finding::fail(
            Check::Overlay,
            "the kernel has no overlay filesystem (not in /proc/filesystems, not a module of this kernel): containerd's snapshotter needs it".to_string(),
            "install this kernel's modules and `modprobe overlay`, or use a kernel built with CONFIG_OVERLAY_FS",
        ));
    }
    if on(Check::Ports) {
        for (port, what) in &needs.ports {
            if facts.listening.contains(port) {
                out.push(Finding::fail(
                    Check::Ports,
                    format!("port {port} is in use: {what} will listen on it"),
                    format!("`ss -ltnp 'sport = :{port}'` on the host shows what listens; stop it"),
                ));
            }
        }
    }
    if let Some(needed) = needs.disk
        && on(Check::Disk)
    {
        match facts.disk_free {
            Some(free) if free < needed => out.push(Finding::fail(
                Check::Disk,
                format!(
                    "{} free under {}, but the cluster's rootfs takes {} under {data_dir}",
                    size(free),
                    facts.disk_path,
                    size(needed)
                ),
                "free space there, or put the data root on a larger filesystem",
            )),
            Some(_) => {}
            None => out.push(Finding::warn(
                Check::Disk,
                format!("`df` did not say how much space is free under {data_dir}"),
                "check the free space by hand: the cluster's rootfs is copied there",
            )),
        }
    }
    out
}

/// `br_netfilter`: the kernel must have it (the image's `init-kube.sh` loads it and sets
/// its sysctl, as Sealer's does).
fn br_netfilter(facts: &Facts) -> Vec<Finding> {
    match facts.br_netfilter.as_str() {
        "loaded" => sysctl(
            Check::BrNetfilter,
            "/proc/sys/net/bridge/bridge-nf-call-iptables",
            &facts.bridge_nf_call_iptables,
        ),
        "loadable" => Vec::new(),
        _ => vec![Finding::fail(
            Check::BrNetfilter,
            "the kernel has no br_netfilter (not loaded, not a module of this kernel): kubeadm refuses a host without it and pods' traffic across the bridge would bypass iptables".to_string(),
            "install this kernel's modules (e.g. linux-modules-extra on Ubuntu) and `modprobe br_netfilter`",
        )],
    }
}

/// A sysctl kubeadm wants at 1: 1 passes; another value passes with a warning when it can be
/// written (the image's `init-kube.sh` sets it, as Sealer's does), fails when it cannot.
fn sysctl(check: Check, path: &str, value: &str) -> Vec<Finding> {
    let (value, read_only) = match value.strip_suffix("-ro") {
        Some(v) => (v, true),
        None => (value, false),
    };
    if value == "1" {
        return Vec::new();
    }
    let hint = format!(
        "`sysctl -w {}=1` and keep it in /etc/sysctl.d/",
        sysctl_name(path)
    );
    match value {
        "absent" => vec![Finding::fail(
            check,
            format!("{path} does not exist: kubeadm refuses the host"),
            hint,
        )],
        _ if read_only => vec![Finding::fail(
            check,
            format!(
                "{path} is {value} and cannot be written here (a read-only /proc/sys): kubeadm refuses the host"
            ),
            "run the host with a writable /proc/sys, or set it to 1 where the host is made",
        )],
        _ => vec![Finding::warn(
            check,
            format!(
                "{path} is {value}: the image's init-kube.sh must set it to 1, or kubeadm refuses the host"
            ),
            hint,
        )],
    }
}

fn sysctl_name(path: &str) -> String {
    path.trim_start_matches("/proc/sys/").replace('/', ".")
}

/// Clocks further apart than this fail the `clock` check (beyond what measuring them over
/// the network can tell apart): certificates kubeadm makes on one host look not yet valid
/// on a host whose clock is behind, and etcd members warn from one second.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// One checked host for the checks across hosts: its facts, and when it was asked and when
/// it answered (seconds since the epoch, on this machine's clock).
pub struct Answered<'a> {
    pub host: &'a str,
    pub facts: &'a Facts,
    pub asked: f64,
    pub answered: f64,
}

/// Findings across hosts: a hostname another host of the cluster has (checked now, or
/// `recorded` in the state), and a clock off from the reference host's (master0 when it is
/// checked, else the first). Each finding is for the host it names.
pub fn across_hosts(
    answered: &[Answered<'_>],
    recorded: &BTreeMap<String, String>,
    master0: &str,
    skip: &BTreeSet<Check>,
) -> Vec<(String, Finding)> {
    let mut out = Vec::new();
    if !skip.contains(&Check::Hostname) {
        let mut by_name: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for a in answered.iter().filter(|a| !a.facts.hostname.is_empty()) {
            by_name
                .entry(a.facts.hostname.to_ascii_lowercase())
                .or_default()
                .push(a.host);
        }
        for (ip, name) in recorded {
            if !answered.iter().any(|a| a.host == ip) {
                by_name
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(ip);
            }
        }
        for a in answered {
            let name = a.facts.hostname.to_ascii_lowercase();
            let others: Vec<&str> = by_name
                .get(&name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|h| *h != a.host)
                .collect();
            if name.is_empty() || others.is_empty() {
                continue;
            }
            out.push((
                a.host.to_string(),
                Finding::fail(
                    Check::Hostname,
                    format!(
                        "hostname {} is also the hostname of {}: Kubernetes names each node by its hostname, so they would be one node",
                        a.facts.hostname,
                        others.join(", ")
                    ),
                    "give every host its own hostname (`hostnamectl set-hostname NAME`)",
                ),
            ));
        }
    }
    if !skip.contains(&Check::Clock) {
        let timed: Vec<(&Answered<'_>, f64, f64)> = answered
            .iter()
            .filter_map(|a| {
                let clock = a.facts.clock? as f64;
                let midpoint = (a.asked + a.answered) / 2.0;
                // `date +%s` truncates to the second; the answer took `answered - asked`.
                let uncertainty = (a.answered - a.asked).max(0.0) / 2.0 + 1.0;
                Some((a, clock + 0.5 - midpoint, uncertainty))
            })
            .collect();
        let reference = timed
            .iter()
            .find(|(a, ..)| a.host == master0)
            .or_else(|| timed.first());
        if let Some((reference, ref_offset, ref_uncertainty)) = reference {
            for (a, offset, uncertainty) in &timed {
                let skew = offset - ref_offset;
                if a.host == reference.host
                    || skew.abs() <= MAX_CLOCK_SKEW.as_secs_f64() + uncertainty + ref_uncertainty
                {
                    continue;
                }
                out.push((
                    a.host.to_string(),
                    Finding::fail(
                        Check::Clock,
                        format!(
                            "its clock is {:.0} s {} that of {} (at most {} s apart are allowed)",
                            skew.abs(),
                            if skew > 0.0 { "ahead of" } else { "behind" },
                            reference.host,
                            MAX_CLOCK_SKEW.as_secs()
                        ),
                        "synchronise the hosts' clocks (chrony or systemd-timesyncd against one NTP source)",
                    ),
                ));
            }
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= 10 * 1024 * MIB {
        format!("{:.1} GiB", bytes as f64 / (1024 * MIB) as f64)
    } else {
        format!("{} MiB", bytes.div_ceil(MIB))
    }
}

/// What preflight found on one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    /// The checks run on this host (after `--skip-check`).
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
    /// Why the host could not be asked (it is down, a key is refused): a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<Finding>,
}

impl HostReport {
    pub fn failures(&self) -> usize {
        usize::from(self.error.is_some())
            + self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Fail)
                .count()
    }
}

/// Every checked host's report, in address order.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub cluster: String,
    pub skipped: Vec<Check>,
    pub hosts: Vec<HostReport>,
}

impl Preflight {
    pub fn failures(&self) -> usize {
        self.hosts.iter().map(HostReport::failures).sum()
    }

    pub fn failed_hosts(&self) -> usize {
        self.hosts.iter().filter(|h| h.failures() > 0).count()
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0
    }
}

/// Checks every host `prepared` creates something on, before `execute` runs it, under the
/// session's lock. The connections it opens are kept in `prepared` for the apply.
pub async fn preflight(
    settings: &Settings,
    session: &Session,
    prepared: &mut Prepared,
    exec: &ExecSettings,
    skip: &BTreeSet<Check>,
) -> Result<Preflight> {
    let state = session.store.cluster(&prepared.plan.cluster)?;
    run(settings, state, prepared, exec, skip).await
}

/// `sealer check -f Clusterfile`: plans as `sealer plan` does, then checks the hosts that
/// plan creates something on. Changes nothing on a host or in the state.
pub async fn check<F, Fut>(
    settings: &Settings,
    path: &Path,
    exec: &ExecSettings,
    skip: &BTreeSet<Check>,
    pull: F,
) -> Result<Preflight>
where
    F: Fn(Reference, Platform) -> Fut,
    Fut: Future<Output = Result<Image>>,
{
    let mut prepared =
        super::apply::prepare_apply(settings, path, &PlanOptions::default(), None, pull).await?;
    let state = match StateStore::open_existing(&settings.state_path)? {
        Some(store) => store.cluster(&prepared.plan.cluster)?,
        None => None,
    };
    run(settings, state, &mut prepared, exec, skip).await
}

async fn run(
    settings: &Settings,
    state: Option<ClusterState>,
    prepared: &mut Prepared,
    exec: &ExecSettings,
    skip: &BTreeSet<Check>,
) -> Result<Preflight> {
    let plan = &prepared.plan;
    let mut report = Preflight {
        cluster: plan.cluster.clone(),
        skipped: skip.iter().copied().collect(),
        hosts: Vec::new(),
    };
    // Everything skipped: no host is asked.
    if Check::ALL.iter().all(|c| skip.contains(c)) {
        return Ok(report);
    }
    let creates_rootfs = plan
        .changes
        .iter()
        .any(|c| c.resource_type == ResourceType::Rootfs && c.action != Action::Delete);
    let sizes = match &prepared.compiled {
        Some(compiled) if creates_rootfs && !skip.contains(&Check::Disk) => {
            image_sizes(settings, compiled)?
        }
        _ => ImageSizes::default(),
    };
    let needs = needs(plan, sizes);
    if needs.is_empty() {
        return Ok(report);
    }
    // About to connect: a missing private key is the Clusterfile's error, with its
    // location, not a host that cannot be reached.
    if let Some(compiled) = &prepared.compiled {
        let problems = crate::clusterfile::check_local_files(
            &compiled.clusterfile,
            settings.user_home.as_deref(),
        );
        if !problems.is_empty() {
            return Err(Error::many(problems));
        }
    }
    let platform = prepared
        .compiled
        .as_ref()
        .map(|c| c.images.cluster.1.config.platform());
    let state = state.unwrap_or_else(|| ClusterState {
        name: plan.cluster.clone(),
        lineage: String::new(),
        serial: 0,
        created_at: String::new(),
        updated_at: String::new(),
        resources: BTreeMap::new(),
        applied_config: None,
        digests_keyed: true,
    });
    let data_dir = plan.context.data_dir.clone();
    let pool = Pool::new(access(
        prepared,
        &state,
        exec,
        settings.user_home.as_deref(),
    ));
    let runner = Arc::new(Runner {
        ctx: base_context(
            &plan.cluster,
            &plan.context,
            exec.step_timeout.min(super::READ_TIMEOUT),
        ),
        pool,
        sink: Arc::new(super::refresh::Quiet),
        node_names: std::sync::Mutex::new(node_names(&state)),
        secrets: Arc::new(std::sync::Mutex::new(Vec::new())),
        distribution: Default::default(),
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(exec.parallelism.max(1)));
    let mut asks = tokio::task::JoinSet::new();
    for host in needs.keys().cloned() {
        let runner = Arc::clone(&runner);
        let limit = Arc::clone(&limit);
        let script = sealer_providers::steps::host_facts(&data_dir);
        asks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut asked = now();
            let mut probe = runner.probe(&host, script.clone()).await;
            // The question only reads: a connection lost on the way (a host that just came
            // back, an sshd under load) is asked once more, on a new connection.
            if probe.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                asked = now();
                probe = runner.probe(&host, script).await;
            }
            let answered = now();
            let facts = match probe {
                Ok(out) if out.ok => Facts::parse(&out.stdout),
                Ok(out) => Err(format!(
                    "asking for its facts failed: {}",
                    out.stderr_line()
                )),
                Err(e) => Err(e.message),
            };
            (host, facts, asked, answered)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = asks.join_next().await {
        answers.push(done.map_err(|e| Error::msg(format!("a preflight check stopped: {e}")))?);
    }
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    // The connections stay open for the apply that follows.
    if let Ok(runner) = Arc::try_unwrap(runner) {
        prepared.pool = Some(runner.pool);
    }
    let leaving: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.resource_type == ResourceType::Host && c.action == Action::Delete)
        .filter_map(|c| c.host.as_deref())
        .collect();
    let recorded: BTreeMap<String, String> = state
        .resources
        .values()
        .filter(|r| r.resource_type == ResourceType::Host)
        .filter_map(|r| Some((r.host.clone()?, HostAttrs::recorded(r)?.hostname?)))
        .filter(|(ip, _)| !leaving.contains(ip.as_str()))
        .collect();
    let answered: Vec<Answered<'_>> = answers
        .iter()
        .filter_map(|(host, facts, asked, answered)| {
            Some(Answered {
                host,
                facts: facts.as_ref().ok()?,
                asked: *asked,
                answered: *answered,
            })
        })
        .collect();
    let across = across_hosts(&answered, &recorded, &plan.context.master0, skip);
    for (host, facts, ..) in &answers {
        let need = &needs[host];
        let mut checks = checks_of(need, skip);
        checks.extend(
            [Check::Hostname, Check::Clock]
                .into_iter()
                .filter(|c| !skip.contains(c)),
        );
        let (facts, error, mut findings) = match facts {
            Ok(facts) => {
                let f = evaluate(need, facts, platform.as_ref(), &data_dir, skip);
                (Some(facts.clone()), None, f)
            }
            Err(e) => (None, Some(e.clone()), Vec::new()),
        };
        findings.extend(
            across
                .iter()
                .filter(|(h, _)| h == host)
                .map(|(_, f)| f.clone()),
        );
        report.hosts.push(HostReport {
            host: host.clone(),
            checks,
            facts,
            error,
            findings,
        });
    }
    Ok(report)
}

/// The checks a host's needs call for, in the order of [`Check::ALL`].
fn checks_of(need: &HostNeeds, skip: &BTreeSet<Check>) -> Vec<Check> {
    Check::ALL
        .into_iter()
        .filter(|c| !skip.contains(c))
        .filter(|c| match c {
            Check::Platform => need.platform,
            Check::Swap | Check::BrNetfilter | Check::IpForward => need.kubernetes,
            Check::Overlay => need.runtime,
            Check::Ports => !need.ports.is_empty(),
            Check::Disk => need.disk.is_some(),
            Check::Hostname | Check::Clock => false,
        })
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the images' unpacked trees take (unpacked once into the cache, which plan and apply
/// use too).
fn image_sizes(settings: &Settings, compiled: &super::Compiled) -> Result<ImageSizes> {
    let store = settings.store()?;
    let mut sizes = ImageSizes::default();
    let images = std::iter::once(&compiled.images.cluster.1)
        .chain(compiled.images.apps.iter().map(|(_, image)| image));
    for image in images {
        let tree = crate::rootfs::extract(&store, image, settings.max_unpacked)?;
        sizes.rootfs += tree_size(&tree, &tree.join("registry"));
        sizes.registry += tree_size(&tree.join("registry"), Path::new(""));
    }
    Ok(sizes)
}

/// The bytes of the regular files under `dir`, except under `except`.
fn tree_size(dir: &Path, except: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir == except {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests;
