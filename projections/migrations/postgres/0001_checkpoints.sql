-- One row per projection: how far into the log its read model is, and whether it has halted.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);
