//! Global roles and permissions: `/users/v1/permissions`, `/users/v1/roles…`, and giving roles to
//! users (`/users/v1/add_roles`, `/users/v1/remove_roles`). Bulk operations select their records
//! with RQL, which they require.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::{DomainError, ExhCode};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::permission;
use vigil_domain::users::bulk::BulkChange;
use vigil_domain::users::role::{Role, RoleCommand};
use vigil_projections::page::Page;
use vigil_projections::rql::Query;
use vigil_projections::users::{role, user};

use super::role_json;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::{page_json, rendered_page, required_filter};
use crate::state::{AppState, UsersService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/permissions", get(permissions))
        .route("/roles", get(list).post(create).delete(remove))
        .route("/roles/{id}", put(update))
        .route("/roles/add_permissions", post(add_permissions))
        .route("/roles/remove_permissions", post(remove_permissions))
        .route("/add_roles", post(add_roles))
        .route("/remove_roles", post(remove_roles))
}

/// `GET /users/v1/permissions`: the known global permissions.
async fn permissions() -> Json<Value> {
    catalogue(false)
}

/// The permission catalogue as a page; `in_groups`: only those that mean something in a group role.
pub(super) fn catalogue(in_groups: bool) -> Json<Value> {
    let data: Vec<Value> = permission::CATALOGUE
        .iter()
        .filter(|(_, group_scoped)| *group_scoped || !in_groups)
        .map(|(name, _)| json!({"name": name, "description": permission::describe(name)}))
        .collect();
    let count = data.len() as u64;
    Json(page_json(Page {
        data,
        total: Some(count),
        offset: 0,
        limit: count,
    }))
}

async fn list(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_ROLE")?;
    let page = role::list(&state.store, &query).await?;
    Ok(rendered_page(page, &query, role_json))
}

#[derive(Deserialize)]
pub(super) struct NewRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
pub(super) struct RoleChanges {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PermissionNames {
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct RoleIds {
    pub roles: Vec<String>,
}

/// The role as the read model shows it once it reflects `position`.
async fn rendered_role(
    state: &UsersService,
    id: Id,
    position: u64,
) -> Result<Json<Value>, ApiError> {
    state.settle(position).await?;
    let id = id.to_string();
    let role = role::by_ids(&state.store, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No role with this id"))?;
    Ok(Json(role_json(&role)))
}

async fn create(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<NewRole>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_ROLE")?;
    let NewRole { name, description } = body.read()?;
    let id = state.ids.next();
    let outcome = state
        .bus
        .execute::<Role>(
            &StreamId::of(Role::KIND, id),
            &RoleCommand::Create { name, description },
            &caller.meta(),
        )
        .await?;
    rendered_role(&state, id, outcome.position).await
}

async fn update(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<RoleChanges>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_ROLE")?;
    let id = parse_id(&id)?;
    let RoleChanges { name, description } = body.read()?;
    let outcome = state
        .bus
        .execute::<Role>(
            &StreamId::of(Role::KIND, id),
            &RoleCommand::Update { name, description },
            &caller.meta(),
        )
        .await?;
    rendered_role(&state, id, outcome.position).await
}

/// Runs `command` on every aggregate of kind `A` with one of `ids`, then waits until the read
/// models show all of it. Answers `{"affectedRecords": n}` with the number of records acted on.
pub(super) async fn each<A: Aggregate>(
    state: &UsersService,
    caller: &Caller,
    ids: Vec<String>,
    command: A::Command,
) -> Result<Json<Value>, ApiError>
where
    A::Error: DomainError,
{
    let mut last = 0;
    for id in &ids {
        let id = parse_id(id)?;
        let outcome = state
            .bus
            .execute::<A>(&StreamId::of(A::KIND, id), &command, &caller.meta())
            .await?;
        last = last.max(outcome.position);
    }
    state.settle(last).await?;
    Ok(Json(json!({"affectedRecords": ids.len()})))
}

/// Makes `change` to the users `ids` as one job (recorded first, finished by the scheduler if this
/// node stops half way); answers how many were changed.
pub(super) async fn bulk(
    state: &UsersService,
    caller: &Caller,
    change: BulkChange,
    ids: &[String],
) -> Result<Json<Value>, ApiError> {
    let user_ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<_>, _>>()?;
    if user_ids.is_empty() {
        return Ok(Json(json!({"affectedRecords": 0})));
    }
    let done = vigil_commands::users::bulk::run(
        &state.bus,
        state.ids.next(),
        change,
        user_ids,
        &caller.meta(),
    )
    .await?;
    state.settle(done.position).await?;
    Ok(Json(json!({"affectedRecords": done.affected})))
}

async fn remove(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_ROLE")?;
    required_filter(&query)?;
    let ids = role::matching(&state.store, &query).await?;
    each::<Role>(&state, &caller, ids, RoleCommand::Delete).await
}

/// Adds or removes permissions on every role the RQL selects.
async fn change_permissions(
    state: &UsersService,
    caller: &Caller,
    query: &Query,
    body: JsonBody<PermissionNames>,
    permission: &'static str,
    change: fn(Vec<String>) -> RoleCommand,
) -> Result<Json<Value>, ApiError> {
    caller.require(permission)?;
    let PermissionNames { permissions } = body.read()?;
    required_filter(query)?;
    let ids = role::matching(&state.store, query).await?;
    each::<Role>(state, caller, ids, change(permissions)).await
}

async fn add_permissions(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
    body: JsonBody<PermissionNames>,
) -> Result<Json<Value>, ApiError> {
    let add = |permissions| RoleCommand::AddPermissions { permissions };
    change_permissions(&state, &caller, &query, body, "ADD_ROLE_PERMISSION", add).await
}

async fn remove_permissions(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
    body: JsonBody<PermissionNames>,
) -> Result<Json<Value>, ApiError> {
    let remove = |permissions| RoleCommand::RemovePermissions { permissions };
    change_permissions(
        &state,
        &caller,
        &query,
        body,
        "REMOVE_ROLE_PERMISSION",
        remove,
    )
    .await
}

/// The existing roles among `ids`; unknown ones are ignored, as Extra Horizon does.
fn existing_roles(state: &UsersService, ids: &[String]) -> Result<Vec<Id>, ApiError> {
    let mut roles = Vec::with_capacity(ids.len());
    for id in ids {
        let id = parse_id(id)?;
        if state.access.role_exists(id) {
            roles.push(id);
        }
    }
    Ok(roles)
}

async fn add_roles(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
    body: JsonBody<RoleIds>,
) -> Result<Json<Value>, ApiError> {
    caller.require("ADD_ROLE_TO_USER")?;
    let RoleIds { roles } = body.read()?;
    let role_ids = existing_roles(&state, &roles)?;
    required_filter(&query)?;
    let ids = user::matching(&state.store, &query, user::Scope::All).await?;
    bulk(&state, &caller, BulkChange::AddRoles { role_ids }, &ids).await
}

async fn remove_roles(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
    body: JsonBody<RoleIds>,
) -> Result<Json<Value>, ApiError> {
    caller.require("REMOVE_ROLE_FROM_USER")?;
    let RoleIds { roles } = body.read()?;
    let role_ids = roles
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<_>, _>>()?;
    required_filter(&query)?;
    let ids = user::matching(&state.store, &query, user::Scope::All).await?;
    bulk(&state, &caller, BulkChange::RemoveRoles { role_ids }, &ids).await
}
