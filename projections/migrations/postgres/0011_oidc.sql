-- OpenID Connect providers (the client secret stays sealed in the log; only its hint is here).
CREATE TABLE oidc_providers_v1 (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    description            TEXT NOT NULL,
    client_id              TEXT NOT NULL,
    client_secret_hint     TEXT NOT NULL,
    issuer_id              TEXT NOT NULL,
    authorization_endpoint TEXT NOT NULL,
    token_endpoint         TEXT NOT NULL,
    userinfo_endpoint      TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    enabled                BOOLEAN NOT NULL,
    creation_timestamp     BIGINT NOT NULL,
    update_timestamp       BIGINT NOT NULL,
    position               BIGINT NOT NULL
);
CREATE INDEX oidc_providers_v1_name ON oidc_providers_v1 (name);

-- Which user logs in as which subject through which provider.
CREATE TABLE oidc_links_v1 (
    user_id     TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    position    BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider_id)
);
CREATE INDEX oidc_links_v1_provider ON oidc_links_v1 (provider_id);

-- Every login through a provider, successful or not.
CREATE TABLE oidc_login_attempts_v1 (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    provider_name       TEXT NOT NULL,
    provider_subject_id TEXT,
    user_id             TEXT,
    error               JSONB,
    creation_timestamp  BIGINT NOT NULL,
    position            BIGINT NOT NULL
);
CREATE INDEX oidc_login_attempts_v1_provider ON oidc_login_attempts_v1 (provider_id);
