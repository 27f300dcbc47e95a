-- A workflow step paused by a `delay` action locks its document until it resumes.
ALTER TABLE documents_v1 ADD COLUMN transition_lock_timestamp BIGINT;
ALTER TABLE documents_v1 ADD COLUMN lock_resumes_at BIGINT;
ALTER TABLE documents_v1 ADD COLUMN comment_count BIGINT NOT NULL DEFAULT 0;
CREATE INDEX documents_v1_lock_resumes_at ON documents_v1 (lock_resumes_at)
    WHERE lock_resumes_at IS NOT NULL;

-- Comments on documents (deprecated in Extra Horizon, kept for its clients).
CREATE TABLE document_comments_v1 (
    id                  TEXT PRIMARY KEY,
    schema_id           TEXT NOT NULL,
    document_id         TEXT NOT NULL,
    creator_id          TEXT,
    text                TEXT NOT NULL,
    commented_timestamp BIGINT NOT NULL,
    creation_timestamp  BIGINT NOT NULL,
    update_timestamp    BIGINT NOT NULL,
    position            BIGINT NOT NULL
);
CREATE INDEX document_comments_v1_document ON document_comments_v1 (document_id, id);
CREATE INDEX document_comments_v1_schema ON document_comments_v1 (schema_id);
