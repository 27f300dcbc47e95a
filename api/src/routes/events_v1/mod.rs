//! The event service, `/events/v1` (snake_case, epoch milliseconds): custom events and the system
//! events derived from the log.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::events::{CustomEvent, CustomEventCommand, EventPublished, Published};
use vigil_domain::id::StreamId;
use vigil_domain::json::JsonOf;
use vigil_projections::events::{self as model, EventRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql};
use crate::routes::rendered_page;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .merge(super::health())
}

/// An event as the event service returns it.
fn event_json(row: &EventRow) -> Value {
    json!({
        "id": row.id,
        "type": row.event_type,
        "content": row.content.0,
        "creation_timestamp": row.creation_timestamp,
        "update_timestamp": row.update_timestamp,
    })
}

/// `GET /events/v1/?<rql>`: custom and system events.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_EVENTS")?;
    let page = model::events(&state.store, &query).await?;
    Ok(rendered_page(page, &query, event_json))
}

/// `POST /events/v1/` `{type, content?}`: a custom event (empty objects in the content kept).
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_EVENTS")?;
    let mut fields = body.read()?;
    let format = |message: &str| ApiError::new(ExhCode::FieldFormat, message.to_owned());
    let event_type = match fields.remove("type") {
        Some(Value::String(event_type)) => event_type,
        None | Some(Value::Null) => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "An event needs a type",
            ));
        }
        Some(_) => return Err(format("`type` is a string")),
    };
    let content = match fields.remove("content") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(content)) => content,
        Some(_) => return Err(format("`content` is an object")),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format(&format!("`{unknown}` is not an event field")));
    }
    let id = state.ids.next();
    let published = EventPublished {
        event_type,
        content: JsonOf(content),
    };
    let outcome = state
        .bus
        .execute_new::<CustomEvent>(
            &StreamId::of(CustomEvent::KIND, id),
            &CustomEventCommand::Publish(published.clone()),
            &caller.meta(),
            None,
        )
        .await?;
    state.settle(outcome.position).await?;
    let published = Published {
        id,
        event_type: published.event_type,
        content: published.content.0,
        at: outcome.recorded_at.unwrap_or_else(vigil_commands::ids::now),
    };
    Ok(Json(published.json()))
}
