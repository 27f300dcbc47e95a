//! `/users/v1`: the user service (snake_case fields, epoch-millisecond timestamps).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;
use vigil_domain::permission;
use vigil_domain::users::user_view::{self, Enlisted, UserView};
use vigil_projections::page::Page;
use vigil_projections::users::group as group_model;
use vigil_projections::users::role::{self, RoleRow};
use vigil_projections::users::user::{self, InGroups, Scope, UserRow};

use crate::error::ApiError;
use crate::extract::{Caller, Rql, parse_id};
use crate::routes::rendered_page;
use crate::state::{AppState, UsersService};
use crate::views::RawJson;

mod account;
mod global_roles;
mod groups;
mod verification;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).delete(account::remove_matching))
        .route("/me", get(me))
        .route("/{id}", get(by_id))
        .route("/patients", get(patients))
        .route("/staff", get(staff))
        .merge(account::router())
        .merge(groups::router())
        .merge(global_roles::router())
        .merge(verification::router())
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

/// A group role as the user service shows it.
fn group_role_json(role: &RoleRow) -> Value {
    json!({
        "id": role.id,
        "group_id": role.group_id,
        "name": role.name,
        "description": role.description,
        "permissions": role.permissions,
        "creation_timestamp": role.creation_timestamp,
        "update_timestamp": role.update_timestamp,
    })
}

/// What the full view of a user is made of besides the user's row.
#[derive(Default)]
struct Related<'a> {
    roles: Vec<&'a RoleRow>,
    staff_enlistments: Vec<Value>,
    patient_enlistments: Vec<Value>,
    /// The OIDC providers the user logs in through.
    oidc_links: Vec<Value>,
    /// Whether the view changes with time alone (a patient enlistment that will expire).
    expires: bool,
}

/// The full view of a user (for the user themselves and for holders of `VIEW_USER`).
fn user_json(user: &UserRow, related: Related<'_>) -> Value {
    let mut object = json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone_number": user.phone_number,
        "language": user.language,
        "time_zone": user.time_zone,
        "activation": user.activation,
        "roles": related.roles.iter().map(|r| role_json(r)).collect::<Vec<_>>(),
        "staff_enlistments": related.staff_enlistments,
        "patient_enlistments": related.patient_enlistments,
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
        if !related.oidc_links.is_empty() {
            map.insert("oidc_links".into(), json!(related.oidc_links));
        }
    }
    object
}

/// Renders the full view of users with their roles and enlistments (a few queries for the whole
/// page), each with whether it will change as time passes.
async fn render(state: &UsersService, users: &[UserRow]) -> Result<Vec<(Value, bool)>, ApiError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let links = user::role_ids(&state.store, &ids).await?;
    let role_ids: Vec<String> = links.iter().map(|(_, role)| role.clone()).collect();
    let roles = role::by_ids(&state.store, &role_ids).await?;
    let (staff, patients) = group_model::enlistments(&state.store, &ids).await?;
    let group_role_ids: Vec<String> = staff.iter().flat_map(|s| s.role_ids.clone()).collect();
    let group_roles = group_model::roles_by_ids(&state.store, &group_role_ids).await?;
    let oidc_links = vigil_projections::auth::oidc::links_of(&state.store, &ids).await?;
    let now = vigil_commands::ids::now().millis();
    let mut related: BTreeMap<&str, Related<'_>> = BTreeMap::new();
    for link in &oidc_links {
        related
            .entry(link.user_id.as_str())
            .or_default()
            .oidc_links
            .push(json!({"provider_id": link.provider_id, "subject_id": link.subject_id}));
    }
    for (user, role) in &links {
        if let Some(role) = roles.get(role) {
            related.entry(user.as_str()).or_default().roles.push(role);
        }
    }
    for enlistment in &staff {
        let roles: Vec<Value> = enlistment
            .role_ids
            .iter()
            .filter_map(|id| group_roles.get(id))
            .map(group_role_json)
            .collect();
        related
            .entry(enlistment.user_id.as_str())
            .or_default()
            .staff_enlistments
            .push(json!({
                "group_id": enlistment.group_id,
                "roles": roles,
                "creation_timestamp": enlistment.creation_timestamp,
                "update_timestamp": enlistment.update_timestamp,
            }));
    }
    for enlistment in &patients {
        let entry = related.entry(enlistment.user_id.as_str()).or_default();
        let mut object = json!({
            "group_id": enlistment.group_id,
            "expired": enlistment.expiry_timestamp.is_some_and(|at| at <= now),
            "creation_timestamp": enlistment.creation_timestamp,
        });
        if let (Some(at), Some(map)) = (enlistment.expiry_timestamp, object.as_object_mut()) {
            map.insert("expiry_timestamp".into(), json!(at));
            entry.expires |= at > now;
        }
        entry.patient_enlistments.push(object);
    }
    Ok(users
        .iter()
        .map(|u| {
            let related = related.remove(u.id.as_str()).unwrap_or_default();
            let expires = related.expires;
            (user_json(u, related), expires)
        })
        .collect())
}

