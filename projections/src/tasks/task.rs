//! `tasks_v1` and `task_logs_v1`: every task with its status, and the lines its run logged.

use serde_json::{Value as JsonValue, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, TaskEvent};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::tasks::task::{LogLine, RunError, Task, TaskStatus};

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static TASKS: Table = Table::new(
    "tasks_v1",
    &[
        ("id", Text),
        ("function_name", Text),
        ("status", Text),
        ("status_changed_timestamp", BigInt),
        ("data", Json),
        ("tags", Json),
        ("priority", BigInt),
        ("start_timestamp", BigInt),
        ("created_by_user_id", Text),
        ("created_by_application_id", Text),
        ("retried_by_task_id", Text),
        ("retry_for_task_ids", Json),
        ("error", Json),
        ("direct", Bool),
        ("lease_until", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static TASK_LOGS: Table = Table::new(
    "task_logs_v1",
    &[
        ("task_id", Text),
        ("line", BigInt),
        ("message", Text),
        ("timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

static TABLES: [&Table; 2] = [&TASKS, &TASK_LOGS];

pub struct Tasks;

fn id_cell(id: Option<Id>) -> Value {
    id.map_or(Value::Null, |id| id.to_string().into())
}

/// An error as the task service shows it.
pub fn error_json(error: &RunError) -> JsonValue {
    json!({"type": error.kind.wire_name(), "name": error.name, "message": error.message})
}

/// Where the lines runs logged are kept: a table keyed by what ran and the line's number.
pub struct RunLogs {
    table: &'static Table,
    /// The column naming what ran (a task, an API request).
    owner: &'static str,
    select: &'static str,
    from: &'static str,
}

/// The lines tasks' runs logged.
pub static TASK_RUN_LOGS: RunLogs = RunLogs {
    table: &TASK_LOGS,
    owner: "task_id",
    select: "SELECT message, timestamp FROM task_logs_v1",
    from: "FROM task_logs_v1",
};

impl RunLogs {
    pub(crate) const fn new(
        table: &'static Table,
        owner: &'static str,
        select: &'static str,
        from: &'static str,
    ) -> Self {
        Self {
            table,
            owner,
            select,
            from,
        }
    }

    /// Writes the lines the run of `id` logged.
    pub(crate) fn write(
        &self,
        changes: &mut Changes,
        id: &str,
        position: u64,
        logs: &[LogLine],
    ) -> Result<(), ProjectionError> {
        for (line, log) in logs.iter().enumerate() {
            changes.upsert(
                self.table,
                position,
                [
                    (self.owner, id.into()),
                    ("line", i64::try_from(line).unwrap_or(i64::MAX).into()),
                    ("message", log.message.clone().into()),
                    ("timestamp", log.at.millis().into()),
                ],
            )?;
        }
        Ok(())
    }

    /// A page of the lines the run of `id` logged, in the order it logged them unless sorted.
    pub async fn page(
        &self,
        store: &ReadStore,
        id: &str,
        query: &Query,
    ) -> Result<Page<LogRow>, QueryError> {
        let mut visible = Sql::default();
        visible.text = format!(
            "{} = {}",
            self.owner,
            visible.bind(Value::Text(id.to_owned()))
        );
        let compiled = List {
            select: self.select,
            from: self.from,
            fields: LOG_FIELDS,
            relations: &[],
            json: &[],
            indexed: Indexes::NONE,
            tiebreak: "line",
            visible: Some(visible),
            limits: Limits::STANDARD,
        }
        .compile(store, query)?;
        crate::fetch_page!(store, compiled, LogRow)
    }
}

impl Projection for Tasks {
    fn name(&self) -> &'static str {
        "tasks_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Task::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Task(event) = event else {
                continue;
            };
            let status = |status: TaskStatus| {
                [
                    ("status", Value::from(status.wire_name())),
                    ("status_changed_timestamp", at.into()),
                    ("update_timestamp", at.into()),
                ]
            };
            let mut cells: Vec<(&str, Value)> = vec![("id", id.into())];
            match event {
                TaskEvent::Created(e) => {
                    let retry_for: Vec<String> = e.retry_for.iter().map(Id::to_string).collect();
                    cells.extend(status(TaskStatus::New));
                    cells.extend([
                        ("function_name", e.function_name.clone().into()),
                        ("data", Value::Json(JsonValue::Object(e.data.0.clone()))),
                        ("tags", Value::Json(json!(e.tags))),
                        ("priority", e.priority.into()),
                        ("start_timestamp", e.start_at.millis().into()),
                        ("created_by_user_id", id_cell(e.created_by_user)),
                        (
                            "created_by_application_id",
                            id_cell(e.created_by_application),
                        ),
                        ("retried_by_task_id", Value::Null),
                        ("retry_for_task_ids", Value::Json(json!(retry_for))),
                        ("error", Value::Null),
                        ("direct", e.direct.into()),
                        ("lease_until", Value::Null),
                        ("creation_timestamp", at.into()),
                    ]);
                    changes.upsert(&TASKS, position, cells)?;
                    continue;
                }
                TaskEvent::Started(e) => {
                    cells.extend(status(TaskStatus::InProgress));
                    cells.push(("lease_until", e.lease_until.millis().into()));
                }
                TaskEvent::Completed(e) => {
                    cells.extend(status(TaskStatus::Complete));
                    cells.push(("lease_until", Value::Null));
                    TASK_RUN_LOGS.write(changes, id, position, &e.run.logs)?;
                }
                TaskEvent::Failed(e) => {
                    cells.extend(status(TaskStatus::Failed));
                    cells.push(("lease_until", Value::Null));
                    cells.push(("error", Value::Json(error_json(&e.error))));
                    TASK_RUN_LOGS.write(changes, id, position, &e.run.logs)?;
                }
                TaskEvent::Retried(e) => {
                    cells.extend(status(TaskStatus::Retried));
                    cells.push(("lease_until", Value::Null));
                    cells.push(("error", Value::Json(error_json(&e.error))));
                    cells.push(("retried_by_task_id", e.retried_by.to_string().into()));
                    TASK_RUN_LOGS.write(changes, id, position, &e.run.logs)?;
                }
                TaskEvent::Canceled(_) => cells.extend(status(TaskStatus::Canceled)),
            }
            changes.update(&TASKS, position, cells)?;
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A task as `GET /tasks/v1/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub function_name: String,
    pub status: String,
    pub status_changed_timestamp: i64,
    pub data: Json,
    pub tags: Json,
    pub priority: i64,
    pub start_timestamp: i64,
    pub created_by_user_id: Option<String>,
    pub created_by_application_id: Option<String>,
    pub retried_by_task_id: Option<String>,
    pub retry_for_task_ids: Json,
    pub error: Option<Json>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const TASK_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("functionName", "function_name", FieldType::Text),
    Field::new("status", "status", FieldType::Text),
    Field::new(
        "statusChangedTimestamp",
        "status_changed_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("priority", "priority", FieldType::Integer),
    Field::new("startTimestamp", "start_timestamp", FieldType::Timestamp),
    Field::new("createdByUserId", "created_by_user_id", FieldType::Text),
    Field::new(
        "createdByApplicationId",
        "created_by_application_id",
        FieldType::Text,
    ),
    Field::new("retriedByTaskId", "retried_by_task_id", FieldType::Text),
    Field::new(
        "creationTimestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("updateTimestamp", "update_timestamp", FieldType::Timestamp),
];

const TASK_JSON: &[JsonField] = &[
    JsonField {
        path: "data",
        column: "data",
        nested: true,
        contained: false,
    },
    JsonField {
        path: "tags",
        column: "tags",
        nested: false,
        contained: false,
    },
    JsonField {
        path: "retryForTaskIds",
        column: "retry_for_task_ids",
        nested: false,
        contained: false,
    },
    JsonField {
        path: "error",
        column: "error",
        nested: true,
        contained: false,
    },
];

/// A page of the tasks.
pub async fn tasks(store: &ReadStore, query: &Query) -> Result<Page<TaskRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, function_name, status, status_changed_timestamp, data, tags, \
                 priority, start_timestamp, created_by_user_id, created_by_application_id, \
                 retried_by_task_id, retry_for_task_ids, error, creation_timestamp, \
                 update_timestamp FROM tasks_v1",
        from: "FROM tasks_v1",
        fields: TASK_FIELDS,
        relations: &[],
        json: TASK_JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, TaskRow)
}

/// A task the queue has to see to: new (and queued) or in progress (with its lease's end).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingTask {
    pub id: String,
    pub priority: i64,
    pub start_timestamp: i64,
    pub lease_until: Option<i64>,
}

/// The queued and the running tasks.
pub async fn pending(store: &ReadStore) -> Result<Vec<PendingTask>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_as::<_, PendingTask>(
            "SELECT id, priority, start_timestamp, lease_until FROM tasks_v1 \
             WHERE (status = 'new' AND direct = FALSE) OR status = 'inProgress'",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// A line a task's run logged.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    pub message: String,
    pub timestamp: i64,
}

const LOG_FIELDS: &[Field] = &[
    Field::new("message", "message", FieldType::Text),
    Field::new("timestamp", "timestamp", FieldType::Timestamp),
];
