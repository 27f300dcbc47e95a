-- The nonces of OAuth 1.0a requests seen within their timestamp window, shared by every node, so
-- a signed request cannot be replayed on another node. `nonce_key` is the SHA-256 (hex) of
-- `<consumer key>:<nonce>`; a row is of no use after `expires_at` (Unix seconds) and is deleted by
-- the nodes from time to time. Not a read model: nothing in the log rebuilds it.
CREATE TABLE oauth1_nonces (
    nonce_key  TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth1_nonces_expiry ON oauth1_nonces (expires_at);
