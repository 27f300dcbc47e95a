//! `POST /tasks/v1/functions/{name}/executionCredentials` (a Vigil addition): execution
//! credentials made and handed to the function, as the Extra Horizon CLI makes them for a task.
//! See [`vigil_commands::tasks::execution`].

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::tasks::execution::{self, ExecutionError};
use vigil_domain::error::ExhCode;

use crate::edge::Origin;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::{AppState, TasksService};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/functions/{name}/executionCredentials",
        post(execution_credentials),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CredentialsRequest {
    permissions: Vec<String>,
    /// Where the function reaches the API; by default where this request reached it.
    api_host: Option<String>,
}

impl From<ExecutionError> for ApiError {
    fn from(error: ExecutionError) -> Self {
        match error {
            ExecutionError::NoPermission(permission) => Self::no_permission(permission),
            ExecutionError::NotHeld(_) => Self::new(ExhCode::NoPermission, error.to_string()),
            ExecutionError::Function(e) => e.into(),
            ExecutionError::Role(e) => e.into(),
            ExecutionError::User(e) => e.into(),
            ExecutionError::Application(e) => e.into(),
            ExecutionError::Token(e) => e.into(),
            ExecutionError::Login(e) => e.into(),
            ExecutionError::Log(e) => e.into(),
            ExecutionError::Secret(_) | ExecutionError::Vault(_) => Self::internal(error),
        }
    }
}

/// Makes (or renews) the function's execution credentials: answers who the function acts as.
async fn execution_credentials(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
    parts: Parts,
    body: JsonBody<CredentialsRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_TASK_FUNCTION")?;
    let CredentialsRequest {
        permissions,
        api_host,
    } = body.read()?;
    if permissions.iter().any(|p| p.is_empty() || p.len() > 200) || permissions.len() > 500 {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            "`permissions` lists at most 500 permission names",
        ));
    }
    let api_host = match api_host {
        Some(host) => host,
        None => {
            let origin = Origin::of(&parts);
            let host = origin.host.ok_or_else(|| {
                ApiError::new(
                    ExhCode::MissingRequiredFields,
                    "`apiHost` is needed: this request did not say which host it reached",
                )
            })?;
            format!("{}://{host}", origin.scheme)
        }
    };
    let request = execution::Request {
        permissions: permissions.clone(),
        api_host: api_host.clone(),
    };
    let (identity, outcome) = execution::grant(
        &state.bus,
        (&state.vault, &state.ids),
        &name,
        request,
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({
        "userId": identity.user_id.to_string(),
        "roleId": identity.role_id.to_string(),
        "applicationId": identity.application_id.to_string(),
        "permissions": permissions,
        "apiHost": api_host,
    })))
}
