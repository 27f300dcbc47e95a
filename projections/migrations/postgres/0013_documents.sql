-- Data-service documents: one row per document, its data as JSON (the schema's properties).
CREATE TABLE documents_v1 (
    id                       TEXT PRIMARY KEY,
    schema_id                TEXT NOT NULL,
    creator_id               TEXT,
    user_ids                 JSONB NOT NULL,
    group_ids                JSONB NOT NULL,
    status                   TEXT NOT NULL,
    data                     JSONB NOT NULL,
    status_changed_timestamp BIGINT NOT NULL,
    creation_timestamp       BIGINT NOT NULL,
    update_timestamp         BIGINT NOT NULL,
    position                 BIGINT NOT NULL
);
CREATE INDEX documents_v1_schema ON documents_v1 (schema_id, id);
CREATE INDEX documents_v1_schema_created ON documents_v1 (schema_id, creation_timestamp);
