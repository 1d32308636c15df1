//! A real containerd (Debian's 1.6.20, with runc) on an SSH test-bed host pulls from the
//! cluster's own registry through its CRI image service, the way kubelet does: with the
//! configuration the image's `containerd.sh` wrote during `sealer apply`, the registry's
//! `hosts.toml` and CA that `registry_client` put under `/etc/containerd/certs.d/`, and the
//! credentials sealer gave kubelet. The registry is a real `docker-registry` serving TLS with
//! the certificate sealer generated and the htpasswd it wrote; the host has no other network.
//! `ctr pull` would prove nothing here: it does not go through CRI and ignores its registry
//! configuration.

use crate::apply::Deploy;
use crate::support::testbed::{TestBed, require_tool};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::{AuthConfig, ImageSpec, ImageStatusRequest, PullImageRequest};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CONTAINERD: &str = "/usr/bin/containerd";
const RUNC: &str = "/usr/bin/runc";
const PASSWORD: &str = "s3cret-pull";
/// The sandbox image containerd.sh configures for v1.22: kubeadm's pause in the registry.
const PAUSE: &str = "sea.hub:5000/pause:3.5";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A one-layer OCI image layout (`index.json` tagged `tag`) in `dir`.
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
    // The layer: one file, as a gzipped tar; the config names the uncompressed digest.
    let mut tar = tar::Builder::new(Vec::new());
    let body = b"pulled through CRI\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &body[..])
        .unwrap();
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
        "config": {"Cmd": ["/pause"]},
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

/// Where the test process reaches `path` of host `i`'s own mounts (its `/run` is a tmpfs
/// of its mount namespace).
fn host_path(bed: &TestBed, i: usize, path: &str) -> PathBuf {
    bed.host_root(i).join(path.trim_start_matches('/'))
}

/// Starts `command` on host `i` in the background, detached from the SSH session.
fn spawn_on(bed: &TestBed, i: usize, command: &str, log: &str) {
    bed.ssh_ok(
        i,
        &format!("setsid {command} >{log} 2>&1 </dev/null & echo started"),
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

/// Pulls `image` through containerd's CRI image service at `socket`, with `auth`, then asks
/// for its status; returns the image's repo tags, or the pull's error.
fn cri_pull(socket: &Path, image: &str, auth: Option<AuthConfig>) -> Result<Vec<String>, String> {
    use hyper_util::rt::TokioIo;
    use tonic::transport::{Endpoint, Uri};
    let socket = socket.to_path_buf();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let channel = Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("connecting to containerd: {e}"))?;
        let mut images = ImageServiceClient::new(channel);
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        images
            .pull_image(PullImageRequest {
                image: Some(spec.clone()),
                auth,
                sandbox_config: None,
            })
            .await
            .map_err(|e| e.message().to_string())?;
        let status = images
            .image_status(ImageStatusRequest {
                image: Some(spec),
                verbose: false,
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        Ok(status.image.map(|i| i.repo_tags).unwrap_or_default())
    })
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
fn a_real_containerd_pulls_the_pause_image_from_the_cluster_registry_through_cri() {
    require_tool(CONTAINERD, "containerd");
    require_tool(RUNC, "runc");
    require_tool(crate::support::registry::DOCKER_REGISTRY, "docker-registry");
    require_tool(crate::support::registry::SKOPEO, "skopeo");
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
    spawn_on(
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

    // kubelet's pull: the sandbox image, with the credentials sealer gave kubelet.
    let tags = cri_pull(&socket, PAUSE, Some(kubelet_auth(bed, 0))).unwrap_or_else(|e| {
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
    let err = cri_pull(&socket, PAUSE, Some(wrong)).unwrap_err();
    assert!(err.contains("401 Unauthorized"), "{err}");

    // containerd's own default, config_path = "": the CA sealer wrote is never read.
    bed.ssh_ok(
        0,
        "pkill -x containerd; while pgrep -x containerd >/dev/null; do sleep 0.1; done; \
         sed 's|config_path = \"/etc/containerd/certs.d\"|config_path = \"\"|' /etc/containerd/config.toml > /root/default-path.toml",
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
        "test -S /run/containerd/containerd.sock && ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1",
        "/root/containerd.log",
    );
    let err = cri_pull(&socket, PAUSE, Some(kubelet_auth(bed, 0))).unwrap_err();
    assert!(err.contains("x509"), "{err}");
}
