-- The indexes of the data service's schemas: each row is made a database index of that schema's
-- documents (`d1_<schema id>_<index id>`, led by the schema id) by the documents projection.
CREATE TABLE document_indexes_v1 (
    id        TEXT PRIMARY KEY,
    schema_id TEXT NOT NULL,
    fields    TEXT NOT NULL,
    position  BIGINT NOT NULL
);
