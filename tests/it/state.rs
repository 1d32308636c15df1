//! The state store end to end, through its public API, with real files and real processes:
//! lineage and serials across opens, the history, files that must never be read as "no
//! state" (and never be modified), locks between processes (a holder that exits, one that
//! is killed), writes interrupted by SIGKILL, file modes, and encrypted secrets.

use sealer::resource::{Recorded, ResourceType, Status};
use sealer::state::{LockHolder, Operation, StateKey, StateStore};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("sealer-it-state-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("state.db");
    (dir, path)
}

fn digest(text: &str) -> String {
    sealer::image::layout::sha256_digest(text.as_bytes())
}

fn host(ip: &str) -> Recorded {
    Recorded {
        address: format!("host.{ip}"),
        resource_type: ResourceType::Host,
        host: Some(ip.to_string()),
        attributes: BTreeMap::from([
            ("arch".to_string(), json!("amd64")),
            ("ssh_user".to_string(), json!("root")),
            ("password".to_string(), json!(digest("hunter2"))),
        ]),
        sensitive: BTreeSet::from(["password".to_string()]),
        status: Status::Ready,
        depends_on: Vec::new(),
        drift: None,
    }
}

fn runtime(ip: &str) -> Recorded {
    Recorded {
        address: format!("container_runtime.{ip}"),
        resource_type: ResourceType::ContainerRuntime,
        host: Some(ip.to_string()),
        attributes: BTreeMap::from([
            ("type".to_string(), json!("containerd")),
            ("version".to_string(), json!("1.7.2")),
        ]),
        sensitive: BTreeSet::new(),
        status: Status::Ready,
        depends_on: vec![format!("host.{ip}")],
        drift: None,
    }
}

fn serial_of(store: &StateStore, cluster: &str) -> u64 {
    store.cluster(cluster).unwrap().unwrap().serial
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------
// Lineage, serial, history

#[test]
fn lineage_is_stable_and_serial_counts_every_write_across_opens() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    let created = store.create_cluster("prod").unwrap();
    assert_eq!(created.serial, 1, "creation is the first write");
    assert!(created.resources.is_empty());
    assert_eq!(created.applied_config, None);
    assert_eq!(created.lineage.len(), 36);
    let lineage = created.lineage.clone();

    assert_eq!(store.commit("prod", &host("10.0.0.1")).unwrap(), 2);
    assert_eq!(store.commit("prod", &runtime("10.0.0.1")).unwrap(), 3);
    drop(store);

    let store = StateStore::open_existing(&path).unwrap().unwrap();
    let state = store.cluster("prod").unwrap().unwrap();
    assert_eq!(state.lineage, lineage);
    assert_eq!(state.serial, 3);
    assert_eq!(
        store.taint("prod", "container_runtime.10.0.0.1").unwrap(),
        4
    );
    drop(store);

    let store = StateStore::open_or_create(&path).unwrap();
    let state = store.cluster("prod").unwrap().unwrap();
    assert_eq!(state.lineage, lineage);
    assert_eq!(state.serial, 4);

    // Another cluster has its own lineage and serial.
    let other = store.create_cluster("staging").unwrap();
    assert_ne!(other.lineage, lineage);
    assert_eq!(other.serial, 1);
    assert_eq!(serial_of(&store, "prod"), 4);
}

