-- The kind of each commit's stream (`user` of `user-<id>`), so that a subscription to a few kinds
-- reads their commits through an index instead of the whole log.
ALTER TABLE commits ADD COLUMN kind TEXT GENERATED ALWAYS AS (substr(stream, 1, instr(stream, '-') - 1)) VIRTUAL;
CREATE INDEX commits_kind ON commits (kind, position);
