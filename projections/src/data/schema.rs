//! `schemas_v1`: the data service's schemas, one row each, their configuration sections as JSON.

use serde_json::Value as JsonValue;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::data::schema::Schema;
use vigil_domain::data::schema::SchemaRef;
use vigil_domain::event::{Event, SchemaEvent};
use vigil_domain::log::Filter;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static SCHEMAS: Table = Table::new(
    "schemas_v1",
    &[
        ("id", Text),
        ("name", Text),
        ("description", Text),
        ("properties", Json),
        ("statuses", Json),
        ("creation_transition", Json),
        ("transitions", Json),
        ("indexes", Json),
        ("create_mode", Json),
        ("read_mode", Json),
        ("update_mode", Json),
        ("delete_mode", Json),
        ("group_sync_mode", Text),
        ("default_limit", BigInt),
        ("maximum_limit", BigInt),
        ("disabled", Bool),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&SCHEMAS];

pub struct Schemas;

/// The column of each configuration key of a schema's wire form.
const COLUMNS: &[(&str, &str)] = &[
    ("properties", "properties"),
    ("statuses", "statuses"),
    ("creationTransition", "creation_transition"),
    ("transitions", "transitions"),
    ("indexes", "indexes"),
    ("createMode", "create_mode"),
    ("readMode", "read_mode"),
    ("updateMode", "update_mode"),
    ("deleteMode", "delete_mode"),
    ("groupSyncMode", "group_sync_mode"),
    ("defaultLimit", "default_limit"),
    ("maximumLimit", "maximum_limit"),
];

/// The cells for the configuration keys in `object` (part of a schema's wire form).
fn configuration_cells(object: &JsonValue) -> Vec<(&'static str, Value)> {
    COLUMNS
        .iter()
        .filter_map(|(key, column)| {
            let value = object.get(*key)?;
            Some((
                *column,
                match (*column, value) {
                    ("group_sync_mode", JsonValue::String(mode)) => Value::Text(mode.clone()),
                    ("default_limit" | "maximum_limit", limit) => {
                        Value::Int(limit.as_i64().unwrap_or_default())
                    }
                    (_, value) => Value::Json(value.clone()),
                },
            ))
        })
        .collect()
}

impl Projection for Schemas {
    fn name(&self) -> &'static str {
        "schemas_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Schema::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        let json = |rendered: Result<JsonValue, serde_json::Error>| {
            rendered.map_err(|error| {
                ProjectionError::Refused(format!("unwritable schema configuration: {error}"))
            })
        };
        for event in &recorded.commit.events {
            let Event::Schema(event) = event else {
                continue;
            };
            let mut cells: Vec<(&'static str, Value)> =
                vec![("id", id.into()), ("update_timestamp", at.into())];
            match event {
                SchemaEvent::Created(e) => {
                    cells.extend([
                        ("name", e.name.clone().into()),
                        ("description", e.description.clone().into()),
                        ("disabled", false.into()),
                        ("creation_timestamp", at.into()),
                    ]);
                    cells.extend(configuration_cells(&json(e.definition.json())?));
                    changes.upsert(&SCHEMAS, position, cells)?;
                    continue;
                }
                SchemaEvent::Deleted(_) => {
                    changes.delete(&SCHEMAS, position, [("id", id.into())])?;
                    continue;
                }
                SchemaEvent::Updated(e) => {
                    if let Some(name) = &e.name {
                        cells.push(("name", name.clone().into()));
                    }
                    if let Some(description) = &e.description {
                        cells.push(("description", description.clone().into()));
                    }
                    cells.extend(configuration_cells(&json(e.settings.json())?));
                }
                SchemaEvent::Disabled(_) => cells.push(("disabled", true.into())),
                SchemaEvent::Enabled(_) => cells.push(("disabled", false.into())),
                SchemaEvent::PropertyAdded(e)
                | SchemaEvent::PropertyUpdated(e)
                | SchemaEvent::PropertyRemoved(e) => {
                    cells.push(("properties", Value::Json(json(e.properties.json())?)));
                }
                SchemaEvent::StatusAdded(e)
                | SchemaEvent::StatusUpdated(e)
                | SchemaEvent::StatusRemoved(e) => {
                    cells.push(("statuses", Value::Json(json(e.statuses.json())?)));
                }
                SchemaEvent::CreationTransitionSet(e) => cells.push((
                    "creation_transition",
                    Value::Json(json(e.creation_transition.json())?),
                )),
                SchemaEvent::TransitionAdded(e)
                | SchemaEvent::TransitionUpdated(e)
                | SchemaEvent::TransitionRemoved(e) => {
                    cells.push(("transitions", Value::Json(json(e.transitions.json())?)));
                }
                SchemaEvent::IndexAdded(e) | SchemaEvent::IndexRemoved(e) => {
                    cells.push(("indexes", Value::Json(json(e.indexes.json())?)));
                }
            }
            changes.update(&SCHEMAS, position, cells)?;
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A schema as `GET /data/v1/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SchemaRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub properties: Json,
    pub statuses: Json,
    pub creation_transition: Json,
    pub transitions: Json,
    pub indexes: Json,
    pub create_mode: Json,
    pub read_mode: Json,
    pub update_mode: Json,
    pub delete_mode: Json,
    pub group_sync_mode: String,
    pub default_limit: i64,
    pub maximum_limit: i64,
    pub disabled: bool,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const SCHEMA_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("name", "name", FieldType::Text),
    Field::new("description", "description", FieldType::Text),
    Field::new("groupSyncMode", "group_sync_mode", FieldType::Text),
    Field::new("defaultLimit", "default_limit", FieldType::Integer),
    Field::new("maximumLimit", "maximum_limit", FieldType::Integer),
    Field::new("disabled", "disabled", FieldType::Bool),
    Field::new(
        "creationTimestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("updateTimestamp", "update_timestamp", FieldType::Timestamp),
];

/// The id of the schema `schema` names and the log
/// position of its last change, if the read model has it.
pub async fn locate(
    store: &ReadStore,
    schema: &SchemaRef,
) -> Result<Option<(String, i64)>, QueryError> {
    let (statement, key) = match schema {
        SchemaRef::Id(id) => (
            "SELECT id, position FROM schemas_v1 WHERE id = $1",
            id.to_string(),
        ),
        SchemaRef::Name(name) => (
            "SELECT id, position FROM schemas_v1 WHERE name = $1",
            name.clone(),
        ),
    };
    let row = crate::with_pool!(store, pool => {
        sqlx::query_as::<_, (String, i64)>(statement)
            .bind(&key)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

/// A page of the schemas; disabled ones only when `with_disabled`.
pub async fn schemas(
    store: &ReadStore,
    query: &Query,
    with_disabled: bool,
) -> Result<Page<SchemaRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, name, description, properties, statuses, creation_transition, \
                 transitions, indexes, create_mode, read_mode, update_mode, delete_mode, \
                 group_sync_mode, default_limit, maximum_limit, disabled, creation_timestamp, \
                 update_timestamp FROM schemas_v1",
        from: "FROM schemas_v1",
        fields: SCHEMA_FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: (!with_disabled).then(|| Sql {
            text: "disabled = FALSE".into(),
            binds: Vec::new(),
            ..Sql::default()
        }),
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, SchemaRow)
}
