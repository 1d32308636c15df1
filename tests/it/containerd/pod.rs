//! kubelet's side of a pod on a bed host, through a real containerd's CRI runtime service:
//! the sandbox, its network from the real CNI plugins, a container in it, and the pod's end.

use super::cri::Cri;
use super::{PAUSE, READY_TIMEOUT, RUNC};
use crate::support::testbed::TestBed;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ImageSpec, LinuxPodSandboxConfig,
    PodSandboxConfig, PodSandboxMetadata, PodSandboxState, PortMapping, Protocol,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Debian's `containernetworking-plugins` (bridge, host-local, loopback, portmap...).
pub(super) const CNI_PLUGINS: &str = "/usr/lib/cni";
const CNI_NETWORK: &str = "bed";
/// This node's share of the cluster's pod CIDR (sealer's default 100.64.0.0/10), as a
/// network plugin such as flannel hands each node a /24 of it.
const NODE_POD_SUBNET: &str = "100.64.0.0/24";
/// The pod's web container's port, and the host port the portmap plugin maps to it.
const CONTAINER_PORT: i32 = 8080;
const HOST_PORT: i32 = 30080;
const POD_UID: &str = "5c5d0e2a-bed0-4c1e-9a1e-000000000001";
const POD_LOGS: &str = "/var/log/pods/default_probe_5c5d0e2a-bed0-4c1e-9a1e-000000000001";

/// Mounts on host `i` the cgroup hierarchies this machine has under /sys/fs/cgroup, as a
/// real host's init does: `ip netns exec` gave the bed's hosts a fresh sysfs (for their own
/// network devices), which hides them, and runc needs them to place a container.
pub(super) fn mount_cgroups(bed: &TestBed, i: usize) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut script = String::new();
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS... - TYPE SOURCE SUPER_OPTIONS
        let (mount, fs) = line.split_once(" - ").unwrap();
        let point = mount.split(' ').nth(4).unwrap();
        let fs: Vec<&str> = fs.split(' ').collect();
        if point == "/sys/fs/cgroup" || point.starts_with("/sys/fs/cgroup/") {
            script += &format!(
                "mkdir -p {point} && mount -t {} -o {} {} {point}\n",
                fs[0], fs[2], fs[1]
            );
        }
    }
    assert!(
        !script.is_empty(),
        "this machine has no cgroups under /sys/fs/cgroup:\n{mountinfo}"
    );
    bed.ssh_ok(i, &script);
}

/// The value of the first `key = "VALUE"` line of containerd's `config`.
fn config_value(config: &str, key: &str) -> String {
    let prefix = format!("{key} = \"");
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix)?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no `{key}` in containerd's config:\n{config}"))
        .to_string()
}

/// Where this test's pods' cgroups go, in kubelet's cgroupfs shape (`/kubepods/pod<UID>`):
/// one tree per test process, so runs on one machine never share one. Without a parent,
/// containerd would use `/k8s.io`, a tree no test could know to be its own to remove.
pub(super) fn pods_cgroup() -> String {
    format!("/sealer-test-{}", std::process::id())
}

/// Removes the cgroup tree `0` (empty directories, deepest first) from every hierarchy when
/// dropped, as kubelet removes a pod's cgroup after the pod: the cgroups are the machine's.
pub(super) struct CgroupTree(pub(super) String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        remove(&entry.path());
                    }
                }
                // A cgroup goes with rmdir(2) once it has no processes and no children.
                let _ = std::fs::remove_dir(dir);
            }
        }
        let tree = self.0.trim_start_matches('/');
        remove(&Path::new("/sys/fs/cgroup").join(tree));
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            remove(&hierarchy.path().join(tree));
        }
    }
}

