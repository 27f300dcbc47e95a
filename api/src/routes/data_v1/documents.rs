//! Documents: `/data/v1/{schema}/documents…`. Lists only ever show what the caller may read;
//! writes are decided by the document's aggregate against the schema as it is now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vigil_commands::data::document::{self, UniqueIndexes};
use vigil_commands::unique::Exclusive;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::data::document::{
    Document, DocumentCommand, DocumentError, SchemaSnapshot, TransitionChoice,
};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_projections::data::document::{self as model, CommentRow, DocumentRow, ListedSchema};
use vigil_projections::page::Limits;
use vigil_projections::rql::Query;
use vigil_projections::runner::Projection as _;
use vigil_schemas::index::Index;

use super::schemas::{check_schema_parameter, unknown_schema};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, OptionalJsonBody, Rql, parse_id};
use crate::routes::{iso_time, rendered_page};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{schema}/documents", get(list).post(create))
        .route("/{schema}/documents/{id}", put(update).delete(remove))
        .route("/{schema}/documents/{id}/transition", post(transition))
        .route("/{schema}/documents/{id}/deleteFields", post(delete_fields))
        .route("/{schema}/documents/{id}/linkGroups", post(link_groups))
        .route("/{schema}/documents/{id}/unlinkGroups", post(unlink_groups))
        .route("/{schema}/documents/{id}/linkUsers", post(link_users))
        .route("/{schema}/documents/{id}/unlinkUsers", post(unlink_users))
        .route(
            "/{schema}/documents/{id}/comments",
            get(list_comments).post(add_comment),
        )
        .route(
            "/{schema}/documents/{id}/comments/{comment}",
            put(update_comment).delete(remove_comment),
        )
        .route("/{schema}/documents/{id}/{field}", post(append_to_array))
        .route(
            "/{schema}/documents/{id}/{field}/{element}",
            put(update_in_array).delete(remove_from_array),
        )
}

/// A document as the data service returns it.
fn document_json(row: &DocumentRow) -> Value {
    let mut document = json!({
        "id": row.id,
        "creatorId": row.creator_id,
        "userIds": row.user_ids.0,
        "groupIds": row.group_ids.0,
        "status": row.status,
        "data": row.data.0,
        "statusChangedTimestamp": iso_time(row.status_changed_timestamp),
        "creationTimestamp": iso_time(row.creation_timestamp),
        "updateTimestamp": iso_time(row.update_timestamp),
        "commentCount": row.comment_count,
    });
    if let Some(since) = row.transition_lock_timestamp {
        document["transitionLock"] = json!({"timestamp": iso_time(since)});
    }
    document
}

/// The schema a path names, compiled for document commands.
async fn snapshot(state: &AppState, schema: &str) -> Result<Arc<SchemaSnapshot>, ApiError> {
    check_schema_parameter(schema)?;
    state
        .data
        .snapshots
        .find(&state.bus, schema)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unknown_schema)
}

/// The schema a path names, as the read models show it (for queries: no read of the log once it
/// is in memory).
async fn listed_snapshot(state: &AppState, schema: &str) -> Result<Arc<SchemaSnapshot>, ApiError> {
    check_schema_parameter(schema)?;
    let (id, position) = vigil_projections::data::schema::locate(&state.store, schema)
        .await?
        .ok_or_else(unknown_schema)?;
    let id = parse_id(&id)?;
    state
        .data
        .snapshots
        .listed(&state.bus, id, position)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unknown_schema)
}

/// The documents of `schema` the caller may read that `query` selects.
async fn readable(
    state: &AppState,
    caller: &Caller,
    schema: &SchemaSnapshot,
    query: &Query,
) -> Result<vigil_projections::page::Page<DocumentRow>, ApiError> {
    let settings = &schema.compiled.definition.settings;
    let schema_id = schema.id.to_string();
    let indexed: Vec<String> = schema
        .compiled
        .definition
        .indexes
        .iter()
        .filter_map(|index| index.leading_data_path().map(str::to_owned))
        .collect();
    let searched: Vec<String> = schema
        .compiled
        .definition
        .indexes
        .iter()
        .flat_map(|index| Index::searched(&index.fields).map(|field| field.name.clone()))
        .collect();
    let listed = ListedSchema {
        id: &schema_id,
        indexed: &indexed,
        searched: &searched,
        name: &schema.name,
        read_mode: &settings.read_mode,
        limits: Limits {
            default: settings.default_limit,
            maximum: settings.maximum_limit,
        },
    };
    let applied = state.projector.applied(model::Documents.name());
    Ok(model::documents(
        &state.store,
        listed,
        &caller.actor,
        query,
        &state.data.array_probes,
        applied,
    )
    .await?)
}

