//! The dispatchers service, `/dispatchers/v1`: dispatchers and their actions.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::dispatchers::{
    Action, ActionKind, Dispatcher, DispatcherAttributes, DispatcherCommand, DispatcherCreated,
    MailAction, TaskAction,
};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::json::JsonOf;
use vigil_projections::dispatchers::{self as model, DispatcherRow, action_json};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::{execute_on, field_format as format, optional_text as text, rendered_page};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{dispatcher_id}", put(update).delete(remove))
        .route("/{dispatcher_id}/actions", post(add_action))
        .route(
            "/{dispatcher_id}/actions/{action_id}",
            put(update_action).delete(remove_action),
        )
        .merge(super::health())
}

/// A dispatcher as the dispatchers service returns it (times in epoch milliseconds).
fn dispatcher_json(row: &DispatcherRow) -> Value {
    let mut json = json!({
        "id": row.id,
        "eventType": row.event_type,
        "tags": row.tags.0,
        "actions": row.actions.0,
        "creationTimestamp": row.creation_timestamp,
        "updateTimestamp": row.update_timestamp,
    });
    if let Some(fields) = json.as_object_mut() {
        for (key, value) in [("name", &row.name), ("description", &row.description)] {
            if let Some(value) = value {
                fields.insert(key.into(), value.clone().into());
            }
        }
    }
    json
}

fn strings(value: Value, key: &str) -> Result<Vec<String>, ApiError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(item) => Ok(item),
                _ => Err(format(format!("`{key}` lists strings"))),
            })
            .collect(),
        _ => Err(format(format!("`{key}` is a list of strings"))),
    }
}

fn refuse_unknown(fields: &Map<String, Value>, what: &str) -> Result<(), ApiError> {
    match fields.keys().next() {
        Some(unknown) => Err(format(format!("`{unknown}` is not a {what} field"))),
        None => Ok(()),
    }
}

/// `fields` (a request's) applied to `action`: what they give changes, the rest stays.
fn action_from(mut fields: Map<String, Value>, action: Action) -> Result<Action, ApiError> {
    let name = text(&mut fields, "name")?.unwrap_or(action.name);
    let description = text(&mut fields, "description")?.unwrap_or(action.description);
    let kind = match action.kind {
        ActionKind::Task(task) => {
            let function_name = match text(&mut fields, "functionName")? {
                Some(Some(name)) => name,
                Some(None) => return Err(format("`functionName` is a function's name")),
                None => task.function_name,
            };
            let data = match fields.remove("data") {
                None => task.data,
                Some(Value::Null) => JsonOf(Map::new()),
                Some(Value::Object(data)) => JsonOf(data),
                Some(_) => return Err(format("`data` is an object")),
            };
            let tags = match fields.remove("tags") {
                None => task.tags,
                Some(tags) => strings(tags, "tags")?,
            };
            let start_at = match fields.remove("startTimestamp") {
                None => task.start_at,
                Some(Value::Null) => None,
                Some(value) => Some(
                    crate::routes::tasks_v1::tasks::timestamp(&value)
                        .ok_or_else(|| format("`startTimestamp` is a date"))?,
                ),
            };
            ActionKind::Task(TaskAction {
                function_name,
                data,
                tags,
                start_at,
            })
        }
        ActionKind::Mail(mail) => {
            let mut mail = mail;
            match fields.remove("recipients") {
                None => {}
                Some(Value::Object(mut recipients)) => {
                    let mut list =
                        |key: &str| strings(recipients.remove(key).unwrap_or(Value::Null), key);
                    mail.to = list("to")?;
                    mail.cc = list("cc")?;
                    mail.bcc = list("bcc")?;
                }
                Some(_) => return Err(format("`recipients` is `{to, cc, bcc}`")),
            }
            if let Some(template) = text(&mut fields, "templateId")? {
                mail.template_id = template;
            }
            ActionKind::Mail(mail)
        }
    };
    fields.remove("type");
    refuse_unknown(&fields, "dispatcher action")?;
    Ok(Action {
        id: action.id,
        name,
        description,
        kind,
    })
}

/// A new action from a request's fields: its `type` (`task` or `mail`) and the rest.
fn new_action(state: &AppState, fields: Value) -> Result<Action, ApiError> {
    let Value::Object(fields) = fields else {
        return Err(format("an action is an object"));
    };
    let kind = match fields.get("type").and_then(Value::as_str) {
        Some("task") => ActionKind::Task(TaskAction {
            function_name: String::new(),
            data: JsonOf(Map::new()),
            tags: Vec::new(),
            start_at: None,
        }),
        Some("mail") => ActionKind::Mail(MailAction {
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            template_id: None,
        }),
        _ => return Err(format("an action's `type` is `task` or `mail`")),
    };
    let empty = Action {
        id: state.ids.next(),
        name: None,
        description: None,
        kind,
    };
    action_from(fields, empty)
}

/// The dispatcher `id` as listed.
async fn listed(state: &AppState, id: Id) -> Result<DispatcherRow, ApiError> {
    let query = vigil_projections::rql::parse(&format!("eq(id,{id})"))?;
    model::dispatchers(&state.store, &query)
        .await?
        .data
        .into_iter()
        .next()
        .ok_or_else(unknown)
}

fn unknown() -> ApiError {
    ApiError::new(ExhCode::ResourceUnknown, "No dispatcher has this id")
}

/// `GET /dispatchers/v1/?<rql>`.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_DISPATCHERS")?;
    let page = model::dispatchers(&state.store, &query).await?;
    Ok(rendered_page(page, &query, dispatcher_json))
}

