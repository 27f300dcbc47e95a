//! One router per Extra Horizon service and version, mounted at its path.

pub mod auth_v2;
pub mod data_v1;
pub mod dispatchers_v1;
pub mod events_v1;
pub mod localizations_v1;
pub mod tasks_v1;
pub mod templates_v2;
pub mod users_v1;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vigil_commands::CommandError;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::StreamId;
use vigil_projections::page::Page;
use vigil_projections::rql::Query;
use vigil_projections::runner::Progress;

use crate::error::ApiError;
use crate::extract::{Caller, parse_id};
use crate::state::{AppState, Core};

/// `GET /<service>/health`: 200 while the service can answer; 503 when a read model has halted.
pub fn health() -> Router<AppState> {
    Router::new().route("/health", get(check_health))
}

async fn check_health(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let halted: Vec<&str> = state
        .projector
        .status()
        .into_iter()
        .filter(|(_, progress)| matches!(progress, Progress::Halted { .. }))
        .map(|(name, _)| name)
        .collect();
    if halted.is_empty() {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            ExhCode::ServiceUnavailable,
            format!("Read models halted: {}", halted.join(", ")),
        ))
    }
}

/// A time as the camelCase services render it: ISO 8601 in UTC with milliseconds.
pub fn iso_time(millis: i64) -> Value {
    Value::String(vigil_projections::rql::iso_date(millis))
}

/// Extra Horizon's list shape.
pub fn page_json(page: Page<Value>) -> Value {
    let mut meta = json!({"offset": page.offset, "limit": page.limit});
    if let (Some(total), Some(map)) = (page.total, meta.as_object_mut()) {
        map.insert("total".into(), json!(total));
    }
    json!({"page": meta, "data": page.data})
}

/// A page of records in Extra Horizon's list shape, each rendered and cut to the query's
/// `select(...)`.
pub fn rendered_page<T>(page: Page<T>, query: &Query, render: impl Fn(&T) -> Value) -> Json<Value> {
    let select = query.select.as_deref();
    Json(page_json(Page {
        data: page
            .data
            .iter()
            .map(|record| vigil_projections::page::select(render(record), select))
            .collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    }))
}

/// A request field in the wrong shape.
pub fn field_format(message: impl Into<String>) -> ApiError {
    ApiError::new(ExhCode::FieldFormat, message)
}

/// The text at `key` of a request's `fields`, taken out: absent (`None`), `null` (`Some(None)`)
/// or a string.
pub fn optional_text(
    fields: &mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match fields.remove(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(text)) => Ok(Some(Some(text))),
        Some(_) => Err(field_format(format!("`{key}` is a string"))),
    }
}

/// A bulk operation must say which records it acts on.
pub fn required_filter(query: &Query) -> Result<(), ApiError> {
    if query.filter.is_none() {
        return Err(ApiError::new(
            ExhCode::EmptyRql,
            "This operation needs an RQL filter selecting the records to change",
        ));
    }
    Ok(())
}

/// Runs `command` on the aggregate with the id in a path, as the caller, and answers
/// `{"affectedRecords": 1}` once the read models show it.
pub async fn execute_on<A: Aggregate>(
    state: &Core,
    caller: &Caller,
    id: &str,
    command: A::Command,
) -> Result<Json<Value>, ApiError>
where
    ApiError: From<CommandError<A::Error>>,
{
    let id = parse_id(id)?;
    let outcome = state
        .bus
        .execute::<A>(&StreamId::of(A::KIND, id), &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}
