//! `dispatchers_v1`: the dispatchers, one row each while they exist, their actions as JSON.

use serde_json::{Value as JsonValue, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::dispatchers::{Action, ActionKind, Dispatcher, DispatcherAttributes};
use vigil_domain::event::{DispatcherEvent, Event};
use vigil_domain::log::Filter;

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static DISPATCHERS: Table = Table::new(
    "dispatchers_v1",
    &[
        ("id", Text),
        ("event_type", Text),
        ("name", Text),
        ("description", Text),
        ("tags", Json),
        ("actions", Json),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&DISPATCHERS];

pub struct Dispatchers;

/// An action as the dispatchers service shows it.
pub fn action_json(action: &Action) -> JsonValue {
    let mut json = match &action.kind {
        ActionKind::Task(task) => {
            let mut json = json!({
                "type": "task",
                "functionName": task.function_name,
                "data": task.data.0,
                "tags": task.tags,
            });
            if let (Some(at), Some(fields)) = (task.start_at, json.as_object_mut()) {
                fields.insert("startTimestamp".into(), at.millis().into());
            }
            json
        }
        ActionKind::Mail(mail) => {
            let mut json = json!({
                "type": "mail",
                "recipients": {"to": mail.to, "cc": mail.cc, "bcc": mail.bcc},
            });
            if let (Some(template), Some(fields)) = (&mail.template_id, json.as_object_mut()) {
                fields.insert("templateId".into(), template.clone().into());
            }
            json
        }
    };
    if let Some(fields) = json.as_object_mut() {
        fields.insert("id".into(), action.id.to_string().into());
        for (key, value) in [("name", &action.name), ("description", &action.description)] {
            if let Some(value) = value {
                fields.insert(key.into(), value.clone().into());
            }
        }
    }
    json
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::Text)
}

fn attribute_cells(attributes: &DispatcherAttributes) -> [(&'static str, Value); 4] {
    [
        ("event_type", attributes.event_type.clone().into()),
        ("name", text(&attributes.name)),
        ("description", text(&attributes.description)),
        ("tags", Value::Json(json!(attributes.tags))),
    ]
}

impl Projection for Dispatchers {
    fn name(&self) -> &'static str {
        "dispatchers_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Dispatcher::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Dispatcher(event) = event else {
                continue;
            };
            let mut cells: Vec<(&str, Value)> =
                vec![("id", id.into()), ("update_timestamp", at.into())];
            match event {
                DispatcherEvent::Created(e) => {
                    cells.extend(attribute_cells(&e.attributes));
                    cells.push(("actions", actions_cell(&e.actions)));
                    cells.push(("creation_timestamp", at.into()));
                    changes.upsert(&DISPATCHERS, position, cells)?;
                    continue;
                }
                DispatcherEvent::Deleted(_) => {
                    changes.delete(&DISPATCHERS, position, [("id", id.into())])?;
                    continue;
                }
                DispatcherEvent::Updated(attributes) => cells.extend(attribute_cells(attributes)),
                DispatcherEvent::ActionAdded(e)
                | DispatcherEvent::ActionUpdated(e)
                | DispatcherEvent::ActionRemoved(e) => {
                    cells.push(("actions", actions_cell(&e.actions)));
                }
            }
            changes.update(&DISPATCHERS, position, cells)?;
        }
        Ok(())
    }
}

fn actions_cell(actions: &[Action]) -> Value {
    Value::Json(JsonValue::Array(actions.iter().map(action_json).collect()))
}

type Json = sqlx::types::Json<JsonValue>;

/// A dispatcher as `GET /dispatchers/v1/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DispatcherRow {
    pub id: String,
    pub event_type: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Json,
    pub actions: Json,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const DISPATCHER_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("eventType", "event_type", FieldType::Text),
    Field::new("name", "name", FieldType::Text),
    Field::new("description", "description", FieldType::Text),
    Field::new(
        "creationTimestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("updateTimestamp", "update_timestamp", FieldType::Timestamp),
];

const DISPATCHER_JSON: &[JsonField] = &[
    JsonField {
        path: "tags",
        column: "tags",
        nested: false,
        contained: false,
    },
    JsonField {
        path: "actions",
        column: "actions",
        nested: true,
        contained: false,
    },
];

/// A page of the dispatchers.
pub async fn dispatchers(
    store: &ReadStore,
    query: &Query,
) -> Result<Page<DispatcherRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, event_type, name, description, tags, actions, creation_timestamp, \
                 update_timestamp FROM dispatchers_v1",
        from: "FROM dispatchers_v1",
        fields: DISPATCHER_FIELDS,
        relations: &[],
        json: DISPATCHER_JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, DispatcherRow)
}

/// Every dispatcher's id, for the scheduler.
pub async fn ids(store: &ReadStore) -> Result<Vec<String>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_scalar::<_, String>("SELECT id FROM dispatchers_v1")
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}