#[test]
fn history_lists_every_write_in_order() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &host("10.0.0.1")).unwrap();
    store.commit("c", &runtime("10.0.0.1")).unwrap();
    store.taint("c", "container_runtime.10.0.0.1").unwrap();
    store
        .set_applied_config("c", &json!({"images": ["nginx@sha256:00"]}))
        .unwrap();
    store.remove("c", "container_runtime.10.0.0.1").unwrap();

    let history = store.history("c").unwrap();
    let summary: Vec<(u64, Operation, Option<&str>)> = history
        .iter()
        .map(|v| (v.serial, v.operation, v.address.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, Operation::Create, None),
            (2, Operation::Commit, Some("host.10.0.0.1")),
            (3, Operation::Commit, Some("container_runtime.10.0.0.1")),
            (4, Operation::Taint, Some("container_runtime.10.0.0.1")),
            (5, Operation::Config, None),
            (6, Operation::Remove, Some("container_runtime.10.0.0.1")),
        ]
    );
    // A delta log: a commit carries the new attributes, a config the new configuration.
    assert_eq!(
        history[2].attributes,
        Some(json!({"type": "containerd", "version": "1.7.2"}))
    );
    assert_eq!(
        history[4].attributes,
        Some(json!({"images": ["nginx@sha256:00"]}))
    );
    assert_eq!(history[3].attributes, None);
    for v in &history {
        assert_eq!(v.at.len(), 20, "{}", v.at);
        assert!(v.at.ends_with('Z'), "{}", v.at);
    }
    assert_eq!(history.last().unwrap().serial, serial_of(&store, "c"));

    let err = store.history("nope").unwrap_err();
    assert!(
        err.to_string().contains("no cluster named \"nope\""),
        "{err}"
    );
}

#[test]
fn clusters_are_summarized_and_names_are_unique() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    assert!(store.clusters().unwrap().is_empty());
    store.create_cluster("b").unwrap();
    let a = store.create_cluster("a").unwrap();
    store.commit("a", &host("10.0.0.1")).unwrap();
    store.commit("a", &host("10.0.0.2")).unwrap();

    let clusters = store.clusters().unwrap();
    let names: Vec<(&str, u64, usize)> = clusters
        .iter()
        .map(|c| (c.name.as_str(), c.serial, c.resources))
        .collect();
    assert_eq!(names, vec![("a", 3, 2), ("b", 1, 0)]);
    assert_eq!(clusters[0].lineage, a.lineage);

    let err = store.create_cluster("a").unwrap_err();
    assert!(
        err.to_string()
            .contains("already has a cluster named \"a\""),
        "{err}"
    );
    assert_eq!(serial_of(&store, "a"), 3, "a refused write changes nothing");
    assert!(store.cluster("missing").unwrap().is_none());
}

// ---------------------------------------------------------------------------------------
// What the executor does: commit a finished step, taint a failed one, remove a destroyed one

#[test]
fn commit_inserts_and_replaces_a_resource() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &host("10.0.0.1")).unwrap();
    let mut rt = runtime("10.0.0.1");
    store.commit("c", &rt).unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.resources.len(), 2);
    assert_eq!(state.resources["container_runtime.10.0.0.1"], rt);
    assert_eq!(state.resources["host.10.0.0.1"], host("10.0.0.1"));

    // The same address again replaces the record whole (an update or a replacement).
    rt.attributes.insert("version".into(), json!("1.7.3"));
    rt.attributes.remove("type");
    rt.depends_on.push("rootfs.10.0.0.1".into());
    store.commit("c", &rt).unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.resources.len(), 2);
    assert_eq!(state.resources["container_runtime.10.0.0.1"], rt);

    // A commit to a cluster the state does not have is an error.
    let err = store.commit("other", &rt).unwrap_err();
    assert!(
        err.to_string().contains("no cluster named \"other\""),
        "{err}"
    );
}

#[test]
fn taint_marks_a_recorded_resource_and_keeps_its_attributes() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &runtime("10.0.0.1")).unwrap();
    store.taint("c", "container_runtime.10.0.0.1").unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    let mut expected = runtime("10.0.0.1");
    expected.status = Status::Tainted;
    assert_eq!(state.resources["container_runtime.10.0.0.1"], expected);

    // A step that failed midway on a resource not yet in the state: commit it tainted.
    let mut failed = runtime("10.0.0.2");
    failed.status = Status::Tainted;
    let serial = store.commit("c", &failed).unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(
        state.resources["container_runtime.10.0.0.2"].status,
        Status::Tainted
    );
    let last = store.history("c").unwrap().pop().unwrap();
    assert_eq!((last.serial, last.operation), (serial, Operation::Taint));

    // Committing it again once its step finished makes it ready.
    store.commit("c", &runtime("10.0.0.2")).unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(
        state.resources["container_runtime.10.0.0.2"].status,
        Status::Ready
    );

    // Tainting what the state does not record is an error and writes nothing.
    let before = serial_of(&store, "c");
    let err = store.taint("c", "app.nginx").unwrap_err();
    assert!(
        err.to_string().contains("has no resource app.nginx"),
        "{err}"
    );
    assert_eq!(serial_of(&store, "c"), before);
    assert_eq!(store.history("c").unwrap().len() as u64, before);
}

