//! Documents: `/data/v1/{schema}/documents…`. Lists only ever show what the caller may read.
//! Handlers translate: writes are the use cases of [`Documents`] (the schema found, the users a
//! change names looked up, a request's RQL guard checked here against the read models and retried
//! there), decided by the document's aggregate against the schema as it is now.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vigil_commands::Outcome;
use vigil_commands::data::document::{Documents, Guard, GuardFailure};
use vigil_domain::data::document::{Document, DocumentChange, SchemaSnapshot, TransitionChoice};
use vigil_domain::data::schema::SchemaRef;
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;
use vigil_projections::data::document::{self as model, CommentRow, DocumentRow, ListedSchema};
use vigil_projections::page::Limits;
use vigil_projections::rql::{Cmp, Expr, Query, Scalar};
use vigil_projections::runner::Projection as _;
use vigil_schemas::index::Index;

use super::schemas::unknown_schema;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, OptionalJsonBody, Rql, SchemaPath, parse_id};
use crate::routes::{iso_time, rendered_page};
use crate::state::{AppState, DataService};

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

/// The document use cases, with this node's schema snapshots and the read store's unique values.
fn documents(state: &DataService) -> Documents<'_> {
    Documents {
        bus: &state.bus,
        snapshots: &state.data().snapshots,
        unique: &state.store,
    }
}

/// The schema a path names, as the read models show it (for queries: no read of the log once it
/// is in memory).
async fn listed_snapshot(
    state: &DataService,
    schema: &SchemaRef,
) -> Result<std::sync::Arc<SchemaSnapshot>, ApiError> {
    let (id, position) = vigil_projections::data::schema::locate(&state.store, schema)
        .await?
        .ok_or_else(unknown_schema)?;
    let id = parse_id(&id)?;
    state
        .data()
        .snapshots
        .listed(&state.bus, id, position)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unknown_schema)
}

/// The documents of `schema` the caller may read that `query` selects.
async fn readable(
    state: &DataService,
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
        &state.data().array_probes,
        applied,
    )
    .await?)
}

/// `POST /data/v1/{schema}/documents`: the body is the new document's data (gzip or not).
async fn create(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    body: OptionalJsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let schema = schema.read()?;
    let data = body.read()?;
    let id = state.ids.next();
    let outcome = documents(&state)
        .create(&schema, id, data, &caller.meta())
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
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let schema = listed_snapshot(&state, &schema.read()?).await?;
    let page = readable(&state, &caller, &schema, &query).await?;
    Ok(rendered_page(page, &query, document_json))
}

/// A request's RQL guard, checked against the read models: the document passes it if the caller
/// may read it and `filter` selects it.
struct RqlGuard<'a> {
    state: &'a DataService,
    caller: &'a Caller,
    filter: &'a Expr,
}

impl RqlGuard<'_> {
    async fn check(
        &self,
        schema: &SchemaSnapshot,
        id: Id,
        position: u64,
    ) -> Result<Option<bool>, ApiError> {
        self.state.settle(position).await?;
        let row = model::document(&self.state.store, &id.to_string()).await?;
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
                self.filter.clone(),
            ])),
            skip_count: true,
            ..Query::default()
        };
        let found = readable(self.state, self.caller, schema, &guard).await?;
        Ok(Some(!found.data.is_empty()))
    }
}

impl Guard for RqlGuard<'_> {
    fn passes<'a>(
        &'a self,
        schema: &'a SchemaSnapshot,
        id: Id,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<bool>, GuardFailure>> {
        Box::pin(async move { Ok(self.check(schema, id, position).await?) })
    }
}

