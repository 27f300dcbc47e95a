-- Event subscriptions: the service (URL and version) sent the events of the listed types.
CREATE TABLE subscriptions_v1 (
    id                 TEXT PRIMARY KEY,
    service_name       TEXT NOT NULL,
    service_version    TEXT NOT NULL,
    event_types        TEXT NOT NULL,
    retriable          BOOLEAN NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
