-- The event service's events: custom ones and the system events derived from the log.
CREATE TABLE events_v1 (
    id                 TEXT PRIMARY KEY,
    type               TEXT NOT NULL,
    content            TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX events_v1_type ON events_v1 (type, creation_timestamp);
