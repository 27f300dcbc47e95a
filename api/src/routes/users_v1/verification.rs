//! How email addresses are verified: the verification settings (`/users/v1/settings/verification`),
//! the templates of the mails (`/users/v1/email_templates`), and the pending activation and
//! password-reset requests (`/users/v1/activation_requests`, `/users/v1/forgot_password_requests`),
//! which an administrator may clear to unblock a user.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::error::ExhCode;
use vigil_domain::users::settings::{
    self, Settings, SettingsCommand, TemplateRef, TemplateSlot, VerificationChanges,
};
use vigil_domain::users::user::{User, UserCommand};
use vigil_domain::users::verification::Purpose;
use vigil_projections::users::verification::{self, VerificationRequestRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::{execute_on, rendered_page};
use crate::state::{AppState, UsersService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings/verification",
            get(verification_settings).put(change_verification_settings),
        )
        .route(
            "/email_templates",
            get(email_templates).put(change_email_templates),
        )
        .route("/activation_requests", get(list_requests::<ACTIVATION>))
        .route(
            "/activation_requests/{id}",
            delete(clear_request::<ACTIVATION>),
        )
        .route(
            "/forgot_password_requests",
            get(list_requests::<PASSWORD_RESET>),
        )
        .route(
            "/forgot_password_requests/{id}",
            delete(clear_request::<PASSWORD_RESET>),
        )
}

