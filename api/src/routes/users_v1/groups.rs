//! Groups: group roles (`/users/v1/groups/{groupId}/roles…`), staff enlistments
//! (`/users/v1/add_to_staff`, `/users/v1/remove_from_staff`, `/groups/{groupId}/staff/…`) and
//! patient enlistments (`/users/v1/{userId}/patient_enlistments`).
//!
//! Group permissions are held globally or, by staff, through the group roles of their enlistment
//! in that group: every route checks them for the group it names before reading the body.

use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::users::group::{Group, GroupCommand};
use vigil_domain::users::user::{User, UserCommand};
use vigil_domain::value::Timestamp;
use vigil_projections::users::group;
use vigil_projections::users::user::{self, InGroups, Scope};

use super::global_roles::{NewRole, PermissionNames, RoleChanges, RoleIds, catalogue, each};
use super::group_role_json;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::{rendered_page, required_filter};
use crate::state::{AppState, UsersService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups/permissions", get(permissions))
        .route(
            "/groups/{group}/roles",
            get(list_roles).post(create_role).delete(delete_roles),
        )
        .route("/groups/{group}/roles/{role}", put(update_role))
        .route(
            "/groups/{group}/roles/add_permissions",
            post(role_permissions::<true>),
        )
        .route(
            "/groups/{group}/roles/remove_permissions",
            post(role_permissions::<false>),
        )
        .route("/groups/{group}/staff/add_roles", post(staff_roles::<true>))
        .route(
            "/groups/{group}/staff/remove_roles",
            post(staff_roles::<false>),
        )
        .route("/add_to_staff", post(staff_enlistments::<true>))
        .route("/remove_from_staff", post(staff_enlistments::<false>))
        .route("/{id}/patient_enlistments", post(add_patient))
        .route("/{id}/patient_enlistments/{group}", delete(remove_patient))
}

/// `GET /users/v1/groups/permissions`: the permissions that mean something inside a group role.
async fn permissions() -> Json<Value> {
    catalogue(true)
}

/// The group a path names, if the caller holds `permission` for it (globally or as its staff).
fn group_with(caller: &Caller, group: &str, permission: &'static str) -> Result<Id, ApiError> {
    let group = parse_id(group)?;
    caller
        .actor
        .require_in(group, permission, ApiError::no_permission)?;
    Ok(group)
}

fn group_stream(group: Id) -> StreamId {
    StreamId::of(Group::KIND, group)
}

/// `GET /users/v1/groups/{groupId}/roles`: for the group's staff, or with `VIEW_GROUP`.
async fn list_roles(
    State(state): State<UsersService>,
    caller: Caller,
    Path(group): Path<String>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let group = parse_id(&group)?;
    if !caller.actor.is_staff_of(group) {
        caller.require("VIEW_GROUP")?;
    }
    let page = group::list_roles(&state.store, &group.to_string(), &query).await?;
    Ok(rendered_page(page, &query, group_role_json))
}

