//! The PostgreSQL twin of the state schema (`state-schema/postgres/`) against the SQLite
//! schema sealer creates (`state-schema/migrations/`), on a real PostgreSQL server
//! (tests/it/support/postgres.rs): the same numbered migrations, the same tables with the
//! same columns in the same order, types, nullability and primary keys, and the same rows
//! refused by their checks.

use crate::support::postgres::Postgres;
use crate::support::repo_root;
use sealer::state::StateStore;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One column as both backends can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// `integer`, `text` or `blob`: SQLite's STRICT types, PostgreSQL's mapped onto them.
    kind: String,
    not_null: bool,
    primary_key: bool,
}

type Schema = BTreeMap<String, Vec<Column>>;

fn migration_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("state-schema").join(dir))
        .expect("migrations directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

fn file_names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The schema of a state database as sealer creates it.
fn sqlite_schema() -> (tempfile::TempDir, PathBuf, Schema) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    drop(StateStore::open_or_create(&path).expect("create the state"));
    let conn = rusqlite::Connection::open(&path).expect("open the state");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut schema = Schema::new();
    for table in tables {
        let columns = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| {
                let not_null: i64 = r.get(3)?;
                let pk: i64 = r.get(5)?;
                Ok(Column {
                    name: r.get(1)?,
                    kind: r.get::<_, String>(2)?.to_lowercase(),
                    // A primary key column is never NULL in either backend, whatever SQLite's
                    // `notnull` flag says of an INTEGER PRIMARY KEY.
                    not_null: not_null == 1 || pk > 0,
                    primary_key: pk > 0,
                })
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        schema.insert(table, columns);
    }
    (dir, path, schema)
}

/// The schema of a fresh PostgreSQL database after every file of `state-schema/postgres/`,
/// each run in one transaction as sealer runs them.
fn postgres_schema(pg: &Postgres, database: &str) -> Schema {
    for file in migration_files("postgres") {
        pg.psql_file(database, &file);
    }
    let rows = pg.psql(
        database,
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,
                EXISTS (SELECT 1 FROM information_schema.table_constraints t
                        JOIN information_schema.key_column_usage k
                          ON k.constraint_schema = t.constraint_schema
                         AND k.constraint_name = t.constraint_name
                        WHERE t.constraint_type = 'PRIMARY KEY'
                          AND t.table_schema = 'public'
                          AND t.table_name = c.table_name
                          AND k.column_name = c.column_name)
         FROM information_schema.columns c
         WHERE c.table_schema = 'public'
         ORDER BY c.table_name, c.ordinal_position",
    );
    let mut schema = Schema::new();
    for line in rows.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').collect();
        let [table, name, data_type, nullable, pk] = fields[..] else {
            panic!("unexpected psql row {line:?}");
        };
        let kind = match data_type {
            "bigint" | "integer" | "smallint" => "integer",
            "text" => "text",
            "bytea" => "blob",
            other => panic!("column {table}.{name} has type {other}, which has no SQLite twin"),
        };
        schema.entry(table.to_string()).or_default().push(Column {
            name: name.to_string(),
            kind: kind.to_string(),
            not_null: nullable == "NO",
            primary_key: pk == "t",
        });
    }
    schema
}

#[test]
fn postgres_migrations_are_numbered_as_the_sqlite_ones() {
    let sqlite = file_names(&migration_files("migrations"));
    let postgres = file_names(&migration_files("postgres"));
    assert!(!sqlite.is_empty());
    assert_eq!(
        postgres, sqlite,
        "every SQLite migration has a PostgreSQL twin of the same number and name"
    );
}