#[test]
fn remove_drops_a_destroyed_resource() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &host("10.0.0.1")).unwrap();
    store.commit("c", &runtime("10.0.0.1")).unwrap();
    store.remove("c", "container_runtime.10.0.0.1").unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(
        state.resources.keys().collect::<Vec<_>>(),
        vec!["host.10.0.0.1"]
    );
    let before = state.serial;
    let err = store.remove("c", "container_runtime.10.0.0.1").unwrap_err();
    assert!(
        err.to_string()
            .contains("has no resource container_runtime.10.0.0.1"),
        "{err}"
    );
    assert_eq!(serial_of(&store, "c"), before);
}

#[test]
fn applied_config_is_stored_as_given() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    let config = json!({"images": ["b@sha256:2", "a@sha256:1"], "z": 1, "a": {"k": null}});
    assert_eq!(store.set_applied_config("c", &config).unwrap(), 2);
    drop(store);
    let store = StateStore::open_existing(&path).unwrap().unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.applied_config, Some(config.clone()));
    // Key order is kept, so what the engine stored is what it reads.
    assert_eq!(
        serde_json::to_string(&state.applied_config.unwrap()).unwrap(),
        serde_json::to_string(&config).unwrap()
    );
}

#[test]
fn a_sensitive_attribute_in_clear_is_never_stored() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    let mut h = host("10.0.0.1");
    h.attributes
        .insert("password".into(), json!("clear-text-password-1"));
    let err = store.commit("c", &h).unwrap_err();
    let text = err.render();
    assert!(
        text.contains("marked sensitive but its value is not a digest"),
        "{text}"
    );
    assert!(!text.contains("clear-text-password-1"), "{text}");
    assert_eq!(serial_of(&store, "c"), 1);
    drop(store);
    assert_not_in_files(&path, b"clear-text-password-1");
}

// ---------------------------------------------------------------------------------------
// Files that are not a readable state: errors, never "no state", never modified

#[test]
fn a_missing_file_is_no_state_and_is_not_created() {
    let (dir, path) = temp();
    assert!(StateStore::open_existing(&path).unwrap().is_none());
    assert!(!path.exists());
    let nested = dir.path().join("a/b/state.db");
    assert!(StateStore::open_existing(&nested).unwrap().is_none());
    assert!(
        !dir.path().join("a").exists(),
        "no directory is created either"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Asserts that opening `path` (both ways) fails with an error naming it, containing
/// `expected`, and leaves its bytes as they were.
fn assert_refused(path: &Path, expected: &str) {
    let before = std::fs::read(path).unwrap();
    let err = StateStore::open_existing(path).unwrap_err();
    let text = err.render();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(expected), "{text}");
    assert!(text.contains("hint: "), "{text}");
    let err = StateStore::open_or_create(path).unwrap_err();
    assert!(err.render().contains(expected), "{}", err.render());
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file was modified"
    );
}

#[test]
fn a_garbage_file_is_an_error_and_is_left_alone() {
    let (_dir, path) = temp();
    std::fs::write(&path, b"clusters:\n  - prod\n").unwrap();
    assert_refused(&path, "is not a SQLite database");
}

