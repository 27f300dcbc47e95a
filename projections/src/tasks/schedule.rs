//! `schedules_v1`: the task schedules, one row each while they exist, with their next slot.

use serde_json::Value as JsonValue;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, ScheduleEvent};
use vigil_domain::log::Filter;
use vigil_domain::tasks::schedule::Schedule;

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static SCHEDULES: Table = Table::new(
    "schedules_v1",
    &[
        ("id", Text),
        ("function_name", Text),
        ("interval_seconds", BigInt),
        ("data", Json),
        ("priority", BigInt),
        ("start_timestamp", BigInt),
        ("next_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&SCHEDULES];

pub struct Schedules;

impl Projection for Schedules {
    fn name(&self) -> &'static str {
        "schedules_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Schedule::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Schedule(event) = event else {
                continue;
            };
            match event {
                ScheduleEvent::Created(e) => changes.upsert(
                    &SCHEDULES,
                    position,
                    [
                        ("id", id.into()),
                        ("function_name", e.function_name.clone().into()),
                        (
                            "interval_seconds",
                            i64::try_from(e.interval_seconds).unwrap_or(i64::MAX).into(),
                        ),
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("priority", e.priority.into()),
                        ("start_timestamp", e.start_at.millis().into()),
                        ("next_timestamp", e.start_at.millis().into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                ScheduleEvent::Fired(e) => changes.update(
                    &SCHEDULES,
                    position,
                    [
                        ("id", id.into()),
                        ("next_timestamp", e.next.millis().into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                ScheduleEvent::Deleted(_) => {
                    changes.delete(&SCHEDULES, position, [("id", id.into())])?;
                }
            }
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A schedule as `GET /tasks/v1/schedules` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: String,
    pub function_name: String,
    pub interval_seconds: i64,
    pub data: Json,
    pub priority: i64,
    pub start_timestamp: i64,
    pub next_timestamp: i64,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const SCHEDULE_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("functionName", "function_name", FieldType::Text),
    Field::new("interval", "interval_seconds", FieldType::Integer),
    Field::new("priority", "priority", FieldType::Integer),
    Field::new("startTimestamp", "start_timestamp", FieldType::Timestamp),
    Field::new("nextTimestamp", "next_timestamp", FieldType::Timestamp),
    Field::new(
        "creationTimestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("updateTimestamp", "update_timestamp", FieldType::Timestamp),
];

const SCHEDULE_JSON: &[JsonField] = &[JsonField {
    path: "data",
    column: "data",
    nested: true,
    contained: false,
}];

/// A page of the schedules.
pub async fn schedules(store: &ReadStore, query: &Query) -> Result<Page<ScheduleRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, function_name, interval_seconds, data, priority, start_timestamp, \
                 next_timestamp, creation_timestamp, update_timestamp FROM schedules_v1",
        from: "FROM schedules_v1",
        fields: SCHEDULE_FIELDS,
        relations: &[],
        json: SCHEDULE_JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, ScheduleRow)
}

/// Every schedule's id and next slot, for the scheduler.
pub async fn next_slots(store: &ReadStore) -> Result<Vec<(String, i64)>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_as::<_, (String, i64)>("SELECT id, next_timestamp FROM schedules_v1")
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}
