-- Pending activation and password-reset requests, one per user and purpose (no codes here).
CREATE TABLE verification_requests_v1 (
    user_id                       TEXT NOT NULL,
    purpose                       TEXT NOT NULL,
    id                            TEXT NOT NULL,
    request_id                    TEXT NOT NULL,
    mode                          TEXT NOT NULL,
    request_count                 BIGINT,
    last_request_timestamp        BIGINT NOT NULL,
    failed_attempts               BIGINT NOT NULL,
    last_failed_attempt_timestamp BIGINT,
    creation_timestamp            BIGINT NOT NULL,
    update_timestamp              BIGINT NOT NULL,
    position                      BIGINT NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE INDEX verification_requests_v1_id ON verification_requests_v1 (id);

-- When the code mailed for each pending request expires (never the code or its digest).
CREATE TABLE verification_codes_v1 (
    request_id       TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    expiry_timestamp BIGINT,
    position         BIGINT NOT NULL
);
CREATE INDEX verification_codes_v1_user ON verification_codes_v1 (user_id, purpose);