#[test]
fn an_empty_file_is_an_error_not_an_empty_state() {
    let (_dir, path) = temp();
    std::fs::write(&path, b"").unwrap();
    assert_refused(&path, "is empty");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_bare_sqlite_header_is_truncated() {
    let (_dir, path) = temp();
    std::fs::write(&path, b"SQLite format 3\0\x10\x00").unwrap();
    assert_refused(&path, "is truncated");
}

#[test]
fn a_directory_is_an_error() {
    let (dir, _) = temp();
    let err = StateStore::open_existing(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
}

/// A state with enough rows to span many pages, closed (its WAL checkpointed).
fn big_state(path: &Path) {
    let store = StateStore::open_or_create(path).unwrap();
    store.create_cluster("c").unwrap();
    for i in 0..300 {
        let mut h = host(&format!("10.0.{}.{}", i / 250, i % 250));
        h.attributes
            .insert("hosts_entries".into(), json!(["x".repeat(200)]));
        store.commit("c", &h).unwrap();
    }
    drop(store);
    assert!(
        std::fs::metadata(path).unwrap().len() > 64 * 1024,
        "the test needs a state of many pages"
    );
    assert!(!wal_path(path).exists(), "closing checkpoints the WAL");
}

fn wal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

#[test]
fn a_truncated_state_is_an_error_and_is_left_alone() {
    let (_dir, path) = temp();
    big_state(&path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&path, "is damaged");
}

#[test]
fn a_corrupted_state_is_an_error_and_is_left_alone() {
    let (_dir, path) = temp();
    big_state(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Overwrite pages in the middle, as a bad disk or a stray write would.
    let start = bytes.len() / 3;
    for (i, b) in bytes[start..start + 3 * 4096].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_refused(&path, "is damaged");
}

/// Overwrites a big-endian u32 field of the SQLite header, as a hand edit would.
fn patch_header(path: &Path, offset: usize, value: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    std::fs::write(path, &bytes).unwrap();
}

const USER_VERSION_OFFSET: usize = 60;
const APPLICATION_ID_OFFSET: usize = 68;

#[test]
fn a_state_from_a_newer_sealer_is_refused_and_left_unchanged() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    drop(store);
    let current = sealer::state::schema_version();
    patch_header(&path, USER_VERSION_OFFSET, current + 2);
    let expected = format!(
        "error: state database {} has schema version {}, newer than this sealer understands ({current})",
        path.display(),
        current + 2
    );
    let before = std::fs::read(&path).unwrap();
    let err = StateStore::open_existing(&path).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert!(
        err.render().contains("hint: upgrade sealer"),
        "{}",
        err.render()
    );
    let err = StateStore::open_or_create(&path).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn another_programs_sqlite_database_is_refused() {
    let (_dir, path) = temp();
    drop(StateStore::open_or_create(&path).unwrap());
    patch_header(&path, APPLICATION_ID_OFFSET, 0);
    assert_refused(
        &path,
        "is a SQLite database but not a sealer state database",
    );
}

// ---------------------------------------------------------------------------------------
// Permissions

#[test]
fn the_state_file_is_private_and_new_directories_too() {
    let (dir, _) = temp();
    let path = dir.path().join("home/nested/state.db");
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("home")), 0o700);
    assert_eq!(mode(&dir.path().join("home/nested")), 0o700);
    // SQLite gives the WAL and shared-memory files the database's mode.
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        assert_eq!(mode(Path::new(&p)), 0o600, "{suffix}");
    }
    drop(store);
    // Creating leaves nothing else behind (the temporary file is gone).
    let names: Vec<String> = std::fs::read_dir(dir.path().join("home/nested"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["state.db"]);
}

// ---------------------------------------------------------------------------------------
// Secrets

/// Asserts that `needle` is in neither the database file nor its WAL.
fn assert_not_in_files(path: &Path, needle: &[u8]) {
    for p in [path.to_path_buf(), wal_path(path)] {
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the clear text",
                p.display()
            );
        }
    }
}