/// `GET /users/v1/settings/verification`.
async fn verification_settings(
    State(state): State<UsersService>,
    caller: Caller,
) -> Result<Json<settings::VerificationSettings>, ApiError> {
    caller.require("VIEW_USER_VERIFICATION_SETTINGS")?;
    let (settings, _) = state.bus.load::<Settings>(&settings::stream()).await?;
    Ok(Json(settings.verification))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Changes {
    enable_pin_code_activation_requests: Option<bool>,
    enable_pin_code_forgot_password_requests: Option<bool>,
    limit_hash_activation_requests: Option<bool>,
    limit_hash_forgot_password_requests: Option<bool>,
}

/// `PUT /users/v1/settings/verification`: changes the given settings; answers them all.
async fn change_verification_settings(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<Changes>,
) -> Result<Json<settings::VerificationSettings>, ApiError> {
    caller.require("UPDATE_USER_VERIFICATION_SETTINGS")?;
    let changes = body.read()?;
    let command = SettingsCommand::ChangeVerification(VerificationChanges {
        enable_pin_code_activation_requests: changes.enable_pin_code_activation_requests,
        enable_pin_code_forgot_password_requests: changes.enable_pin_code_forgot_password_requests,
        limit_hash_activation_requests: changes.limit_hash_activation_requests,
        limit_hash_forgot_password_requests: changes.limit_hash_forgot_password_requests,
    });
    let stream = settings::stream();
    state
        .bus
        .execute::<Settings>(&stream, &command, &caller.meta())
        .await?;
    let (settings, _) = state.bus.load::<Settings>(&stream).await?;
    Ok(Json(settings.verification))
}

/// The configured templates as the user service shows them: `<slot>_email_template_<id|name>`.
fn templates_json(settings: &Settings) -> Value {
    let fields: serde_json::Map<String, Value> = settings
        .email_templates
        .iter()
        .map(|(slot, template)| {
            let (kind, value) = match template {
                TemplateRef::Id(id) => ("id", id),
                TemplateRef::Name(name) => ("name", name),
            };
            (
                format!("{}_email_template_{kind}", slot.prefix()),
                json!(value),
            )
        })
        .collect();
    Value::Object(fields)
}

/// `GET /users/v1/email_templates`: the templates set (unset ones are left out).
async fn email_templates(
    State(state): State<UsersService>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_USER_SERVICE_EMAIL_TEMPLATES")?;
    let (settings, _) = state.bus.load::<Settings>(&settings::stream()).await?;
    Ok(Json(templates_json(&settings)))
}

/// `PUT /users/v1/email_templates`: sets (or, with `null`, clears) the templates given; an id
/// and a name exclude each other. Answers all templates.
async fn change_email_templates(
    State(state): State<UsersService>,
    caller: Caller,
    body: JsonBody<serde_json::Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_USER_SERVICE_EMAIL_TEMPLATES")?;
    let fields = body.read()?;
    let mut changes = Vec::new();
    for (field, value) in fields {
        let parsed = TemplateSlot::ALL.iter().find_map(|slot| {
            let kind = field
                .strip_prefix(slot.prefix())?
                .strip_prefix("_email_template_")?;
            Some((*slot, kind))
        });
        let (slot, template) = match (parsed, value) {
            (Some((slot, _)), Value::Null) => (slot, None),
            (Some((slot, "id")), Value::String(id)) => (slot, Some(TemplateRef::Id(id))),
            (Some((slot, "name")), Value::String(name)) => (slot, Some(TemplateRef::Name(name))),
            _ => {
                return Err(ApiError::new(
                    ExhCode::FieldFormat,
                    format!("{field} is not an email template setting (a string or null)"),
                ));
            }
        };
        if template.is_some()
            && changes
                .iter()
                .any(|(s, t): &(TemplateSlot, Option<TemplateRef>)| *s == slot && t.is_some())
        {
            return Err(ApiError::new(
                ExhCode::FieldFormat,
                format!(
                    "the {} email template is given by both id and name",
                    slot.prefix()
                ),
            ));
        }
        changes.push((slot, template));
    }
    // A set template wins over the other field of its slot cleared in the same request.
    changes.sort_by_key(|(slot, template)| (*slot, template.is_some()));
    let stream = settings::stream();
    state
        .bus
        .execute::<Settings>(
            &stream,
            &SettingsCommand::ChangeEmailTemplates(changes),
            &caller.meta(),
        )
        .await?;
    let (settings, _) = state.bus.load::<Settings>(&stream).await?;
    Ok(Json(templates_json(&settings)))
}

const ACTIVATION: bool = true;
const PASSWORD_RESET: bool = false;

fn purpose(activation: bool) -> Purpose {
    if activation {
        Purpose::Activation
    } else {
        Purpose::PasswordReset
    }
}

fn request_json(row: &VerificationRequestRow) -> Value {
    json!({
        "id": row.id,
        "user_id": row.user_id,
        "mode": row.mode,
        "request_count": row.request_count,
        "last_request_timestamp": row.last_request_timestamp,
        "failed_attempts": row.failed_attempts,
        "last_failed_attempt_timestamp": row.last_failed_attempt_timestamp,
        "expiry_timestamp": row.expiry_timestamp,
        "creation_timestamp": row.creation_timestamp,
        "update_timestamp": row.update_timestamp,
    })
}

/// `GET /users/v1/{activation,forgot_password}_requests?<rql>`: the pending requests.
async fn list_requests<const ACTIVATION: bool>(
    State(state): State<UsersService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let purpose = purpose(ACTIVATION);
    caller.require(match purpose {
        Purpose::Activation => "VIEW_ACTIVATION_REQUESTS",
        Purpose::PasswordReset => "VIEW_FORGOT_PASSWORD_REQUESTS",
    })?;
    let page = verification::list(&state.store, purpose, &query).await?;
    Ok(rendered_page(page, &query, request_json))
}

/// `DELETE /users/v1/{activation,forgot_password}_requests/{id}`: clears the run of requests, so
/// that the user may ask for new mails at once.
async fn clear_request<const ACTIVATION: bool>(
    State(state): State<UsersService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let purpose = purpose(ACTIVATION);
    caller.require(match purpose {
        Purpose::Activation => "DELETE_ACTIVATION_REQUEST",
        Purpose::PasswordReset => "DELETE_FORGOT_PASSWORD_REQUEST",
    })?;
    let request_id = parse_id(&id)?;
    let user = verification::owner(&state.store, purpose, request_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(ExhCode::ResourceUnknown, "No pending request with this id")
        })?;
    let command = UserCommand::ClearVerification {
        purpose,
        request_id,
    };
    execute_on::<User>(&state, &caller, &user, command).await
}
