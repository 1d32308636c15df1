-- 0001_initial: the first sealer state schema.
--
-- Released migrations are never edited: a change is a new numbered file (see ../README.md).
-- This file runs inside the transaction that also sets `PRAGMA user_version = 1`, so a
-- database either has all of it or none of it.

-- Marks the file as a sealer state database ("SEAL"), so that another program's SQLite
-- file is refused instead of being read as an empty state.
PRAGMA application_id = 1397047628;

-- One row per cluster. `serial` counts every write to the cluster's state (creation is the
-- first); `lineage` is a UUID v4 that tells this cluster's state from any other state that
-- happens to have the same name and serial. Saved plans record both.
CREATE TABLE clusters (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE CHECK (name <> ''),
    lineage        TEXT NOT NULL UNIQUE CHECK (length(lineage) = 36),
    serial         INTEGER NOT NULL CHECK (serial >= 1),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    -- The configuration the engine applied (opaque JSON, e.g. images installed by
    -- `sealer run`); NULL until first set.
    applied_config TEXT CHECK (applied_config IS NULL OR json_valid(applied_config))
) STRICT;

-- Every resource the state records, as `resource::Recorded`. JSON columns hold values that
-- are never queried by content. Sensitive attributes hold digests only, never clear text.
CREATE TABLE resources (
    cluster_id     INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    address        TEXT NOT NULL CHECK (address <> ''),
    resource_type  TEXT NOT NULL,
    host           TEXT,
    attributes     TEXT NOT NULL CHECK (json_valid(attributes)),   -- JSON object
    sensitive      TEXT NOT NULL CHECK (json_valid(sensitive)),    -- JSON array of attribute names
    status         TEXT NOT NULL CHECK (status IN ('ready', 'tainted')),
    depends_on     TEXT NOT NULL CHECK (json_valid(depends_on)),   -- JSON array of addresses
    -- The serial of the write that last changed this row.
    updated_serial INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, address)
) STRICT, WITHOUT ROWID;

-- The history of state versions: one row per write, a delta log (the address and the new
-- attributes of what changed), not a snapshot: a 5,000-host state is written many times.
CREATE TABLE history (
    cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    serial     INTEGER NOT NULL,
    at         TEXT NOT NULL,                 -- UTC, RFC 3339
    operation  TEXT NOT NULL CHECK (operation IN ('create', 'commit', 'taint', 'remove', 'config', 'secret')),
    -- The resource's address; the secret's name for `secret`; NULL for `create` and `config`.
    address    TEXT,
    -- `commit`: the new attributes (JSON object); `config`: the new applied configuration;
    -- NULL otherwise (a secret's value is never logged, not even encrypted).
    attributes TEXT CHECK (attributes IS NULL OR json_valid(attributes)),
    PRIMARY KEY (cluster_id, serial)
) STRICT, WITHOUT ROWID;

-- At most one lock per cluster name. Keyed by name, not by cluster row, because the first
-- apply of a new cluster locks it before the cluster exists in the state.
CREATE TABLE locks (
    cluster   TEXT PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    operation TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    host      TEXT NOT NULL,
    since     TEXT NOT NULL                   -- UTC, RFC 3339
) STRICT;

-- Secrets an operator chose to keep (only with SEALER_STATE_KEY): XChaCha20-Poly1305
-- ciphertext (with its tag) and the random nonce it was sealed with. Never clear text.
CREATE TABLE secrets (
    cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (name <> ''),
    nonce      BLOB NOT NULL CHECK (length(nonce) = 24),
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (cluster_id, name)
) STRICT, WITHOUT ROWID;