#[test]
fn postgres_schema_has_the_tables_and_columns_of_the_sqlite_schema() {
    let pg = Postgres::shared();
    let database = pg.new_database();
    let mut postgres = postgres_schema(pg, &database);
    let (_dir, _path, sqlite) = sqlite_schema();

    // What SQLite keeps in its file header (application_id, user_version) is a table here.
    let header = postgres
        .remove("sealer_schema")
        .expect("the PostgreSQL schema has its sealer_schema table");
    let names: Vec<&str> = header.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "application_id", "version"]);

    assert_eq!(
        postgres.keys().collect::<Vec<_>>(),
        sqlite.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, columns) in &sqlite {
        assert_eq!(&postgres[table], columns, "the columns of table {table}");
    }
}

/// Statements run against both schemas, each with whether it must be accepted. Written in
/// the SQL both dialects read the same.
const CASES: &[(&str, bool)] = &[
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
         VALUES (1, 'host.a', 'host', NULL, '{\"arch\":\"amd64\"}', '[]', 'ready', '[]', 2)",
        true,
    ),
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
         VALUES (1, 'host.b', 'host', NULL, '{\"arch\":', '[]', 'ready', '[]', 2)",
        false,
    ),
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
         VALUES (1, 'host.c', 'host', NULL, '{}', '[]', 'broken', '[]', 2)",
        false,
    ),
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
         VALUES (1, '', 'host', NULL, '{}', '[]', 'ready', '[]', 2)",
        false,
    ),
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial, drift)
         VALUES (1, 'host.d', 'host', NULL, '{}', '[]', 'ready', '[]', 2, 'gone')",
        false,
    ),
    (
        "INSERT INTO resources (cluster_id, address, resource_type, host, attributes, sensitive, status, depends_on, updated_serial)
         VALUES (2, 'host.e', 'host', NULL, '{}', '[]', 'ready', '[]', 2)",
        false,
    ),
    (
        "INSERT INTO history (cluster_id, serial, at, operation) VALUES (1, 2, 't', 'refresh')",
        true,
    ),
    (
        "INSERT INTO history (cluster_id, serial, at, operation) VALUES (1, 3, 't', 'bogus')",
        false,
    ),
    (
        "INSERT INTO clusters (name, lineage, serial, created_at, updated_at) VALUES ('z', 'short', 1, 't', 't')",
        false,
    ),
    (
        "INSERT INTO clusters (name, lineage, serial, created_at, updated_at, digests_keyed)
         VALUES ('y', '00000000-0000-4000-8000-000000000002', 1, 't', 't', 2)",
        false,
    ),
    (
        "INSERT INTO clusters (name, lineage, serial, created_at, updated_at)
         VALUES ('x', '00000000-0000-4000-8000-000000000003', 0, 't', 't')",
        false,
    ),
];

const FIRST_CLUSTER: &str =
    "INSERT INTO clusters (id, name, lineage, serial, created_at, updated_at, digests_keyed)
     VALUES (1, 'c', '00000000-0000-4000-8000-000000000001', 1, 't', 't', 1)";

#[test]
fn postgres_schema_refuses_the_rows_the_sqlite_schema_refuses() {
    let pg = Postgres::shared();
    let database = pg.new_database();
    postgres_schema(pg, &database);
    let (_dir, path, _) = sqlite_schema();
    let sqlite = rusqlite::Connection::open(&path).expect("open the state");
    sqlite.execute_batch("PRAGMA foreign_keys = ON").unwrap();

    sqlite
        .execute(FIRST_CLUSTER, [])
        .expect("sqlite: first cluster");
    pg.psql(&database, FIRST_CLUSTER);
    for (sql, accepted) in CASES {
        let in_sqlite = sqlite.execute(sql, []);
        let in_postgres = pg.try_psql(&database, sql);
        assert_eq!(in_sqlite.is_ok(), *accepted, "SQLite: {sql}: {in_sqlite:?}");
        assert_eq!(
            in_postgres.is_ok(),
            *accepted,
            "PostgreSQL: {sql}: {in_postgres:?}"
        );
    }
}

// The store on PostgreSQL, through its public API: what one connection writes another
// reads, lineage and serial rules, locks between stores and processes (a `kill -9` of the
// holder frees its lock), and a connection lost mid-operation.