/// `POST /dispatchers/v1/` `{eventType, name?, description?, tags?, actions}`.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_DISPATCHERS")?;
    let mut fields = body.read()?;
    let event_type = match text(&mut fields, "eventType")? {
        Some(Some(event_type)) => event_type,
        _ => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "A dispatcher needs an eventType",
            ));
        }
    };
    let attributes = DispatcherAttributes {
        event_type,
        name: text(&mut fields, "name")?.flatten(),
        description: text(&mut fields, "description")?.flatten(),
        tags: strings(fields.remove("tags").unwrap_or(Value::Null), "tags")?,
    };
    let actions = match fields.remove("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(actions)) => actions
            .into_iter()
            .map(|action| new_action(&state, action))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format("`actions` is a list")),
    };
    refuse_unknown(&fields, "dispatcher")?;
    let id = state.ids.next();
    let command = DispatcherCommand::Create(DispatcherCreated {
        attributes,
        actions,
    });
    let outcome = state
        .bus
        .execute_new::<Dispatcher>(
            &StreamId::of(Dispatcher::KIND, id),
            &command,
            &caller.meta(),
            None,
        )
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(dispatcher_json(&listed(&state, id).await?)))
}

/// The dispatcher a path names, as the log has it.
async fn load(state: &AppState, id: &str) -> Result<(StreamId, Dispatcher), ApiError> {
    let stream = StreamId::of(Dispatcher::KIND, parse_id(id)?);
    let (dispatcher, _) = state.bus.load::<Dispatcher>(&stream).await?;
    if dispatcher.attributes.is_none() {
        return Err(unknown());
    }
    Ok((stream, dispatcher))
}

async fn execute(
    state: &AppState,
    caller: &Caller,
    stream: &StreamId,
    command: DispatcherCommand,
) -> Result<(), ApiError> {
    let outcome = state
        .bus
        .execute::<Dispatcher>(stream, &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await
}

/// `PUT /dispatchers/v1/{dispatcherId}`: the attributes given change (`eventType`, `name`,
/// `description`, `tags`).
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(dispatcher_id): Path<String>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_DISPATCHERS")?;
    let mut fields = body.read()?;
    let (stream, dispatcher) = load(&state, &dispatcher_id).await?;
    let current = dispatcher.attributes.ok_or_else(unknown)?;
    let attributes = DispatcherAttributes {
        event_type: match text(&mut fields, "eventType")? {
            None => current.event_type,
            Some(Some(event_type)) => event_type,
            Some(None) => return Err(format("`eventType` is a string")),
        },
        name: text(&mut fields, "name")?.unwrap_or(current.name),
        description: text(&mut fields, "description")?.unwrap_or(current.description),
        tags: match fields.remove("tags") {
            None => current.tags,
            Some(tags) => strings(tags, "tags")?,
        },
    };
    refuse_unknown(&fields, "dispatcher")?;
    execute(
        &state,
        &caller,
        &stream,
        DispatcherCommand::Update(attributes),
    )
    .await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /dispatchers/v1/{dispatcherId}`.
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(dispatcher_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_DISPATCHERS")?;
    load(&state, &dispatcher_id).await?;
    execute_on::<Dispatcher>(&state, &caller, &dispatcher_id, DispatcherCommand::Delete).await
}

/// `POST /dispatchers/v1/{dispatcherId}/actions`: the action, with its id.
async fn add_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(dispatcher_id): Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_DISPATCHERS")?;
    let action = new_action(&state, body.read()?)?;
    let (stream, _) = load(&state, &dispatcher_id).await?;
    let json = action_json(&action);
    execute(
        &state,
        &caller,
        &stream,
        DispatcherCommand::AddAction(action),
    )
    .await?;
    Ok(Json(json))
}

#[derive(serde::Deserialize)]
struct ActionAt {
    dispatcher_id: String,
    action_id: String,
}

/// The action a path names, in its dispatcher.
async fn load_action(state: &AppState, at: &ActionAt) -> Result<(StreamId, Action), ApiError> {
    let action_id = parse_id(&at.action_id)?;
    let (stream, dispatcher) = load(state, &at.dispatcher_id).await?;
    let action = dispatcher
        .actions
        .into_iter()
        .find(|action| action.id == action_id)
        .ok_or_else(|| {
            ApiError::new(
                ExhCode::ResourceUnknown,
                "The dispatcher has no action with this id",
            )
        })?;
    Ok((stream, action))
}

/// `PUT /dispatchers/v1/{dispatcherId}/actions/{actionId}`: what is given changes; the type
/// stays.
async fn update_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(at): Path<ActionAt>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_DISPATCHERS")?;
    let mut fields = body.read()?;
    let (stream, action) = load_action(&state, &at).await?;
    if let Some(kind) = fields.get("type").and_then(Value::as_str)
        && kind != action.kind.wire_name()
    {
        return Err(format("an action keeps its type"));
    }
    fields.remove("type");
    let action = action_from(fields, action)?;
    execute(
        &state,
        &caller,
        &stream,
        DispatcherCommand::UpdateAction(action),
    )
    .await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /dispatchers/v1/{dispatcherId}/actions/{actionId}`.
async fn remove_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(at): Path<ActionAt>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_DISPATCHERS")?;
    let (stream, action) = load_action(&state, &at).await?;
    execute(
        &state,
        &caller,
        &stream,
        DispatcherCommand::RemoveAction(action.id),
    )
    .await?;
    Ok(Json(json!({"affectedRecords": 1})))
}
