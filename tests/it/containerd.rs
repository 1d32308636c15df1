//! A real containerd (Debian's 1.6.20) on an SSH test-bed host, driven through CRI the way
//! kubelet drives it, with the configuration the image's `containerd.sh` wrote during
//! `sealer apply`:
//!
//! - Its image service pulls the configured `sandbox_image` from the cluster's own registry,
//!   with the registry's `hosts.toml` and CA that `registry_client` put under
//!   `/etc/containerd/certs.d/` and the credentials sealer gave kubelet. The registry is a
//!   real `docker-registry` serving TLS with the certificate sealer generated and the
//!   htpasswd it wrote; the host has no other network. `ctr pull` would prove nothing here:
//!   it does not go through CRI and ignores its registry configuration.
//! - Until a CNI is installed the runtime reports its network not ready and RunPodSandbox
//!   fails with containerd's own "cni plugin not initialized" (and the failed sandbox cannot
//!   be freed either), as kubelet sees on a node before its network image runs.
//! - Its runtime service runs a pod ([`pod`]): a sandbox from that image under the real runc,
//!   networked by Debian's CNI plugins (bridge, host-local, loopback, portmap) from where the
//!   config's `bin_dir` and `conf_dir` say, and containers of the pod from the pulled image,
//!   one serving HTTP on a host port; then the pod goes and its address, host port, network
//!   namespace, runc containers and processes with it.
//!
//! The bed host gets what a real host's boot gives it: the machine's cgroup hierarchies
//! (`ip netns exec` hides them under a fresh sysfs) and a filesystem of its own for
//! containerd's root (overlayfs cannot put its upper dirs on the host's overlay disk).
//!
//! What stays out of the bed: kubelet itself (a stand-in, examples/images/demo-cluster), so
//! the test makes kubelet's CRI calls; and etcd, which in a cluster is a static pod kubelet
//! starts from kubeadm's manifest: sealer never configures or talks to etcd (it only knows
//! that `kubeadm reset` wipes it), so running Debian's etcd here would test etcd, not sealer.

mod cri;
mod pod;

use crate::apply::Deploy;
use crate::support::testbed::{TestBed, require_tool};
use cri::Cri;
use k8s_cri::v1::{AuthConfig, PodSandboxState};
use pod::{CNI_PLUGINS, CgroupTree, a_pod_runs_and_goes, mount_cgroups, pod_config, pods_cgroup};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CONTAINERD: &str = "/usr/bin/containerd";
const RUNC: &str = "/usr/bin/runc";
const PASSWORD: &str = "s3cret-pull";
/// The sandbox image containerd.sh configures for v1.22: kubeadm's pause in the registry.
const PAUSE: &str = "sea.hub:5000/pause:3.5";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Debian's `busybox-static`: the sandbox image's process, and the container's tools.
const BUSYBOX: &str = "/bin/busybox";
/// The pause image's command. The real pause blocks in pause(2) and reaps zombies; all
/// containerd needs of a sandbox's process is that it stays up (it stops sandboxes with
/// SIGKILL, so a PID 1 without signal handlers does not hold the stop up). busybox's `sleep`
/// does that, and is a binary of the image, not of the host.
const SANDBOX_COMMAND: [&str; 3] = [BUSYBOX, "sleep", "86400"];

/// A one-layer OCI image layout (`index.json` tagged `tag`) in `dir`: the sandbox image, with
/// a static busybox to run in it and a file a container reads.
fn oci_layout(dir: &Path, tag: &str) {
    use sha2::{Digest as _, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    // The layer, as a gzipped tar; the config names the uncompressed digest.
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, body: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, path, body).unwrap();
    };
    add("hello.txt", 0o644, b"pulled through CRI\n");
    add("bin/busybox", 0o755, &std::fs::read(BUSYBOX).unwrap());
    let tar = tar.into_inner().unwrap();
    let diff_id: String = Sha256::digest(&tar)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": SANDBOX_COMMAND},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    })
    .to_string();
    let config_digest = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let manifest_digest = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Whether the ELF executable at `path` is static (no PT_INTERP program header): the image
/// has no libc for a dynamic one.
fn is_static_elf(path: &str) -> bool {
    let elf = std::fs::read(path).unwrap();
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "{path}: not a 64-bit little-endian ELF"
    );
    let offset = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap())).unwrap();
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = offset + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) != 3
    })
}

/// Where the test process reaches `path` of host `i`'s own mounts (its `/run` is a tmpfs
/// of its mount namespace).
fn host_path(bed: &TestBed, i: usize, path: &str) -> PathBuf {
    bed.host_root(i).join(path.trim_start_matches('/'))
}

