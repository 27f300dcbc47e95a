//! `documents_v1`: every document of every schema, one row each, with its `data` as JSON; and the
//! document lists of `GET /data/v1/{schema}/documents`, which only ever hold what the caller may
//! read (the access rules are part of the SQL, so `page.total` counts readable documents only).

use serde_json::Value as JsonValue;
use vigil_domain::actor::Actor;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::data::document::{Document, DocumentEvent};
use vigil_domain::data::schema::Schema;
use vigil_domain::event::{Event, SchemaEvent};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::value::Timestamp;
use vigil_schemas::access::{AccessMode, Relation};
use vigil_schemas::index::{Index, IndexField, IndexOptions, IndexType};

use crate::json_sql::{Indexes, JsonField, Location, Terms, searched_term};
use crate::page::{Compiled, Limits, List, Page, QueryError};
use crate::rql::{Query, RqlError};
use crate::runner::{DerivedIndexes, Projection, ProjectionError};
use crate::sql::{Dialect, Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static DOCUMENTS: Table = Table::new(
    "documents_v1",
    &[
        ("id", Text),
        ("schema_id", Text),
        ("creator_id", Text),
        ("user_ids", Json),
        ("group_ids", Json),
        ("status", Text),
        ("data", Json),
        ("status_changed_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("transition_lock_timestamp", BigInt),
        ("lock_resumes_at", BigInt),
        ("comment_count", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static COMMENTS: Table = Table::new(
    "document_comments_v1",
    &[
        ("id", Text),
        ("schema_id", Text),
        ("document_id", Text),
        ("creator_id", Text),
        ("text", Text),
        ("commented_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

/// The indexes of the schemas, each made a database index of their documents (see
/// [`DerivedIndexes`]).
pub static INDEXES: Table = Table::new(
    "document_indexes_v1",
    &[
        ("id", Text),
        ("schema_id", Text),
        ("fields", Json),
        ("options", Json),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 3] = [&DOCUMENTS, &COMMENTS, &INDEXES];

pub struct Documents;

fn ids(ids: &[Id]) -> Value {
    Value::Json(id_array(ids))
}

fn id_array(ids: &[Id]) -> JsonValue {
    JsonValue::Array(
        ids.iter()
            .map(|id| JsonValue::String(id.to_string()))
            .collect(),
    )
}

impl Projection for Documents {
    fn name(&self) -> &'static str {
        "documents_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Document::KIND, Schema::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn derived_indexes(&self) -> Option<&'static DerivedIndexes> {
        Some(&SCHEMA_INDEXES)
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let event = match event {
                Event::Document(event) => event,
                // A deleted schema's documents go with it (their streams stay in the log).
                Event::Schema(SchemaEvent::Deleted(_)) => {
                    changes.delete_where(&DOCUMENTS, position, [("schema_id", id.into())])?;
                    changes.delete_where(&COMMENTS, position, [("schema_id", id.into())])?;
                    changes.delete_where(&INDEXES, position, [("schema_id", id.into())])?;
                    continue;
                }
                Event::Schema(SchemaEvent::IndexAdded(e)) => {
                    let index_id = e.id.to_string();
                    let added = e
                        .indexes
                        .0
                        .iter()
                        .find(|i| i.id == index_id)
                        .ok_or_else(|| {
                            ProjectionError::Refused(format!(
                                "index {index_id} is not in its schema"
                            ))
                        })?;
                    let fields = serde_json::to_value(&added.fields).map_err(|error| {
                        ProjectionError::Refused(format!("unwritable index fields: {error}"))
                    })?;
                    let options = serde_json::to_value(&added.options).map_err(|error| {
                        ProjectionError::Refused(format!("unwritable index options: {error}"))
                    })?;
                    changes.upsert(
                        &INDEXES,
                        position,
                        [
                            ("id", index_id.into()),
                            ("schema_id", id.into()),
                            ("fields", Value::Json(fields)),
                            ("options", Value::Json(options)),
                        ],
                    )?;
                    continue;
                }
                Event::Schema(SchemaEvent::IndexRemoved(e)) => {
                    changes.delete(&INDEXES, position, [("id", e.id.to_string().into())])?;
                    continue;
                }
                _ => continue,
            };
            let key = ("id", Value::from(id));
            match event {
                DocumentEvent::Created(e) => changes.upsert(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("schema_id", e.schema_id.to_string().into()),
                        ("creator_id", e.creator_id.map(|c| c.to_string()).into()),
                        ("user_ids", ids(&e.user_ids)),
                        ("group_ids", ids(&e.group_ids)),
                        ("status", e.status.clone().into()),
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("status_changed_timestamp", at.into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                        ("comment_count", 0.into()),
                    ],
                )?,
                DocumentEvent::Updated(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::Transitioned(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("status", e.to_status.clone().into()),
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("user_ids", ids(&e.user_ids)),
                        ("group_ids", ids(&e.group_ids)),
                        ("status_changed_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::UsersChanged(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("user_ids", ids(&e.ids)),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::GroupsChanged(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("group_ids", ids(&e.ids)),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::Deleted(_) => {
                    changes.delete(&DOCUMENTS, position, [key])?;
                    changes.delete_where(&COMMENTS, position, [("document_id", id.into())])?;
                }
                DocumentEvent::TaskRequested(_) => {}
                DocumentEvent::Locked(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("transition_lock_timestamp", e.since.millis().into()),
                        ("lock_resumes_at", e.resume_at.millis().into()),
                    ],
                )?,
                DocumentEvent::Resumed(e) => changes.update(
                    &DOCUMENTS,
                    position,
                    [
                        key,
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("user_ids", ids(&e.user_ids)),
                        ("group_ids", ids(&e.group_ids)),
                        ("transition_lock_timestamp", Value::Null),
                        ("lock_resumes_at", Value::Null),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::CommentAdded(e) => {
                    changes.upsert(
                        &COMMENTS,
                        position,
                        [
                            ("id", e.comment_id.to_string().into()),
                            ("schema_id", e.schema_id.to_string().into()),
                            ("document_id", id.into()),
                            ("creator_id", e.creator_id.map(|c| c.to_string()).into()),
                            ("text", e.text.get().clone().into()),
                            ("commented_timestamp", at.into()),
                            ("creation_timestamp", at.into()),
                            ("update_timestamp", at.into()),
                        ],
                    )?;
                    changes.update(
                        &DOCUMENTS,
                        position,
                        [key, ("comment_count", i64::from(e.comment_count).into())],
                    )?;
                }
                DocumentEvent::CommentUpdated(e) => changes.update(
                    &COMMENTS,
                    position,
                    [
                        ("id", e.comment_id.to_string().into()),
                        ("text", e.text.get().clone().into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                DocumentEvent::CommentRemoved(e) => {
                    changes.delete(
                        &COMMENTS,
                        position,
                        [("id", e.comment_id.to_string().into())],
                    )?;
                    changes.update(
                        &DOCUMENTS,
                        position,
                        [key, ("comment_count", i64::from(e.comment_count).into())],
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The database indexes of the schemas' indexes, named `d1_<schema id>_<index id>`.
static SCHEMA_INDEXES: DerivedIndexes = DerivedIndexes {
    source: &INDEXES,
    prefix: "d1_",
    wanted: |store| Box::pin(wanted_indexes(store)),
};

/// The database indexes each row of `document_indexes_v1` asks for: the B-tree lists use, and
/// for a unique index a unique one (see [`crate::data::document_unique`]).
async fn wanted_indexes(store: &ReadStore) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String, Json, Json)> = crate::with_pool!(store, pool => {
        sqlx::query_as("SELECT schema_id, id, fields, options FROM document_indexes_v1 ORDER BY id")
            .fetch_all(pool)
            .await?
    });
    let dialect = Dialect::from(store);
    let mut wanted = Vec::new();
    for (schema, id, fields, options) in rows {
        let (Ok(fields), Ok(options)) = (
            serde_json::from_value::<Vec<IndexField>>(fields.0),
            serde_json::from_value::<IndexOptions>(options.0),
        ) else {
            continue;
        };
        wanted.extend(index_statements(dialect, &schema, &id, &fields));
        let index = Index {
            id,
            name: String::new(),
            fields,
            options,
            system: false,
        };
        if let Ok(schema) = schema.parse::<Id>() {
            wanted.extend(crate::data::document_unique::unique_statement(
                dialect, schema, &index,
            ));
        }
    }
    Ok(wanted)
}

/// The names of the database indexes of a schema's index and the statements that create them:
/// one B-tree over the schema's documents whose columns are, per field, the typed terms of a `data.`
/// path (the ones lists filter and sort by, see [`Terms`]) or a document column, then the id
/// (lists order by it last). On Postgres the index is partial on the schema and built without
/// blocking writes; on SQLite the schema is its first column. `text` fields and the id lists
/// (`userIds`, `groupIds`) add no column; an index left without one makes no B-tree. On
/// Postgres the `text` fields on `data.<key>` make a second index, `…_t`: a GIN trigram index
/// of the lowered strings there, which answers `like` on them. Names and paths
/// are written into the statement only after validation: ids are hexadecimal, and paths letters,
/// digits, `_` and `-`.
///
/// On SQLite, whose statistics cannot tell that a path rarely holds an array, a second index
/// holds just the documents with an array (or object) at the leading path: so it sees that the
/// half of a comparison that looks into arrays is cheap (see `json_sql`).
fn index_statements(
    dialect: Dialect,
    schema_id: &str,
    index_id: &str,
    fields: &[IndexField],
) -> Vec<(String, String)> {
    let (Ok(schema), Ok(index)) = (schema_id.parse::<Id>(), index_id.parse::<Id>()) else {
        return Vec::new();
    };
    let name = format!("d1_{schema}_{index}");
    let table = DOCUMENTS.name;
    let mut statements = Vec::new();
    if let Some((columns, arrays)) = index_columns(dialect, fields) {
        match dialect {
            Dialect::Postgres => statements.push((
                name.clone(),
                format!(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{name}\" ON {table} ({columns}, id) \
                     WHERE schema_id = '{schema}'"
                ),
            )),
            Dialect::Sqlite => {
                statements.push((
                    name.clone(),
                    format!(
                        "CREATE INDEX IF NOT EXISTS \"{name}\" ON {table} (schema_id, {columns}, id)"
                    ),
                ));
                if let Some(rank) = arrays {
                    let name = format!("{name}_a");
                    statements.push((
                        name.clone(),
                        format!(
                            "CREATE INDEX IF NOT EXISTS \"{name}\" ON {table} (schema_id, id) WHERE {rank} = 4"
                        ),
                    ));
                }
            }
        }
    }
    // `text` fields: on Postgres a trigram index of the strings at each `data.<key>`, which
    // answers `like` there; SQLite has no index that can.
    let searched: Vec<String> = Index::searched(fields)
        .filter_map(|field| field.data_path())
        .filter_map(|path| path.first().map(|key| searched_term("data", key)))
        .map(|term| format!("({term}) gin_trgm_ops"))
        .collect();
    if dialect == Dialect::Postgres && !searched.is_empty() {
        let name = format!("{name}_t");
        statements.push((
            name.clone(),
            format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{name}\" ON {table} USING gin ({}) \
                 WHERE schema_id = '{schema}'",
                searched.join(", ")
            ),
        ));
    }
    statements
}

/// The columns of the index of `fields`, and the rank term of its leading field if that is a
/// `data.` path; `None` if no field makes a column.
fn index_columns(dialect: Dialect, fields: &[IndexField]) -> Option<(String, Option<String>)> {
    let mut columns = Vec::new();
    let mut arrays = None;
    for field in fields {
        let order = match field.kind {
            IndexType::Asc => "ASC",
            IndexType::Desc => "DESC",
            IndexType::Text => continue,
        };
        if let Some(names) = field.data_path() {
            let location = Location::new("data".to_owned(), names).ok()?;
            let mut sql = Sql::default();
            let Terms {
                rank,
                number,
                text,
                prefix,
            } = Terms::of(dialect, &location, &mut sql);
            if !sql.binds.is_empty() {
                return None;
            }
            if columns.is_empty() {
                arrays = Some(rank.clone());
            }
            // The string's prefix where Postgres indexes hold one (see `Terms::prefix`).
            let text = prefix.unwrap_or(text);
            columns.extend([rank, number, text].map(|term| format!("{term} {order}")));
        } else if let Some(column) = DOCUMENT_FIELDS
            .iter()
            .find(|f| f.path == field.name)
            .and_then(|f| f.column.strip_prefix("d."))
        {
            columns.push(format!("{column} {order}"));
        }
    }
    (!columns.is_empty()).then(|| (columns.join(", "), arrays))
}

type Json = sqlx::types::Json<JsonValue>;

/// A document as the data service lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub creator_id: Option<String>,
    pub user_ids: Json,
    pub group_ids: Json,
    pub status: String,
    pub data: Json,
    pub status_changed_timestamp: i64,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
    /// When the step that holds the document locked began (a `delay` paused it).
    pub transition_lock_timestamp: Option<i64>,
    pub comment_count: i64,
    /// The log position that last changed the document.
    pub position: i64,
}

impl DocumentRow {
    /// The row the documents projection makes of the commit at `position`, recorded `at`, that
    /// created `document` (all of whose events then carry that commit's time).
    pub fn created(id: Id, document: &Document, at: Timestamp, position: u64) -> Self {
        Self {
            id: id.to_string(),
            creator_id: document.creator_id.map(|c| c.to_string()),
            user_ids: sqlx::types::Json(id_array(&document.user_ids)),
            group_ids: sqlx::types::Json(id_array(&document.group_ids)),
            status: document.status.clone(),
            data: sqlx::types::Json(JsonValue::Object(document.data.clone())),
            status_changed_timestamp: at.millis(),
            creation_timestamp: at.millis(),
            update_timestamp: at.millis(),
            transition_lock_timestamp: document.lock.as_ref().map(|lock| lock.since.millis()),
            comment_count: 0,
            position: i64::try_from(position).unwrap_or(i64::MAX),
        }
    }
}

const DOCUMENT_FIELDS: &[Field] = &[
    Field::new("id", "d.id", FieldType::Text),
    Field::new("creatorId", "d.creator_id", FieldType::Text),
    Field::new("status", "d.status", FieldType::Text),
    Field::new(
        "statusChangedTimestamp",
        "d.status_changed_timestamp",
        FieldType::Timestamp,
    ),
    Field::new(
        "creationTimestamp",
        "d.creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new(
        "updateTimestamp",
        "d.update_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("commentCount", "d.comment_count", FieldType::Integer),
];

const DOCUMENT_JSON: &[JsonField] = &[
    JsonField {
        path: "data",
        column: "d.data",
        nested: true,
        contained: true,
    },
    JsonField {
        path: "userIds",
        column: "d.user_ids",
        nested: false,
        contained: false,
    },
    JsonField {
        path: "groupIds",
        column: "d.group_ids",
        nested: false,
        contained: false,
    },
];

/// Whether the JSON array of ids in `column` holds one of `ids`.
fn holds_any(dialect: Dialect, column: &str, ids: &[String], sql: &mut Sql) -> String {
    if ids.is_empty() {
        return "FALSE".into();
    }
    let list = sql.bind_all(ids.iter().map(|id| Value::Text(id.clone())));
    match dialect {
        Dialect::Postgres => format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text({column}) AS m(id) WHERE m.id IN ({list}))"
        ),
        Dialect::Sqlite => {
            format!("EXISTS (SELECT 1 FROM json_each({column}) AS m WHERE m.value IN ({list}))")
        }
    }
}

/// The documents of `schema_id` that `actor` may read under `read_mode` (or with
/// `VIEW_DOCUMENTS` for the schema, globally or through a group role of a document's group).
fn readable(
    dialect: Dialect,
    schema_id: &str,
    schema_name: &str,
    read_mode: &AccessMode,
    actor: &Actor,
) -> Sql {
    let mut sql = Sql::default();
    // The schema's id is written into the statement (it is hexadecimal once parsed), so that the
    // planner sees which schema's partial indexes apply.
    let schema = match schema_id.parse::<Id>() {
        Ok(id) => format!("'{id}'"),
        Err(_) => sql.bind(Value::Text(schema_id.to_owned())),
    };
    let permission = format!("VIEW_DOCUMENTS:{schema_name}");
    if actor.allows(&permission) || *read_mode == AccessMode::AllUsers {
        sql.text = format!("d.schema_id = {schema}");
        return sql;
    }
    let mut grants = Vec::new();
    let group_permission: Vec<String> = actor
        .staff_groups()
        .filter(|g| actor.allows_in(*g, &permission))
        .map(|g| g.to_string())
        .collect();
    grants.push(holds_any(
        dialect,
        "d.group_ids",
        &group_permission,
        &mut sql,
    ));
    if let AccessMode::Relational(relations) = read_mode {
        let me: Vec<String> = actor
            .record()
            .user_id
            .map(|u| u.to_string())
            .into_iter()
            .collect();
        for relation in relations {
            grants.push(match relation {
                Relation::Creator => match me.first() {
                    Some(me) => format!("d.creator_id = {}", sql.bind(Value::Text(me.clone()))),
                    None => "FALSE".into(),
                },
                Relation::LinkedUsers => holds_any(dialect, "d.user_ids", &me, &mut sql),
                Relation::LinkedGroupStaff => {
                    let staff: Vec<String> = actor.staff_groups().map(|g| g.to_string()).collect();
                    holds_any(dialect, "d.group_ids", &staff, &mut sql)
                }
                Relation::LinkedGroupPatients => {
                    let patient: Vec<String> =
                        actor.patient_groups().map(|g| g.to_string()).collect();
                    holds_any(dialect, "d.group_ids", &patient, &mut sql)
                }
            });
        }
    }
    sql.text = format!("d.schema_id = {schema} AND ({})", grants.join(" OR "));
    sql
}

/// The schema whose documents are listed, and its paging limits.
#[derive(Debug, Clone, Copy)]
pub struct ListedSchema<'a> {
    pub id: &'a str,
    /// The `data.` paths that lead an index of the schema.
    pub indexed: &'a [String],
    /// The `data.<key>` paths of the schema's `text` index fields.
    pub searched: &'a [String],
    pub name: &'a str,
    pub read_mode: &'a AccessMode,
    pub limits: Limits,
}

/// The list of documents, restricted to `visible`.
fn list<'a>(visible: Option<Sql>, indexed: Indexes<'a>, limits: Limits) -> List<'a> {
    List {
        select: "SELECT d.id, d.creator_id, d.user_ids, d.group_ids, d.status, d.data, \
                 d.status_changed_timestamp, d.creation_timestamp, d.update_timestamp, \
                 d.transition_lock_timestamp, d.comment_count, d.position \
                 FROM documents_v1 d",
        from: "FROM documents_v1 d",
        fields: DOCUMENT_FIELDS,
        relations: &[],
        json: DOCUMENT_JSON,
        indexed,
        tiebreak: "d.id",
        visible,
        limits,
    }
}

/// The statements of a page of the documents of a schema that `actor` may read (for `EXPLAIN`),
/// given the indexed paths at which some document of the schema holds an array or an object.
pub fn compile(
    store: &ReadStore,
    schema: ListedSchema<'_>,
    arrays: &[String],
    actor: &Actor,
    query: &Query,
) -> Result<Compiled, RqlError> {
    let dialect = Dialect::from(store);
    let visible = readable(dialect, schema.id, schema.name, schema.read_mode, actor);
    let rows = schema
        .id
        .parse::<Id>()
        .map(|id| format!("schema_id = '{id}'"));
    let indexed = match &rows {
        Ok(rows) => Indexes {
            paths: schema.indexed,
            arrays,
            searched: schema.searched,
            table: DOCUMENTS.name,
            alias: "d",
            key: "id",
            rows,
        },
        Err(_) => Indexes::NONE,
    };
    list(Some(visible), indexed, schema.limits).compile(store, query)
}

/// What probes found about where the documents of a schema hold arrays or objects at an indexed
/// path, so a list probes once rather than on every request.
#[derive(Default)]
pub struct ArrayProbes(std::sync::Mutex<std::collections::HashMap<(String, String), Probed>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probed {
    /// Some document held one. A list that allows for arrays is correct whatever the documents
    /// hold, so this is never probed again.
    Held,
    /// None did when the documents read model had applied the log up to this position.
    Absent(u64),
}

impl ArrayProbes {
    fn get(&self, schema: &str, path: &str) -> Option<Probed> {
        let probes = self.0.lock().ok()?;
        probes.get(&(schema.to_owned(), path.to_owned())).copied()
    }

    fn put(&self, schema: &str, path: &str, probed: Probed) {
        if let Ok(mut probes) = self.0.lock() {
            probes.insert((schema.to_owned(), path.to_owned()), probed);
        }
    }
}

/// The indexed paths of `schema` that `query` filters on at which some document of the schema
/// holds an array or an object: one probe of the index's leading term each, unless `probes`
/// knows the answer. `position` is how far the documents read model has applied the log: an
/// absence found at another position is probed again. A document written after the probe is as
/// if written after the list (the caller's own writes are in the read model before the probe).
pub async fn arrays_at(
    store: &ReadStore,
    schema: ListedSchema<'_>,
    query: &Query,
    probes: &ArrayProbes,
    position: u64,
) -> Result<Vec<String>, QueryError> {
    let Some(filter) = &query.filter else {
        return Ok(Vec::new());
    };
    let Ok(schema_id) = schema.id.parse::<Id>() else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for path in schema.indexed {
        if !filter.names(path) {
            continue;
        }
        match probes.get(schema.id, path) {
            Some(Probed::Held) => {
                found.push(path.clone());
                continue;
            }
            Some(Probed::Absent(at)) if at == position => continue,
            _ => {}
        }
        let Some(Ok(location)) = Location::of(DOCUMENT_JSON, path, Indexes::NONE) else {
            continue;
        };
        let mut sql = Sql::default();
        let rank = Terms::of(Dialect::from(store), &location, &mut sql).rank;
        let probe = format!(
            "SELECT EXISTS (SELECT 1 FROM documents_v1 d WHERE d.schema_id = '{schema_id}' AND {rank} = 4)"
        );
        let held: bool = crate::with_pool!(store, pool => {
            let mut query = sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(probe));
            for value in &sql.binds {
                query = crate::bind_value!(query, value);
            }
            query.fetch_one(pool).await?
        });
        if held {
            probes.put(schema.id, path, Probed::Held);
            found.push(path.clone());
        } else {
            probes.put(schema.id, path, Probed::Absent(position));
        }
    }
    Ok(found)
}

/// A page of the documents of a schema that `actor` may read.
pub async fn documents(
    store: &ReadStore,
    schema: ListedSchema<'_>,
    actor: &Actor,
    query: &Query,
    probes: &ArrayProbes,
    position: u64,
) -> Result<Page<DocumentRow>, QueryError> {
    let arrays = arrays_at(store, schema, query, probes, position).await?;
    let compiled = compile(store, schema, &arrays, actor, query)?;
    crate::fetch_page!(store, compiled, DocumentRow)
}

/// The document `id`, whoever may read it (for answering the write that made it).
pub async fn document(store: &ReadStore, id: &str) -> Result<Option<DocumentRow>, QueryError> {
    let query = crate::rql::parse(&format!("eq(id,{id})&skipCount()"))?;
    let compiled = list(None, Indexes::NONE, Limits::STANDARD).compile(store, &query)?;
    let page = crate::fetch_page!(store, compiled, DocumentRow)?;
    Ok(page.data.into_iter().next())
}

/// Which documents of schemas with a `groupSyncMode` to bring in line.
#[derive(Debug, Clone, Copy)]
pub enum SyncScope<'a> {
    /// Those a user created or is linked to (their patient enlistments changed).
    User(&'a str),
    /// Those of one schema (its mode changed).
    Schema(&'a str),
    /// All of them.
    All,
}

/// The documents (id, schema id) in `scope` whose schema keeps their groups in sync.
pub async fn group_synced(
    store: &ReadStore,
    scope: SyncScope<'_>,
) -> Result<Vec<(String, String)>, QueryError> {
    let mut sql = Sql::default();
    let condition = match scope {
        SyncScope::User(user) => {
            let me = sql.bind(Value::Text(user.to_owned()));
            let linked = holds_any(
                Dialect::from(store),
                "d.user_ids",
                &[user.to_owned()],
                &mut sql,
            );
            format!("(d.creator_id = {me} OR {linked})")
        }
        SyncScope::Schema(schema) => {
            format!("d.schema_id = {}", sql.bind(Value::Text(schema.to_owned())))
        }
        SyncScope::All => "TRUE".to_owned(),
    };
    sql.text = format!(
        "SELECT d.id, d.schema_id FROM documents_v1 d JOIN schemas_v1 s ON s.id = d.schema_id \
         WHERE s.group_sync_mode <> 'disabled' AND {condition} ORDER BY d.id"
    );
    let rows = crate::with_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql.text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_all(pool).await?
    });
    Ok(rows)
}

/// A comment on a document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommentRow {
    pub id: String,
    pub schema_id: String,
    pub document_id: String,
    pub creator_id: Option<String>,
    pub text: String,
    pub commented_timestamp: i64,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const COMMENT_FIELDS: &[Field] = &[
    Field::new("id", "c.id", FieldType::Text),
    Field::new("schemaId", "c.schema_id", FieldType::Text),
    Field::new("documentId", "c.document_id", FieldType::Text),
    Field::new("creatorId", "c.creator_id", FieldType::Text),
    Field::new("text", "c.text", FieldType::Text),
    Field::new(
        "commentedTimestamp",
        "c.commented_timestamp",
        FieldType::Timestamp,
    ),
    Field::new(
        "creationTimestamp",
        "c.creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new(
        "updateTimestamp",
        "c.update_timestamp",
        FieldType::Timestamp,
    ),
];

/// A page of the comments on document `document_id`.
pub async fn comments(
    store: &ReadStore,
    document_id: &str,
    query: &Query,
) -> Result<Page<CommentRow>, QueryError> {
    let mut visible = Sql::default();
    visible.text = format!(
        "c.document_id = {}",
        visible.bind(Value::Text(document_id.to_owned()))
    );
    let list = List {
        select: "SELECT c.id, c.schema_id, c.document_id, c.creator_id, c.text, \
                 c.commented_timestamp, c.creation_timestamp, c.update_timestamp \
                 FROM document_comments_v1 c",
        from: "FROM document_comments_v1 c",
        fields: COMMENT_FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "c.id",
        visible: Some(visible),
        limits: Limits::STANDARD,
    };
    let compiled = list.compile(store, query)?;
    crate::fetch_page!(store, compiled, CommentRow)
}

/// The comment `id`, if there is one.
pub async fn comment(store: &ReadStore, id: &str) -> Result<Option<CommentRow>, QueryError> {
    let mut sql = Sql::default();
    sql.text = format!(
        "SELECT c.id, c.schema_id, c.document_id, c.creator_id, c.text, c.commented_timestamp, \
         c.creation_timestamp, c.update_timestamp FROM document_comments_v1 c WHERE c.id = {}",
        sql.bind(Value::Text(id.to_owned()))
    );
    let row = crate::with_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, CommentRow>(sqlx::AssertSqlSafe(sql.text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_optional(pool).await?
    });
    Ok(row)
}

/// Every locked document: its id and when its paused step is due, earliest first.
pub async fn locked(store: &ReadStore) -> Result<Vec<(String, i64)>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT id, lock_resumes_at FROM documents_v1 WHERE lock_resumes_at IS NOT NULL \
             ORDER BY lock_resumes_at, id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}
