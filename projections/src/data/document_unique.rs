//! Unique indexes of the data service's schemas in the read model: the unique database index made
//! of each (beside the B-tree lists use), and the lookup of a document holding a unique key.
//!
//! The command layer is what keeps two documents from holding the same key (it reserves each key
//! in the log, see `vigil_commands::data::document::UniqueIndexes`). The database index is a second
//! guard, built so that it never refuses what the command layer accepts: where the two could
//! disagree (`1` and `1.0`, a missing value and `null`), the index takes the values for
//! different.

use futures::future::BoxFuture;
use serde_json::Value as JsonValue;
use vigil_domain::data::unique_index::{UniqueKey, UniqueLookup};
use vigil_domain::id::Id;
use vigil_schemas::index::{Index, IndexField};

use crate::sql::{Dialect, Sql};
use crate::store::ReadStore;
use crate::table::Value;

/// The name of the unique database index of a schema's unique index and the statement that makes
/// it, if `index` is unique: partial on the schema (and, for a sparse index, on the documents that
/// hold one of its fields); a `data.` path is indexed by a digest of its JSON value on Postgres
/// (an entry of a B-tree holds at most about 2.7 kB), by its JSON type and value on SQLite.
pub(crate) fn unique_statement(
    dialect: Dialect,
    schema: Id,
    index: &Index,
) -> Option<(String, String)> {
    let fields = index.unique_fields()?;
    let index_id: Id = index.id.parse().ok()?;
    let name = format!("d1_{schema}_{index_id}_u");
    let mut columns = Vec::new();
    let mut present = Vec::new();
    for field in fields {
        let (field_columns, held) = column(dialect, field)?;
        columns.extend(field_columns);
        present.push(held);
    }
    let mut rows = format!("schema_id = '{schema}'");
    if index.is_sparse() {
        rows = format!("{rows} AND ({})", present.join(" OR "));
    }
    let columns = columns.join(", ");
    Some(match dialect {
        Dialect::Postgres => (
            name.clone(),
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"{name}\" ON documents_v1 \
                 ({columns}) WHERE {rows}"
            ),
        ),
        Dialect::Sqlite => (
            name.clone(),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS \"{name}\" ON documents_v1 \
                 (schema_id, {columns}) WHERE {rows}"
            ),
        ),
    })
}

/// The columns of a unique index's field, and when a document holds it (for sparse indexes).
/// Paths are written into statements only as validated names (letters, digits, `_`, `-`).
fn column(dialect: Dialect, field: &IndexField) -> Option<(Vec<String>, String)> {
    match (field.name.as_str(), field.data_path()) {
        ("creatorId", _) => Some((vec!["creator_id".into()], "creator_id IS NOT NULL".into())),
        ("status", _) => Some((vec!["status".into()], "TRUE".into())),
        (_, Some(names)) => Some(match dialect {
            Dialect::Postgres => {
                let path = format!("'{{{}}}'", names.join(","));
                (
                    vec![format!(
                        "md5(coalesce(data #> {path}, 'null'::jsonb)::text)"
                    )],
                    format!("data #> {path} IS NOT NULL"),
                )
            }
            Dialect::Sqlite => {
                let path = sqlite_path(&names);
                (
                    vec![
                        format!("coalesce(json_type(data, {path}), 'null')"),
                        format!("json_extract(data, {path})"),
                    ],
                    format!("json_type(data, {path}) IS NOT NULL"),
                )
            }
        }),
        _ => None,
    }
}

/// A SQLite JSON path literal of validated names: `'$."a"."b"'`.
fn sqlite_path(names: &[&str]) -> String {
    let keys: Vec<String> = names.iter().map(|name| format!(".\"{name}\"")).collect();
    format!("'${}'", keys.concat())
}

/// Whether two documents of `schema` in the read model hold the same values of `index`'s fields
/// (so that it cannot be made unique). `false` for an index that is not unique.
pub async fn duplicated(store: &ReadStore, schema: Id, index: &Index) -> Result<bool, sqlx::Error> {
    let Some(fields) = index.unique_fields() else {
        return Ok(false);
    };
    let dialect = Dialect::from(store);
    let mut keys = Vec::new();
    let mut present = Vec::new();
    for field in fields {
        let (Some(compared), Some((_, held))) = (compared(dialect, field), column(dialect, field))
        else {
            return Ok(false);
        };
        // Grouped by value as the lookup compares them.
        keys.extend(compared);
        present.push(held);
    }
    let sparse = if index.is_sparse() {
        format!(" AND ({})", present.join(" OR "))
    } else {
        String::new()
    };
    let statement = format!(
        "SELECT EXISTS (SELECT 1 FROM documents_v1 d WHERE schema_id = '{schema}'{sparse} \
         GROUP BY {} HAVING COUNT(*) > 1)",
        keys.join(", ")
    );
    let duplicated = crate::with_pool!(store, pool => {
        sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(statement)).fetch_one(pool).await?
    });
    Ok(duplicated)
}

