-- Who has MFA enabled (a user without a row never enabled it), and each user's MFA methods. No
-- secret is kept here.
CREATE TABLE mfa_users_v1 (
    user_id          TEXT PRIMARY KEY,
    enabled          BOOLEAN NOT NULL,
    update_timestamp BIGINT NOT NULL,
    position         BIGINT NOT NULL
);
CREATE TABLE mfa_methods_v1 (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    type               TEXT NOT NULL,
    name               TEXT NOT NULL,
    tags               TEXT NOT NULL,
    verified           BOOLEAN NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX mfa_methods_v1_user ON mfa_methods_v1 (user_id);
