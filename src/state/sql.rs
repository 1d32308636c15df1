//! What the store's queries need from a database, whichever it is: run a statement with
//! positional parameters (`?1`, `?2`, ...) and read rows of plain values, inside a
//! transaction the backend opened. The store writes its SQL once, in the subset SQLite and
//! PostgreSQL share (`INSERT ... ON CONFLICT`, `RETURNING`); what differs between them
//! (opening, schema checks, the clock, compaction, locks) stays in the backend's module.

use std::fmt;

/// A value crossing the boundary: SQLite's storage classes, which PostgreSQL's `bigint`,
/// `text` and `bytea` map onto one to one (state-schema/README.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Value {
        v.clone().map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// The parameters of one statement, in order: `vals![a, b]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => {
        &[$($crate::state::sql::Value::from($v)),*][..]
    };
}
pub(crate) use vals;

/// A row, its columns in the order the query selected them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Column(format!("column {i} is missing")))
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, DbError> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(mismatch(i, "an integer", other)),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, DbError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(mismatch(i, "text", other)),
        }
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub(crate) fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.get(i)? {
            Value::Blob(v) => Ok(v.clone()),
            other => Err(mismatch(i, "bytes", other)),
        }
    }

    /// A 0/1 flag column.
    pub(crate) fn flag(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }

    /// The column as whatever it holds (a key to write back unchanged).
    pub(crate) fn value(&self, i: usize) -> Result<Value, DbError> {
        self.get(i).cloned()
    }
}

fn mismatch(i: usize, wanted: &str, got: &Value) -> DbError {
    let got = match got {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    };
    DbError::Column(format!("column {i} holds {got} where {wanted} belongs"))
}

/// A failure of the database or of what it returned.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A value of the wrong type: the schema's checks make this a damaged database.
    Column(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError::Sqlite(e)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => e.fmt(f),
            DbError::Postgres(e) => e.fmt(f),
            DbError::Column(why) => f.write_str(why),
        }
    }
}

/// Statements inside one open transaction.
pub(crate) trait Query {
    /// Every row `sql` returns.
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// Runs `sql`; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError>;

    /// The database's clock: UTC now as RFC 3339 (`2026-11-25T09:00:00Z`), so that no clock
    /// code lives in sealer and every writer of a shared state uses the same clock.
    fn now(&self) -> Result<String, DbError>;

    /// The first row `sql` returns, if any.
    fn row(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl Query for rusqlite::Connection {
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
            (0..columns)
                .map(|i| {
                    Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                        rusqlite::types::Value::Null => Value::Null,
                        rusqlite::types::Value::Integer(v) => Value::Int(v),
                        // No column of the schema is REAL; one would be a foreign value.
                        rusqlite::types::Value::Real(v) => Value::Text(v.to_string()),
                        rusqlite::types::Value::Text(v) => Value::Text(v),
                        rusqlite::types::Value::Blob(v) => Value::Blob(v),
                    })
                })
                .collect::<rusqlite::Result<Vec<Value>>>()
                .map(Row)
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let changed = self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    fn now(&self) -> Result<String, DbError> {
        Ok(
            self.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')", [], |r| {
                r.get(0)
            })?,
        )
    }
}
