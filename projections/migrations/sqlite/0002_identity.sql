-- Users, global roles, applications and OAuth2 tokens. Timestamps are epoch milliseconds (UTC);
-- `position` is the log position that last changed the row.
CREATE TABLE users_v1 (
    id                    TEXT PRIMARY KEY,
    email                 TEXT NOT NULL,
    first_name            TEXT NOT NULL,
    last_name             TEXT NOT NULL,
    phone_number          TEXT,
    language              TEXT NOT NULL,
    time_zone             TEXT NOT NULL,
    activation            BOOLEAN NOT NULL,
    profile_image         TEXT,
    failed_count          BIGINT NOT NULL,
    last_failed_timestamp BIGINT,
    creation_timestamp    BIGINT NOT NULL,
    update_timestamp      BIGINT NOT NULL,
    position              BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_v1_email ON users_v1 (email);

CREATE TABLE user_roles_v1 (
    user_id            TEXT NOT NULL,
    role_id            TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    position           BIGINT NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_v1_role ON user_roles_v1 (role_id);

CREATE TABLE roles_v1 (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);

CREATE TABLE role_permissions_v1 (
    role_id    TEXT NOT NULL,
    permission TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE applications_v1 (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    type               TEXT NOT NULL,
    confidential       BOOLEAN NOT NULL,
    redirect_uris      TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);

CREATE TABLE application_versions_v1 (
    id                 TEXT PRIMARY KEY,
    application_id     TEXT NOT NULL,
    name               TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    secret_digest      TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE UNIQUE INDEX application_versions_v1_client ON application_versions_v1 (client_id);

CREATE TABLE oauth2_access_tokens_v1 (
    session_id         TEXT PRIMARY KEY,
    id                 TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    application_id     TEXT NOT NULL,
    token_digest       TEXT NOT NULL,
    refresh_token_id   TEXT NOT NULL,
    expiry_timestamp   BIGINT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE UNIQUE INDEX oauth2_access_tokens_v1_digest ON oauth2_access_tokens_v1 (token_digest);
CREATE INDEX oauth2_access_tokens_v1_user ON oauth2_access_tokens_v1 (user_id);

CREATE TABLE oauth2_refresh_tokens_v1 (
    session_id         TEXT PRIMARY KEY,
    id                 TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    application_id     TEXT NOT NULL,
    token_digest       TEXT NOT NULL,
    expiry_timestamp   BIGINT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE UNIQUE INDEX oauth2_refresh_tokens_v1_digest ON oauth2_refresh_tokens_v1 (token_digest);
CREATE INDEX oauth2_refresh_tokens_v1_user ON oauth2_refresh_tokens_v1 (user_id);
