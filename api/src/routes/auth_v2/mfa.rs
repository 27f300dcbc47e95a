//! `/auth/v2/confirmPresence` and `/auth/v2/mfa/users/{userId}`: presence tokens and the MFA
//! settings of a user (TOTP methods, recovery codes, enable and disable). Every change asks for a
//! presence token of the caller; secrets and recovery codes are shown once, when they are made.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::auth::mfa::{self, Change, Shown};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::mfa::{Method, MethodType, Mfa, MfaChange};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::users::user::User;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, parse_id};
use crate::state::{AppState, AuthService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/confirmPresence", post(confirm_presence))
        .route("/mfa/users/{id}", get(settings))
        .route("/mfa/users/{id}/enable", post(switch::<true>))
        .route("/mfa/users/{id}/disable", post(switch::<false>))
        .route("/mfa/users/{id}/methods", post(add_method))
        .route(
            "/mfa/users/{id}/methods/{method}/verification/confirm",
            post(confirm_verification),
        )
        .route(
            "/mfa/users/{id}/methods/{method}/remove",
            post(remove_method),
        )
}

#[derive(Deserialize)]
struct PresenceRequest {
    password: Option<String>,
}

/// `POST /auth/v2/confirmPresence`: the caller's password again (throttled like a login) for a
/// presence token.
async fn confirm_presence(
    State(state): State<AuthService>,
    caller: Caller,
    body: JsonBody<PresenceRequest>,
) -> Result<Json<Value>, ApiError> {
    let request = body.read()?;
    let password = request
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::new(ExhCode::MissingRequiredFields, "password is required"))?;
    let presence = mfa::confirm_presence(
        &state.bus,
        &state.ids,
        caller.user_id,
        password,
        &caller.meta(),
    )
    .await?;
    Ok(Json(json!({
        "token": presence.token,
        "expiryTimestamp": presence.confirmed.expires_at.millis(),
        "creationTimestamp": presence.confirmed.at.millis(),
        "updateTimestamp": presence.confirmed.at.millis(),
    })))
}

/// The user whose settings a path names: the caller, or anyone with `permission`. An unknown
/// user is reported only to those who may see others' settings.
async fn target(
    state: &AuthService,
    caller: &Caller,
    user: &str,
    permission: &'static str,
) -> Result<Id, ApiError> {
    let user_id = parse_id(user)?;
    if user_id != caller.user_id {
        caller.require(permission)?;
    }
    let (found, _) = state
        .bus
        .load::<User>(&StreamId::of(User::KIND, user_id))
        .await?;
    if !found.registered || found.deleted {
        return Err(ApiError::new(ExhCode::ResourceUnknown, "No such user"));
    }
    Ok(user_id)
}

fn method_json(method: &Method) -> Value {
    json!({
        "id": method.id.to_string(),
        "type": method.method_type().wire_name(),
        "name": method.name,
        "tags": method.tags,
        "verified": method.verified,
        "creationTimestamp": method.created_at.millis(),
        "updateTimestamp": method.updated_at.millis(),
    })
}

/// `GET /auth/v2/mfa/users/{userId}`: the settings (a user who never set MFA up has empty ones).
async fn settings(
    State(state): State<AuthService>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user_id = target(&state, &caller, &user, "VIEW_USER_MFA_SETTINGS").await?;
    let (settings, _) = state
        .bus
        .load::<Mfa>(&vigil_domain::auth::mfa::stream(user_id))
        .await?;
    // Settings never changed date from the user's creation.
    let updated = settings.updated_at.unwrap_or_else(|| user_id.created_at());
    let mut body = json!({
        "id": user_id.to_string(),
        "enabled": settings.enabled,
        "methods": settings.methods.iter().map(method_json).collect::<Vec<_>>(),
        "updateTimestamp": updated.millis(),
        "failedAttempts": settings.failed_attempts,
    });
    if let (Some(map), Some(at)) = (body.as_object_mut(), settings.last_failed_at) {
        map.insert("lastFailedAttemptTimestamp".into(), json!(at.millis()));
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Presence {
    presence_token: Option<String>,
}

/// A change to the settings a path names, by the caller, with the caller's presence token.
async fn change_by(
    state: &AuthService,
    caller: &Caller,
    user: &str,
    presence_token: Option<String>,
) -> Result<Change, ApiError> {
    let user_id = target(state, caller, user, "UPDATE_USER_MFA_SETTINGS").await?;
    let presence_token = presence_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(ExhCode::MissingRequiredFields, "presenceToken is required")
    })?;
    Ok(Change {
        user_id,
        caller_id: caller.user_id,
        presence_token,
    })
}