/// Which groups' enlistments a limited view shows (`None`: all of them).
type Shown<'a> = Option<&'a BTreeSet<Id>>;

/// Keeps the enlistments in `field` of a rendered user that are in `groups`.
fn keep_enlistments(object: &mut serde_json::Map<String, Value>, field: &str, groups: Shown<'_>) {
    let Some(groups) = groups else { return };
    if let Some(Value::Array(enlistments)) = object.get_mut(field) {
        enlistments.retain(|e| {
            e.get("group_id")
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<Id>().ok())
                .is_some_and(|g| groups.contains(&g))
        });
    }
}

/// A rendered user's full view as `view` shows it.
fn shown(full: Value, view: &UserView) -> Value {
    match view {
        UserView::Full => full,
        UserView::Patient { groups } => patient_view(full, groups.as_ref()),
        UserView::Staff { groups } => staff_view(full, groups.as_ref()),
    }
}

/// The patient view: what staff of a patient's group (or holders of `VIEW_PATIENTS`) see.
fn patient_view(full: Value, groups: Shown<'_>) -> Value {
    limited(
        full,
        &[
            "id",
            "first_name",
            "last_name",
            "email",
            "activation",
            "phone_number",
            "profile_image",
            "language",
            "time_zone",
            "patient_enlistments",
        ],
        "patient_enlistments",
        groups,
    )
}

/// The staff view: what fellow staff and a group's patients (or holders of `VIEW_STAFF`) see.
fn staff_view(full: Value, groups: Shown<'_>) -> Value {
    limited(
        full,
        &[
            "id",
            "first_name",
            "last_name",
            "profile_image",
            "email",
            "phone_number",
            "time_zone",
            "staff_enlistments",
        ],
        "staff_enlistments",
        groups,
    )
}

fn limited(full: Value, fields: &[&str], enlistments: &str, groups: Shown<'_>) -> Value {
    let Value::Object(mut object) = full else {
        return full;
    };
    object.retain(|key, _| fields.contains(&key.as_str()));
    keep_enlistments(&mut object, enlistments, groups);
    Value::Object(object)
}

/// The groups as the read models' lists take them.
fn in_groups(groups: &BTreeSet<Id>) -> InGroups {
    InGroups::Of(groups.iter().map(Id::to_string).collect())
}

/// The groups of a rendered user's enlistments of one kind.
fn groups_in(full: &Value, field: &str) -> BTreeSet<Id> {
    full.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("group_id").and_then(Value::as_str))
        .filter_map(|g| g.parse().ok())
        .collect()
}

/// `GET /users/v1/me`.
async fn me(State(state): State<UsersService>, caller: Caller) -> Result<RawJson, ApiError> {
    rendered_user(&state, caller.user_id).await
}

