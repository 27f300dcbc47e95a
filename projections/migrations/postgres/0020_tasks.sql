-- The task service: functions (their settings; code and sealed environment stay in the log and
-- the blob store), tasks and the lines their runs logged.
CREATE TABLE functions_v1 (
    name               TEXT PRIMARY KEY,
    description        TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL,
    runtime            TEXT NOT NULL,
    entry_point        TEXT NOT NULL,
    time_limit         BIGINT NOT NULL,
    memory_limit       BIGINT NOT NULL,
    code_digest        TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);

CREATE TABLE tasks_v1 (
    id                         TEXT PRIMARY KEY,
    function_name              TEXT NOT NULL,
    status                     TEXT NOT NULL,
    status_changed_timestamp   BIGINT NOT NULL,
    data                       JSONB NOT NULL,
    tags                       JSONB NOT NULL,
    priority                   BIGINT NOT NULL,
    start_timestamp            BIGINT NOT NULL,
    created_by_user_id         TEXT,
    created_by_application_id  TEXT,
    retried_by_task_id         TEXT,
    retry_for_task_ids         JSONB NOT NULL,
    error                      JSONB,
    direct                     BOOLEAN NOT NULL,
    lease_until                BIGINT,
    creation_timestamp         BIGINT NOT NULL,
    update_timestamp           BIGINT NOT NULL,
    position                   BIGINT NOT NULL
);
CREATE INDEX tasks_v1_status ON tasks_v1 (status, start_timestamp);
CREATE INDEX tasks_v1_function ON tasks_v1 (function_name);
CREATE INDEX tasks_v1_creation ON tasks_v1 (creation_timestamp);

CREATE TABLE task_logs_v1 (
    task_id   TEXT NOT NULL,
    line      BIGINT NOT NULL,
    message   TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (task_id, line)
);