#[test]
fn secrets_are_encrypted_and_round_trip() {
    let (_dir, path) = temp();
    let key = StateKey::new("an operator key that is long enough").unwrap();
    let clear = "s3cr3t-registry-password-7f1c";
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    let serial = store
        .put_secret("c", "registry_password", clear, Some(&key))
        .unwrap();
    assert_eq!(serial, 2);
    // While the store is open the write sits in the WAL: look there too.
    assert!(wal_path(&path).exists());
    assert_not_in_files(&path, clear.as_bytes());

    let secret = store
        .get_secret("c", "registry_password", Some(&key))
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), clear);
    assert!(!format!("{secret:?}").contains(clear));
    assert!(!format!("{key:?}").contains("operator"));
    assert!(
        store
            .get_secret("c", "nothing", Some(&key))
            .unwrap()
            .is_none()
    );

    // The history names the secret, never its value.
    let last = store.history("c").unwrap().pop().unwrap();
    assert_eq!(last.operation, Operation::Secret);
    assert_eq!(last.address.as_deref(), Some("registry_password"));
    assert_eq!(last.attributes, None);

    // Overwriting keeps one value.
    store
        .put_secret("c", "registry_password", "second-value-93ab", Some(&key))
        .unwrap();
    let secret = store
        .get_secret("c", "registry_password", Some(&key))
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), "second-value-93ab");
    drop(store);
    assert_not_in_files(&path, clear.as_bytes());
    assert_not_in_files(&path, b"second-value-93ab");

    // Reopened: the wrong key or no key is an error, never a wrong value.
    let store = StateStore::open_existing(&path).unwrap().unwrap();
    let wrong = StateKey::new("another key that is long enough").unwrap();
    let err = store
        .get_secret("c", "registry_password", Some(&wrong))
        .unwrap_err();
    assert!(err.to_string().contains("cannot decrypt secret"), "{err}");
    let err = store
        .get_secret("c", "registry_password", None)
        .unwrap_err();
    assert!(
        err.to_string().contains("SEALER_STATE_KEY is not set"),
        "{err}"
    );
    let secret = store
        .get_secret("c", "registry_password", Some(&key))
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), "second-value-93ab");
}

#[test]
fn without_a_key_nothing_secret_is_kept() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    let err = store
        .put_secret("c", "ssh_password", "no-key-secret-5d2e", None)
        .unwrap_err();
    let text = err.render();
    assert!(
        text.contains("without SEALER_STATE_KEY the state keeps nothing secret"),
        "{text}"
    );
    assert!(!text.contains("no-key-secret-5d2e"), "{text}");
    assert_eq!(serial_of(&store, "c"), 1);
    drop(store);
    assert_not_in_files(&path, b"no-key-secret-5d2e");
}

// ---------------------------------------------------------------------------------------
// Locks in one process

#[test]
fn a_lock_excludes_others_until_dropped() {
    let (_dir, path) = temp();
    let a = StateStore::open_or_create(&path).unwrap();
    let b = StateStore::open_existing(&path).unwrap().unwrap();
    // A cluster that does not exist yet can be locked (a first apply).
    let lock = a
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    assert_eq!(lock.cluster(), "c");
    assert_eq!(lock.info().pid, std::process::id());
    assert_eq!(b.current_lock("c").unwrap().as_ref(), Some(lock.info()));
    assert_eq!(b.current_lock("other").unwrap(), None);

    let start = Instant::now();
    let err = b
        .lock(
            "c",
            &LockHolder::this_process("destroy"),
            Duration::from_millis(300),
        )
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(300));
    let text = err.render();
    assert!(
        text.starts_with(&format!(
            "error: state of cluster \"c\" is locked by {}\n",
            lock.info()
        )),
        "{text}"
    );
    assert!(text.contains("--lock-timeout"), "{text}");
    assert!(
        text.contains(&format!("sealer state unlock {}", lock.info().id)),
        "{text}"
    );
    // Other clusters are not affected.
    drop(
        b.lock("d", &LockHolder::this_process("apply"), Duration::ZERO)
            .unwrap(),
    );

    drop(lock);
    assert_eq!(b.current_lock("c").unwrap(), None);
    let again = b
        .lock("c", &LockHolder::this_process("destroy"), Duration::ZERO)
        .unwrap();
    again.release().unwrap();
    assert_eq!(a.current_lock("c").unwrap(), None);
}

