//! `/users/v1`: the user service (snake_case fields, epoch-millisecond timestamps).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;
use vigil_domain::permission;
use vigil_projections::page::{self, Page};
use vigil_projections::roles::{self, RoleRow};
use vigil_projections::users::{self, Scope, UserRow};

use crate::error::ApiError;
use crate::extract::{Caller, Rql, parse_id};
use crate::routes::page_json;
use crate::state::AppState;
use crate::views::RawJson;

mod account;
mod global_roles;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).delete(account::remove_matching))
        .route("/me", get(me))
        .route("/{id}", get(by_id))
        .merge(account::router())
        .merge(global_roles::router())
        .merge(super::health())
}

/// A role as the user service shows it.
fn role_json(role: &RoleRow) -> Value {
    let permissions: Vec<Value> = role
        .permissions
        .iter()
        .map(|name| {
            let known = permission::CATALOGUE.iter().any(|(known, _)| known == name);
            let description = if known {
                permission::describe(name)
            } else {
                String::new()
            };
            json!({"name": name, "description": description})
        })
        .collect();
    json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": permissions,
        "creation_timestamp": role.creation_timestamp,
        "update_timestamp": role.update_timestamp,
    })
}

/// The full view of a user (for the user themselves and for holders of `VIEW_USER`).
fn user_json(user: &UserRow, roles: &[&RoleRow]) -> Value {
    let mut object = json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone_number": user.phone_number,
        "language": user.language,
        "time_zone": user.time_zone,
        "activation": user.activation,
        "roles": roles.iter().map(|r| role_json(r)).collect::<Vec<_>>(),
        "staff_enlistments": [],
        "patient_enlistments": [],
        "failed_count": user.failed_count,
        "creation_timestamp": user.creation_timestamp,
        "update_timestamp": user.update_timestamp,
    });
    if let Some(map) = object.as_object_mut() {
        if let Some(image) = &user.profile_image {
            map.insert("profile_image".into(), json!(image));
        }
        if let Some(at) = user.last_failed_timestamp {
            map.insert("last_failed_timestamp".into(), json!(at));
        }
    }
    object
}

/// Renders users with their roles (two queries for the whole page).
async fn render(state: &AppState, users: &[UserRow]) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let links = users::role_ids(&state.store, &ids).await?;
    let role_ids: Vec<String> = links.iter().map(|(_, role)| role.clone()).collect();
    let roles = roles::by_ids(&state.store, &role_ids).await?;
    let mut by_user: BTreeMap<&str, Vec<&RoleRow>> = BTreeMap::new();
    for (user, role) in &links {
        if let Some(role) = roles.get(role) {
            by_user.entry(user.as_str()).or_default().push(role);
        }
    }
    Ok(users
        .iter()
        .map(|u| user_json(u, by_user.get(u.id.as_str()).map_or(&[][..], Vec::as_slice)))
        .collect())
}

/// `GET /users/v1/me`.
async fn me(State(state): State<AppState>, caller: Caller) -> Result<RawJson, ApiError> {
    rendered_user(&state, caller.user_id).await
}

/// The full view of one user: kept in memory while current, else rendered from the read models.
async fn rendered_user(state: &AppState, id: Id) -> Result<RawJson, ApiError> {
    if let Some(view) = state.user_views.get(id, state.access.view_changed_at(id)) {
        return Ok(view);
    }
    // Taken before reading, so the kept view is never credited with changes it may have missed.
    let read_at = state.projector.position();
    let user = users::find(&state.store, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No user with this id"))?;
    let rendered = render(state, std::slice::from_ref(&user)).await?;
    let view = RawJson(
        serde_json::to_vec(&rendered.first().unwrap_or(&Value::Null))
            .map_err(ApiError::internal)?
            .into(),
    );
    state.user_views.put(id, read_at, view.clone());
    Ok(view)
}

/// `GET /users/v1/` with RQL. Holders of `VIEW_USER` see everyone.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let scope = if caller.actor.allows("VIEW_USER") {
        Scope::All
    } else {
        Scope::Only(vec![])
    };
    let page = users::list(&state.store, &query, scope).await?;
    let rendered = render(&state, &page.data).await?;
    let select = query.select.as_deref();
    let page = Page {
        data: rendered
            .into_iter()
            .map(|user| page::select(user, select))
            .collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    };
    Ok(Json(page_json(page)))
}

/// `GET /users/v1/{id}`: oneself, or anyone with `VIEW_USER`.
async fn by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<RawJson, ApiError> {
    let id = parse_id(&id)?;
    if id != caller.user_id {
        caller.require("VIEW_USER")?;
    }
    rendered_user(&state, id).await
}
