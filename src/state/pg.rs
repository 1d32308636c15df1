//! The PostgreSQL backend: connecting from a `postgres://` URL, the schema of
//! `state-schema/postgres/` checked and migrated like the SQLite one, transactions with the
//! same guarantees, and PostgreSQL errors turned into ours.
//!
//! The guarantees, and how PostgreSQL keeps them:
//! - reads see one version of the state: `REPEATABLE READ, READ ONLY` transactions;
//! - writes are serialized as SQLite's `BEGIN IMMEDIATE` serializes them: every write
//!   transaction first takes a transaction-scoped advisory lock ([`WRITE_LOCK_KEY`]), so
//!   what it read is not changed by another writer before it commits;
//! - a committed step is durable: the server's `synchronous_commit` (on by default);
//! - a lost connection fails the statement and the step, and the transaction is rolled back
//!   by the server: the state holds the step or nothing of it.

use super::pg_tls;
use super::schema::{APPLICATION_ID, Migration};
use super::sql::{DbError, Query, Row, Value};
use crate::{Error, Result};
use postgres::types::{IsNull, ToSql, Type};
use std::cell::RefCell;

/// The advisory lock key every write transaction takes ("SEALWRIT").
const WRITE_LOCK_KEY: i64 = 0x5345_414c_5752_4954;
/// The advisory lock key the schema migration takes ("SEALMIGR").
const MIGRATE_LOCK_KEY: i64 = 0x5345_414c_4d49_4752;

/// Every PostgreSQL migration, in order: the twins of `schema::MIGRATIONS`, same numbers
/// and names (a unit test checks both lists and the directories).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../state-schema/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_digest_key",
        sql: include_str!("../../state-schema/postgres/0002_digest_key.sql"),
    },
    Migration {
        version: 3,
        name: "0003_drift",
        sql: include_str!("../../state-schema/postgres/0003_drift.sql"),
    },
];

/// The migration after which sealer inserts the digest key (PostgreSQL 15 has no CSPRNG
/// function without pgcrypto).
const DIGEST_KEY_VERSION: u32 = 2;

/// Runs `f`, which blocks on PostgreSQL. The `postgres` client drives its connection on a
/// runtime of its own, which tokio refuses to start on a thread that runs async tasks (the
/// executor records finished steps from one): there, `f` runs with `block_in_place`, which
/// hands the thread's other tasks to other workers while it blocks. The CLI's runtime is
/// multi-threaded; anywhere else `f` just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A transaction, as the store's queries see it.
pub(crate) struct PgTx<'a>(pub(crate) RefCell<postgres::Transaction<'a>>);

impl Query for PgTx<'_> {
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let sql = placeholders(sql);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.0.borrow_mut().query(&sql, &params)?;
        rows.iter().map(row).collect()
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let sql = placeholders(sql);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.0.borrow_mut().execute(&sql, &params)?)
    }

    fn now(&self) -> Result<String, DbError> {
        let row = self.0.borrow_mut().query_one(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

/// `?N` (SQLite's positional parameters, in which the store's SQL is written) as `$N`. The
/// store's SQL has no `?` in literals or identifiers.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn row(r: &postgres::Row) -> Result<Row, DbError> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?
                    .map_or(Value::Null, Value::Int)
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?
                    .map_or(Value::Null, |v| Value::Int(i64::from(v)))
            } else if *ty == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)?
                    .map_or(Value::Null, |v| Value::Int(i64::from(v)))
            } else if *ty == Type::BYTEA {
                r.try_get::<_, Option<Vec<u8>>>(i)?
                    .map_or(Value::Null, Value::Blob)
            } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
                r.try_get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::Text)
            } else {
                return Err(DbError::Column(format!(
                    "column {i} has type {ty}, which no sealer state column has"
                )));
            })
        })
        .collect::<Result<Vec<Value>, DbError>>()
        .map(Row)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            // The parameter's type is the column's: bigint, or integer for `sealer_schema`.
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::VARCHAR,
            Type::BYTEA,
        ]
        .contains(ty)
    }

    postgres::types::to_sql_checked!();
}

/// A PostgreSQL error as ours: what was done, to which database, and why (the server's
/// message and SQLSTATE, or the connection's failure).
pub(crate) fn pg_error(location: &str, action: &str, e: &postgres::Error) -> Error {
    let why = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => describe(e),
    };
    // Class 08: connection exceptions; 57: the server is shutting down or ended the
    // session (57P01 when an administrator terminated it).
    let lost = match e.as_db_error() {
        Some(db) => ["08", "57"]
            .iter()
            .any(|class| db.code().code().starts_with(class)),
        None => true,
    };
    if e.is_closed() || lost {
        // Said in the message itself: callers that wrap it (a step's error) keep only that.
        Error::msg(format!(
            "state database {location}: {action}: the connection to PostgreSQL failed: {why}"
        ))
        .hint("check that the server runs and is reachable, then retry; a step whose write did not commit is not recorded and runs again")
    } else {
        let error = Error::msg(format!("state database {location}: {action}: {why}"));
        match e.as_db_error().and_then(|db| server_hint(db.code().code())) {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }
}

