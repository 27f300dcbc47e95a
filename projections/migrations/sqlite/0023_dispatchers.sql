-- Dispatchers: the event type each follows and its actions (JSON, as the API shows them).
CREATE TABLE dispatchers_v1 (
    id                 TEXT PRIMARY KEY,
    event_type         TEXT NOT NULL,
    name               TEXT,
    description        TEXT,
    tags               TEXT NOT NULL,
    actions            TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX dispatchers_v1_event_type ON dispatchers_v1 (event_type);
