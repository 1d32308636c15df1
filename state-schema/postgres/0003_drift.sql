-- 0003_drift (PostgreSQL): drift a refresh found, recorded on its resource; history rows
-- of refreshes. The twin of ../migrations/0003_drift.sql.
--
-- Released migrations are never edited: a change is a new numbered file (see ../README.md).

-- What `sealer apply --refresh-only` found different on a host, as JSON
-- `{"gone": bool, "findings": ["..."]}`; NULL when the host held what the row records.
ALTER TABLE resources ADD COLUMN drift text CHECK (drift IS NULL OR drift::jsonb IS NOT NULL);

-- `history.operation` gains `refresh`. PostgreSQL replaces a CHECK constraint in place
-- (SQLite has to copy the table).
ALTER TABLE history DROP CONSTRAINT history_operation_check,
    ADD CONSTRAINT history_operation_check
        CHECK (operation IN ('create', 'commit', 'taint', 'remove', 'config', 'secret', 'refresh'));
