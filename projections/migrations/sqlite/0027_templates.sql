-- Templates (v2): each template's name, description, input types and Handlebars outputs (JSON).
CREATE TABLE templates_v2 (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    description        TEXT,
    inputs             TEXT,
    outputs            TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX templates_v2_name ON templates_v2 (name);
