//! Unit tests of the state's internals: identifiers, the migration runner, row checks,
//! process liveness, the lock message, and the cipher. The public behaviour (files,
//! processes, locks between processes) is tested end to end in `tests/it/state.rs`.

use super::lock::{self, Liveness, LockInfo};
use super::schema::{self, Migration};
use super::secrets::{self, StateKey};
use super::*;
use crate::resource::{ResourceType, Status};
use std::collections::BTreeSet;

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    (dir, path)
}

#[test]
fn lineage_is_a_version_4_uuid() {
    let text = ids::format_uuid_v4([0xff; 16]);
    assert_eq!(text, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    let text = ids::format_uuid_v4([0; 16]);
    assert_eq!(text, "00000000-0000-4000-8000-000000000000");
    assert!(ids::is_lineage(&text));

    let a = ids::new_lineage().unwrap();
    let b = ids::new_lineage().unwrap();
    assert_ne!(a, b);
    assert!(ids::is_lineage(&a), "{a}");
    assert_eq!(&a[14..15], "4");
    assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
}

#[test]
fn lineage_check_rejects_other_text() {
    for bad in [
        "",
        "not-a-uuid",
        "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
        "ffffffffffff4fffbfffffffffffffffffff",
        "ffffffff-ffff-4fff-bfff-fffffffffffff",
        "ffffffff-ffff-4fff-bfff-fffffffffffé",
    ] {
        assert!(!ids::is_lineage(bad), "{bad:?}");
    }
}

#[test]
fn lock_ids_are_random_hex() {
    let a = ids::new_lock_id().unwrap();
    let b = ids::new_lock_id().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 16);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn migrations_are_numbered_from_one_without_gaps_and_match_the_files() {
    for (i, m) in schema::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1, "{}", m.name);
        assert!(
            m.name.starts_with(&format!("{:04}_", m.version)),
            "{}",
            m.name
        );
    }
    assert_eq!(
        schema_version() as usize,
        schema::MIGRATIONS.len(),
        "the current version is the last migration"
    );
    // Every file in state-schema/migrations is embedded, and nothing else is.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-schema/migrations");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let embedded: Vec<String> = schema::MIGRATIONS
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    assert_eq!(files, embedded);
}

/// One past the newest real migration.
const FAKE_NEXT: Migration = Migration {
    version: 4,
    name: "0004_test",
    sql: "CREATE TABLE notes (text TEXT NOT NULL) STRICT; INSERT INTO notes VALUES ('migrated');",
};

const BROKEN_NEXT: Migration = Migration {
    version: 4,
    name: "0004_broken",
    sql: "CREATE TABLE half (x INTEGER); THIS IS NOT SQL;",
};

fn user_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_older_schema_is_migrated_forward_in_one_transaction() {
    let (_dir, path) = temp_db();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    drop(store);

    let mut conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        schema::current_version(),
        3,
        "FAKE_NEXT follows the newest migration"
    );
    let mut migrations = schema::MIGRATIONS.to_vec();
    migrations.push(FAKE_NEXT);
    schema::check_and_migrate_with(&mut conn, &path, &migrations).unwrap();
    assert_eq!(user_version(&conn), 4);
    let note: String = conn
        .query_row("SELECT text FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "migrated");
    // Running again is a no-op.
    schema::check_and_migrate_with(&mut conn, &path, &migrations).unwrap();
    assert_eq!(user_version(&conn), 4);
    // This binary (which knows up to version 3) now refuses the file.
    drop(conn);
    let err = StateStore::open_existing(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("has schema version 4, newer than this sealer understands (3)"),
        "{err}"
    );
}

#[test]
fn a_failed_migration_leaves_the_old_schema_whole() {
    let (_dir, path) = temp_db();
    drop(StateStore::open_or_create(&path).unwrap());
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let mut migrations = schema::MIGRATIONS.to_vec();
    migrations.push(BROKEN_NEXT);
    let err = schema::check_and_migrate_with(&mut conn, &path, &migrations).unwrap_err();
    assert!(
        err.to_string()
            .contains("schema migration 0004_broken failed"),
        "{err}"
    );
    assert_eq!(user_version(&conn), 3);
    let half: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        half, 0,
        "the first statement of the failed migration was rolled back"
    );
}