use sealer::resource::{Recorded, ResourceType, Status};
use sealer::state::{LockHolder, Operation, StateKey};
use serde_json::json;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "SEALER_IT_PG_HELPER";
const HELPER_URL_ENV: &str = "SEALER_IT_PG_URL";
const HELPER_READY_ENV: &str = "SEALER_IT_PG_READY";

fn host(ip: &str) -> Recorded {
    Recorded {
        address: format!("host.{ip}"),
        resource_type: ResourceType::Host,
        host: Some(ip.to_string()),
        attributes: BTreeMap::from([
            ("arch".to_string(), json!("amd64")),
            (
                "password".to_string(),
                json!(sealer::image::layout::sha256_digest(b"hunter2")),
            ),
        ]),
        sensitive: BTreeSet::from(["password".to_string()]),
        status: Status::Ready,
        depends_on: Vec::new(),
        drift: None,
    }
}

#[test]
fn an_empty_database_is_no_state_until_a_writer_creates_the_schema() {
    let pg = Postgres::shared();
    let database = pg.new_database();
    let url = pg.url(&database);
    assert!(StateStore::open_existing_postgres(&url).unwrap().is_none());
    assert_eq!(
        pg.psql(
            &database,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .trim(),
        "0",
        "a reader creates nothing"
    );
    let store = StateStore::open_or_create_postgres(&url).unwrap();
    assert!(store.clusters().unwrap().is_empty());
    assert_eq!(
        pg.psql(
            &database,
            "SELECT application_id, version FROM sealer_schema"
        )
        .trim(),
        format!("1397047628|{}", sealer::state::schema_version())
    );
    assert_eq!(
        pg.psql(&database, "SELECT octet_length(key) FROM digest_key")
            .trim(),
        "32"
    );
    // Opening again migrates nothing and keeps the key.
    let key = pg.psql(&database, "SELECT encode(key, 'hex') FROM digest_key");
    drop(StateStore::open_or_create_postgres(&url).unwrap());
    assert_eq!(
        pg.psql(&database, "SELECT encode(key, 'hex') FROM digest_key"),
        key
    );
}

#[test]
fn a_foreign_or_newer_database_is_refused_and_left_alone() {
    let pg = Postgres::shared();
    let foreign = pg.new_database();
    pg.psql(&foreign, "CREATE TABLE invoices (id bigint)");
    let err = StateStore::open_or_create_postgres(&pg.url(&foreign)).unwrap_err();
    assert!(
        err.to_string().contains("holds tables but no sealer state"),
        "{err}"
    );
    assert_eq!(
        pg.psql(
            &foreign,
            "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"
        )
        .trim(),
        "invoices"
    );

    let newer = pg.new_database();
    drop(StateStore::open_or_create_postgres(&pg.url(&newer)).unwrap());
    pg.psql(&newer, "UPDATE sealer_schema SET version = 99");
    let err = StateStore::open_existing_postgres(&pg.url(&newer)).unwrap_err();
    assert!(
        err.to_string()
            .contains("schema version 99, newer than this sealer understands"),
        "{err}"
    );
    // The password never appears in what names the database.
    assert!(
        !err.to_string().contains(crate::support::postgres::PASSWORD),
        "{err}"
    );
}

#[test]
fn the_servers_refusals_with_a_likely_cause_say_what_to_do() {
    let pg = Postgres::shared();
    let hints_of = |url: &str| {
        let err = StateStore::open_existing_postgres(url).unwrap_err();
        let d = &err.diagnostics()[0];
        (d.message.clone(), d.hints.join("\n"))
    };
    let wrong = pg.url(&pg.new_database()).replacen(
        crate::support::postgres::PASSWORD,
        "not-the-password",
        1,
    );
    let (message, hint) = hints_of(&wrong);
    assert!(message.contains("(28P01)"), "{message}");
    assert!(hint.contains("~/.pgpass"), "{hint}");
    assert!(!message.contains("not-the-password"), "{message}");

    let (message, hint) = hints_of(&pg.url("no_such_database"));
    assert!(
        message.contains("database \"no_such_database\" does not exist (3D000)"),
        "{message}"
    );
    assert!(hint.contains("createdb"), "{hint}");
}

#[test]
fn two_stores_on_one_database_share_the_state_and_its_lineage_and_serials() {
    let pg = Postgres::shared();
    let url = pg.url(&pg.new_database());
    let a = StateStore::open_or_create_postgres(&url)
        .unwrap()
        .for_command("apply");
    let b = StateStore::open_or_create_postgres(&url).unwrap();
    let created = a.create_cluster("c").unwrap();
    assert_eq!(created.serial, 1);
    assert_eq!(a.commit("c", &host("10.0.0.2")).unwrap(), 2);
    assert_eq!(a.taint("c", "host.10.0.0.2").unwrap(), 3);
    assert_eq!(
        a.set_applied_config("c", &json!({"images": ["b", "a"], "z": 1.5}))
            .unwrap(),
        4
    );
    let key = StateKey::new("0123456789abcdef0123").unwrap();
    assert_eq!(a.put_secret("c", "token", "s3cret", Some(&key)).unwrap(), 5);

    let seen = b
        .cluster("c")
        .unwrap()
        .expect("b sees the cluster a created");
    assert_eq!(seen.lineage, created.lineage);
    assert_eq!(seen.serial, 5);
    assert_eq!(seen.resources["host.10.0.0.2"].status, Status::Tainted);
    assert_eq!(
        seen.resources["host.10.0.0.2"].attributes,
        host("10.0.0.2").attributes
    );
    // The JSON as written: key order and numbers kept.
    assert_eq!(
        serde_json::to_string(&seen.applied_config.unwrap()).unwrap(),
        r#"{"images":["b","a"],"z":1.5}"#
    );
    assert_eq!(
        b.get_secret("c", "token", Some(&key))
            .unwrap()
            .unwrap()
            .expose(),
        "s3cret"
    );
    assert_eq!(b.digest_key().unwrap(), a.digest_key().unwrap());

    let history = b.history("c").unwrap();
    let ops: Vec<Operation> = history.iter().map(|v| v.operation).collect();
    assert_eq!(
        ops,
        [
            Operation::Create,
            Operation::Commit,
            Operation::Taint,
            Operation::Config,
            Operation::Secret
        ]
    );
    assert!(
        history
            .iter()
            .all(|v| v.command.as_deref() == Some("apply"))
    );
    assert!(
        history
            .iter()
            .all(|v| v.at.ends_with('Z') && v.at.len() == 20),
        "{history:?}"
    );

    // A name is one cluster; a second create is refused whoever asks.
    let err = b.create_cluster("c").unwrap_err();
    assert!(err.to_string().contains(&created.lineage), "{err}");
    assert_eq!(b.remove("c", "host.10.0.0.2").unwrap(), 6);
    assert!(a.cluster("c").unwrap().unwrap().resources.is_empty());
    assert_eq!(a.clusters().unwrap()[0].serial, 6);
}

#[test]
fn a_lock_excludes_another_store_names_its_holder_and_goes_when_dropped() {
    let pg = Postgres::shared();
    let url = pg.url(&pg.new_database());
    let a = StateStore::open_or_create_postgres(&url).unwrap();
    let b = StateStore::open_or_create_postgres(&url).unwrap();
    let holder = LockHolder {
        operation: "apply".to_string(),
        pid: 4242,
        host: "machine-a".to_string(),
    };
    let lock = a.lock("c", &holder, Duration::ZERO).unwrap();
    let err = b
        .lock(
            "c",
            &LockHolder::this_process("apply"),
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("locked by pid 4242 on host machine-a"),
        "{err}"
    );
    assert!(err.contains(&lock.info().id), "{err}");
    assert_eq!(
        b.running("c").unwrap().map(|l| l.id),
        Some(lock.info().id.clone())
    );
    // Another cluster is not locked.
    drop(
        b.lock("d", &LockHolder::this_process("apply"), Duration::ZERO)
            .unwrap(),
    );

    drop(lock);
    assert_eq!(b.running("c").unwrap(), None);
    let taken = b
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    assert!(taken.took_over().is_none());
    assert_eq!(a.current_lock("c").unwrap().unwrap().id, taken.info().id);
    taken.release().unwrap();
    assert_eq!(a.current_lock("c").unwrap(), None);
}

#[test]
fn kill_9_of_the_holder_frees_the_lock_and_the_next_takes_it_over() {
    let pg = Postgres::shared();
    let database = pg.new_database();
    let url = pg.url(&database);
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    // The helper gets its password from PGPASSWORD, not from the URL.
    let mut child = spawn_helper(
        &format!("{}/{database}", pg.url_without_database(false)),
        &ready,
    );
    let id = wait_ready(&ready, &mut child);
    let b = StateStore::open_or_create_postgres(&url).unwrap();
    let err = b
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("pid {}", child.id())), "{err}");
    assert!(err.contains(&id), "{err}");

    child.kill().unwrap();
    child.wait().unwrap();
    // The server notices the closed connection and lets the advisory lock go.
    let lock = b
        .lock(
            "c",
            &LockHolder::this_process("apply"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(lock.took_over().map(|l| l.id.as_str()), Some(id.as_str()));
}

#[test]
fn a_lost_connection_fails_the_write_cleanly_and_frees_the_lock() {
    let pg = Postgres::shared();
    let database = pg.new_database();
    let url = pg.url(&database);
    let a = StateStore::open_or_create_postgres(&url).unwrap();
    let lock = a
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    a.create_cluster("c").unwrap();
    assert_eq!(a.commit("c", &host("10.0.0.2")).unwrap(), 2);

    // The server ends a's session, as a restart or a network cut would.
    pg.psql(
        &database,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    );
    let err = a.commit("c", &host("10.0.0.3")).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("connection to PostgreSQL failed"), "{text}");
    assert!(!text.contains(crate::support::postgres::PASSWORD), "{text}");
    drop(lock);

    // The next sealer: the lock is free (its holder's session is gone), the state holds
    // every committed step and nothing of the failed one.
    let b = StateStore::open_or_create_postgres(&url).unwrap();
    let next = b
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    assert!(next.took_over().is_some(), "a's row is a dead session's");
    let state = b.cluster("c").unwrap().unwrap();
    assert_eq!(state.serial, 2);
    assert_eq!(
        state.resources.keys().collect::<Vec<_>>(),
        ["host.10.0.0.2"]
    );
    assert_eq!(b.commit("c", &host("10.0.0.3")).unwrap(), 3);
}