/// What to do about the server's refusals that have a likely cause, by SQLSTATE.
fn server_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "28P01" => {
            "check the password: in the URL, PGPASSWORD, or ~/.pgpass (mode 0600, a line HOST:PORT:DATABASE:USER:PASSWORD)"
        }
        "28000" => {
            "the server's pg_hba.conf admits no such connection (this user, database and address): ask its administrator to add a line for them"
        }
        "3D000" => {
            "create the database first (createdb -O USER DATABASE), or name an existing one in the URL"
        }
        "42501" => {
            "the user needs to create tables: make it the database's owner (ALTER DATABASE ... OWNER TO USER), or GRANT CREATE ON SCHEMA public TO it"
        }
        "53300" => {
            "the server has no connection slots left (max_connections): retry later, or raise it"
        }
        _ => return None,
    })
}

/// A client-side error with its cause: rust-postgres' own text is only the kind ("error
/// connecting to server"), the cause says what happened ("Connection refused").
pub(crate) fn describe(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether the database holds a sealer state (`sealer_schema` exists).
fn has_state(client: &mut postgres::Client) -> std::result::Result<bool, postgres::Error> {
    let row = client.query_one("SELECT to_regclass('sealer_schema') IS NOT NULL", &[])?;
    Ok(row.get(0))
}

/// The number of tables in the current schema.
fn table_count(client: &mut postgres::Client) -> std::result::Result<i64, postgres::Error> {
    client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .map(|r| r.get(0))
}

/// Checks the database and brings its schema up to date, or (when `create`) initializes an
/// empty one. `Ok(false)`: no sealer state in it, and `create` was not asked. A database
/// with other tables but no `sealer_schema` is not sealer's and is refused, never
/// initialized over; a newer schema is refused and left untouched.
pub(crate) fn check_and_migrate(
    client: &mut postgres::Client,
    location: &str,
    create: bool,
) -> Result<bool> {
    let err = |action: &str, e: postgres::Error| pg_error(location, action, &e);
    if !has_state(client).map_err(|e| err("cannot read", e))? {
        if table_count(client).map_err(|e| err("cannot read", e))? > 0 {
            return Err(not_sealers(location));
        }
        if !create {
            return Ok(false);
        }
    }
    let mut tx = client
        .transaction()
        .map_err(|e| err("cannot start migrating", e))?;
    // Serializes sealers opening one new database at once; each reads again under it.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY])
        .map_err(|e| err("cannot start migrating", e))?;
    let from: u32 = if tx
        .query_one("SELECT to_regclass('sealer_schema') IS NOT NULL", &[])
        .map_err(|e| err("cannot read", e))?
        .get(0)
    {
        let row = tx
            .query_opt("SELECT application_id, version FROM sealer_schema", &[])
            .map_err(|e| err("cannot read the schema version of", e))?
            .ok_or_else(|| not_sealers(location))?;
        let (application_id, version): (i64, i32) = (row.get(0), row.get(1));
        if application_id != APPLICATION_ID {
            return Err(not_sealers(location));
        }
        u32::try_from(version).map_err(|_| not_sealers(location))?
    } else {
        0
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if from > known {
        return Err(Error::msg(format!(
            "state database {location} has schema version {from}, newer than this sealer understands ({known})"
        ))
        .hint("upgrade sealer to the release that wrote this state; this one leaves the database untouched"));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(migration.sql)
            .map_err(|e| err(&format!("schema migration {} failed", migration.name), e))?;
        if migration.version == DIGEST_KEY_VERSION {
            let key = super::ids::random_bytes::<32>()?;
            tx.execute(
                "INSERT INTO digest_key (id, key) VALUES (1, $1)",
                &[&&key[..]],
            )
            .map_err(|e| err("cannot write the digest key to", e))?;
        }
        let version = i32::try_from(migration.version).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO sealer_schema (id, application_id, version) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&APPLICATION_ID, &version],
        )
        .map_err(|e| err("cannot record the schema version in", e))?;
    }
    tx.commit()
        .map_err(|e| err("cannot commit the schema migration of", e))?;
    Ok(true)
}

fn not_sealers(location: &str) -> Error {
    Error::msg(format!(
        "PostgreSQL database {location} holds tables but no sealer state"
    ))
    .hint("give sealer a database of its own (createdb sealer_state); it leaves this one untouched")
}