/// Whether a document of `schema` other than `document` holds `key` in the read model.
pub async fn holding(
    store: &ReadStore,
    schema: Id,
    document: Id,
    key: &UniqueKey,
) -> Result<bool, sqlx::Error> {
    let dialect = Dialect::from(store);
    let mut sql = Sql::default();
    let mut tests = vec![
        format!(
            "d.schema_id = {}",
            sql.bind(Value::Text(schema.to_string()))
        ),
        format!("d.id <> {}", sql.bind(Value::Text(document.to_string()))),
    ];
    for (name, value) in key.fields.iter().zip(&key.values) {
        let field = IndexField {
            name: name.clone(),
            kind: vigil_schemas::index::IndexType::Asc,
        };
        let Some(test) = equal(dialect, &field, value, &mut sql) else {
            return Ok(false);
        };
        tests.push(test);
    }
    sql.text = format!(
        "SELECT EXISTS (SELECT 1 FROM documents_v1 d WHERE {})",
        tests.join(" AND ")
    );
    let held = crate::with_pool!(store, pool => {
        let mut query = sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sql.text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_one(pool).await?
    });
    Ok(held)
}

/// The SQL expressions of a document `d` that the values of a unique index's `field` are compared
/// by, a missing value being `null`: on Postgres JSON equality (`1` = `1.0`), on SQLite the JSON
/// type (any number a number) and the value.
fn compared(dialect: Dialect, field: &IndexField) -> Option<Vec<String>> {
    Some(match (field.name.as_str(), field.data_path()) {
        ("creatorId", _) => vec!["d.creator_id".to_owned()],
        ("status", _) => vec!["d.status".to_owned()],
        (_, Some(names)) => match dialect {
            Dialect::Postgres => vec![format!(
                "coalesce(d.data #> '{{{}}}', 'null'::jsonb)",
                names.join(",")
            )],
            Dialect::Sqlite => {
                let path = sqlite_path(&names);
                vec![
                    format!(
                        "(CASE coalesce(json_type(d.data, {path}), 'null') WHEN 'integer' THEN 'number' \
                         WHEN 'real' THEN 'number' ELSE coalesce(json_type(d.data, {path}), 'null') END)"
                    ),
                    format!("json_extract(d.data, {path})"),
                ]
            }
        },
        _ => return None,
    })
}

/// Whether a document's `field` holds `value` (a missing value holding `null`), as SQL.
fn equal(dialect: Dialect, field: &IndexField, value: &JsonValue, sql: &mut Sql) -> Option<String> {
    let text = |value: &JsonValue| value.as_str().map(|s| Value::Text(s.to_owned()));
    let compared = compared(dialect, field)?;
    Some(match (field.name.as_str(), compared.as_slice()) {
        ("creatorId", [column]) => match text(value) {
            Some(id) => format!("{column} = {}", sql.bind(id)),
            None => format!("{column} IS NULL"),
        },
        ("status", [column]) => format!("{column} = {}", sql.bind(text(value)?)),
        (_, [json]) => format!("{json} = {}", sql.bind(Value::Json(value.clone()))),
        (_, [kind, extracted]) => {
            let expected = match value {
                JsonValue::Null => "null",
                JsonValue::Bool(true) => "true",
                JsonValue::Bool(false) => "false",
                JsonValue::Number(_) => "number",
                JsonValue::String(_) => "text",
                JsonValue::Array(_) => "array",
                JsonValue::Object(_) => "object",
            };
            format!(
                "{kind} = '{expected}' AND {extracted} IS json_extract({}, '$')",
                sql.bind(Value::Text(value.to_string()))
            )
        }
        _ => return None,
    })
}

impl UniqueLookup for ReadStore {
    fn held_elsewhere<'a>(
        &'a self,
        schema: Id,
        document: Id,
        key: &'a UniqueKey,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            holding(self, schema, document, key).await.map_err(|error| {
                format!("the read model could not be asked about a unique index: {error}")
            })
        })
    }
}
