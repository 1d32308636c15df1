//! Syncs through the real local transport into temp dirs: what is sent, what the host ends
//! up with, and what survives a sync killed after extracting.

use super::*;
use crate::local::LocalTransport;
use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};

/// The entries of a local tree, as the `sealer` crate's manifest gives them.
fn scan(root: &Path) -> Vec<ManifestEntry> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<ManifestEntry>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if [MANIFEST_FILE, MANIFEST_TMP, CONTROL_DIR].contains(&rel.as_str()) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = if meta.file_type().is_symlink() {
                EntryKind::Symlink {
                    target: fs::read_link(&path).unwrap().to_str().unwrap().into(),
                }
            } else if meta.is_dir() {
                EntryKind::Dir {
                    mode: meta.permissions().mode() & 0o7777,
                }
            } else {
                let bytes = fs::read(&path).unwrap();
                EntryKind::File {
                    sha256: manifest::sha256_hex(&bytes),
                    size: bytes.len() as u64,
                    mode: meta.permissions().mode() & 0o7777,
                }
            };
            out.push(ManifestEntry {
                path: rel,
                kind: kind.clone(),
            });
            if let EntryKind::Dir { .. } = kind {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

struct Bed {
    _dir: tempfile::TempDir,
    local: PathBuf,
    remote: PathBuf,
}

impl Bed {
    fn new(files: &[(&str, &str)]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local");
        let remote = dir.path().join("remote host/rootfs");
        fs::create_dir_all(&local).unwrap();
        let bed = Bed {
            _dir: dir,
            local,
            remote,
        };
        for (path, content) in files {
            bed.write(path, content);
        }
        bed
    }

    fn write(&self, path: &str, content: &str) {
        let p = self.local.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn remote_str(&self) -> &str {
        self.remote.to_str().unwrap()
    }

    async fn sync_with(&self, options: &SyncOptions) -> SyncReport {
        let t = LocalTransport::new("127.0.0.1");
        sync(
            &t,
            &self.local,
            &scan(&self.local),
            self.remote_str(),
            options,
        )
        .await
        .unwrap()
    }

    async fn sync(&self) -> SyncReport {
        self.sync_with(&SyncOptions::default()).await
    }

    fn manifest(&self) -> String {
        fs::read_to_string(self.remote.join(MANIFEST_FILE)).unwrap()
    }

    /// The remote tree equals the local one (modes, contents, symlinks).
    fn assert_same(&self) {
        assert_eq!(scan(&self.remote), scan(&self.local));
        assert!(!self.remote.join(CONTROL_DIR).exists());
        assert!(!self.remote.join(MANIFEST_TMP).exists());
    }
}

fn sent(files: usize, bytes: u64) -> (usize, u64) {
    (files, bytes)
}

fn summary(r: &SyncReport) -> (usize, u64) {
    (r.files_sent, r.bytes_sent)
}

#[tokio::test]
async fn first_sync_sends_everything_then_nothing() {
    let bed = Bed::new(&[
        ("bin/kubeadm", "#!/bin/bash\necho kubeadm\n"),
        ("etc/kubeadm.yml", "kind: ClusterConfiguration\n"),
        ("empty", ""),
    ]);
    fs::set_permissions(
        bed.local.join("bin/kubeadm"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(bed.local.join("images/empty-dir")).unwrap();
    symlink("../bin/kubeadm", bed.local.join("etc/link")).unwrap();

    let first = bed.sync().await;
    assert_eq!(summary(&first), sent(4, 25 + 27));
    assert_eq!(first.files_deleted, 0);
    bed.assert_same();
    assert_eq!(bed.manifest().lines().count(), 8, "{}", bed.manifest());

    let second = bed.sync().await;
    assert_eq!(
        second,
        SyncReport::default(),
        "an unchanged tree sends 0 bytes"
    );
}

#[tokio::test]
async fn only_a_changed_file_is_sent_and_deleted_ones_are_removed() {
    let bed = Bed::new(&[
        ("a/one", "1"),
        ("a/two", "22"),
        ("b/three", "333"),
        ("b/sub/four", "4444"),
    ]);
    bed.sync().await;

    bed.write("a/two", "twenty-two");
    let report = bed.sync().await;
    assert_eq!(summary(&report), sent(1, 10));
    // The file, its directory, the manifest delta and the control files: a dozen 512-byte
    // tar blocks, however large the tree.
    assert!(report.stream_bytes <= 8192, "{report:?}");
    bed.assert_same();

    // Same size, other content: the digest tells.
    bed.write("a/one", "9");
    assert_eq!(summary(&bed.sync().await), sent(1, 1));

    fs::remove_dir_all(bed.local.join("b")).unwrap();
    let report = bed.sync().await;
    assert_eq!((report.files_sent, report.files_deleted), (0, 2));
    bed.assert_same();
    assert!(!bed.remote.join("b").exists());
    assert_eq!(bed.sync().await, SyncReport::default());
}

#[tokio::test]
async fn excluded_prefixes_are_neither_sent_nor_deleted() {
    let bed = Bed::new(&[
        ("registry/docker/registry/v2/blob", "layer"),
        ("registryfile", "not under registry/"),
        ("etc/x", "x"),
    ]);
    let non_registry = SyncOptions {
        exclude: vec!["registry/".into()],
        ..SyncOptions::default()
    };
    let report = bed.sync_with(&non_registry).await;
    assert_eq!(summary(&report), sent(2, 20));
    assert!(!bed.remote.join("registry").exists());
    assert!(bed.remote.join("registryfile").exists());
    assert!(!bed.manifest().contains("registry/"));
    assert_eq!(bed.sync_with(&non_registry).await, SyncReport::default());

    // A full sync adds it; an excluding one afterwards leaves it alone (as rsync does).
    assert_eq!(summary(&bed.sync().await), sent(1, 5));
    assert_eq!(bed.sync_with(&non_registry).await, SyncReport::default());
    assert!(bed.remote.join("registry/docker/registry/v2/blob").exists());
    assert!(bed.manifest().contains("registry/docker/registry/v2/blob"));
    assert_eq!(bed.sync().await, SyncReport::default());
}

/// A transport that runs the send script only up to its extraction: a sync killed there.
struct KilledAfterExtract(LocalTransport);

impl Transport for KilledAfterExtract {
    fn host(&self) -> &str {
        self.0.host()
    }

    async fn exec(
        &self,
        exec: &Exec,
        sink: Option<&crate::OutputSink>,
    ) -> Result<ExecOutput, TransportError> {
        let mut exec = exec.clone();
        exec.script = exec.script.replace(EXTRACTED_MARK, "exit 9");
        self.0.exec(&exec, sink).await
    }
}

#[tokio::test]
async fn a_sync_killed_after_extracting_keeps_the_old_manifest() {
    let bed = Bed::new(&[("etc/a", "a"), ("etc/b", "b"), ("etc/gone", "g")]);
    bed.sync().await;
    let before = bed.manifest();

    bed.write("etc/a", "a changed");
    fs::remove_file(bed.local.join("etc/gone")).unwrap();
    let killed = KilledAfterExtract(LocalTransport::new("127.0.0.1"));
    let err = sync(
        &killed,
        &bed.local,
        &scan(&bed.local),
        bed.remote_str(),
        &SyncOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SyncErrorKind::Remote, "{err}");
    assert!(err.to_string().contains("exit code 9"), "{err}");
    assert_eq!(bed.manifest(), before, "the manifest is written last");
    // The new content did land, but the old manifest does not vouch for it: sent again.
    assert_eq!(
        fs::read_to_string(bed.remote.join("etc/a")).unwrap(),
        "a changed"
    );

    let report = bed.sync().await;
    assert_eq!(
        (report.files_sent, report.bytes_sent, report.files_deleted),
        (1, 9, 1)
    );
    bed.assert_same();
}

#[tokio::test]
async fn hostile_names_travel_and_are_deleted_intact() {
    let names = [
        "sp ace/file with spaces",
        "quotes/it's \"quoted\"",
        "new\nline/file\nwith newline",
        "back\\slash",
        "-leading-dash",
        "$(touch pwned)",
        "`id`; rm -rf x",
        "glob*[?]",
        "ünïcødé/ファイル",
        "carriage\rreturn",
        "%s%n %d",
    ];
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(200));
    let mut files: Vec<(&str, &str)> = names.iter().map(|n| (*n, "x")).collect();
    files.push((&long, "long"));
    let bed = Bed::new(&files);
    symlink("it's \"quoted\"", bed.local.join("quotes/link to 'it'")).unwrap();

    let report = bed.sync().await;
    assert_eq!(report.files_sent, names.len() + 2);
    bed.assert_same();
    assert_eq!(bed.sync().await, SyncReport::default());
    assert!(!bed.remote.join("pwned").exists());
    assert!(!Path::new("pwned").exists());

    fs::remove_file(bed.local.join("new\nline/file\nwith newline")).unwrap();
    fs::remove_file(bed.local.join("quotes/link to 'it'")).unwrap();
    let report = bed.sync().await;
    assert_eq!(report.files_deleted, 2);
    bed.assert_same();
}

#[tokio::test]
async fn the_manifest_is_only_a_cache_of_what_the_host_has() {
    let bed = Bed::new(&[("etc/a", "aaaa"), ("etc/b", "bbbb"), ("etc/c", "cccc")]);
    bed.sync().await;

    // Behind our back: one file deleted, one edited (same size), one chmod-ed.
    fs::remove_file(bed.remote.join("etc/a")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(bed.remote.join("etc/b"), "BBBB").unwrap();
    fs::set_permissions(bed.remote.join("etc/c"), fs::Permissions::from_mode(0o600)).unwrap();
    let report = bed.sync().await;
    assert_eq!(summary(&report), sent(3, 12));
    bed.assert_same();

    // A manifest that is not ours is not trusted: everything goes again.
    fs::write(bed.remote.join(MANIFEST_FILE), "garbage\n").unwrap();
    assert_eq!(summary(&bed.sync().await), sent(3, 12));
    assert_eq!(bed.sync().await, SyncReport::default());
}

#[tokio::test]
async fn type_changes_and_host_symlinks_are_handled() {
    let bed = Bed::new(&[("x", "file"), ("d/inner", "i"), ("etc/conf", "c")]);
    bed.sync().await;
    // The host adds its own file in d/ (e.g. a script's output).
    fs::write(bed.remote.join("d/host-made"), "h").unwrap();

    // x becomes a directory, d a file.
    fs::remove_file(bed.local.join("x")).unwrap();
    bed.write("x/child", "c");
    fs::remove_dir_all(bed.local.join("d")).unwrap();
    bed.write("d", "now a file");
    let report = bed.sync().await;
    assert_eq!(report.files_sent, 2);
    bed.assert_same();

    // Someone replaces etc/ with a symlink to a directory outside the root.
    let outside = bed.remote.parent().unwrap().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("conf"), "outside").unwrap();
    fs::remove_dir_all(bed.remote.join("etc")).unwrap();
    symlink(&outside, bed.remote.join("etc")).unwrap();
    bed.write("etc/conf", "changed");
    bed.sync().await;
    bed.assert_same();
    assert_eq!(
        fs::read_to_string(outside.join("conf")).unwrap(),
        "outside",
        "never written through the host's symlink"
    );
}

#[tokio::test]
async fn bad_entries_are_refused_before_anything_runs() {
    let bed = Bed::new(&[("a", "a")]);
    let t = LocalTransport::new("127.0.0.1");
    for (path, why) in [
        ("../escape", "clean relative"),
        ("/abs", "clean relative"),
        (".sealer-manifest", "reserves"),
    ] {
        let entries = vec![ManifestEntry {
            path: path.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }];
        let err = sync(
            &t,
            &bed.local,
            &entries,
            bed.remote_str(),
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, SyncErrorKind::Local);
        assert!(err.message.contains(why), "{err}");
    }
    assert!(!bed.remote.exists());
}