/// Makes `change` to document `id` of the schema a path names; with an RQL `filter`, only if the
/// document passes it as it is when the change is decided. Answers how many documents changed.
async fn change(
    state: &DataService,
    caller: &Caller,
    schema: &SchemaRef,
    id: Id,
    filter: Option<&Expr>,
    change: DocumentChange,
) -> Result<Option<Outcome>, ApiError> {
    let guard = filter.map(|filter| RqlGuard {
        state,
        caller,
        filter,
    });
    let outcome = documents(state)
        .change(
            schema,
            id,
            change,
            guard.as_ref().map(|g| g as &dyn Guard),
            &caller.meta(),
        )
        .await?;
    if let Some(outcome) = &outcome {
        state.settle(outcome.position).await?;
    }
    Ok(outcome)
}

/// How many documents a change wrote, as the data service answers it.
fn affected(outcome: Option<Outcome>) -> Json<Value> {
    Json(json!({"affectedRecords": usize::from(outcome.is_some())}))
}

/// A document's path: `/{schema}/documents/{id}`.
#[derive(Deserialize)]
struct DocumentAt {
    id: String,
}

/// An array element's path: `/{schema}/documents/{id}/{field}/{element}`.
#[derive(Deserialize)]
struct ElementAt {
    id: String,
    field: String,
    element: Option<String>,
}

/// A comment's path: `/{schema}/documents/{id}/comments/{comment}`.
#[derive(Deserialize)]
struct CommentAt {
    id: String,
    comment: String,
}

/// `PUT /data/v1/{schema}/documents/{id}?<rql>`: sets the given fields; `null` removes one.
async fn update(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    Rql(query): Rql,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let changes = body.read()?;
    let outcome = change(
        &state,
        &caller,
        &schema,
        id,
        query.filter.as_ref(),
        DocumentChange::Update { changes },
    );
    Ok(affected(outcome.await?))
}

