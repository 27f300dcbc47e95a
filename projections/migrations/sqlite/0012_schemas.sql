-- Data-service schemas: root attributes as columns, configuration sections as JSON in their wire
-- form (camelCase), as GET /data/v1/ returns them.
CREATE TABLE schemas_v1 (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    properties          TEXT NOT NULL,
    statuses            TEXT NOT NULL,
    creation_transition TEXT NOT NULL,
    transitions         TEXT NOT NULL,
    indexes             TEXT NOT NULL,
    create_mode         TEXT NOT NULL,
    read_mode           TEXT NOT NULL,
    update_mode         TEXT NOT NULL,
    delete_mode         TEXT NOT NULL,
    group_sync_mode     TEXT NOT NULL,
    default_limit       BIGINT NOT NULL,
    maximum_limit       BIGINT NOT NULL,
    disabled            BOOLEAN NOT NULL,
    creation_timestamp  BIGINT NOT NULL,
    update_timestamp    BIGINT NOT NULL,
    position            BIGINT NOT NULL
);
CREATE INDEX schemas_v1_name ON schemas_v1 (name);
