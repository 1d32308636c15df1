-- 0003_drift: drift a refresh found, recorded on its resource; history rows of refreshes.
--
-- Released migrations are never edited: a change is a new numbered file (see ../README.md).

-- What `sealer apply --refresh-only` found different on a host, as JSON
-- `{"gone": bool, "findings": ["..."]}`; NULL when the host held what the row records. The
-- next plan repairs a drifted resource; recording it again (a finished step) clears it.
ALTER TABLE resources ADD COLUMN drift TEXT CHECK (drift IS NULL OR json_valid(drift));

-- `history.operation` gains `refresh` (an `apply --refresh-only` that recorded drift). A
-- CHECK constraint cannot be altered in place: the table is copied, rows and all.
CREATE TABLE history_v3 (
    cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    serial     INTEGER NOT NULL,
    at         TEXT NOT NULL,                 -- UTC, RFC 3339
    operation  TEXT NOT NULL CHECK (operation IN ('create', 'commit', 'taint', 'remove', 'config', 'secret', 'refresh')),
    -- The resource's address; the secret's name for `secret`; NULL for `create`, `config`
    -- and `refresh`.
    address    TEXT,
    -- `commit`: the new attributes (JSON object); `config`: the new applied configuration;
    -- `refresh`: each address whose drift changed, with its new drift (or null); NULL
    -- otherwise (a secret's value is never logged, not even encrypted).
    attributes TEXT CHECK (attributes IS NULL OR json_valid(attributes)),
    -- The sealer command that made the write; NULL for writes of an older sealer.
    command    TEXT,
    PRIMARY KEY (cluster_id, serial)
) STRICT, WITHOUT ROWID;
INSERT INTO history_v3 (cluster_id, serial, at, operation, address, attributes, command)
    SELECT cluster_id, serial, at, operation, address, attributes, command FROM history;
DROP TABLE history;
ALTER TABLE history_v3 RENAME TO history;