/// `POST /auth/v2/mfa/users/{userId}/enable` and `…/disable`.
async fn switch<const ON: bool>(
    State(state): State<AuthService>,
    caller: Caller,
    Path(user): Path<String>,
    body: JsonBody<Presence>,
) -> Result<Json<Value>, ApiError> {
    let presence = body.read()?.presence_token;
    let who = change_by(&state, &caller, &user, presence).await?;
    let change = if ON {
        MfaChange::Enable
    } else {
        MfaChange::Disable
    };
    let outcome = mfa::change(&state.bus, &who, change, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(
        json!({"affectedRecords": usize::from(outcome.appended)}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMethod {
    presence_token: Option<String>,
    #[serde(rename = "type")]
    method_type: Option<String>,
    name: Option<String>,
    tags: Option<Vec<String>>,
}

/// `POST /auth/v2/mfa/users/{userId}/methods`: a TOTP method (answered with its secret, in base32)
/// or ten recovery codes (answered with the codes). Neither is shown again.
async fn add_method(
    State(state): State<AuthService>,
    caller: Caller,
    Path(user): Path<String>,
    body: JsonBody<NewMethod>,
) -> Result<Json<Value>, ApiError> {
    let request = body.read()?;
    let who = change_by(&state, &caller, &user, request.presence_token).await?;
    let method_type = match request.method_type.as_deref() {
        Some("totp") => MethodType::Totp,
        Some("recoveryCodes") => MethodType::RecoveryCodes,
        Some(other) => {
            return Err(ApiError::new(
                ExhCode::FieldFormat,
                format!("type {other} is not supported (totp or recoveryCodes)"),
            ));
        }
        None => {
            return Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "type is required",
            ));
        }
    };
    let tags = request.tags.unwrap_or_default();
    let unfit = |text: &String| {
        text.trim().is_empty() || text.chars().count() > 100 || text.chars().any(char::is_control)
    };
    if request.name.as_ref().is_some_and(unfit) || tags.len() > 20 || tags.iter().any(unfit) {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            "name and each tag are 1 to 100 characters, without control characters; at most 20 tags",
        ));
    }
    let (added, shown) = mfa::add_method(
        &state.bus,
        &state.vault,
        &state.ids,
        &who,
        (method_type, request.name, tags),
        &caller.meta(),
    )
    .await?;
    let mut body = json!({
        "id": added.method_id.to_string(),
        "type": method_type.wire_name(),
        "name": added.name,
        "tags": added.tags,
        "verified": false,
        "creationTimestamp": added.at.millis(),
        "updateTimestamp": added.at.millis(),
    });
    if let Some(map) = body.as_object_mut() {
        match shown {
            Shown::Secret(secret) => map.insert("secret".into(), json!(secret)),
            Shown::Codes(codes) => map.insert("codes".into(), json!(codes)),
        };
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    presence_token: Option<String>,
    code: Option<String>,
}

/// `POST /auth/v2/mfa/users/{userId}/methods/{methodId}/verification/confirm`: a TOTP code
/// proves the method works.
async fn confirm_verification(
    State(state): State<AuthService>,
    caller: Caller,
    Path((user, method)): Path<(String, String)>,
    body: JsonBody<Verification>,
) -> Result<Json<Value>, ApiError> {
    let request = body.read()?;
    let who = change_by(&state, &caller, &user, request.presence_token).await?;
    let method_id = parse_id(&method)?;
    let code = request
        .code
        .ok_or_else(|| ApiError::new(ExhCode::MissingRequiredFields, "code is required"))?;
    let outcome = mfa::verify_method(
        &state.bus,
        &state.vault,
        &who,
        method_id,
        &code,
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"description": "The method is verified"})))
}

/// `POST /auth/v2/mfa/users/{userId}/methods/{methodId}/remove`.
async fn remove_method(
    State(state): State<AuthService>,
    caller: Caller,
    Path((user, method)): Path<(String, String)>,
    body: JsonBody<Presence>,
) -> Result<Json<Value>, ApiError> {
    let presence = body.read()?.presence_token;
    let who = change_by(&state, &caller, &user, presence).await?;
    let method_id = parse_id(&method)?;
    let change = MfaChange::RemoveMethod { method_id };
    let outcome = mfa::change(&state.bus, &who, change, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(
        json!({"affectedRecords": usize::from(outcome.appended)}),
    ))
}
