-- 0002_digest_key: digests of secrets keyed per state; the command of each history row.
--
-- Released migrations are never edited: a change is a new numbered file (see ../README.md).

-- The key sealer makes the digests of secrets, env and Config data with (HMAC-SHA256), so a
-- digest in a plan file cannot be checked against a dictionary without this database. One
-- row, made with the database (SQLite's randomblob draws from its OS-seeded CSPRNG).
CREATE TABLE digest_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL CHECK (length(key) = 32)
) STRICT;
INSERT INTO digest_key (id, key) VALUES (1, randomblob(32));

-- 1 once a cluster's recorded digests are keyed: clusters made from now on, and older ones
-- after the first apply rewrites their plain SHA-256 digests (`plan::rekey`).
ALTER TABLE clusters ADD COLUMN digests_keyed INTEGER NOT NULL DEFAULT 0
    CHECK (digests_keyed IN (0, 1));

-- The sealer command that made each write (`apply`, `destroy`, `run`, `state rm`), for
-- `sealer state history`; NULL for writes of an older sealer.
ALTER TABLE history ADD COLUMN command TEXT;
