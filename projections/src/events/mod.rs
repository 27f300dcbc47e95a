//! `events_v1`: every event of the event service, custom or system, one row each.

pub mod subscriptions;

use serde_json::Value as JsonValue;
use vigil_domain::commit::Recorded;
use vigil_domain::events::{PUBLISHING_KINDS, published};
use vigil_domain::log::Filter;

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static EVENTS: Table = Table::new(
    "events_v1",
    &[
        ("id", Text),
        ("type", Text),
        ("content", Json),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&EVENTS];

pub struct Events;

impl Projection for Events {
    fn name(&self) -> &'static str {
        "events_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(PUBLISHING_KINDS)
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        for event in published(&recorded.commit) {
            changes.upsert(
                &EVENTS,
                recorded.position,
                [
                    ("id", event.id.to_string().into()),
                    ("type", event.event_type.into()),
                    ("content", Value::Json(JsonValue::Object(event.content))),
                    ("creation_timestamp", event.at.millis().into()),
                    ("update_timestamp", event.at.millis().into()),
                ],
            )?;
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// An event as `GET /events/v1/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub content: Json,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const EVENT_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("type", "type", FieldType::Text),
    Field::new(
        "creation_timestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("update_timestamp", "update_timestamp", FieldType::Timestamp),
];

const EVENT_JSON: &[JsonField] = &[JsonField {
    path: "content",
    column: "content",
    nested: true,
    contained: false,
}];

/// A page of the events.
pub async fn events(store: &ReadStore, query: &Query) -> Result<Page<EventRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, type, content, creation_timestamp, update_timestamp FROM events_v1",
        from: "FROM events_v1",
        fields: EVENT_FIELDS,
        relations: &[],
        json: EVENT_JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, EventRow)
}
