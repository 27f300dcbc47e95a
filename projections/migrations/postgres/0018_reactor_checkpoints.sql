-- One row per reactor (scheduler): the position up to which it has reacted to every commit it
-- follows. A reactor that takes over resumes after it; reactions are idempotent, so a checkpoint
-- that lags (stored every moment, not every commit) only repeats some.
CREATE TABLE reactor_checkpoints (
    name       TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