/// Starts a read transaction: one consistent version of the state.
pub(crate) fn read_tx(
    client: &mut postgres::Client,
) -> std::result::Result<postgres::Transaction<'_>, DbError> {
    Ok(client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

/// Starts a write transaction, serialized with every other writer of the state.
pub(crate) fn write_tx(
    client: &mut postgres::Client,
) -> std::result::Result<postgres::Transaction<'_>, DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
    Ok(tx)
}

/// Connects to the database `url` names (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
/// with `?host=/socket/dir`). Without a password in the URL, `PGPASSWORD` gives it. TLS as
/// libpq does it (`sslmode` and its files, [`super::pg_tls`]).
/// Returns the client and the URL without its password, which is how errors name it.
pub(crate) fn connect(url: &str) -> Result<(postgres::Client, String)> {
    let location = redact(url);
    let (plain_url, ssl) = pg_tls::split_url(url);
    let mut config: postgres::Config = plain_url.parse().map_err(|e: postgres::Error| {
        let why = describe(&e);
        let error = Error::msg(format!("--state {location}: not a PostgreSQL URL: {why}"));
        if why.contains("unknown option") {
            // libpq's sslpassword, sslcrl, gssencmode...: said, not ignored.
            error.hint("sealer takes sslmode, sslrootcert, sslcert and sslkey of libpq's TLS parameters, and rust-postgres' connection parameters (connect_timeout, application_name, options, host, port, ...); remove this one")
        } else {
            error.hint("write it as postgres://USER@HOST/DATABASE")
        }
    })?;
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        } else if let Some(password) = pgpass_password(&config) {
            config.password(password);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let unix_only = pg_tls::all_unix(&config);
    let settings =
        pg_tls::resolve_here(&ssl, unix_only).map_err(|e| pg_tls::settings_error(&location, e))?;
    let attempts = pg_tls::attempts(settings.mode, unix_only);
    // Files are read only when TLS may be used.
    let connector = if attempts
        .iter()
        .any(|a| a.mode() != postgres::config::SslMode::Disable)
    {
        let tls =
            pg_tls::client_config(&settings).map_err(|e| pg_tls::settings_error(&location, e))?;
        Some(pg_tls::Connector::new(tls))
    } else {
        None
    };
    let mut failures = Vec::new();
    for attempt in attempts {
        config.ssl_mode(attempt.mode());
        let result = match &connector {
            Some(connector) => config.connect(connector.clone()),
            None => config.connect(postgres::NoTls),
        };
        let e = match result {
            Ok(client) => return Ok((client, location)),
            Err(e) => e,
        };
        let began = connector
            .as_ref()
            .is_some_and(pg_tls::Connector::take_began);
        let retry = attempt.retry(&e, began);
        let error = pg_tls::tls_error(&location, &settings, &e)
            .unwrap_or_else(|| pg_error(&location, "cannot connect", &e));
        let mut diagnostics = error.diagnostics().to_vec();
        if !failures.is_empty() || retry {
            // libpq's `allow` and `prefer` say how each attempt failed.
            let how = if began { "over TLS" } else { "without TLS" };
            for d in &mut diagnostics {
                d.message =
                    d.message
                        .replacen(": cannot connect", &format!(": cannot connect ({how})"), 1);
            }
        }
        failures.extend(diagnostics);
        if !retry {
            break;
        }
    }
    Err(Error::many(failures))
}

/// `url` without the password it may carry, in its user info or as a `password=` query
/// parameter (or libpq's `sslpassword=`, which sealer does not take but must not show).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut out = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{tail}"),
    };
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| {
                let p = p.to_ascii_lowercase();
                !p.starts_with("password=") && !p.starts_with("sslpassword=")
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// The most a password file may hold; anything longer is not one.
const PGPASS_MAX: u64 = 1 << 20;

/// The password `~/.pgpass` (or `$PGPASSFILE`) gives for this connection, as libpq reads
/// it: the first line `HOST:PORT:DATABASE:USER:PASSWORD` whose fields match (`*` matches
/// anything; `\:` and `\\` are a literal `:` and `\`). Like libpq, a file that others can
/// read is ignored (a warning would need the CLI; the connection then fails without a
/// password, naming the server's complaint).
fn pgpass_password(config: &postgres::Config) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let file = std::fs::File::open(&path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let mut text = String::new();
    file.take(PGPASS_MAX).read_to_string(&mut text).ok()?;
    let host = match config.get_hosts().first()? {
        postgres::config::Host::Tcp(name) => name.clone(),
        postgres::config::Host::Unix(dir) => dir.to_string_lossy().into_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?;
    let database = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, [&host, &port, database, user])
}

/// The password of the first line of a password file matching `wanted` (host, port,
/// database, user).
pub(crate) fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [host, port, database, user, password] = fields.as_slice() else {
                return None;
            };
            [host, port, database, user]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field.as_str() == "*" || field.as_str() == want)
                .then(|| password.clone())
        })
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            // The password is the rest of the line, colons and all.
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    fields
}
