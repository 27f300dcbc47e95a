//! Schedules: `/tasks/v1/schedules` (list, create) and `/tasks/v1/schedules/{scheduleId}`.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::StreamId;
use vigil_domain::json::JsonOf;
use vigil_domain::tasks::schedule::{Schedule, ScheduleCommand, ScheduleCreated};
use vigil_projections::tasks::schedule::{self as model, ScheduleRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql};
use crate::routes::{execute_on, iso_time, rendered_page};
use crate::state::{AppState, TasksService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/schedules", get(list).post(create))
        .route("/schedules/{schedule_id}", delete(remove))
}

/// A schedule as the task service returns it.
fn schedule_json(row: &ScheduleRow) -> Value {
    json!({
        "id": row.id,
        "functionName": row.function_name,
        "interval": row.interval_seconds,
        "data": row.data.0,
        "priority": row.priority,
        "startTimestamp": iso_time(row.start_timestamp),
        "nextTimestamp": iso_time(row.next_timestamp),
        "creationTimestamp": iso_time(row.creation_timestamp),
        "updateTimestamp": iso_time(row.update_timestamp),
    })
}

/// `GET /tasks/v1/schedules?<rql>`.
async fn list(
    State(state): State<TasksService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TASK_SCHEDULES")?;
    let page = model::schedules(&state.store, &query).await?;
    Ok(rendered_page(page, &query, schedule_json))
}

/// `POST /tasks/v1/schedules` `{functionName, interval, data?, priority?, startTimestamp?}`: runs
/// the function every `interval` seconds from the start (now if none), with the function's
/// default priority unless given.
async fn create(
    State(state): State<TasksService>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_TASK_SCHEDULE")?;
    let mut fields = body.read()?;
    let format = |message: &str| ApiError::new(ExhCode::FieldFormat, message.to_owned());
    let (function_name, interval) = match (fields.remove("functionName"), fields.remove("interval"))
    {
        (Some(Value::String(name)), Some(interval)) => (
            name,
            interval
                .as_u64()
                .ok_or_else(|| format("`interval` is a whole number of seconds"))?,
        ),
        (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "A schedule needs a functionName and an interval",
            ));
        }
        _ => return Err(format("`functionName` is a string")),
    };
    let data = match fields.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(format("`data` is an object")),
    };
    let start_at = match fields.remove("startTimestamp") {
        None | Some(Value::Null) => vigil_commands::ids::now(),
        Some(value) => {
            super::tasks::timestamp(&value).ok_or_else(|| format("`startTimestamp` is a date"))?
        }
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
        return Err(format(&format!("`{unknown}` is not a schedule field")));
    }
    let id = state.ids.next();
    let schedule = ScheduleCreated {
        function_name,
        interval_seconds: interval,
        data: JsonOf(data),
        priority,
        start_at,
        created_by_user: Some(caller.user_id),
        created_by_application: caller.application_id,
    };
    let outcome = state
        .bus
        .execute_new::<Schedule>(
            &StreamId::of(Schedule::KIND, id),
            &ScheduleCommand::Create(schedule.clone()),
            &caller.meta(),
            None,
        )
        .await?;
    state.settle(outcome.position).await?;
    // As created: by now its first slot may have fired.
    let at = outcome
        .recorded_at
        .unwrap_or_else(vigil_commands::ids::now)
        .millis();
    Ok(Json(schedule_json(&ScheduleRow {
        id: id.to_string(),
        function_name: schedule.function_name,
        interval_seconds: i64::try_from(schedule.interval_seconds).unwrap_or(i64::MAX),
        data: sqlx::types::Json(Value::Object(schedule.data.0)),
        priority: schedule.priority,
        start_timestamp: schedule.start_at.millis(),
        next_timestamp: schedule.start_at.millis(),
        creation_timestamp: at,
        update_timestamp: at,
    })))
}

/// `DELETE /tasks/v1/schedules/{scheduleId}`: no more firings (tasks already made stay).
async fn remove(
    State(state): State<TasksService>,
    caller: Caller,
    Path(schedule_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_TASK_SCHEDULE")?;
    execute_on::<Schedule>(&state, &caller, &schedule_id, ScheduleCommand::Delete).await
}