#[test]
fn digests_are_recognized() {
    let hex64 = "ab".repeat(32);
    assert!(rows::is_digest(&format!("sha256:{hex64}")));
    assert!(rows::is_digest(&format!("sha512:{}", "0f".repeat(64))));
    assert!(rows::is_digest(&format!("hmac-sha256:{hex64}")));
    for bad in [
        "hunter2".to_string(),
        "sha256:".to_string(),
        format!("sha256:{}", &hex64[..62]),
        format!("sha256:{}", hex64.to_uppercase()),
        format!("SHA256:{hex64}"),
        format!(":{hex64}"),
        format!("sha256:{hex64}0"),
        format!("sha256:{hex64} "),
    ] {
        assert!(!rows::is_digest(&bad), "{bad:?}");
    }
}

fn record(address: &str) -> Recorded {
    Recorded {
        address: address.to_string(),
        resource_type: ResourceType::Host,
        host: Some("10.0.0.1".to_string()),
        attributes: BTreeMap::new(),
        sensitive: BTreeSet::new(),
        status: Status::Ready,
        depends_on: Vec::new(),
        drift: None,
    }
}

#[test]
fn a_sensitive_value_in_clear_is_refused_without_being_shown() {
    let mut r = record("host.10.0.0.1");
    r.attributes
        .insert("password".into(), serde_json::json!("hunter2-secret"));
    r.sensitive.insert("password".into());
    let why = rows::check_sensitive(&r).unwrap_err();
    assert!(why.contains("\"password\""), "{why}");
    assert!(why.contains("host.10.0.0.1"), "{why}");
    assert!(!why.contains("hunter2"), "{why}");

    // Numbers, lists and objects are not digests either.
    r.attributes
        .insert("password".into(), serde_json::json!(["a"]));
    assert!(rows::check_sensitive(&r).is_err());
    // A digest, null, or an absent attribute is fine.
    r.attributes.insert(
        "password".into(),
        serde_json::json!(format!("sha256:{}", "1".repeat(64))),
    );
    rows::check_sensitive(&r).unwrap();
    r.attributes
        .insert("password".into(), serde_json::Value::Null);
    rows::check_sensitive(&r).unwrap();
    r.attributes.clear();
    rows::check_sensitive(&r).unwrap();
}

#[test]
fn rows_round_trip_and_damaged_rows_say_what_is_wrong() {
    let mut r = record("app.nginx");
    r.resource_type = ResourceType::App;
    r.host = None;
    r.status = Status::Tainted;
    r.attributes
        .insert("files_digest".into(), serde_json::json!("sha256:00"));
    r.attributes
        .insert("cmds".into(), serde_json::json!(["kubectl apply -f x"]));
    r.depends_on = vec!["kubernetes.init".into()];
    let row = rows::ResourceRow::encode(&r).unwrap();
    assert_eq!(row.decode().unwrap(), r);

    let mut row = rows::ResourceRow::encode(&r).unwrap();
    row.resource_type = "spaceship".into();
    assert!(
        row.decode()
            .unwrap_err()
            .contains("unknown resource type \"spaceship\"")
    );
    let mut row = rows::ResourceRow::encode(&r).unwrap();
    row.status = "gone".into();
    assert!(row.decode().unwrap_err().contains("unknown status"));
    let mut row = rows::ResourceRow::encode(&r).unwrap();
    row.attributes = "[1]".into();
    assert!(row.decode().unwrap_err().contains("attributes"));
    let mut row = rows::ResourceRow::encode(&r).unwrap();
    row.depends_on = "{".into();
    assert!(row.decode().unwrap_err().contains("dependencies"));
}

#[test]
fn proc_stat_state_is_read_after_the_last_parenthesis() {
    assert_eq!(lock::stat_state("123 (sealer) S 1 2 3"), Some('S'));
    assert_eq!(lock::stat_state("123 (a) b) (c) Z 1"), Some('Z'));
    assert_eq!(lock::stat_state("123 (x)"), None);
    assert_eq!(lock::stat_state("garbage"), None);
    assert_eq!(lock::stat_state(""), None);
}

