//! The event service, `/events/v1` (snake_case, epoch milliseconds): custom events and the system
//! events derived from the log.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::events::subscription::{
    ServiceVersion, Subscription, SubscriptionCommand, SubscriptionCreated,
};
use vigil_domain::events::{CustomEvent, CustomEventCommand, EventPublished, Published};
use vigil_domain::id::StreamId;
use vigil_domain::json::JsonOf;
use vigil_projections::events::subscriptions::SubscriptionRow;
use vigil_projections::events::{self as model, EventRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql};
use crate::routes::rendered_page;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route(
            "/subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
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

/// A subscription as the event service returns it.
fn subscription_json(row: &SubscriptionRow) -> Value {
    json!({
        "id": row.id,
        "service": {"name": row.service_name, "version": row.service_version.0},
        "event_types": row.event_types.0,
        "retriable": row.retriable,
        "creation_timestamp": row.creation_timestamp,
        "update_timestamp": row.update_timestamp,
    })
}

/// `GET /events/v1/subscriptions?<rql>`.
async fn list_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_SUBSCRIPTIONS")?;
    let page = model::subscriptions::subscriptions(&state.store, &query).await?;
    Ok(rendered_page(page, &query, subscription_json))
}

/// The `service` of a subscription: `{name, version: {major, minor, patch}}`.
fn service(value: Option<Value>) -> Result<(String, ServiceVersion), ApiError> {
    let format = |message: &str| ApiError::new(ExhCode::FieldFormat, message.to_owned());
    let Some(Value::Object(mut service)) = value else {
        return Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            "A subscription needs a `service`: {name, version: {major, minor, patch}}",
        ));
    };
    let Some(Value::String(name)) = service.remove("name") else {
        return Err(format(
            "`service.name` is the URL the service is reached at",
        ));
    };
    let version = match service.remove("version") {
        None | Some(Value::Null) => ServiceVersion {
            major: 1,
            minor: 0,
            patch: 0,
        },
        Some(version) => serde_json::from_value(version).map_err(|_| {
            format("`service.version` is {major, minor, patch}, each a whole number")
        })?,
    };
    Ok((name, version))
}

/// `POST /events/v1/subscriptions` `{service: {name, version}, event_types, retriable?}`: the
/// service (its name a URL) is sent every event of those types.
async fn create_subscription(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_SUBSCRIPTIONS")?;
    let mut fields = body.read()?;
    let format = |message: &str| ApiError::new(ExhCode::FieldFormat, message.to_owned());
    let (service_name, service_version) = service(fields.remove("service"))?;
    let event_types = match fields
        .remove("event_types")
        .or_else(|| fields.remove("eventTypes"))
    {
        None | Some(Value::Null) => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "A subscription needs its `event_types`",
            ));
        }
        Some(types) => serde_json::from_value::<Vec<String>>(types)
            .map_err(|_| format("`event_types` is an array of strings"))?,
    };
    let retriable = match fields.remove("retriable") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(retriable)) => retriable,
        Some(_) => return Err(format("`retriable` is a boolean")),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format(&format!("`{unknown}` is not a subscription field")));
    }
    let id = state.ids.next();
    let created = SubscriptionCreated {
        service_name,
        service_version,
        event_types,
        retriable,
    };
    let outcome = state
        .bus
        .execute_new::<Subscription>(
            &StreamId::of(Subscription::KIND, id),
            &SubscriptionCommand::Create(created.clone()),
            &caller.meta(),
            None,
        )
        .await?;
    state.settle(outcome.position).await?;
    let at = outcome
        .recorded_at
        .unwrap_or_else(vigil_commands::ids::now)
        .millis();
    Ok(Json(subscription_json(&SubscriptionRow {
        id: id.to_string(),
        service_name: created.service_name,
        service_version: sqlx::types::Json(json!(created.service_version)),
        event_types: sqlx::types::Json(json!(created.event_types)),
        retriable: created.retriable,
        creation_timestamp: at,
        update_timestamp: at,
    })))
}