#[test]
fn break_lock_needs_the_right_id_and_returns_what_it_removed() {
    let (_dir, path) = temp();
    let store = StateStore::open_or_create(&path).unwrap();
    let err = store.break_lock("c", "0000").unwrap_err();
    assert!(err.to_string().contains("is not locked"), "{err}");

    let holder = LockHolder {
        operation: "apply".into(),
        pid: 4242,
        host: "build-7.invalid".into(),
    };
    let lock = store.lock("c", &holder, Duration::ZERO).unwrap();
    let err = store.break_lock("c", "0000").unwrap_err();
    assert!(
        err.to_string().contains("lock ID 0000 is not the lock"),
        "{err}"
    );
    assert!(store.current_lock("c").unwrap().is_some());

    let removed = store.break_lock("c", &lock.info().id).unwrap();
    assert_eq!(&removed, lock.info());
    assert_eq!(removed.pid, 4242);
    assert_eq!(removed.host, "build-7.invalid");
    assert_eq!(store.current_lock("c").unwrap(), None);

    // The holder still runs and holds the OS lock: breaking its row does not let another
    // sealer of this machine in. Once it ends, one gets in, and the old holder's drop
    // (by ID) did not touch the new row.
    let me = LockHolder::this_process("apply");
    let err = store.lock("c", &me, Duration::ZERO).unwrap_err();
    assert!(
        err.to_string()
            .contains("locked by a process of this machine"),
        "{err}"
    );
    drop(lock);
    let newer = store.lock("c", &me, Duration::ZERO).unwrap();
    assert_eq!(
        store.current_lock("c").unwrap().as_ref(),
        Some(newer.info())
    );
}

// ---------------------------------------------------------------------------------------
// Locks and writes between processes. The helper below runs in a child process (this test
// binary, re-run on that one test) and does what SEALER_IT_STATE_HELPER says.

const HELPER_ENV: &str = "SEALER_IT_STATE_HELPER";
const HELPER_DB_ENV: &str = "SEALER_IT_STATE_DB";

#[test]
#[ignore = "helper process of the state tests; does nothing unless they spawn it"]
fn state_helper_process() {
    let (Ok(mode), Ok(db)) = (std::env::var(HELPER_ENV), std::env::var(HELPER_DB_ENV)) else {
        return;
    };
    let db = PathBuf::from(db);
    let store = StateStore::open_or_create(&db).unwrap();
    match mode.as_str() {
        // Take the lock of "c", say so (lock ID in `ready`), hold it until `release`
        // appears, then exit, releasing it by drop.
        "hold" => {
            let lock = store
                .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
                .unwrap();
            let ready = db.with_file_name("ready");
            let tmp = db.with_file_name("ready.tmp");
            std::fs::write(&tmp, &lock.info().id).unwrap();
            std::fs::rename(&tmp, &ready).unwrap();
            let release = db.with_file_name("release");
            let deadline = Instant::now() + Duration::from_secs(60);
            while !release.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(lock);
        }
        // Write to "k" as fast as possible until killed (bounded in case nobody does):
        // per host, commit, taint, then remove or commit again, so every kind of write is
        // in flight at some point.
        "write" => {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let round = n / 3;
                let ip = format!(
                    "10.{}.{}.{}",
                    round / 65536 % 256,
                    round / 256 % 256,
                    round % 256
                );
                let address = format!("host.{ip}");
                match (n % 3, round % 2) {
                    (0, _) | (2, 1) => store.commit("k", &host(&ip)).unwrap(),
                    (1, _) => store.taint("k", &address).unwrap(),
                    _ => store.remove("k", &address).unwrap(),
                };
                n += 1;
            }
        }
        other => panic!("unknown helper mode {other}"),
    }
}

fn spawn_helper(mode: &str, db: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "state::state_helper_process",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, mode)
        .env(HELPER_DB_ENV, db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper")
}

