//! The test cluster image, extracted and rendered with Config documents, synced to real
//! `sshd` hosts of the test bed through the SSH transport (run in the bed's hub namespace):
//! `registry/` only where asked, nothing sent when nothing changed, one changed Config →
//! one file sent.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealer::clusterfile::{self, Clusterfile};
use sealer::image::Store;
use sealer::rootfs::{self, FileKind, Manifest, RenderInput, Rendered};
use sealer_providers::ssh::{SshConfig, SshTransport};
use sealer_providers::sync::{SyncOptions, SyncReport, sync};

use crate::support::testbed::TestBed;
use crate::support::{Sandbox, repo_root, stdout_of};

const IMAGE: &str = "sealer-test/kubernetes:v1.22.15";
const ROOTFS: &str = "/var/lib/sealer/data/rootfs-test/rootfs";

/// Runs `f` on a new thread inside the bed's hub namespace, where the hosts are reachable.
fn in_hub<T: Send, F: Future<Output = T>>(bed: &TestBed, f: impl FnOnce() -> F + Send) -> T {
    std::thread::scope(|s| {
        let thread = s.spawn(|| {
            bed.enter_hub();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(f())
        });
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn clusterfile_text(mysql_user: &str) -> String {
    format!(
        "apiVersion: sealer.io/v2
kind: Cluster
metadata: {{name: rootfs-test}}
spec:
  image: {IMAGE}
  env: [Greeting=hello from the Clusterfile]
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
    - ips: [10.0.0.3]
      roles: [node]
---
apiVersion: sealer.io/v1
kind: Config
metadata: {{name: mysql}}
spec:
  path: etc/mysql config.yaml
  data: |
    mysql-user: {mysql_user}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {{name: dashboard-namespace}}
spec:
  appName: dashboard
  path: 10-deployment.yaml
  strategy: merge
  data: |
    metadata: {{namespace: web}}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {{name: greeting}}
spec:
  path: manifests/greeting.yaml.tmpl
  data: |
    greeting: {{{{ .Greeting }}}}
    encoded: {{{{ .Greeting | b64enc }}}}
"
    )
}

fn render(sb: &Sandbox, trees: &[PathBuf], mysql_user: &str) -> Rendered {
    let path = sb.path("Clusterfile");
    std::fs::write(&path, clusterfile_text(mysql_user)).expect("write Clusterfile");
    let cf: Clusterfile = clusterfile::load(&path).unwrap_or_else(|e| panic!("{}", e.render()));
    let env = cf.env();
    rootfs::render(&sb.home(), &RenderInput::from_clusterfile(&cf, trees, &env))
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

fn connect_config(bed: &TestBed, i: usize) -> SshConfig {
    let mut config = SshConfig::new(bed.host(i).ip().to_string(), "root");
    config.auth.key_file = Some(bed.client_key_path());
    config.host_keys.known_hosts = Some(bed.known_hosts_path());
    config.connect_timeout = Duration::from_secs(5);
    config
}

/// Syncs to host 0 (a registry host: everything) and host 1 (all but `registry/`), each
/// over one SSH connection.
fn sync_both(bed: &TestBed, rendered: &Rendered) -> [SyncReport; 2] {
    let everything = rendered.manifest.sync_entries();
    in_hub(bed, || async {
        let mut reports = [SyncReport::default(); 2];
        for (i, report) in reports.iter_mut().enumerate() {
            let transport = SshTransport::connect(connect_config(bed, i))
                .await
                .unwrap_or_else(|e| panic!("connecting to host {i}: {e}"));
            let options = SyncOptions {
                exclude: if i == 0 {
                    Vec::new()
                } else {
                    vec![rootfs::REGISTRY_DIR.to_string()]
                },
                ..SyncOptions::default()
            };
            *report = sync(&transport, &rendered.root, &everything, ROOTFS, &options)
                .await
                .unwrap_or_else(|e| panic!("syncing to host {i}: {e}"));
            transport.disconnect().await;
        }
        reports
    })
}

/// The host's tree under ROOTFS is exactly the manifest (plus the sync's own manifest file).
fn assert_host_holds(bed: &TestBed, i: usize, manifest: &Manifest) {
    let mut tree = bed.file_tree(i, ROOTFS);
    let root = Path::new(ROOTFS);
    assert!(tree.remove(root).is_some(), "host {i} has no {ROOTFS}");
    assert!(
        tree.remove(&root.join(".sealer-manifest")).is_some(),
        "host {i} has no manifest"
    );
    for entry in &manifest.entries {
        let path = root.join(&entry.path);
        let Some((mode, digest)) = tree.remove(&path) else {
            panic!("host {i} lacks {}", entry.path);
        };
        match &entry.kind {
            FileKind::File {
                sha256, mode: m, ..
            } => {
                assert_eq!(
                    (mode & 0o7777, digest.as_str()),
                    (*m, sha256.as_str()),
                    "{}",
                    entry.path
                );
                assert_eq!(mode & 0o170000, 0o100000, "{} is a file", entry.path);
            }
            FileKind::Dir { mode: m } => assert_eq!(mode, 0o040000 | m, "{}", entry.path),
            FileKind::Symlink { .. } => assert_eq!(mode & 0o170000, 0o120000, "{}", entry.path),
        }
    }
    assert!(
        tree.is_empty(),
        "host {i} holds more than the manifest: {tree:?}"
    );
}

fn files_of(manifest: &Manifest) -> (usize, u64) {
    manifest
        .entries
        .iter()
        .fold((0, 0), |(n, bytes), e| match e.kind {
            FileKind::File { size, .. } => (n + 1, bytes + size),
            FileKind::Symlink { .. } => (n + 1, bytes),
            FileKind::Dir { .. } => (n, bytes),
        })
}

#[test]
fn the_rendered_rootfs_is_synced_content_addressed_over_ssh() {
    let sb = Sandbox::new();
    stdout_of(
        sb.sealer()
            .args(["build", "--platform", "linux/amd64", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    let store = Store::open(&sb.home()).expect("store");
    let (_, image) = store.get(IMAGE).expect("the built image");
    let trees = vec![
        rootfs::extract(&store, &image, sealer::limits::UNPACKED_DEFAULT)
            .unwrap_or_else(|e| panic!("{}", e.render())),
    ];

    let rendered = render(&sb, &trees, "root");
    let text = |path: &str| std::fs::read_to_string(rendered.root.join(path)).expect(path);
    assert_eq!(text("etc/mysql config.yaml"), "mysql-user: root\n");
    assert!(
        text("application/apps/dashboard/10-deployment.yaml").contains("namespace: web"),
        "{}",
        text("application/apps/dashboard/10-deployment.yaml")
    );
    assert_eq!(
        text("manifests/greeting.yaml"),
        "greeting: hello from the Clusterfile\nencoded: aGVsbG8gZnJvbSB0aGUgQ2x1c3RlcmZpbGU=\n"
    );
    assert!(rendered.manifest.get("registry").is_some());
    assert!(rendered.without_registry.get("registry").is_none());

    let bed = TestBed::start(2);
    let first = sync_both(&bed, &rendered);
    let (files, bytes) = files_of(&rendered.manifest);
    assert_eq!((first[0].files_sent, first[0].bytes_sent), (files, bytes));
    let (files, bytes) = files_of(&rendered.without_registry);
    assert_eq!((first[1].files_sent, first[1].bytes_sent), (files, bytes));
    assert_host_holds(&bed, 0, &rendered.manifest);
    assert_host_holds(&bed, 1, &rendered.without_registry);
    assert!(
        bed.ssh(1, &format!("test -e {ROOTFS}/registry"))
            .status
            .code()
            == Some(1)
    );
    // The stand-ins stay runnable where they land.
    assert_eq!(
        bed.ssh_ok(1, &format!("{ROOTFS}/bin/kubeadm version -o short"))
            .trim(),
        "v1.22.15"
    );

    // Unchanged: nothing sent, to either host.
    let again = render(&sb, &trees, "root");
    assert_eq!(again.manifest.digest, rendered.manifest.digest);
    assert_eq!(sync_both(&bed, &again), [SyncReport::default(); 2]);

    // One changed Config: that file alone travels, to both hosts.
    let changed = render(&sb, &trees, "admin");
    assert_ne!(changed.manifest.digest, rendered.manifest.digest);
    let reports = sync_both(&bed, &changed);
    let size = "mysql-user: admin\n".len() as u64;
    for report in reports {
        assert_eq!(
            (report.files_sent, report.bytes_sent, report.files_deleted),
            (1, size, 0)
        );
    }
    for i in 0..2 {
        assert_eq!(
            bed.ssh_ok(i, &format!("cat '{ROOTFS}/etc/mysql config.yaml'")),
            "mysql-user: admin\n"
        );
    }
    assert_host_holds(&bed, 0, &changed.manifest);
    assert_host_holds(&bed, 1, &changed.without_registry);
}
