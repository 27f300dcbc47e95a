-- Localizations: every key with its texts by language (JSON: {"EN": "...", "NL": "..."}).
CREATE TABLE localizations_v1 (
    key                TEXT PRIMARY KEY,
    text               JSONB NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
