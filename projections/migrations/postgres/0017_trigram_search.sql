-- Trigram indexes (pg_trgm, a trusted extension shipped with Postgres) answer `like` on the
-- strings of a schema's `text` index fields: see `documents_v1` in docs/read-models.md.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