/// Starts `command` on host `i` in the background, detached from the SSH session, appending
/// to `log`; its PID
/// (`setsid` execs it: a background job of a shell without job control leads no group).
fn spawn_on(bed: &TestBed, i: usize, command: &str, log: &str) -> u32 {
    let pid = bed.ssh_ok(
        i,
        &format!("setsid {command} >>{log} 2>&1 </dev/null & echo $!"),
    );
    pid.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no PID from `{command}`: {pid:?}"))
}

/// Stops the process `pid` of host `i` (SIGTERM) and waits until it is gone.
fn stop_on(bed: &TestBed, i: usize, pid: u32) {
    bed.ssh_ok(
        i,
        &format!("kill {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.1; done"),
    );
}

/// Waits until `ready` (a shell test) holds on host `i`, or fails with `log`.
fn wait_on(bed: &TestBed, i: usize, ready: &str, log: &str) {
    let start = Instant::now();
    while !bed.ssh(i, ready).status.success() {
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "`{ready}` never held on host {i}:\n{}",
            bed.ssh_ok(i, &format!("cat {log}"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kubelet's credentials for the registry, as sealer wrote them (`config.json`).
fn kubelet_auth(bed: &TestBed, i: usize) -> AuthConfig {
    use base64::Engine as _;
    let config: serde_json::Value =
        serde_json::from_str(&bed.ssh_ok(i, "cat /var/lib/kubelet/config.json")).unwrap();
    let auth = config["auths"]["sea.hub:5000"]["auth"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    let (user, password) = std::str::from_utf8(&decoded)
        .unwrap()
        .split_once(':')
        .unwrap();
    AuthConfig {
        username: user.to_string(),
        password: password.to_string(),
        ..Default::default()
    }
}

#[test]
fn a_real_containerd_pulls_from_the_cluster_registry_and_runs_a_pod_through_cri() {
    require_tool(CONTAINERD, "containerd");
    require_tool(RUNC, "runc");
    require_tool(BUSYBOX, "busybox-static");
    assert!(
        is_static_elf(BUSYBOX),
        "{BUSYBOX} is dynamically linked: the test's image needs Debian's `busybox-static`"
    );
    require_tool(
        &format!("{CNI_PLUGINS}/bridge"),
        "containernetworking-plugins",
    );
    require_tool(crate::support::registry::DOCKER_REGISTRY, "docker-registry");
    require_tool(crate::support::registry::SKOPEO, "skopeo");
    // Dropped after the bed (whose end kills whatever the pods left running).
    let _cgroups = CgroupTree(pods_cgroup());
    let d = Deploy::new(TestBed::start(1));
    let file = d.clusterfile(
        &[0],
        &[],
        &format!("  registry:\n    localRegistry: {{username: puller, password: {PASSWORD}}}\n"),
    );
    d.sealer_ok(&["apply", "-f", file.to_str().unwrap(), "--auto-approve"]);
    let bed = &d.bed;

    // The cluster's registry, for real: sealer's certificate, key and htpasswd, on the
    // port the cluster uses, reached as sea.hub (the host's /etc/hosts, written by sealer).
    bed.ssh_ok(
        0,
        "mkdir -p /var/lib/test-registry && cat > /root/registry.yml <<'YAML'\n\
         version: 0.1\n\
         log: {level: warn}\n\
         storage: {filesystem: {rootdirectory: /var/lib/test-registry}}\n\
         http:\n\
         \x20 addr: :5000\n\
         \x20 tls: {certificate: /etc/sealer/registry/sea.hub.crt, key: /etc/sealer/registry/sea.hub.key}\n\
         auth: {htpasswd: {realm: sealer, path: /etc/sealer/registry/sea.hub.htpasswd}}\n\
         YAML",
    );
    spawn_on(
        bed,
        0,
        "docker-registry serve /root/registry.yml",
        "/root/registry.log",
    );
    wait_on(
        bed,
        0,
        "bash -c '</dev/tcp/127.0.0.1/5000'",
        "/root/registry.log",
    );
    // The pause image goes in, as a cluster image's registry/ would carry it.
    let layout = d.sb.path("pause-layout");
    oci_layout(&layout, "3.5");
    bed.copy_to(0, &layout, "/root/pause-layout");
    bed.ssh_ok(
        0,
        &format!(
            "skopeo copy --quiet --dest-creds puller:{PASSWORD} --dest-cert-dir /etc/containerd/certs.d/sea.hub:5000 \
             oci:/root/pause-layout:3.5 docker://{PAUSE}"
        ),
    );

    // The stand-in the demo image ships prints exactly what the real containerd prints, so
    // the configuration containerd.sh derived from it is the real one's.
    assert_eq!(
        bed.ssh_ok(0, "/usr/local/bin/containerd config default"),
        bed.ssh_ok(0, &format!("{CONTAINERD} config default")),
        "the containerd stand-in's default config is not Debian's containerd's"
    );
    // containerd with the configuration the apply wrote (the image's containerd.sh).
    let config = bed.ssh_ok(0, "cat /etc/containerd/config.toml");
    assert!(
        config.contains(&format!("sandbox_image = \"{PAUSE}\"")),
        "{config}"
    );
    mount_cgroups(bed, 0);
    // containerd's root on a filesystem of its own, as on a real host: a bed host's /var is
    // an overlay, and the overlayfs snapshotter cannot put a container's upper dir on one.
    bed.ssh_ok(
        0,
        "mkdir -p /var/lib/containerd && mount -t tmpfs -o size=256m tmpfs /var/lib/containerd",
    );
    let containerd = spawn_on(
        bed,
        0,
        &format!("{CONTAINERD} --config /etc/containerd/config.toml"),
        "/root/containerd.log",
    );
    wait_on(
        bed,
        0,
        "test -S /run/containerd/containerd.sock",
        "/root/containerd.log",
    );
    let socket = host_path(bed, 0, "/run/containerd/containerd.sock");
    let cri = Cri::connect(&socket).unwrap();

    // kubelet's pull: the sandbox image, with the credentials sealer gave kubelet.
    let tags = cri
        .pull(PAUSE, Some(kubelet_auth(bed, 0)))
        .unwrap_or_else(|e| {
            panic!(
                "CRI pull of {PAUSE} failed: {e}\n{}",
                bed.ssh_ok(0, "tail -n 20 /root/containerd.log")
            )
        });
    assert_eq!(tags, [PAUSE]);

    // The registry's htpasswd is what lets it in.
    let wrong = AuthConfig {
        username: "puller".into(),
        password: "wrong".into(),
        ..Default::default()
    };
    let err = cri.pull(PAUSE, Some(wrong)).unwrap_err();
    assert!(err.contains("401 Unauthorized"), "{err}");

    // Until a network image installs a CNI, the node is not ready and no pod can start: what
    // kubelet reports as "container runtime network not ready".
    let network = cri.network_condition();
    assert!(!network.status, "{network:?}");
    assert!(
        network.message.contains("cni plugin not initialized"),
        "{network:?}"
    );
    let err = cri.run_pod(&pod_config(0)).unwrap_err();
    assert!(err.contains("cni plugin not initialized"), "{err}");
    // containerd keeps the failed sandbox, not ready, and cannot free it without a CNI
    // either: kubelet's garbage collection retries until the network is there.
    let failed = cri.list_pods();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].state,
        PodSandboxState::SandboxNotready as i32,
        "{failed:?}"
    );
    let failed = failed[0].id.clone();
    let err = cri.stop_and_remove_pod(&failed).unwrap_err();
    assert!(err.contains("cni plugin not initialized"), "{err}");

    // Pods run with the configuration the apply wrote but for two lines the bed needs:
    // - the cgroup driver: the apply says systemd (kubelet's driver on a real host), and a
    //   bed host has no systemd for runc to ask;
    // - restrict_oom_score_adj: containerd gives a sandbox oom_score_adj -998, and lowering
    //   it takes CAP_SYS_RESOURCE, which root lacks when the suite runs in a container (as
    //   on this project's test machines); the restriction keeps it at containerd's own, the
    //   setting containerd offers for such hosts. It changes nothing else.
    stop_on(bed, 0, containerd);
    bed.ssh_ok(
        0,
        "sed -e 's/SystemdCgroup = true/SystemdCgroup = false/' \
         -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
         /etc/containerd/config.toml > /root/bed.toml",
    );
    let changed = bed.ssh(0, "diff /etc/containerd/config.toml /root/bed.toml");
    let changed = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(
        changed
            .lines()
            .filter(|l| l.starts_with(['<', '>']))
            .count(),
        4,
        "{changed}"
    );
    let containerd = spawn_on(
        bed,
        0,
        &format!("{CONTAINERD} --config /root/bed.toml"),
        "/root/containerd.log",
    );
    wait_on(
        bed,
        0,
        "ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1",
        "/root/containerd.log",
    );
    let cri = Cri::connect(&socket).unwrap();
    a_pod_runs_and_goes(bed, &cri, &config, &failed);

    // containerd's own default, config_path = "": the CA sealer wrote is never read.
    stop_on(bed, 0, containerd);
    bed.ssh_ok(
        0,
        "sed 's|config_path = \"/etc/containerd/certs.d\"|config_path = \"\"|' /etc/containerd/config.toml > /root/default-path.toml",
    );
    spawn_on(
        bed,
        0,
        &format!("{CONTAINERD} --config /root/default-path.toml"),
        "/root/containerd.log",
    );
    wait_on(
        bed,
        0,
        "ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1",
        "/root/containerd.log",
    );
    let cri = Cri::connect(&socket).unwrap();
    let err = cri.pull(PAUSE, Some(kubelet_auth(bed, 0))).unwrap_err();
    assert!(err.contains("x509"), "{err}");
}
