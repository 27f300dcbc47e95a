-- Task schedules: what each runs, and its next slot.
CREATE TABLE schedules_v1 (
    id                 TEXT PRIMARY KEY,
    function_name      TEXT NOT NULL,
    interval_seconds   BIGINT NOT NULL,
    data               JSONB NOT NULL,
    priority           BIGINT NOT NULL,
    start_timestamp    BIGINT NOT NULL,
    next_timestamp     BIGINT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