#[test]
fn liveness_of_this_process_and_of_a_reaped_child() {
    assert_eq!(lock::process_liveness(std::process::id()), Liveness::Alive);
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    // A pid could be reused at once in theory; on a test machine it is not.
    assert_eq!(lock::process_liveness(pid), Liveness::Gone);
    assert_eq!(lock::process_liveness(0), Liveness::Unknown);
}

#[test]
fn the_locked_error_names_holder_and_says_what_to_do() {
    let info = LockInfo {
        id: "abcd".into(),
        operation: "apply".into(),
        pid: 1234,
        host: "elsewhere.invalid".into(),
        since: "2026-11-25T09:00:00Z".into(),
    };
    let err = lock::locked_error("c", &info, Duration::from_millis(1500));
    assert_eq!(
        err.render(),
        "error: state of cluster \"c\" is locked by pid 1234 on host elsewhere.invalid since 2026-11-25T09:00:00Z (apply, lock ID abcd)\n  \
         waited 1.5s for the lock\n\
         hint: wait for that sealer to finish, or wait longer with --lock-timeout DURATION\n\
         hint: if that process is gone, remove the lock with `sealer state unlock abcd`\n"
    );
    assert!(
        !info.is_stale(),
        "a lock from another host is never called stale"
    );

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = LockInfo {
        pid: child.id(),
        host: lock::host_name(),
        ..info
    };
    child.wait().unwrap();
    assert!(gone.is_stale());
    let err = lock::locked_error("c", &gone, Duration::ZERO);
    let text = err.render();
    assert!(
        text.starts_with(&format!(
            "error: state of cluster \"c\" is locked by {gone}: the process is gone: the lock is stale\n"
        )),
        "{text}"
    );
    assert!(!text.contains("waited"), "{text}");
    assert!(text.contains("hint: process"), "{text}");
    assert!(text.contains("`sealer state unlock abcd`"), "{text}");
}

#[test]
fn the_key_and_secrets_never_show_in_debug_output() {
    let key = StateKey::new("correct horse battery staple").unwrap();
    assert_eq!(format!("{key:?}"), "StateKey(<redacted>)");
    let secret = Secret::new("hunter2".into());
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    assert_eq!(secret.expose(), "hunter2");

    let err = StateKey::new("short-key").unwrap_err();
    let text = err.render();
    assert!(
        text.contains("SEALER_STATE_KEY is too short (9 bytes"),
        "{text}"
    );
    assert!(!text.contains("short-key"), "{text}");
}

#[test]
fn sealed_values_open_only_with_their_key_and_binding() {
    let key = StateKey::new("0123456789abcdef0123456789abcdef").unwrap();
    let aad = secrets::associated_data("lineage-a", "registry-password");
    let (nonce, ciphertext) = key.seal(&aad, b"hunter2").unwrap();
    assert_eq!(
        ciphertext.len(),
        "hunter2".len() + 16,
        "ciphertext plus tag"
    );
    assert_eq!(key.open(&aad, &nonce, &ciphertext).unwrap(), b"hunter2");

    // A fresh nonce every time.
    let (nonce2, ciphertext2) = key.seal(&aad, b"hunter2").unwrap();
    assert_ne!(nonce, nonce2);
    assert_ne!(ciphertext, ciphertext2);

    let other_key = StateKey::new("0123456789abcdef0123456789abcdeX").unwrap();
    assert!(other_key.open(&aad, &nonce, &ciphertext).is_none());
    let other_name = secrets::associated_data("lineage-a", "ssh-password");
    assert!(key.open(&other_name, &nonce, &ciphertext).is_none());
    let other_lineage = secrets::associated_data("lineage-b", "registry-password");
    assert!(key.open(&other_lineage, &nonce, &ciphertext).is_none());
    let mut tampered = ciphertext.clone();
    tampered[0] ^= 1;
    assert!(key.open(&aad, &nonce, &tampered).is_none());
    assert!(key.open(&aad, &nonce[..12], &ciphertext).is_none());
}

#[test]
fn operations_round_trip_their_names() {
    for op in [
        Operation::Create,
        Operation::Commit,
        Operation::Taint,
        Operation::Remove,
        Operation::Config,
        Operation::Secret,
        Operation::Refresh,
    ] {
        assert_eq!(Operation::parse(op.as_str()), Some(op));
        assert_eq!(op.to_string(), op.as_str());
    }
    assert_eq!(Operation::parse("delete"), None);
}

