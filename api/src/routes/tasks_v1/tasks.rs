//! Tasks: `/tasks/v1/` (list, create), `/tasks/v1/{taskId}/cancel` and `/tasks/v1/{taskId}/logs`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::json::JsonOf;
use vigil_domain::tasks::task::{Task, TaskCommand, TaskCreated, TaskStatus};
use vigil_domain::value::Timestamp;
use vigil_projections::tasks::task::{self as model, TaskRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::{execute_on, iso_time, rendered_page};
use crate::state::{AppState, TasksService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{task_id}/cancel", post(cancel))
        .route("/{task_id}/logs", get(logs))
}

/// A task as the task service returns it.
pub fn task_json(row: &TaskRow) -> Value {
    let mut json = json!({
        "id": row.id,
        "functionName": row.function_name,
        "status": row.status,
        "statusChangedTimestamp": iso_time(row.status_changed_timestamp),
        "data": row.data.0,
        "tags": row.tags.0,
        "priority": row.priority,
        "startTimestamp": iso_time(row.start_timestamp),
        "creationTimestamp": iso_time(row.creation_timestamp),
        "updateTimestamp": iso_time(row.update_timestamp),
    });
    if let Some(fields) = json.as_object_mut() {
        let optional = [
            (
                "createdByUserId",
                row.created_by_user_id.clone().map(Value::from),
            ),
            (
                "createdByApplicationId",
                row.created_by_application_id.clone().map(Value::from),
            ),
            (
                "retriedByTaskId",
                row.retried_by_task_id.clone().map(Value::from),
            ),
            ("error", row.error.as_ref().map(|error| error.0.clone())),
            (
                "retryForTaskIds",
                Some(row.retry_for_task_ids.0.clone())
                    .filter(|ids| ids.as_array().is_some_and(|a| !a.is_empty())),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields.insert(key.into(), value);
            }
        }
    }
    json
}

/// The task `id` as listed.
pub async fn listed(state: &TasksService, id: Id) -> Result<TaskRow, ApiError> {
    let query = vigil_projections::rql::parse(&format!("eq(id,{id})"))?;
    model::tasks(&state.store, &query)
        .await?
        .data
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No task has this id"))
}

/// `GET /tasks/v1/?<rql>`.
async fn list(
    State(state): State<TasksService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TASKS")?;
    let page = model::tasks(&state.store, &query).await?;
    Ok(rendered_page(page, &query, task_json))
}

/// A time a request gives: epoch milliseconds or an ISO 8601 date.
pub fn timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::Number(n) => n.as_i64().map(Timestamp),
        Value::String(text) => vigil_projections::rql::parse_date(text).map(Timestamp),
        _ => None,
    }
}

/// `POST /tasks/v1/` `{functionName, data?, tags?, priority?, startTimestamp?}`: a task, queued
/// to run at its start time (now if none), with the function's default priority unless given.
async fn create(
    State(state): State<TasksService>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_TASKS")?;
    let mut fields = body.read()?;
    let format = |message: &str| ApiError::new(ExhCode::FieldFormat, message.to_owned());
    let function_name = match fields.remove("functionName") {
        Some(Value::String(name)) => name,
        None | Some(Value::Null) => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "A task needs a functionName",
            ));
        }
        Some(_) => return Err(format("`functionName` is a string")),
    };
    let data = match fields.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(format("`data` is an object")),
    };
    let tags = match fields.remove("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .into_iter()
            .map(|tag| match tag {
                Value::String(tag) => Ok(tag),
                _ => Err(format("`tags` lists strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format("`tags` is a list of strings")),
    };
    let now = vigil_commands::ids::now();
    let start_at = match fields.remove("startTimestamp") {
        None | Some(Value::Null) => now,
        Some(value) => timestamp(&value).ok_or_else(|| format("`startTimestamp` is a date"))?,
    };
    let priority = match fields.remove("priority") {
        None | Some(Value::Null) => {
            vigil_scheduler::tasks::default_priority(&state.bus, &function_name).await?
        }
        Some(value) => value
            .as_i64()
            .ok_or_else(|| format("`priority` is a whole number"))?,
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format(&format!("`{unknown}` is not a task field")));
    }
    let id = state.ids.next();
    let task = TaskCreated {
        function_name,
        data: JsonOf(data),
        tags,
        priority,
        start_at,
        created_by_user: Some(caller.user_id),
        created_by_application: caller.application_id,
        retry_for: Vec::new(),
        direct: false,
    };
    let command = TaskCommand::Create {
        task: task.clone(),
        direct: None,
    };
    let outcome = state
        .bus
        .execute_new::<Task>(
            &StreamId::of(Task::KIND, id),
            &command,
            &caller.meta(),
            None,
        )
        .await?;
    state.settle(outcome.position).await?;
    // As created: by now the queue may have run it.
    let at = outcome.recorded_at.unwrap_or_else(vigil_commands::ids::now);
    Ok(Json(vigil_scheduler::tasks::task_json(
        id,
        &task,
        TaskStatus::New,
        at,
    )))
}

/// `POST /tasks/v1/{taskId}/cancel`: only a new task.
async fn cancel(
    State(state): State<TasksService>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CANCEL_TASKS")?;
    execute_on::<Task>(&state, &caller, &task_id, TaskCommand::Cancel).await
}

/// `GET /tasks/v1/{taskId}/logs?<rql>`: the lines its run logged.
async fn logs(
    State(state): State<TasksService>,
    caller: Caller,
    Path(task_id): Path<String>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TASK_LOGS")?;
    let id = parse_id(&task_id)?;
    let (task, _) = state
        .bus
        .load::<Task>(&StreamId::of(Task::KIND, id))
        .await?;
    match task.status {
        None => {
            return Err(ApiError::new(
                ExhCode::ResourceUnknown,
                "No task has this id",
            ));
        }
        Some(status @ (TaskStatus::New | TaskStatus::InProgress)) => {
            return Err(ApiError::new(
                ExhCode::IllegalState,
                format!("The task is {}: it has not run yet", status.wire_name()),
            ));
        }
        Some(_) => {}
    }
    let page = model::TASK_RUN_LOGS
        .page(&state.store, &task_id, &query)
        .await?;
    if page.data.is_empty() && query.filter.is_none() {
        return Err(ApiError::new(
            ExhCode::NoTaskLogsFound,
            "The task's run logged nothing",
        ));
    }
    Ok(rendered_page(
        page,
        &query,
        |line| json!({"message": line.message, "timestamp": iso_time(line.timestamp)}),
    ))
}
