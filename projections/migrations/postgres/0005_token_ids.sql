-- Tokens are revoked by their id (`DELETE /auth/v2/oauth2/tokens/{id}`).
CREATE INDEX oauth2_access_tokens_v1_id ON oauth2_access_tokens_v1 (id);
CREATE INDEX oauth2_refresh_tokens_v1_id ON oauth2_refresh_tokens_v1 (id);