#[test]
fn a_store_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<StateStore>();
    send_sync::<StateLock>();

    let (_dir, path) = temp_db();
    let store = std::sync::Arc::new(StateStore::open_or_create(&path).unwrap());
    store.create_cluster("c").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .commit("c", &record(&format!("host.{t}.{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.resources.len(), 100);
    assert_eq!(state.serial, 101);
}

#[test]
fn a_damaged_record_is_an_error_not_an_empty_state() {
    let (_dir, path) = temp_db();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &record("host.10.0.0.1")).unwrap();
    drop(store);
    // Damage a row behind the store's back (something only a bug or a hand edit does).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE resources SET resource_type = 'spaceship'", [])
        .unwrap();
    drop(conn);
    let store = StateStore::open_existing(&path).unwrap().unwrap();
    let err = store.cluster("c").unwrap_err();
    assert!(
        err.to_string()
            .contains("the record of cluster \"c\" is damaged: resource host.10.0.0.1 is damaged: unknown resource type \"spaceship\""),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_version_2_state_keeps_its_history_and_gains_drift() {
    let (_dir, path) = temp_db();
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate(&mut conn, &path, &schema::MIGRATIONS[..2]).unwrap();
        conn.execute_batch(
            "INSERT INTO clusters (id, name, lineage, serial, created_at, updated_at)
               VALUES (1, 'c', '11111111-2222-4333-8444-555555555555', 2, 't', 't');
             INSERT INTO history (cluster_id, serial, at, operation, address, attributes, command)
               VALUES (1, 1, 't', 'create', NULL, NULL, NULL),
                      (1, 2, 't', 'commit', 'host.a', '{\"x\":1}', 'apply');
             INSERT INTO resources
               (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
               VALUES (1, 'host.a', 'host', 'a', '{\"x\":1}', '[]', 'ready', '[]', 2);",
        )
        .unwrap();
    }
    let store = StateStore::open_existing(&path).unwrap().unwrap();
    let history = store.history("c").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].command.as_deref(), Some("apply"));
    assert_eq!(history[1].address.as_deref(), Some("host.a"));
    assert_eq!(
        store.cluster("c").unwrap().unwrap().resources["host.a"].drift,
        None
    );
}

#[test]
fn drift_is_recorded_in_one_write_and_a_finished_step_clears_it() {
    let (_dir, path) = temp_db();
    let store = StateStore::open_or_create(&path).unwrap();
    store.create_cluster("c").unwrap();
    store.commit("c", &record("host.a")).unwrap();
    store.commit("c", &record("host.b")).unwrap();
    let drift = crate::resource::Drift {
        gone: true,
        findings: vec!["release x is not installed".into()],
        recorded_at: None,
    };
    let marks = BTreeMap::from([("host.a".to_string(), Some(drift.clone()))]);
    let serial = store.record_drift("c", &marks).unwrap();
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.serial, serial);
    let recorded = state.resources["host.a"].drift.clone().unwrap();
    assert_eq!(
        (recorded.gone, &recorded.findings, recorded.recorded_at),
        (true, &drift.findings, Some(serial))
    );
    assert_eq!(state.resources["host.b"].drift, None);
    let last = store.history("c").unwrap().pop().unwrap();
    assert_eq!(last.operation, Operation::Refresh);
    assert_eq!(
        last.attributes.unwrap()["host.a"]["findings"][0],
        "release x is not installed"
    );

    // An unknown address is refused, and nothing of the write is kept.
    let bad = BTreeMap::from([
        ("host.b".to_string(), Some(drift.clone())),
        ("host.zz".to_string(), None),
    ]);
    assert!(store.record_drift("c", &bad).is_err());
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(
        (state.serial, &state.resources["host.b"].drift),
        (serial, &None)
    );

    // The repair's finished step records the resource again, without drift.
    store.commit("c", &record("host.a")).unwrap();
    assert_eq!(
        store.cluster("c").unwrap().unwrap().resources["host.a"].drift,
        None
    );
}

