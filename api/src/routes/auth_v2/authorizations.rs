//! `/auth/v2/oauth2/authorizations`: a logged-in user lets a client application obtain tokens for
//! them with an authorization code (optionally bound to a PKCE challenge); the code is shown once,
//! in the answer to its creation, and redeemed at the token endpoint.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::secrets;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::Application;
use vigil_domain::auth::authorization::{
    Authorization, AuthorizationCommand, AuthorizationCreated, CODE_VALID_SECONDS, CodeChallenge,
};
use vigil_domain::error::ExhCode;
use vigil_domain::id::StreamId;
use vigil_projections::auth::authorization::{self, AuthorizationRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql};
use crate::routes::{execute_on, rendered_page};
use crate::state::{AppState, AuthService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/authorizations", get(list).post(create))
        .route("/oauth2/authorizations/{id}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAuthorization {
    response_type: String,
    client_id: String,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn authorization_json(row: &AuthorizationRow) -> Value {
    let mut object = json!({
        "id": row.id,
        "clientId": row.client_id,
        "userId": row.user_id,
        "redirectUri": row.redirect_uri,
        "expiryTimestamp": row.expiry_timestamp,
        "creationTimestamp": row.creation_timestamp,
        "updateTimestamp": row.update_timestamp,
    });
    if let Some(map) = object.as_object_mut() {
        for (key, value) in [
            ("state", &row.state),
            ("codeChallengeMethod", &row.code_challenge_method),
            ("codeChallenge", &row.code_challenge),
        ] {
            if let Some(value) = value {
                map.insert(key.into(), json!(value));
            }
        }
    }
    object
}

/// The challenge of a new authorization: none, or a method (`S256`, the default, or `plain`) and a
/// challenge of 43 to 128 characters (RFC 7636 §4.2).
fn challenge(
    code_challenge: Option<String>,
    method: Option<String>,
) -> Result<Option<CodeChallenge>, ApiError> {
    let Some(challenge) = code_challenge else {
        return match method {
            Some(_) => Err(ApiError::new(
                ExhCode::MissingRequiredFields,
                "codeChallengeMethod needs a codeChallenge",
            )),
            None => Ok(None),
        };
    };
    let plausible = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !plausible {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            "codeChallenge must be 43 to 128 characters of [A-Za-z0-9-._~]",
        ));
    }
    match method.as_deref() {
        None | Some("S256") => Ok(Some(CodeChallenge::S256(challenge))),
        Some("plain") => Ok(Some(CodeChallenge::Plain(challenge))),
        Some(other) => Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("codeChallengeMethod {other} is not supported (S256 or plain)"),
        )),
    }
}

/// The longest `state` a client may have an authorization carry back to it.
const LONGEST_STATE: usize = 1024;

/// `POST /auth/v2/oauth2/authorizations`: a code for the caller, for the client `clientId`, to be
/// received at one of its registered redirect URIs (the first, when none is named).
async fn create(
    State(state): State<AuthService>,
    caller: Caller,
    body: JsonBody<NewAuthorization>,
) -> Result<Json<Value>, ApiError> {
    let request = body.read()?;
    if request.response_type != "code" {
        return Err(ApiError::new(
            ExhCode::UnsupportedResponseType,
            "Only responseType code is supported",
        ));
    }
    let client = state
        .lookup(|access| access.client(&request.client_id))
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ApplicationUnknown, "Unknown clientId"))?;
    let (application, _) = state
        .bus
        .load::<Application>(&StreamId::of(Application::KIND, client.application_id))
        .await
        .map_err(ApiError::internal)?;
    if !application.oauth2 {
        return Err(ApiError::new(
            ExhCode::ApplicationUnknown,
            "clientId is not an OAuth2 application's",
        ));
    }
    let redirect_uri = match request.redirect_uri {
        Some(uri) if application.redirect_uris.contains(&uri) => uri,
        Some(_) => return Err(callback_not_valid()),
        None => application
            .redirect_uris
            .first()
            .cloned()
            .ok_or_else(callback_not_valid)?,
    };
    let challenge = challenge(request.code_challenge, request.code_challenge_method)?;
    let fitting =
        |state: &String| state.len() <= LONGEST_STATE && !state.chars().any(char::is_control);
    if !request.state.as_ref().is_none_or(fitting) {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("state must be at most {LONGEST_STATE} bytes, without control characters"),
        ));
    }
    let (code, code_digest) = secrets::new_token();
    let id = state.ids.next();
    let command = AuthorizationCommand::Create(AuthorizationCreated {
        user_id: caller.user_id,
        application_id: client.application_id,
        client_id: request.client_id,
        redirect_uri,
        state: request.state,
        challenge,
        code_digest,
        expires_at: vigil_commands::ids::now().plus_seconds(CODE_VALID_SECONDS),
    });
    let outcome = state
        .bus
        .execute::<Authorization>(
            &StreamId::of(Authorization::KIND, id),
            &command,
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    let row = authorization::find(&state.store, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No authorization with this id"))?;
    let mut created = authorization_json(&row);
    if let Some(map) = created.as_object_mut() {
        map.insert("authorizationCode".into(), json!(code));
    }
    Ok(Json(created))
}

fn callback_not_valid() -> ApiError {
    ApiError::new(
        ExhCode::CallbackNotValid,
        "redirectUri is not one the application registered",
    )
}

/// `GET /auth/v2/oauth2/authorizations`: one's own, or everyone's with `VIEW_AUTHORIZATIONS`.
async fn list(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user_id.to_string();
    let of_user = (!caller.actor.allows("VIEW_AUTHORIZATIONS")).then_some(user.as_str());
    let page = authorization::list(&state.store, &query, of_user).await?;
    Ok(rendered_page(page, &query, authorization_json))
}

/// `DELETE /auth/v2/oauth2/authorizations/{id}`: one's own, or any with `DELETE_AUTHORIZATIONS`.
async fn revoke(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    execute_on::<Authorization>(&state, &caller, &id, AuthorizationCommand::Revoke).await
}