/// `DELETE /data/v1/{schema}/documents/{id}`.
async fn remove(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let outcome = change(&state, &caller, &schema, id, None, DocumentChange::Delete);
    Ok(affected(outcome.await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsToDelete {
    fields: Vec<String>,
}

/// `POST /data/v1/{schema}/documents/{id}/deleteFields?<rql>`: `{fields: ["a.b", …]}`.
async fn delete_fields(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    Rql(query): Rql,
    body: JsonBody<FieldsToDelete>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let FieldsToDelete { fields } = body.read()?;
    let outcome = change(
        &state,
        &caller,
        &schema,
        id,
        query.filter.as_ref(),
        DocumentChange::DeleteFields { fields },
    );
    Ok(affected(outcome.await?))
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
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    Rql(query): Rql,
    body: JsonBody<TransitionRequest>,
) -> Result<Json<Value>, ApiError> {
    let schema = schema.read()?;
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
    let id = parse_id(&at.id)?;
    let transition = DocumentChange::Transition {
        choice,
        data: request.data,
    };
    let outcome = change(
        &state,
        &caller,
        &schema,
        id,
        query.filter.as_ref(),
        transition,
    );
    Ok(affected(outcome.await?))
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
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    body: JsonBody<Groups>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let groups = body.read()?;
    let group_ids = parse_ids(&groups.group_ids.unwrap_or_default())?;
    let link = DocumentChange::LinkGroups { group_ids };
    let outcome = change(&state, &caller, &schema, id, None, link);
    Ok(affected(outcome.await?))
}

/// `POST /data/v1/{schema}/documents/{id}/unlinkGroups`: `{groupIds}`, or `{}` for all of them.
async fn unlink_groups(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    body: OptionalJsonBody<Groups>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let groups = body.read()?;
    let group_ids = groups.group_ids.as_deref().map(parse_ids).transpose()?;
    let unlink = DocumentChange::UnlinkGroups { group_ids };
    let outcome = change(&state, &caller, &schema, id, None, unlink);
    Ok(affected(outcome.await?))
}

/// `POST /data/v1/{schema}/documents/{id}/linkUsers`: `{userIds}`.
async fn link_users(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    body: JsonBody<Users>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let users = body.read()?;
    let user_ids = parse_ids(&users.user_ids.unwrap_or_default())?;
    let link = DocumentChange::LinkUsers { user_ids };
    let outcome = change(&state, &caller, &schema, id, None, link);
    Ok(affected(outcome.await?))
}

/// `POST /data/v1/{schema}/documents/{id}/unlinkUsers`: `{userIds}`, or `{}` for all of them.
async fn unlink_users(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    body: OptionalJsonBody<Users>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let users = body.read()?;
    let user_ids = users.user_ids.as_deref().map(parse_ids).transpose()?;
    let unlink = DocumentChange::UnlinkUsers { user_ids };
    let outcome = change(&state, &caller, &schema, id, None, unlink);
    Ok(affected(outcome.await?))
}

/// `POST /data/v1/{schema}/documents/{id}/{field}`: appends the body to the array of objects at
/// `field` under a new id; answers the element.
async fn append_to_array(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<ElementAt>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let object = body.read()?;
    let element_id = state.ids.next();
    let mut answer = object.clone();
    let append = DocumentChange::AppendToArray {
        field: at.field,
        id: element_id,
        object,
    };
    change(&state, &caller, &schema, id, None, append).await?;
    answer.insert("id".into(), json!(element_id.to_string()));
    Ok(Json(Value::Object(answer)))
}

/// The element a path names.
fn element(at: &ElementAt) -> Result<Id, ApiError> {
    parse_id(at.element.as_deref().unwrap_or_default())
}

/// `PUT /data/v1/{schema}/documents/{id}/{field}/{element}?<rql>`: sets the given fields of one
/// element; `null` removes one.
async fn update_in_array(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<ElementAt>,
    Rql(query): Rql,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let changes = body.read()?;
    let update = DocumentChange::UpdateInArray {
        id: element(&at)?,
        field: at.field,
        changes,
    };
    let outcome = change(&state, &caller, &schema, id, query.filter.as_ref(), update);
    Ok(affected(outcome.await?))
}

/// `DELETE /data/v1/{schema}/documents/{id}/{field}/{element}?<rql>`.
async fn remove_from_array(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<ElementAt>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let remove = DocumentChange::RemoveFromArray {
        id: element(&at)?,
        field: at.field,
    };
    let outcome = change(&state, &caller, &schema, id, query.filter.as_ref(), remove);
    Ok(affected(outcome.await?))
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
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    documents(&state)
        .comments_readable(&schema, id, &caller.actor)
        .await?;
    let page = model::comments(&state.store, &id.to_string(), &query).await?;
    Ok(rendered_page(page, &query, comment_json))
}

/// `POST /data/v1/{schema}/documents/{id}/comments`: `{text}`; answers the comment.
async fn add_comment(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<DocumentAt>,
    body: JsonBody<CommentText>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let CommentText { text } = body.read()?;
    let comment_id = state.ids.next();
    let add = DocumentChange::AddComment {
        id: comment_id,
        text,
    };
    change(&state, &caller, &schema, id, None, add).await?;
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
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<CommentAt>,
    body: JsonBody<CommentText>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let CommentText { text } = body.read()?;
    let update = DocumentChange::UpdateComment {
        id: parse_id(&at.comment)?,
        text,
    };
    let outcome = change(&state, &caller, &schema, id, None, update);
    Ok(affected(outcome.await?))
}

/// `DELETE /data/v1/{schema}/documents/{id}/comments/{comment}`: one's own comment, or with
/// `UPDATE_DOCUMENT_COMMENTS`.
async fn remove_comment(
    State(state): State<DataService>,
    caller: Caller,
    schema: SchemaPath,
    Path(at): Path<CommentAt>,
) -> Result<Json<Value>, ApiError> {
    let (schema, id) = (schema.read()?, parse_id(&at.id)?);
    let remove = DocumentChange::RemoveComment {
        id: parse_id(&at.comment)?,
    };
    let outcome = change(&state, &caller, &schema, id, None, remove);
    Ok(affected(outcome.await?))
}