#[test]
fn an_import_records_every_resource_in_one_transaction_and_never_overwrites() {
    let (_dir, path) = temp_db();
    let store = StateStore::open_or_create(&path)
        .unwrap()
        .for_command("import");
    let mut drifted = record("host.10.0.0.2");
    drifted.drift = Some(crate::resource::Drift {
        gone: false,
        findings: vec!["edited by hand".into()],
        recorded_at: None,
    });
    let serial = store
        .import_cluster("c", &[record("host.10.0.0.1"), drifted])
        .unwrap();
    assert_eq!(serial, 3, "created at 1, one commit per resource");
    let state = store.cluster("c").unwrap().unwrap();
    assert_eq!(state.serial, 3);
    assert_eq!(state.resources.len(), 2);
    let drift = state.resources["host.10.0.0.2"].drift.clone().unwrap();
    assert_eq!(drift.findings, ["edited by hand"]);
    assert_eq!(drift.recorded_at, Some(3));
    let history = store.history("c").unwrap();
    let ops: Vec<_> = history
        .iter()
        .map(|v| (v.serial, v.operation, v.command.as_deref()))
        .collect();
    assert_eq!(
        ops,
        [
            (1, Operation::Create, Some("import")),
            (2, Operation::Commit, Some("import")),
            (3, Operation::Commit, Some("import")),
        ]
    );

    // A state that records the cluster is refused, unchanged.
    let err = store
        .import_cluster("c", &[record("host.10.0.0.9")])
        .unwrap_err();
    assert!(
        err.to_string().contains("already records cluster \"c\""),
        "{err}"
    );
    assert_eq!(store.cluster("c").unwrap().unwrap(), state);

    // A resource that cannot be recorded leaves nothing behind: not even the cluster.
    let mut clear = record("host.10.0.0.3");
    clear
        .attributes
        .insert("password".into(), serde_json::json!("in clear"));
    clear.sensitive.insert("password".into());
    assert!(
        store
            .import_cluster("d", &[record("host.10.0.0.1"), clear])
            .is_err()
    );
    assert_eq!(store.cluster("d").unwrap(), None);
}

#[test]
fn postgres_migrations_are_the_twins_of_the_sqlite_ones_and_match_the_files() {
    let names =
        |m: &[Migration]| -> Vec<(u32, &str)> { m.iter().map(|m| (m.version, m.name)).collect() };
    assert_eq!(names(pg::MIGRATIONS), names(schema::MIGRATIONS));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-schema/postgres");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let embedded: Vec<String> = pg::MIGRATIONS
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    assert_eq!(files, embedded);
    for m in pg::MIGRATIONS {
        let file = std::fs::read_to_string(dir.join(format!("{}.sql", m.name))).unwrap();
        assert_eq!(file, m.sql, "{} is embedded as it is on disk", m.name);
    }
}

#[test]
fn postgres_placeholders_and_redacted_urls() {
    assert_eq!(
        pg::placeholders("UPDATE t SET a = ?2 WHERE b = ?1 AND c = '?'"),
        "UPDATE t SET a = $2 WHERE b = $1 AND c = '?'"
    );
    assert_eq!(
        pg::redact("postgres://op:hunter2@db.example:5432/sealer"),
        "postgres://op@db.example:5432/sealer"
    );
    assert_eq!(
        pg::redact("postgres://op@db.example/sealer"),
        "postgres://op@db.example/sealer"
    );
    assert_eq!(pg::redact("postgres://op:p%40ss@h/d"), "postgres://op@h/d");
}

#[test]
fn advisory_keys_differ_per_cluster_and_are_stable() {
    assert_eq!(lock::advisory_key("c"), lock::advisory_key("c"));
    assert_ne!(lock::advisory_key("c"), lock::advisory_key("d"));
}

#[test]
fn pgpass_lines_match_as_libpq_reads_them() {
    let text = "# comment\n\
                other:5432:*:op:nope\n\
                db.example:5432:sealer:op:first\\:pw\n\
                *:*:*:op:fallback:with:colons\n";
    let want = |host, db, user| pg::pgpass_lookup(text, [host, "5432", db, user]);
    assert_eq!(
        want("db.example", "sealer", "op").as_deref(),
        Some("first:pw")
    );
    assert_eq!(
        want("db.example", "other", "op").as_deref(),
        Some("fallback:with:colons")
    );
    assert_eq!(want("db.example", "sealer", "ci"), None);
}

