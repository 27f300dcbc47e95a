-- API functions' requests, and the lines their runs logged.
CREATE TABLE api_requests_v1 (
    id             TEXT PRIMARY KEY,
    function_name  TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    user_id        TEXT,
    application_id TEXT,
    status_code    BIGINT NOT NULL,
    timestamp      BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    error          JSONB,
    position       BIGINT NOT NULL
);
CREATE INDEX api_requests_v1_function ON api_requests_v1 (function_name, timestamp);

CREATE TABLE api_request_logs_v1 (
    request_id TEXT NOT NULL,
    line       BIGINT NOT NULL,
    message    TEXT NOT NULL,
    timestamp  BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (request_id, line)
);
