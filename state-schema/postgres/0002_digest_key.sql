-- 0002_digest_key (PostgreSQL): digests of secrets keyed per state; the command of each
-- history row. The twin of ../migrations/0002_digest_key.sql.
--
-- Released migrations are never edited: a change is a new numbered file (see ../README.md).

-- The key sealer makes the digests of secrets, env and Config data with (HMAC-SHA256). One
-- row. Unlike SQLite's `randomblob`, stock PostgreSQL 15 has no CSPRNG function without
-- the pgcrypto extension, so sealer draws the 32 bytes from the operating system's CSPRNG
-- and inserts the row in the same transaction as this migration.
CREATE TABLE digest_key (
    id  bigint PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL CHECK (octet_length(key) = 32)
);

-- 1 once a cluster's recorded digests are keyed (see the SQLite twin).
ALTER TABLE clusters ADD COLUMN digests_keyed bigint NOT NULL DEFAULT 0
    CHECK (digests_keyed IN (0, 1));

-- The sealer command that made each write; NULL for writes of an older sealer.
ALTER TABLE history ADD COLUMN command text;