#[derive(Deserialize)]
struct GroupIds {
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct NewPatientEnlistment {
    group_id: String,
    expiry_timestamp: Option<i64>,
}

/// The group role as the read model shows it once it reflects `position`.
async fn rendered_role(
    state: &UsersService,
    role: Id,
    position: u64,
) -> Result<Json<Value>, ApiError> {
    state.settle(position).await?;
    let role = role.to_string();
    let row = group::roles_by_ids(&state.store, std::slice::from_ref(&role))
        .await?
        .remove(&role)
        .ok_or_else(|| {
            ApiError::new(
                vigil_domain::error::ExhCode::ResourceUnknown,
                "No group role with this id",
            )
        })?;
    Ok(Json(group_role_json(&row)))
}

async fn create_role(
    State(state): State<UsersService>,
    caller: Caller,
    Path(group): Path<String>,
    body: JsonBody<NewRole>,
) -> Result<Json<Value>, ApiError> {
    let group = group_with(&caller, &group, "CREATE_GROUP_ROLE")?;
    let NewRole { name, description } = body.read()?;
    let role_id = state.ids.next();
    let command = GroupCommand::CreateRole {
        role_id,
        name,
        description,
    };
    let outcome = state
        .bus
        .execute::<Group>(&group_stream(group), &command, &caller.meta())
        .await?;
    rendered_role(&state, role_id, outcome.position).await
}

async fn update_role(
    State(state): State<UsersService>,
    caller: Caller,
    Path((group, role)): Path<(String, String)>,
    body: JsonBody<RoleChanges>,
) -> Result<Json<Value>, ApiError> {
    let group = group_with(&caller, &group, "UPDATE_GROUP_ROLE")?;
    let role_id = parse_id(&role)?;
    let RoleChanges { name, description } = body.read()?;
    let command = GroupCommand::UpdateRole {
        role_id,
        name,
        description,
    };
    let outcome = state
        .bus
        .execute::<Group>(&group_stream(group), &command, &caller.meta())
        .await?;
    rendered_role(&state, role_id, outcome.position).await
}

/// Runs one command on the group for the roles its RQL selects (all of them without a filter),
/// and answers how many roles were selected.
async fn on_roles(
    state: &UsersService,
    caller: &Caller,
    group: Id,
    query: &vigil_projections::rql::Query,
    command: impl FnOnce(Vec<Id>) -> GroupCommand,
) -> Result<Json<Value>, ApiError> {
    let ids = group::matching_roles(&state.store, &group.to_string(), query).await?;
    let role_ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<_>, _>>()?;
    let count = role_ids.len();
    let outcome = state
        .bus
        .execute::<Group>(&group_stream(group), &command(role_ids), &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": count})))
}

async fn delete_roles(
    State(state): State<UsersService>,
    caller: Caller,
    Path(group): Path<String>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let group = group_with(&caller, &group, "DELETE_GROUP_ROLE")?;
    required_filter(&query)?;
    on_roles(&state, &caller, group, &query, |role_ids| {
        GroupCommand::DeleteRoles { role_ids }
    })
    .await
}

/// `POST /groups/{groupId}/roles/add_permissions` (`ADD`) and `…/remove_permissions`: on the
/// roles of the group the RQL selects.
async fn role_permissions<const ADD: bool>(
    State(state): State<UsersService>,
    caller: Caller,
    Path(group): Path<String>,
    Rql(query): Rql,
    body: JsonBody<PermissionNames>,
) -> Result<Json<Value>, ApiError> {
    let permission = if ADD {
        "ADD_GROUP_ROLE_PERMISSION"
    } else {
        "REMOVE_GROUP_ROLE_PERMISSION"
    };
    let group = group_with(&caller, &group, permission)?;
    let PermissionNames { permissions } = body.read()?;
    on_roles(&state, &caller, group, &query, |role_ids| {
        if ADD {
            GroupCommand::AddPermissions {
                role_ids,
                permissions,
            }
        } else {
            GroupCommand::RemovePermissions {
                role_ids,
                permissions,
            }
        }
    })
    .await
}

/// The staff members of `group` the RQL selects (all of them without a filter).
async fn staff_of(
    state: &UsersService,
    group: Id,
    query: &vigil_projections::rql::Query,
) -> Result<Vec<String>, ApiError> {
    let scope = Scope::Enlisted {
        patient: None,
        staff: Some(InGroups::Of(vec![group.to_string()])),
    };
    Ok(user::matching(&state.store, query, scope).await?)
}

/// The ids in `roles` that are roles of `group`; others are ignored, as Extra Horizon does.
fn roles_of(state: &UsersService, group: Id, roles: &[String]) -> Result<Vec<Id>, ApiError> {
    let mut found = Vec::with_capacity(roles.len());
    for role in roles {
        let role = parse_id(role)?;
        if state.access.group_role_exists(group, role) {
            found.push(role);
        }
    }
    Ok(found)
}

/// `POST /groups/{groupId}/staff/add_roles` (`ADD`) and `…/remove_roles`: group roles given to
/// or taken from the staff members of the group the RQL selects.
async fn staff_roles<const ADD: bool>(
    State(state): State<UsersService>,
    caller: Caller,
    Path(group): Path<String>,
    Rql(query): Rql,
    body: JsonBody<RoleIds>,
) -> Result<Json<Value>, ApiError> {
    let permission = if ADD {
        "ADD_GROUP_ROLE_TO_STAFF"
    } else {
        "REMOVE_GROUP_ROLE_FROM_STAFF"
    };
    let group = group_with(&caller, &group, permission)?;
    let RoleIds { roles } = body.read()?;
    let ids = staff_of(&state, group, &query).await?;
    let command = if ADD {
        UserCommand::AddStaffRoles {
            group_id: group,
            role_ids: roles_of(&state, group, &roles)?,
        }
    } else {
        let role_ids = roles
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        UserCommand::RemoveStaffRoles {
            group_id: group,
            role_ids,
        }
    };
    each::<User>(&state, &caller, ids, command).await
}

/// The groups of a staff request, if the caller holds `permission` for every one of them.
fn staff_groups(
    caller: &Caller,
    body: JsonBody<GroupIds>,
    permission: &'static str,
) -> Result<Vec<Id>, ApiError> {
    let GroupIds { groups } = body.read()?;
    let groups = groups
        .iter()
        .map(|group| parse_id(group))
        .collect::<Result<Vec<_>, _>>()?;
    for group in &groups {
        caller
            .actor
            .require_in(*group, permission, ApiError::no_permission)?;
    }
    Ok(groups)
}

/// Whether the caller may use `permission` at all: globally, or in some group they are staff of.
fn may_ever(caller: &Caller, permission: &'static str) -> Result<(), ApiError> {
    let anywhere = caller.actor.allows(permission)
        || caller
            .actor
            .staff_groups()
            .any(|group| caller.actor.allows_in(group, permission));
    if anywhere {
        Ok(())
    } else {
        Err(ApiError::no_permission(permission))
    }
}

/// `POST /users/v1/add_to_staff?<rql>` (`ADD`) and `POST /users/v1/remove_from_staff?<rql>`:
/// the users the RQL selects join or leave the staff of `groups`.
async fn staff_enlistments<const ADD: bool>(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
    body: JsonBody<GroupIds>,
) -> Result<Json<Value>, ApiError> {
    let permission = if ADD { "ADD_STAFF" } else { "REMOVE_STAFF" };
    may_ever(&caller, permission)?;
    let groups = staff_groups(&caller, body, permission)?;
    required_filter(&query)?;
    let ids = user::matching(&state.store, &query, Scope::All).await?;
    let command = if ADD {
        UserCommand::AddToStaff { groups }
    } else {
        UserCommand::RemoveFromStaff { groups }
    };
    each::<User>(&state, &caller, ids, command).await
}

/// `POST /users/v1/{userId}/patient_enlistments` (`ADD_PATIENT`, globally).
async fn add_patient(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<NewPatientEnlistment>,
) -> Result<Json<Value>, ApiError> {
    caller.require("ADD_PATIENT")?;
    let id = parse_id(&id)?;
    let NewPatientEnlistment {
        group_id,
        expiry_timestamp,
    } = body.read()?;
    let command = UserCommand::EnlistPatient {
        group_id: parse_id(&group_id)?,
        expires_at: expiry_timestamp.map(Timestamp),
    };
    let outcome = state
        .bus
        .execute::<User>(&StreamId::of(User::KIND, id), &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /users/v1/{userId}/patient_enlistments/{groupId}`: oneself, or with `REMOVE_PATIENT`
/// globally or as staff of the group.
async fn remove_patient(
    State(state): State<UsersService>,
    caller: Caller,
    Path((id, group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let group = parse_id(&group)?;
    if id != caller.user_id {
        caller
            .actor
            .require_in(group, "REMOVE_PATIENT", ApiError::no_permission)?;
    }
    let command = UserCommand::RemovePatient { group_id: group };
    let outcome = state
        .bus
        .execute::<User>(&StreamId::of(User::KIND, id), &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}
