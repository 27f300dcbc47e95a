-- OAuth1 tokens still valid (neither the token nor its secret is kept here).
CREATE TABLE oauth1_tokens_v1 (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    application_id     TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX oauth1_tokens_v1_user ON oauth1_tokens_v1 (user_id);
CREATE INDEX oauth1_tokens_v1_application ON oauth1_tokens_v1 (application_id);
