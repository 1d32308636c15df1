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
