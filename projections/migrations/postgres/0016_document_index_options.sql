-- The options of a schema's index (`unique`, `sparse`): a unique index is also made a unique
-- database index of the schema's documents (`d1_<schema id>_<index id>_u`). Rows written before
-- take their options from the schema's indexes in `schemas_v1`.
ALTER TABLE document_indexes_v1 ADD COLUMN options JSONB NOT NULL DEFAULT '{}';
UPDATE document_indexes_v1 i SET options = o.options
FROM (
    SELECT s.id AS schema_id, x ->> 'id' AS index_id, x -> 'options' AS options
    FROM schemas_v1 s, jsonb_array_elements(s.indexes) x
    WHERE jsonb_typeof(x -> 'options') = 'object'
) o
WHERE o.schema_id = i.schema_id AND o.index_id = i.id;
