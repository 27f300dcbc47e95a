-- OAuth2 authorization codes not yet redeemed or revoked (the codes themselves are never kept).
CREATE TABLE oauth2_authorizations_v1 (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL,
    application_id        TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    state                 TEXT,
    code_challenge_method TEXT,
    code_challenge        TEXT,
    expiry_timestamp      BIGINT NOT NULL,
    creation_timestamp    BIGINT NOT NULL,
    update_timestamp      BIGINT NOT NULL,
    position              BIGINT NOT NULL
);
CREATE INDEX oauth2_authorizations_v1_user ON oauth2_authorizations_v1 (user_id);