/// `POST /data/v1/{schema}/documents`: the body is the new document's data (gzip or not).
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(schema): Path<String>,
    body: OptionalJsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let data = body.read()?;
    let (id, outcome) = document::create(
        &state.bus,
        &state.ids,
        schema,
        data,
        &state.store,
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    // The new document as the read models now show it: made from its state after the commit
    // (as the projection makes its row) while that is in memory, else read back.
    let made = outcome
        .recorded_at
        .zip(state.bus.state_after::<Document>(&outcome));
    let row = match made {
        Some((at, document)) => DocumentRow::created(id, &document, at, outcome.position),
        None => model::document(&state.store, &id.to_string())
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!("document {id} was created but is not listed"))
            })?,
    };
    Ok(Json(document_json(&row)))
}

/// `GET /data/v1/{schema}/documents?<rql>`.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(schema): Path<String>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let schema = listed_snapshot(&state, &schema).await?;
    let page = readable(&state, &caller, &schema, &query).await?;
    Ok(rendered_page(page, &query, document_json))
}

/// Whether the read models show the document `id` exactly as of `position` and it passes `filter`
/// there (`None`: they have moved past `position`, so the check must be made again).
async fn passes(
    state: &AppState,
    caller: &Caller,
    schema: &SchemaSnapshot,
    id: Id,
    position: u64,
    filter: &vigil_projections::rql::Expr,
) -> Result<Option<bool>, ApiError> {
    use vigil_projections::rql::{Cmp, Expr, Scalar};
    state.settle(position).await?;
    let row = model::document(&state.store, &id.to_string()).await?;
    if row.is_none_or(|row| u64::try_from(row.position).ok() != Some(position)) {
        return Ok(None);
    }
    let guard = Query {
        filter: Some(Expr::And(vec![
            Expr::Compare {
                path: "id".into(),
                op: Cmp::Eq,
                value: Scalar::String(id.to_string()),
            },
            filter.clone(),
        ])),
        skip_count: true,
        ..Query::default()
    };
    Ok(Some(
        !readable(state, caller, schema, &guard)
            .await?
            .data
            .is_empty(),
    ))
}

/// How often a guarded write is tried when the document keeps changing under it.
const GUARD_ATTEMPTS: usize = 5;

