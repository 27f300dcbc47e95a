//! Schemas: `/data/v1/` and `/data/v1/{schema}/…` (properties, statuses, transitions, indexes).
//! A `{schema}` is an id or a name.

use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vigil_commands::data::schema::{self, SchemaForm};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::data::schema::{Schema, SchemaCommand, SchemaRef};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_projections::data::document_unique;
use vigil_projections::data::schema::{self as model, SchemaRow};
use vigil_schemas::definition::{SETTINGS, Write};
use vigil_schemas::index::Index;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, SchemaPath, parse_id};
use crate::routes::{iso_time, rendered_page};
use crate::state::{AppState, DataService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{schema}", put(update).delete(remove))
        .route("/{schema}/disable", post(disable))
        .route("/{schema}/enable", post(enable))
        .route("/{schema}/properties", post(add_property))
        .route(
            "/{schema}/properties/{path}",
            put(update_property).delete(remove_property),
        )
        .route("/{schema}/statuses", post(add_status))
        .route(
            "/{schema}/statuses/{name}",
            put(update_status).delete(remove_status),
        )
        .route("/{schema}/creationTransition", put(set_creation_transition))
        .route("/{schema}/transitions", post(add_transition))
        .route(
            "/{schema}/transitions/{id}",
            put(update_transition).delete(remove_transition),
        )
        .route("/{schema}/indexes", post(add_index))
        .route("/{schema}/indexes/{id}", delete(remove_index))
}

/// A schema as the data service returns it.
pub fn schema_json(row: &SchemaRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "properties": row.properties.0,
        "statuses": row.statuses.0,
        "creationTransition": row.creation_transition.0,
        "transitions": row.transitions.0,
        "indexes": row.indexes.0,
        "createMode": row.create_mode.0,
        "readMode": row.read_mode.0,
        "updateMode": row.update_mode.0,
        "deleteMode": row.delete_mode.0,
        "groupSyncMode": row.group_sync_mode,
        "defaultLimit": row.default_limit,
        "maximumLimit": row.maximum_limit,
        "disabled": row.disabled,
        "creationTimestamp": iso_time(row.creation_timestamp),
        "updateTimestamp": iso_time(row.update_timestamp),
    })
}

/// `RESOURCE_UNKNOWN_EXCEPTION`: no schema has the id or name a path gives.
pub fn unknown_schema() -> ApiError {
    ApiError::new(ExhCode::ResourceUnknown, "No schema with this id or name")
}

/// The schema a path names: `RESOURCE_UNKNOWN_EXCEPTION` when there is no such schema.
async fn resolve(state: &DataService, schema: &SchemaRef) -> Result<(Id, Schema), ApiError> {
    schema::find(&state.bus, schema)
        .await?
        .ok_or_else(unknown_schema)
}

/// A property's path: `/{schema}/properties/{path}`.
#[derive(Deserialize)]
struct PropertyAt {
    path: String,
}

/// A status's path: `/{schema}/statuses/{name}`.
#[derive(Deserialize)]
struct StatusAt {
    name: String,
}

/// A transition's or an index's path: `/{schema}/transitions/{id}`, `/{schema}/indexes/{id}`.
#[derive(Deserialize)]
struct EntryAt {
    id: String,
}

/// Runs `command` on the schema a path names, and answers once the read models show it.
async fn execute(
    state: &DataService,
    caller: &Caller,
    schema: SchemaPath,
    command: SchemaCommand,
) -> Result<Json<Value>, ApiError> {
    execute_listed(state, caller, &schema.read()?, command).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// Runs `command` on the schema a path names; the schema as listed afterwards.
///
/// The handlers check the command's permission before this (and before they read a body): a
/// caller without it learns nothing else, neither whether the schema exists nor what is wrong
/// with the body. The aggregate checks it again as it decides the command.
async fn execute_listed(
    state: &DataService,
    caller: &Caller,
    schema: &SchemaRef,
    command: SchemaCommand,
) -> Result<SchemaRow, ApiError> {
    let (id, _) = resolve(state, schema).await?;
    let outcome = state
        .bus
        .execute::<Schema>(&StreamId::of(Schema::KIND, id), &command, &caller.meta())
        .await?;
    listed(state, id, outcome.position).await
}

/// The schema with `id` as listed, once the read models show `position`.
async fn listed(state: &DataService, id: Id, position: u64) -> Result<SchemaRow, ApiError> {
    state.settle(position).await?;
    let query = vigil_projections::rql::parse(&format!("eq(id,{id})"))?;
    model::schemas(&state.store, &query, true)
        .await?
        .data
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No schema with this id"))
}

/// A schema's root attributes as a request gives them.
fn form(body: JsonBody<Map<String, Value>>) -> Result<SchemaForm, ApiError> {
    let mut fields = body.read()?;
    let text = |fields: &mut Map<String, Value>, key: &str| match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("`{key}` is a string"),
        )),
    };
    let name = text(&mut fields, "name")?;
    let description = text(&mut fields, "description")?;
    if let Some(unknown) = fields.keys().find(|key| !SETTINGS.contains(&key.as_str())) {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("`{unknown}` is not a schema attribute"),
        ));
    }
    Ok(SchemaForm {
        name,
        description,
        settings: fields,
    })
}

/// `POST /data/v1/`: a new schema, with a status `new` and a manual creation transition into it.
async fn create(
    State(state): State<DataService>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_SCHEMAS")?;
    let form = form(body)?;
    if form.name.is_none() {
        return Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            "A schema needs a name",
        ));
    }
    let (id, outcome) = schema::create(&state.bus, &state.ids, form, &caller.meta()).await?;
    let row = listed(&state, id, outcome.position).await?;
    Ok(Json(schema_json(&row)))
}