#[test]
fn redacted_urls_drop_a_password_query_parameter() {
    assert_eq!(
        pg::redact("postgres://op@h/d?password=x&connect_timeout=5"),
        "postgres://op@h/d?connect_timeout=5"
    );
    assert_eq!(
        pg::redact("postgres://op@h/d?PASSWORD=x"),
        "postgres://op@h/d"
    );
    assert_eq!(
        pg::redact("postgres://op:pw@h:5433/d?host=/run"),
        "postgres://op@h:5433/d?host=/run"
    );
    // libpq's passphrase of an encrypted client key is a secret too.
    assert_eq!(
        pg::redact("postgres://op@h/d?sslmode=verify-full&sslpassword=x"),
        "postgres://op@h/d?sslmode=verify-full"
    );
}

#[test]
fn ssl_parameters_come_out_of_the_url_decoded_and_the_rest_stays() {
    let (url, params) = pg_tls::split_url(
        "postgres://op:pw@db:5433/s?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.crt&sslcert=/c.crt&sslkey=/c.key&application_name=a",
    );
    assert_eq!(
        url,
        "postgres://op:pw@db:5433/s?connect_timeout=5&application_name=a"
    );
    assert_eq!(
        params,
        pg_tls::SslParams {
            mode: Some("verify-full".into()),
            root_cert: Some("/etc/ca x.crt".into()),
            cert: Some("/c.crt".into()),
            key: Some("/c.key".into()),
        }
    );
    let (url, params) = pg_tls::split_url("postgres://op@db/s?sslmode=require");
    assert_eq!(url, "postgres://op@db/s");
    assert_eq!(params.mode.as_deref(), Some("require"));
    let (url, params) = pg_tls::split_url("postgres://op@db/s");
    assert_eq!(url, "postgres://op@db/s");
    assert_eq!(params, pg_tls::SslParams::default());
}

/// Resolves `params` with `env` (name, value pairs), home `/h` and the files of `files`.
fn tls_settings(
    params: &pg_tls::SslParams,
    env: &[(&str, &str)],
    files: &[&str],
) -> Result<pg_tls::TlsSettings, (String, String)> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pg_tls::resolve(
        params,
        &|var| env.get(var).cloned(),
        Some(Path::new("/h")),
        &|path| files.iter().any(|f| Path::new(f) == path),
        false,
    )
}

#[test]
fn ssl_settings_resolve_as_libpq_resolves_them() {
    use pg_tls::{Roots, SslMode};
    let none = pg_tls::SslParams::default();
    let with = |mode: &str| pg_tls::SslParams {
        mode: Some(mode.into()),
        ..Default::default()
    };
    // prefer by default; no root file, no check.
    let s = tls_settings(&none, &[], &[]).unwrap();
    assert_eq!(
        (s.mode, &s.roots, &s.client),
        (SslMode::Prefer, &Roots::Unchecked, &None)
    );
    // The URL wins over PGSSLMODE, which wins over the default.
    assert_eq!(
        tls_settings(&none, &[("PGSSLMODE", "require")], &[])
            .unwrap()
            .mode,
        SslMode::Require
    );
    assert_eq!(
        tls_settings(&with("disable"), &[("PGSSLMODE", "require")], &[])
            .unwrap()
            .mode,
        SslMode::Disable
    );
    // A root file under ~/.postgresql is checked by require too (libpq).
    let s = tls_settings(&with("require"), &[], &["/h/.postgresql/root.crt"]).unwrap();
    assert_eq!(s.roots, Roots::File("/h/.postgresql/root.crt".into()));
    // verify-* need one.
    let (message, hint) = tls_settings(&with("verify-ca"), &[], &[]).unwrap_err();
    assert_eq!(
        message,
        "sslmode=verify-ca: root certificate file /h/.postgresql/root.crt does not exist"
    );
    assert!(hint.contains("sslrootcert=PATH"), "{hint}");
    let s = tls_settings(
        &with("verify-full"),
        &[("PGSSLROOTCERT", "/ca.crt")],
        &["/ca.crt"],
    )
    .unwrap();
    assert_eq!(
        (s.mode, s.roots),
        (SslMode::VerifyFull, Roots::File("/ca.crt".into()))
    );
    // sslrootcert=system: verify-full by default, nothing weaker.
    let system = pg_tls::SslParams {
        root_cert: Some("system".into()),
        ..Default::default()
    };
    let s = tls_settings(&system, &[], &[]).unwrap();
    assert_eq!((s.mode, s.roots), (SslMode::VerifyFull, Roots::System));
    let weak = pg_tls::SslParams {
        mode: Some("verify-ca".into()),
        ..system.clone()
    };
    assert_eq!(
        tls_settings(&weak, &[], &[]).unwrap_err().0,
        "sslmode=verify-ca may not be used with sslrootcert=system"
    );
    // A mode PostgreSQL does not know.
    assert_eq!(
        tls_settings(&with("on"), &[], &[]).unwrap_err().0,
        "sslmode=on is not a mode PostgreSQL knows"
    );
    // disable reads no file at all, whatever is given.
    let s = tls_settings(&with("disable"), &[("PGSSLCERT", "/missing.crt")], &[]).unwrap();
    assert_eq!((s.roots, s.client), (Roots::Unchecked, None));
    // Nor does a connection over unix sockets, which never uses TLS; the mode is checked.
    let unix = |params: &pg_tls::SslParams| {
        pg_tls::resolve(params, &|_| None, Some(Path::new("/h")), &|_| false, true)
    };
    let s = unix(&with("verify-full")).unwrap();
    assert_eq!((s.roots, s.client), (Roots::Unchecked, None));
    assert!(unix(&with("on")).is_err());
}