/// The full view of one user, rendered from the read models.
async fn full_user(state: &UsersService, id: Id) -> Result<(Value, bool), ApiError> {
    let user = user::find(&state.store, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No user with this id"))?;
    render(state, std::slice::from_ref(&user))
        .await?
        .pop()
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No user with this id"))
}

/// The full view of one user: kept in memory while current, else rendered from the read models.
async fn rendered_user(state: &UsersService, id: Id) -> Result<RawJson, ApiError> {
    if let Some(view) = state
        .users()
        .views
        .get(id, state.access.view_changed_at(id))
    {
        return Ok(view);
    }
    // Taken before reading, so the kept view is never credited with changes it may have missed.
    let read_at = state.projector.position();
    let (full, expires) = full_user(state, id).await?;
    let view = RawJson(
        serde_json::to_vec(&full)
            .map_err(ApiError::internal)?
            .into(),
    );
    // A view that changes with the clock (an expiring enlistment) is rendered each time.
    if !expires {
        state.users().views.put(id, read_at, view.clone());
    }
    Ok(view)
}

/// A page of rendered users, each shown as `view` makes it.
async fn page_of(
    state: &UsersService,
    query: &vigil_projections::rql::Query,
    scope: Scope,
    view: impl Fn(Value) -> Value,
) -> Result<Json<Value>, ApiError> {
    let page = user::list(&state.store, query, scope).await?;
    let rendered = render(state, &page.data).await?;
    let page = Page {
        data: rendered,
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    };
    Ok(rendered_page(page, query, |(user, _)| view(user.clone())))
}

/// `GET /users/v1/` with RQL. Holders of `VIEW_USER` see everyone in full; staff see the patients
/// (patient view) and staff (staff view) of their groups, and patients the staff of theirs.
async fn list(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    if caller.actor.allows("VIEW_USER") {
        return page_of(&state, &query, Scope::All, |user| user).await;
    }
    let (staff_of, either) = (
        user_view::staff_of(&caller.actor),
        user_view::member_of(&caller.actor),
    );
    let scope = Scope::Enlisted {
        patient: Some(in_groups(&staff_of)),
        staff: Some(in_groups(&either)),
    };
    page_of(&state, &query, scope, |user| {
        let view =
            user_view::listed_view_of(&caller.actor, &groups_in(&user, "patient_enlistments"));
        shown(user, &view)
    })
    .await
}

/// `GET /users/v1/patients`: every patient for holders of `VIEW_PATIENTS`, else the patients of
/// the caller's staff groups.
async fn patients(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    if caller.actor.allows("VIEW_PATIENTS") {
        let scope = Scope::Enlisted {
            patient: Some(InGroups::Any),
            staff: None,
        };
        return page_of(&state, &query, scope, |user| patient_view(user, None)).await;
    }
    let staff_of = user_view::staff_of(&caller.actor);
    let scope = Scope::Enlisted {
        patient: Some(in_groups(&staff_of)),
        staff: None,
    };
    page_of(&state, &query, scope, |user| {
        patient_view(user, Some(&staff_of))
    })
    .await
}

/// `GET /users/v1/staff`: every staff member for holders of `VIEW_STAFF`, else the staff of the
/// caller's staff groups.
async fn staff(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    if caller.actor.allows("VIEW_STAFF") {
        let scope = Scope::Enlisted {
            patient: None,
            staff: Some(InGroups::Any),
        };
        return page_of(&state, &query, scope, |user| staff_view(user, None)).await;
    }
    let staff_of = user_view::staff_of(&caller.actor);
    let scope = Scope::Enlisted {
        patient: None,
        staff: Some(in_groups(&staff_of)),
    };
    page_of(&state, &query, scope, |user| {
        staff_view(user, Some(&staff_of))
    })
    .await
}

/// `GET /users/v1/{id}`: oneself or, with `VIEW_USER`, anyone in full; a patient of the caller's
/// staff groups (or any patient, with `VIEW_PATIENTS`) in the patient view; a staff member of a
/// group the caller is in (or any, with `VIEW_STAFF`) in the staff view.
async fn by_id(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = parse_id(&id)?;
    let target = state.access.rights(id);
    let staff_in: BTreeSet<Id> = target.staff.keys().copied().collect();
    let enlisted = Enlisted {
        patient: &target.patient,
        staff: &staff_in,
    };
    match user_view::view_of(&caller.actor, id, enlisted) {
        Some(UserView::Full) => Ok(rendered_user(&state, id).await?.into_response()),
        Some(view) => {
            let (full, _) = full_user(&state, id).await?;
            Ok(Json(shown(full, &view)).into_response())
        }
        None => Err(ApiError::no_permission("VIEW_USER")),
    }
}