/// Waits for the holder's `ready` file and returns the lock ID it holds.
fn wait_ready(db: &Path, child: &mut Child) -> String {
    let ready = db.with_file_name("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(id) = std::fs::read_to_string(&ready) {
            return id;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("helper exited early: {status}");
        }
        assert!(Instant::now() < deadline, "helper never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lock_held_by_another_process_is_waited_for_then_free_when_it_exits() {
    let (_dir, db) = temp();
    let store = StateStore::open_or_create(&db).unwrap();
    let mut child = spawn_helper("hold", &db);
    let id = wait_ready(&db, &mut child);
    let me = LockHolder::this_process("apply");

    let start = Instant::now();
    let err = store
        .lock("c", &me, Duration::from_millis(500))
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(500));
    let text = err.render();
    let headline = text.lines().next().unwrap();
    let prefix = format!(
        "error: state of cluster \"c\" is locked by pid {} on host {} since ",
        child.id(),
        me.host
    );
    assert!(headline.starts_with(&prefix), "{text}");
    assert!(
        headline.ends_with(&format!("(apply, lock ID {id})")),
        "{text}"
    );
    assert!(
        !text.contains("stale"),
        "a live holder is not stale: {text}"
    );
    assert!(text.contains("waited"), "{text}");
    let info = store.current_lock("c").unwrap().unwrap();
    assert_eq!(info.pid, child.id());
    assert!(!info.is_stale());

    // The holder exits (dropping its lock) while we wait: we get the lock.
    std::fs::write(db.with_file_name("release"), b"").unwrap();
    let lock = store.lock("c", &me, Duration::from_secs(30)).unwrap();
    assert_eq!(lock.info().pid, std::process::id());
    assert!(child.wait().unwrap().success(), "helper failed");
}

#[test]
fn a_killed_holders_lock_goes_with_it_and_is_taken_over_by_the_next() {
    let (_dir, db) = temp();
    let store = StateStore::open_or_create(&db).unwrap();
    let mut child = spawn_helper("hold", &db);
    let id = wait_ready(&db, &mut child);
    let pid = child.id();
    // While it lives, it holds the lock.
    let me = LockHolder::this_process("apply");
    let err = store
        .lock("c", &me, Duration::from_millis(200))
        .unwrap_err();
    assert!(
        err.render().contains(&format!("lock ID {id})")),
        "{}",
        err.render()
    );
    // A plan made now says an operation is running (its tainted resources are in progress).
    assert_eq!(store.running("c").unwrap().map(|l| l.id), Some(id.clone()));
    child.kill().unwrap(); // SIGKILL: no drop runs, the kernel releases the OS lock
    child.wait().unwrap();
    assert_eq!(
        store.running("c").unwrap(),
        None,
        "a dead holder runs nothing"
    );

    // Its row is still there, named as stale by anyone who looks...
    let info = store.current_lock("c").unwrap().unwrap();
    assert!(info.is_stale());
    // ...and the next lock takes it over, saying whose it was.
    let lock = store.lock("c", &me, Duration::ZERO).unwrap();
    let dead = lock.took_over().unwrap();
    assert_eq!((dead.pid, dead.id.as_str()), (pid, id.as_str()));
    assert_eq!(store.current_lock("c").unwrap().as_ref(), Some(lock.info()));
}

#[test]
fn a_writer_killed_at_any_point_leaves_a_whole_state() {
    let (_dir, db) = temp();
    let store = StateStore::open_or_create(&db).unwrap();
    store.create_cluster("k").unwrap();
    let mut child = spawn_helper("write", &db);
    // Let it write a while, then kill it at whatever point it is.
    let deadline = Instant::now() + Duration::from_secs(60);
    while serial_of(&store, "k") < 40 {
        assert!(Instant::now() < deadline, "helper does not write");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("helper exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(store);

    // Reopened (integrity-checked), the serials are contiguous and replaying the history
    // gives exactly the resources recorded: no write is half there.
    let store = StateStore::open_existing(&db).unwrap().unwrap();
    let state = store.cluster("k").unwrap().unwrap();
    let history = store.history("k").unwrap();
    assert_eq!(history.len() as u64, state.serial);
    let mut replay: BTreeMap<String, Status> = BTreeMap::new();
    for (i, v) in history.iter().enumerate() {
        assert_eq!(v.serial, i as u64 + 1);
        let address = v.address.clone().unwrap_or_default();
        match v.operation {
            Operation::Create => {}
            Operation::Commit => {
                replay.insert(address, Status::Ready);
            }
            Operation::Taint => {
                replay.insert(address, Status::Tainted);
            }
            Operation::Remove => {
                replay.remove(&address);
            }
            other => panic!("unexpected {other}"),
        }
    }
    let recorded: BTreeMap<String, Status> = state
        .resources
        .iter()
        .map(|(a, r)| (a.clone(), r.status))
        .collect();
    assert_eq!(recorded, replay);
}