#[test]
fn client_certificates_resolve_as_libpq_resolves_them() {
    use pg_tls::ClientCert;
    let none = pg_tls::SslParams::default();
    // The default pair, when the certificate is there.
    assert_eq!(
        tls_settings(&none, &[], &["/h/.postgresql/postgresql.crt"])
            .unwrap()
            .client,
        Some(ClientCert {
            cert: "/h/.postgresql/postgresql.crt".into(),
            key: "/h/.postgresql/postgresql.key".into(),
        })
    );
    // From the environment, the URL winning.
    let params = pg_tls::SslParams {
        key: Some("/url.key".into()),
        ..Default::default()
    };
    assert_eq!(
        tls_settings(
            &params,
            &[("PGSSLCERT", "/env.crt"), ("PGSSLKEY", "/env.key")],
            &["/env.crt"]
        )
        .unwrap()
        .client,
        Some(ClientCert {
            cert: "/env.crt".into(),
            key: "/url.key".into(),
        })
    );
    // A certificate asked for and missing is an error; the default one missing is none.
    assert_eq!(tls_settings(&none, &[], &[]).unwrap().client, None);
    assert_eq!(
        tls_settings(&none, &[("PGSSLCERT", "/env.crt")], &[])
            .unwrap_err()
            .0,
        "client certificate file /env.crt does not exist"
    );
}

#[test]
fn ssl_modes_connect_in_libpqs_order_and_sockets_never_use_tls() {
    use pg_tls::{Attempt, SslMode};
    use postgres::config::SslMode as Pg;
    assert_eq!(
        pg_tls::attempts(SslMode::Prefer, false),
        [
            Attempt::ThenIfTlsFailed(Pg::Prefer),
            Attempt::Only(Pg::Disable)
        ]
    );
    assert_eq!(
        pg_tls::attempts(SslMode::Allow, false),
        [
            Attempt::ThenIfRefused(Pg::Disable),
            Attempt::Only(Pg::Require)
        ]
    );
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        assert_eq!(pg_tls::attempts(mode, false), [Attempt::Only(Pg::Require)]);
        assert_eq!(pg_tls::attempts(mode, true), [Attempt::Only(Pg::Disable)]);
    }
    assert_eq!(
        pg_tls::attempts(SslMode::Disable, false),
        [Attempt::Only(Pg::Disable)]
    );
    let config: postgres::Config = "postgres://op@%2Frun%2Fpostgresql/s".parse().unwrap();
    assert!(pg_tls::all_unix(&config));
    let config: postgres::Config = "postgres://op@db/s".parse().unwrap();
    assert!(!pg_tls::all_unix(&config));
}

#[test]
fn certificate_names_read_as_written() {
    assert_eq!(pg_tls::plain_name("DnsName(\"db.example\")"), "db.example");
    assert_eq!(pg_tls::plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
    assert_eq!(pg_tls::plain_name("DirectoryName"), "DirectoryName");
}
