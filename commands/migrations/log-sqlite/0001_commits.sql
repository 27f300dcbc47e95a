-- The embedded log: one row per commit. `position` is the global order; SQLite serialises writers,
-- so a row id is never visible before a smaller one.
CREATE TABLE commits (
    position    INTEGER PRIMARY KEY,
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    commit_id   TEXT    NOT NULL UNIQUE,
    recorded_at INTEGER NOT NULL,
    body        BLOB    NOT NULL,
    UNIQUE (stream, version)
);