/// The pod kubelet would ask for, its `attempt`th sandbox: logs under `/var/log/pods` as
/// kubelet keeps them, cgroups under [`pods_cgroup`], a host port for its web container.
pub(super) fn pod_config(attempt: u32) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "probe".into(),
            uid: POD_UID.into(),
            namespace: "default".into(),
            attempt,
        }),
        hostname: "probe".into(),
        log_directory: POD_LOGS.into(),
        port_mappings: vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: CONTAINER_PORT,
            host_port: HOST_PORT,
            host_ip: String::new(),
        }],
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/pod{POD_UID}", pods_cgroup()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits until `done` holds for what `poll` returns, or fails showing the last value.
fn wait_for<T: std::fmt::Debug>(
    what: &str,
    mut poll: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let value = poll();
        if done(&value) {
            return value;
        }
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "{what} never happened: {value:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kubelet's side of a pod on host 0, through containerd's CRI runtime service: a sandbox
/// from the configured `sandbox_image`, under runc, networked by the real CNI plugins, and a
/// container from the pulled image in it; then the pod goes and everything it held is freed.
/// `failed`, the sandbox of an attempt without a network, goes once the network is there.
pub(super) fn a_pod_runs_and_goes(bed: &TestBed, cri: &Cri, config: &str, failed: &str) {
    let bin_dir = config_value(config, "bin_dir");
    let conf_dir = config_value(config, "conf_dir");
    // A cluster image's cri/containerd.tar.gz lays its CNI plugins out there
    // (examples/images/cluster-image/cri/README.md): containerd must look for them there.
    assert_eq!(bin_dir, "/opt/cni/bin");
    // The CNI a cluster image and its network app install: Debian's plugins where containerd
    // looks for them (a host's /opt is its own overlay), and a conflist in conf_dir: a
    // bridge with host-local addresses from this node's share of the cluster's pod CIDR, and
    // portmap for host ports (iptables DNAT in the host's own network namespace). containerd
    // picks the conflist up while running, as it does when a CNI pod writes it.
    bed.ssh_ok(
        0,
        &format!(
            "mkdir -p {bin_dir} && for p in bridge host-local loopback portmap; do ln -sf {CNI_PLUGINS}/$p {bin_dir}/$p; done && \
             cat > {conf_dir}/10-bed.conflist.new <<'JSON'\n{}\nJSON\n\
             mv {conf_dir}/10-bed.conflist.new {conf_dir}/10-bed.conflist",
            serde_json::json!({
                "cniVersion": "1.0.0",
                "name": CNI_NETWORK,
                "plugins": [{
                    "type": "bridge", "bridge": "cni0", "isGateway": true,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": NODE_POD_SUBNET}]],
                             "routes": [{"dst": "0.0.0.0/0"}]},
                }, {
                    "type": "portmap", "capabilities": {"portMappings": true},
                }],
            })
        ),
    );
    wait_for(
        "containerd's NetworkReady",
        || cri.network_condition(),
        |c| c.status,
    );
    cri.stop_and_remove_pod(failed)
        .unwrap_or_else(|e| panic!("the failed attempt's sandbox stays: {e}"));
    assert_eq!(cri.list_pods(), []);

    bed.ssh_ok(0, &format!("mkdir -p {POD_LOGS}"));
    let pod = pod_config(1);
    let id = cri.run_pod(&pod).unwrap_or_else(|e| {
        panic!(
            "RunPodSandbox failed: {e}\n{}",
            bed.ssh_ok(0, "tail -n 20 /root/containerd.log")
        )
    });
    let status = cri.pod_status(&id);
    let sandbox = status.status.as_ref().unwrap();
    assert_eq!(
        sandbox.state,
        PodSandboxState::SandboxReady as i32,
        "{status:?}"
    );
    let ip = sandbox
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    let gateway = NODE_POD_SUBNET.replace(".0/24", ".1");
    assert!(
        ip.starts_with(NODE_POD_SUBNET.trim_end_matches("0/24")) && ip != gateway,
        "the sandbox's IP {ip:?} is not one host-local gives from {NODE_POD_SUBNET}"
    );
    // host-local's lease: the address, held by this sandbox.
    let lease = format!("/var/lib/cni/networks/{CNI_NETWORK}/{ip}");
    let holder = bed.ssh_ok(0, &format!("cat {lease}"));
    assert!(
        holder.starts_with(&id),
        "{lease} holds {holder:?}, not {id}"
    );
    // The network namespace containerd made and the bridge plugin put the address in.
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
    let netns = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .unwrap_or_else(|| panic!("no network namespace in the sandbox's spec: {info}"))
        .to_string();
    let addrs = bed.ssh_ok(
        0,
        &format!("nsenter --net={netns} ip -4 -o addr show dev eth0"),
    );
    assert!(addrs.contains(&format!(" {ip}/24 ")), "{netns}: {addrs}");
    // runc runs it: its state for containerd's k8s.io namespace lists the sandbox.
    let runc_list = format!("{RUNC} --root /run/containerd/runc/k8s.io list -q");
    assert_eq!(bed.ssh_ok(0, &runc_list).trim(), id);

    // A container of the pod, from the pulled image: it shares the sandbox's network.
    let probe = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "probe".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: PAUSE.into(),
            ..Default::default()
        }),
        command: [
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox cat /hello.txt && /bin/busybox ip -4 -o addr show dev eth0",
        ]
        .map(String::from)
        .to_vec(),
        log_path: "probe.log".into(),
        ..Default::default()
    };
    let container = cri
        .start_container(&id, probe.clone(), &pod)
        .unwrap_or_else(|e| {
            panic!(
                "the container did not start: {e}\n{}",
                bed.ssh_ok(0, "tail -n 20 /root/containerd.log")
            )
        });
    let exited = wait_for(
        "the container's exit",
        || cri.container_status(&container),
        |s| s.state == ContainerState::ContainerExited as i32,
    );
    let log = bed.ssh_ok(0, &format!("cat {POD_LOGS}/probe.log"));
    assert_eq!(exited.exit_code, 0, "{exited:?}\n{log}");
    assert!(log.contains("stdout F pulled through CRI"), "{log}");
    assert!(log.contains(&format!(" {ip}/24 ")), "{log}");
    cri.remove_container(&container);

    // A server of the pod, reached through the host port on the host's own address.
    let web = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "web".into(),
            attempt: 0,
        }),
        command: [
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            &CONTAINER_PORT.to_string(),
            "-h",
            "/",
        ]
        .map(String::from)
        .to_vec(),
        log_path: "web.log".into(),
        ..probe
    };
    cri.start_container(&id, web, &pod)
        .unwrap_or_else(|e| panic!("the web container did not start: {e}"));
    let get = format!(
        "host=$(ip -4 -o addr show dev eth0 | awk '{{print $4}}' | cut -d/ -f1) && \
         exec 3<>/dev/tcp/$host/{HOST_PORT} && printf 'GET /hello.txt HTTP/1.0\r\n\r\n' >&3 && cat <&3"
    );
    let page = wait_for(
        "an answer through the host port",
        || String::from_utf8_lossy(&bed.ssh(0, &get).stdout).into_owned(),
        |page| page.starts_with("HTTP/1.1 200 OK"),
    );
    assert!(page.ends_with("pulled through CRI\n"), "{page}");
    let nat = "iptables -t nat -S";
    let rules = bed.ssh_ok(0, nat);
    assert!(rules.contains(&format!("--dport {HOST_PORT}")), "{rules}");

    // The pod goes (StopPodSandbox stops the web container): the address and the host port
    // are released, the namespace and runc's containers are gone.
    cri.stop_and_remove_pod(&id).unwrap();
    let rules = bed.ssh_ok(0, nat);
    assert!(!rules.contains(&format!("--dport {HOST_PORT}")), "{rules}");
    bed.ssh_ok(0, &format!("! test -e {lease}"));
    bed.ssh_ok(0, &format!("! test -e {netns}"));
    assert_eq!(bed.ssh_ok(0, &runc_list), "");
    // The shim leaves once its last container is deleted; nothing of the pod runs after it.
    wait_for(
        "the exit of the pod's processes",
        // The brackets keep the pattern from matching the shell that runs pgrep.
        || {
            bed.ssh(0, "pgrep -a -f '[c]ontainerd-shim|[b]usybox'")
                .stdout
        },
        |out| out.is_empty(),
    );
}
