-- Data-service schemas: root attributes as columns, configuration sections as JSON in their wire
-- form (camelCase), as GET /data/v1/ returns them.
CREATE TABLE schemas_v1 (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    properties          JSONB NOT NULL,
    statuses            JSONB NOT NULL,
    creation_transition JSONB NOT NULL,
    transitions         JSONB NOT NULL,
    indexes             JSONB NOT NULL,
    create_mode         JSONB NOT NULL,
    read_mode           JSONB NOT NULL,
    update_mode         JSONB NOT NULL,
    delete_mode         JSONB NOT NULL,
    group_sync_mode     TEXT NOT NULL,
    default_limit       BIGINT NOT NULL,
    maximum_limit       BIGINT NOT NULL,
    disabled            BOOLEAN NOT NULL,
    creation_timestamp  BIGINT NOT NULL,
    update_timestamp    BIGINT NOT NULL,
    position            BIGINT NOT NULL
);
CREATE INDEX schemas_v1_name ON schemas_v1 (name);