fn spawn_helper(url: &str, ready: &std::path::Path) -> Child {
    spawn_helper_with(url, ready, |c| {
        c.env("PGPASSWORD", crate::support::postgres::PASSWORD);
    })
}

fn spawn_helper_with(url: &str, ready: &std::path::Path, env: impl FnOnce(&mut Command)) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    env(&mut command);
    command
        .args([
            "state_postgres::pg_state_helper_process",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "hold")
        .env(HELPER_URL_ENV, url)
        .env(HELPER_READY_ENV, ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper")
}

fn wait_ready(ready: &std::path::Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(id) = std::fs::read_to_string(ready) {
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
#[ignore = "helper process of the PostgreSQL state tests; does nothing unless they spawn it"]
fn pg_state_helper_process() {
    let (Ok(_), Ok(url), Ok(ready)) = (
        std::env::var(HELPER_ENV),
        std::env::var(HELPER_URL_ENV),
        std::env::var(HELPER_READY_ENV),
    ) else {
        return;
    };
    let store = StateStore::open_or_create_postgres(&url).unwrap();
    let lock = store
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    let tmp = format!("{ready}.tmp");
    std::fs::write(&tmp, &lock.info().id).unwrap();
    std::fs::rename(&tmp, &ready).unwrap();
    // Held until killed (bounded in case nobody does).
    std::thread::sleep(Duration::from_secs(60));
    drop(lock);
}

#[test]
fn a_state_copies_between_backends_whole_and_never_over_another_lineage() {
    let pg = Postgres::shared();
    let (_dir, path, _) = sqlite_schema();
    let file = StateStore::open_or_create(&path)
        .unwrap()
        .for_command("apply");
    let key = StateKey::new("0123456789abcdef0123").unwrap();
    file.create_cluster("c").unwrap();
    file.commit("c", &host("10.0.0.2")).unwrap();
    file.set_applied_config("c", &json!({"b": 1, "a": [2]}))
        .unwrap();
    file.put_secret("c", "token", "s3cret", Some(&key)).unwrap();
    file.create_cluster("d").unwrap();

    let url = pg.url(&pg.new_database());
    let db = StateStore::open_or_create_postgres(&url).unwrap();
    let report = file.copy_to(&db).unwrap();
    assert_eq!(
        report
            .iter()
            .map(|c| (c.name.as_str(), c.serial, c.copied))
            .collect::<Vec<_>>(),
        [("c", 4, true), ("d", 1, true)]
    );
    for name in ["c", "d"] {
        assert_eq!(
            db.cluster(name).unwrap(),
            file.cluster(name).unwrap(),
            "{name}"
        );
        assert_eq!(
            db.history(name).unwrap(),
            file.history(name).unwrap(),
            "{name}"
        );
    }
    assert_eq!(db.digest_key().unwrap(), file.digest_key().unwrap());
    assert_eq!(
        db.get_secret("c", "token", Some(&key))
            .unwrap()
            .unwrap()
            .expose(),
        "s3cret"
    );
    // Again: nothing to copy, nothing changed.
    assert!(file.copy_to(&db).unwrap().iter().all(|c| !c.copied));
    // And back, into a new file.
    let back_dir = tempfile::tempdir().unwrap();
    let back = StateStore::open_or_create(&back_dir.path().join("state.db")).unwrap();
    db.copy_to(&back).unwrap();
    assert_eq!(back.cluster("c").unwrap(), file.cluster("c").unwrap());
    assert_eq!(back.history("c").unwrap(), file.history("c").unwrap());

    // Another cluster named "c" (another lineage) is never overwritten.
    let other_url = pg.url(&pg.new_database());
    let other = StateStore::open_or_create_postgres(&other_url).unwrap();
    let theirs = other.create_cluster("c").unwrap();
    let err = file.copy_to(&other).unwrap_err().to_string();
    assert!(err.contains("of another lineage"), "{err}");
    let still = other.cluster("c").unwrap().unwrap();
    assert_eq!((still.lineage, still.serial), (theirs.lineage, 1));
    assert!(other.cluster("d").unwrap().is_none(), "nothing was copied");

    // The same lineage moved on in the target: refused too.
    file.commit("d", &host("10.0.0.9")).unwrap();
    let err = file.copy_to(&db).unwrap_err().to_string();
    assert!(err.contains("serial 1, the source at serial 2"), "{err}");
}

#[test]
fn the_password_comes_from_pgpass_when_neither_the_url_nor_pgpassword_gives_it() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Postgres::shared();
    let database = pg.new_database();
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "*:*:{database}:{}:{}\n",
            crate::support::postgres::USER,
            crate::support::postgres::PASSWORD
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ready = home.path().join("ready");
    let url = format!("{}/{database}", pg.url_without_database(false));
    let mut child = spawn_helper_with(&url, &ready, |c| {
        c.env("HOME", home.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE");
    });
    let id = wait_ready(&ready, &mut child);
    let store = StateStore::open_existing_postgres(&pg.url(&database))
        .unwrap()
        .unwrap();
    assert_eq!(store.current_lock("c").unwrap().unwrap().id, id);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn state_migrate_copies_a_file_state_into_postgres_and_the_cli_reads_it_there() {
    let pg = Postgres::shared();
    let sb = crate::support::Sandbox::new();
    let file = StateStore::open_or_create(&sb.home().join("state.db")).unwrap();
    let created = file.create_cluster("c").unwrap();
    file.commit("c", &host("10.0.0.2")).unwrap();
    drop(file);

    let database = pg.new_database();
    let url = pg.url(&database);
    let out = sb
        .sealer()
        .args(["state", "migrate", "--to", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "copied cluster c (lineage {}, serial 2)",
            created.lineage
        )),
        "{err}"
    );
    assert!(!err.contains(crate::support::postgres::PASSWORD), "{err}");

    // The CLI reads it there, from --state or SEALER_STATE.
    let out = sb
        .sealer()
        .args(["state", "list", "--state", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("host.10.0.0.2"), "{text}");
    let out = sb
        .sealer()
        .args(["state", "history"])
        .env("SEALER_STATE", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 3, "header, create, commit: {text}");

    // Into a database holding another cluster "c": refused, nothing written.
    let other = pg.new_database();
    let theirs = StateStore::open_or_create_postgres(&pg.url(&other))
        .unwrap()
        .create_cluster("c")
        .unwrap();
    let out = sb
        .sealer()
        .args(["state", "migrate", "--to", &pg.url(&other)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("of another lineage"), "{err}");
    assert!(!err.contains(crate::support::postgres::PASSWORD), "{err}");
    let still = StateStore::open_existing_postgres(&pg.url(&other))
        .unwrap()
        .unwrap()
        .cluster("c")
        .unwrap()
        .unwrap();
    assert_eq!((still.lineage, still.serial), (theirs.lineage, 1));

    // An empty database is "no state", not an error, and is left empty.
    let empty = pg.new_database();
    let out = sb
        .sealer()
        .args(["state", "list", "--state", &pg.url(&empty)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("# no state at postgres://sealer@"),
        "{text}"
    );
    assert!(!text.contains(crate::support::postgres::PASSWORD), "{text}");
}

/// The executor records finished steps from async tasks of the CLI's multi-threaded
/// runtime; the PostgreSQL store must work there as the SQLite one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_from_async_tasks_of_a_multi_threaded_runtime() {
    let url = {
        let pg = Postgres::shared();
        pg.url(&pg.new_database())
    };
    let store = StateStore::open_or_create_postgres(&url).unwrap();
    let lock = store
        .lock("c", &LockHolder::this_process("apply"), Duration::ZERO)
        .unwrap();
    store.create_cluster("c").unwrap();
    let store = std::sync::Arc::new(store);
    let tasks: Vec<_> = (2..6)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.commit("c", &host(&format!("10.0.0.{i}"))).unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.cluster("c").unwrap().unwrap().serial, 5);
    assert!(store.running("c").unwrap().is_some());
    lock.release().unwrap();
}

/// Two machines (two sealer homes) on one PostgreSQL state: while the first applies, the
/// second's apply is refused naming the first as the holder; afterwards the second's plan
/// sees everything the first recorded (nothing to do), and nothing was kept locally.
#[test]
fn two_homes_share_a_postgres_state_and_apply_one_at_a_time() {
    use crate::apply::{Deploy, IMAGE};
    use crate::support::testbed::TestBed;
    let pg = Postgres::shared();
    let url = pg.url(&pg.new_database());
    let d = Deploy::new(TestBed::start(2));
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: slow}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: master\n  data: |\n    touch /tmp/slow-started; sleep 3\n";
    let file = d.clusterfile(&[0], &[1], plugin);
    let file = file.to_str().unwrap().to_string();

    // The second machine: a home of its own, the same image and host keys.
    let b = crate::support::Sandbox::new();
    crate::support::stdout_of(
        b.sealer()
            .args(["build", "-t", IMAGE])
            .arg(repo_root().join("examples/images/demo-cluster")),
    );
    std::fs::create_dir_all(b.path(".ssh")).unwrap();
    std::fs::copy(d.bed.known_hosts_path(), b.path(".ssh/known_hosts")).unwrap();
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let on_b = |args: &[&str]| {
        let mut cmd = d.bed.command(&binary);
        cmd.args(args)
            .env("SEALER_HOME", b.home())
            .env("HOME", b.path(""))
            .env("NO_COLOR", "1")
            .env("SEALER_STATE", &url);
        cmd.output().unwrap()
    };

    let mut first = d.bed.command(&binary);
    first
        .args(["apply", "-f", &file, "--auto-approve", "--state", &url])
        .env("SEALER_HOME", d.sb.home())
        .env("HOME", d.sb.path(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = first.spawn().unwrap();
    let start = Instant::now();
    while d.bed.ssh(0, "test -f /tmp/slow-started").status.code() != Some(0) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first apply never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = on_b(&["apply", "-f", &file, "--auto-approve"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("is locked by pid {}", first.id())),
        "{err}"
    );
    assert!(!err.contains(crate::support::postgres::PASSWORD), "{err}");

    assert!(first.wait().unwrap().success());
    let plan = on_b(&["plan", "-f", &file, "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "the second machine sees the first's writes: {}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(!b.home().join("state.db").exists());
    assert!(!d.sb.home().join("state.db").exists());
}

/// The database connection is lost mid-apply (the server ends the session): the apply fails
/// saying so, records nothing of the interrupted step, and the next apply, from a fresh
/// connection, resumes and finishes; a `kill -9` of an apply frees its lock for the next.
#[test]
fn a_lost_connection_mid_apply_fails_cleanly_and_the_next_apply_resumes() {
    use crate::apply::Deploy;
    use crate::support::testbed::TestBed;
    let pg = Postgres::shared();
    let database = pg.new_database();
    let url = pg.url(&database);
    let d = Deploy::new(TestBed::start(2));
    let plugin = "---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: slow}\nspec:\n  type: SHELL\n  action: pre-init-host\n  scope: master\n  data: |\n    touch /tmp/slow-started; sleep 3\n";
    let file = d.clusterfile(&[0], &[1], plugin);
    let file = file.to_str().unwrap().to_string();
    let binary = assert_cmd::cargo::cargo_bin("sealer");
    let spawn_apply = || {
        let mut cmd = d.bed.command(&binary);
        cmd.args(["apply", "-f", &file, "--auto-approve", "--state", &url])
            .env("SEALER_HOME", d.sb.home())
            .env("HOME", d.sb.path(""))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let wait_started = || {
        let start = Instant::now();
        while d.bed.ssh(0, "test -f /tmp/slow-started").status.code() != Some(0) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the apply never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d.bed.ssh_ok(0, "rm -f /tmp/slow-started");
    };

    // kill -9 while it runs: the lock goes with its session.
    let mut killed = spawn_apply();
    wait_started();
    killed.kill().unwrap();
    killed.wait().unwrap();

    // The connection lost while a step runs.
    let first = spawn_apply();
    wait_started();
    pg.psql(
        &database,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    );
    let out = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("connection to PostgreSQL failed"), "{err}");
    assert!(!err.contains(crate::support::postgres::PASSWORD), "{err}");

    // The next apply resumes (the killed and the cut holders' locks are free) and finishes.
    let next = d.sealer(&["apply", "-f", &file, "--auto-approve", "--state", &url]);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let plan = d.sealer(&["plan", "-f", &file, "--detailed-exitcode", "--state", &url]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}