/// `GET /data/v1/?<rql>`: every enabled schema; disabled ones too with `DISABLE_SCHEMAS`.
async fn list(
    State(state): State<DataService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let with_disabled = caller.actor.allows("DISABLE_SCHEMAS");
    let page = model::schemas(&state.store, &query, with_disabled).await?;
    Ok(rendered_page(page, &query, schema_json))
}

/// `PUT /data/v1/{schema}`: changes the given root attributes.
async fn update(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let form = form(body)?;
    let (id, _) = resolve(&state, &schema.read()?).await?;
    let outcome = schema::update(&state.bus, id, form, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /data/v1/{schema}`: only a disabled schema.
async fn remove(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_SCHEMAS")?;
    let (id, _) = resolve(&state, &schema.read()?).await?;
    let outcome = schema::delete(&state.bus, id, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

async fn disable(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::Disable;
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}

async fn enable(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::Enable;
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProperty {
    name: String,
    configuration: Value,
}

/// `POST /data/v1/{schema}/properties`: `{name: "<dot.path>", configuration}`.
async fn add_property(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<NewProperty>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let property = body.read()?;
    let command = SchemaCommand::WriteProperty {
        path: property.name,
        configuration: property.configuration,
        write: Write::Add,
    };
    execute(&state, &caller, schema, command).await
}

/// `PUT /data/v1/{schema}/properties/{path}`: the body is the new configuration.
async fn update_property(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(PropertyAt { path }): Path<PropertyAt>,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let configuration = body.read()?;
    let command = SchemaCommand::WriteProperty {
        path,
        configuration,
        write: Write::Replace,
    };
    execute(&state, &caller, schema, command).await
}

async fn remove_property(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(PropertyAt { path }): Path<PropertyAt>,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::RemoveProperty { path };
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStatus {
    name: String,
    #[serde(default)]
    data: Map<String, Value>,
}

/// `POST /data/v1/{schema}/statuses`: `{name, data?}`.
async fn add_status(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<NewStatus>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let status = body.read()?;
    let command = SchemaCommand::WriteStatus {
        name: status.name,
        data: status.data,
        write: Write::Add,
    };
    execute(&state, &caller, schema, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusData {
    #[serde(default)]
    data: Map<String, Value>,
}

/// `PUT /data/v1/{schema}/statuses/{name}`: `{data}` replaces the status's data.
async fn update_status(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(StatusAt { name }): Path<StatusAt>,
    body: JsonBody<StatusData>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let status = body.read()?;
    let command = SchemaCommand::WriteStatus {
        name,
        data: status.data,
        write: Write::Replace,
    };
    execute(&state, &caller, schema, command).await
}

/// `DELETE /data/v1/{schema}/statuses/{name}`: `STATUS_IN_USE_EXCEPTION` while a transition uses it.
async fn remove_status(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(StatusAt { name }): Path<StatusAt>,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::RemoveStatus { name };
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}

async fn set_creation_transition(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let transition = body.read()?;
    let command = SchemaCommand::SetCreationTransition(transition);
    execute(&state, &caller, schema, command).await
}

/// `POST /data/v1/{schema}/transitions`: answers the transition with its new id.
async fn add_transition(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let transition = body.read()?;
    let id = state.ids.next();
    let command = SchemaCommand::WriteTransition {
        id,
        transition,
        write: Write::Add,
    };
    let row = execute_listed(&state, &caller, &schema.read()?, command).await?;
    entry_with_id(&row.transitions.0, id)
}

/// The element of a listed section with `id`.
fn entry_with_id(section: &Value, id: Id) -> Result<Json<Value>, ApiError> {
    let id = id.to_string();
    section
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["id"] == id.as_str()))
        .map(|entry| Json(entry.clone()))
        .ok_or_else(|| ApiError::internal(format!("{id} was added but is not listed")))
}

async fn update_transition(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(EntryAt { id }): Path<EntryAt>,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let id = parse_id(&id)?;
    let transition = body.read()?;
    let command = SchemaCommand::WriteTransition {
        id,
        transition,
        write: Write::Replace,
    };
    execute(&state, &caller, schema, command).await
}

async fn remove_transition(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(EntryAt { id }): Path<EntryAt>,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::RemoveTransition { id: parse_id(&id)? };
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}

/// `POST /data/v1/{schema}/indexes`: `{fields, options}`; answers the index.
async fn add_index(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_SCHEMAS")?;
    let index = body.read()?;
    let schema = schema.read()?;
    let id = state.ids.next();
    // Documents holding the same values cannot be made unique. (A document written in between is
    // refused by the index's reservations if it duplicates a later one; one written before the
    // index is known to its writer keeps the database index from being built, and is logged.)
    if let Ok(parsed) = Index::parse(&id.to_string(), &index) {
        let (schema_id, _) = resolve(&state, &schema).await?;
        if document_unique::duplicated(&state.store, schema_id, &parsed).await? {
            return Err(ApiError::new(
                ExhCode::ResourceAlreadyExists,
                "Documents of this schema already hold the same values of these fields; the index cannot be unique",
            ));
        }
    }
    let command = SchemaCommand::AddIndex { id, index };
    let row = execute_listed(&state, &caller, &schema, command).await?;
    entry_with_id(&row.indexes.0, id)
}

async fn remove_index(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(EntryAt { id }): Path<EntryAt>,
) -> Result<Json<Value>, ApiError> {
    let command = SchemaCommand::RemoveIndex { id: parse_id(&id)? };
    caller.require(command.permission())?;
    execute(&state, &caller, schema, command).await
}
