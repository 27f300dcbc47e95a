-- Secondary indexes dropped while `vigil rebuild` refills their tables, with the statements that
-- recreate them; rows are removed as each index is recreated, so a rebuild that is interrupted
-- leaves them here to be recreated at the next start.
CREATE TABLE projection_deferred_indexes (
    index_name TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    definition TEXT NOT NULL
);