/// Runs `command` on document `id`; with an RQL guard, only if the document as it is when the
/// command is decided passes it (the guard is checked against the read models at the document's
/// current position, and the command refused if the document has changed since). Answers how
/// many documents were written.
async fn execute(
    state: &AppState,
    caller: &Caller,
    schema: &SchemaSnapshot,
    id: &str,
    query: &Query,
    command: DocumentCommand,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let stream = StreamId::of(Document::KIND, id);
    let unique = UniqueIndexes::of(schema, id, &state.store);
    let unique = unique.as_ref().map(|u| u as &dyn Exclusive<Document>);
    let Some(filter) = &query.filter else {
        let outcome = state
            .bus
            .execute_holding::<Document>(&stream, &command, &caller.meta(), unique)
            .await?;
        state.settle(outcome.position).await?;
        return Ok(Json(json!({"affectedRecords": 1})));
    };
    let command = Box::new(command);
    for _ in 0..GUARD_ATTEMPTS {
        let (document, head) = state.bus.load::<Document>(&stream).await?;
        let guarded = DocumentCommand::Guarded {
            seen: document.events,
            command: command.clone(),
        };
        let Some(head) = head else {
            // No such document: the command says so.
            state
                .bus
                .execute::<Document>(&stream, &guarded, &caller.meta())
                .await?;
            break;
        };
        match passes(state, caller, schema, id, head.position, filter).await? {
            None => continue,
            Some(false) => return Ok(Json(json!({"affectedRecords": 0}))),
            Some(true) => {}
        }
        match state
            .bus
            .execute_holding::<Document>(&stream, &guarded, &caller.meta(), unique)
            .await
        {
            Ok(outcome) => {
                state.settle(outcome.position).await?;
                return Ok(Json(json!({"affectedRecords": 1})));
            }
            Err(vigil_commands::CommandError::Domain(DocumentError::Stale)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::new(
        ExhCode::Conflict,
        "The document kept changing while its guard was checked; try again",
    ))
}

/// `PUT /data/v1/{schema}/documents/{id}?<rql>`: sets the given fields; `null` removes one.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    Rql(query): Rql,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let changes = body.read()?;
    let command = DocumentCommand::Update {
        schema: schema.clone(),
        changes,
    };
    execute(&state, &caller, &schema, &id, &query, command).await
}

/// `DELETE /data/v1/{schema}/documents/{id}`.
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let command = DocumentCommand::Delete {
        schema: schema.clone(),
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsToDelete {
    fields: Vec<String>,
}

/// `POST /data/v1/{schema}/documents/{id}/deleteFields?<rql>`: `{fields: ["a.b", …]}`.
async fn delete_fields(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    Rql(query): Rql,
    body: JsonBody<FieldsToDelete>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let request = body.read()?;
    let command = DocumentCommand::DeleteFields {
        schema: schema.clone(),
        fields: request.fields,
    };
    execute(&state, &caller, &schema, &id, &query, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionRequest {
    id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    data: Map<String, Value>,
}

/// `POST /data/v1/{schema}/documents/{id}/transition?<rql>`: `{id | name, data?}`.
async fn transition(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    Rql(query): Rql,
    body: JsonBody<TransitionRequest>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let request = body.read()?;
    let choice = match (request.id, request.name) {
        (Some(id), _) => TransitionChoice::Id(parse_id(&id)?),
        (None, Some(name)) => TransitionChoice::Name(name),
        (None, None) => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "A transition is chosen by `id` or `name`",
            ));
        }
    };
    let document_id = parse_id(&id)?;
    let (document, _) = state
        .bus
        .load::<Document>(&StreamId::of(Document::KIND, document_id))
        .await?;
    let lookups =
        document::transition_lookups(&state.bus, &schema, &document, &request.data).await?;
    let command = DocumentCommand::Transition {
        schema: schema.clone(),
        choice,
        data: request.data,
        lookups,
    };
    execute(&state, &caller, &schema, &id, &query, command).await
}

/// The most ids one link or unlink request may name.
const MOST_IDS: usize = 1000;

/// Ids in a body: every one well formed, not too many.
fn parse_ids(ids: &[String]) -> Result<Vec<Id>, ApiError> {
    if ids.len() > MOST_IDS {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("At most {MOST_IDS} ids at once"),
        ));
    }
    ids.iter().map(|id| parse_id(id)).collect()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Groups {
    group_ids: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Users {
    user_ids: Option<Vec<String>>,
}

/// `POST /data/v1/{schema}/documents/{id}/linkGroups`: `{groupIds}`.
async fn link_groups(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    body: JsonBody<Groups>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let groups = body.read()?;
    let group_ids = parse_ids(&groups.group_ids.unwrap_or_default())?;
    let command = DocumentCommand::LinkGroups {
        schema: schema.clone(),
        group_ids,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

/// `POST /data/v1/{schema}/documents/{id}/unlinkGroups`: `{groupIds}`, or `{}` for all of them.
async fn unlink_groups(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    body: OptionalJsonBody<Groups>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let groups = body.read()?;
    let group_ids = groups.group_ids.as_deref().map(parse_ids).transpose()?;
    let command = DocumentCommand::UnlinkGroups {
        schema: schema.clone(),
        group_ids,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

/// `POST /data/v1/{schema}/documents/{id}/linkUsers`: `{userIds}`.
async fn link_users(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    body: JsonBody<Users>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let users = body.read()?;
    let user_ids = parse_ids(&users.user_ids.unwrap_or_default())?;
    // Checked before the users are looked up (the document's aggregate checks it again).
    let permission = format!("UPDATE_ACCESS_TO_DOCUMENT:{}", schema.name);
    if !caller.actor.allows(&permission) {
        return Err(ApiError::no_permission(&permission));
    }
    let lookups = document::lookups(&state.bus, user_ids.iter().copied().collect()).await?;
    let command = DocumentCommand::LinkUsers {
        schema: schema.clone(),
        user_ids,
        lookups,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

/// `POST /data/v1/{schema}/documents/{id}/unlinkUsers`: `{userIds}`, or `{}` for all of them.
async fn unlink_users(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    body: OptionalJsonBody<Users>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let users = body.read()?;
    let user_ids = users.user_ids.as_deref().map(parse_ids).transpose()?;
    let command = DocumentCommand::UnlinkUsers {
        schema: schema.clone(),
        user_ids,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

/// `POST /data/v1/{schema}/documents/{id}/{field}`: appends the body to the array of objects at
/// `field` under a new id; answers the element.
async fn append_to_array(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id, field)): Path<(String, String, String)>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let object = body.read()?;
    let element_id = state.ids.next();
    let mut answer = object.clone();
    let command = DocumentCommand::AppendToArray {
        schema: schema.clone(),
        field,
        id: element_id,
        object,
    };
    let Json(_) = execute(&state, &caller, &schema, &id, &Query::default(), command).await?;
    answer.insert("id".into(), json!(element_id.to_string()));
    Ok(Json(Value::Object(answer)))
}

/// `PUT /data/v1/{schema}/documents/{id}/{field}/{element}?<rql>`: sets the given fields of one
/// element; `null` removes one.
async fn update_in_array(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id, field, element)): Path<(String, String, String, String)>,
    Rql(query): Rql,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let changes = body.read()?;
    let command = DocumentCommand::UpdateInArray {
        schema: schema.clone(),
        field,
        id: parse_id(&element)?,
        changes,
    };
    execute(&state, &caller, &schema, &id, &query, command).await
}

/// `DELETE /data/v1/{schema}/documents/{id}/{field}/{element}?<rql>`.
async fn remove_from_array(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id, field, element)): Path<(String, String, String, String)>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let command = DocumentCommand::RemoveFromArray {
        schema: schema.clone(),
        field,
        id: parse_id(&element)?,
    };
    execute(&state, &caller, &schema, &id, &query, command).await
}

/// A comment as the data service returns it.
fn comment_json(row: &CommentRow) -> Value {
    json!({
        "id": row.id,
        "schemaId": row.schema_id,
        "documentId": row.document_id,
        "creatorId": row.creator_id,
        "text": row.text,
        "commentedTimestamp": iso_time(row.commented_timestamp),
        "creationTimestamp": iso_time(row.creation_timestamp),
        "updateTimestamp": iso_time(row.update_timestamp),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentText {
    text: String,
}

/// `GET /data/v1/{schema}/documents/{id}/comments?<rql>`: one's own document's, or with
/// `VIEW_DOCUMENT_COMMENTS`.
async fn list_comments(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let document_id = parse_id(&id)?;
    let (document, _) = state
        .bus
        .load::<Document>(&StreamId::of(Document::KIND, document_id))
        .await?;
    document
        .comments_readable_by(&caller.actor, &schema)
        .map_err(vigil_commands::CommandError::Domain)?;
    let page = model::comments(&state.store, &document_id.to_string(), &query).await?;
    Ok(rendered_page(page, &query, comment_json))
}

/// `POST /data/v1/{schema}/documents/{id}/comments`: `{text}`; answers the comment.
async fn add_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id)): Path<(String, String)>,
    body: JsonBody<CommentText>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let CommentText { text } = body.read()?;
    let comment_id = state.ids.next();
    let command = DocumentCommand::AddComment {
        schema: schema.clone(),
        id: comment_id,
        text,
    };
    let Json(_) = execute(&state, &caller, &schema, &id, &Query::default(), command).await?;
    let row = model::comment(&state.store, &comment_id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!("comment {comment_id} was added but is not listed"))
        })?;
    Ok(Json(comment_json(&row)))
}

/// `PUT /data/v1/{schema}/documents/{id}/comments/{comment}`: `{text}`; one's own comment, or
/// with `UPDATE_DOCUMENT_COMMENTS`.
async fn update_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id, comment)): Path<(String, String, String)>,
    body: JsonBody<CommentText>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let CommentText { text } = body.read()?;
    let command = DocumentCommand::UpdateComment {
        schema: schema.clone(),
        id: parse_id(&comment)?,
        text,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}

/// `DELETE /data/v1/{schema}/documents/{id}/comments/{comment}`: one's own comment, or with
/// `UPDATE_DOCUMENT_COMMENTS`.
async fn remove_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path((schema, id, comment)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let schema = snapshot(&state, &schema).await?;
    let command = DocumentCommand::RemoveComment {
        schema: schema.clone(),
        id: parse_id(&comment)?,
    };
    execute(&state, &caller, &schema, &id, &Query::default(), command).await
}
