-- The options of a schema's index (`unique`, `sparse`): a unique index is also made a unique
-- database index of the schema's documents (`d1_<schema id>_<index id>_u`). Rows written before
-- take their options from the schema's indexes in `schemas_v1`.
ALTER TABLE document_indexes_v1 ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
UPDATE document_indexes_v1 SET options = coalesce((
    SELECT json_extract(x.value, '$.options')
    FROM schemas_v1 s, json_each(s.indexes) x
    WHERE s.id = document_indexes_v1.schema_id
      AND json_extract(x.value, '$.id') = document_indexes_v1.id
      AND json_type(x.value, '$.options') = 'object'
), '{}');
