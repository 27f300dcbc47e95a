//! `/auth/v2/oauth1`: OAuth1 logins (a request signed with the consumer key and secret alone,
//! carrying an email and password; with MFA enabled, finished at `…/tokens/mfa`), SSO tokens
//! that hand a logged-in user to another OAuth1 application, and listing and revoking tokens.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::auth::mfa::Answer;
use vigil_commands::auth::oauth1::{self, Issued};
use vigil_commands::secrets;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::auth::oauth1::{OAuth1Token, OAuth1TokenCommand};
use vigil_domain::commit::CommandMeta;
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;
use vigil_projections::auth::oauth1::OAuth1TokenRow;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, RequestContext, Rql, original_uri, parse_id};
use crate::routes::{execute_on, rendered_page};
use crate::state::{AppState, AuthService};

use super::{challenged_user, credentials, required};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth1/tokens", get(list).post(login))
        .route("/oauth1/tokens/mfa", post(mfa_login))
        .route("/oauth1/tokens/{id}", delete(revoke))
        .route("/oauth1/ssoTokens/generate", post(generate_sso))
        .route("/oauth1/ssoTokens/consume", post(consume_sso))
}

/// A request signed with a consumer key and secret alone: the consumer's application, and audit
/// metadata for what it asks.
struct ConsumerRequest {
    application_id: Id,
    meta: CommandMeta,
}

impl FromRequestParts<AppState> for ConsumerRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(context) = RequestContext::from_request_parts(parts, state).await;
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.starts_with("OAuth "))
            .ok_or_else(|| {
                ApiError::new(
                    ExhCode::ApplicationNotAuthenticated,
                    "This request must be signed with an OAuth1 consumer key",
                )
            })?;
        let signed = crate::oauth1::verify(
            state,
            header,
            &parts.method,
            original_uri(parts),
            &crate::edge::Origin::of(parts),
        )
        .await?;
        let meta = context.meta(Actor::anonymous(
            Some(signed.application_id),
            Via::Http,
            context.client_ip.clone(),
        ));
        Ok(Self {
            application_id: signed.application_id,
            meta,
        })
    }
}

/// Answers a new token (shown this once), once the read models show it.
async fn answer_issued(state: &AuthService, issued: &Issued) -> Result<Response, ApiError> {
    state.settle(issued.outcome.position).await?;
    let at = issued.at.millis();
    Ok(credentials(json!({
        "id": issued.token_id.to_string(),
        "userId": issued.user_id.to_string(),
        "applicationId": issued.application_id.to_string(),
        "token": issued.token,
        "tokenSecret": issued.token_secret,
        "creationTimestamp": at,
        "updateTimestamp": at,
    })))
}

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

/// `POST /auth/v2/oauth1/tokens`: an email and password for a token and token secret (shown
/// once), or `403 MFA_REQUIRED_EXCEPTION` with the challenge.
async fn login(
    State(state): State<AuthService>,
    ConsumerRequest {
        application_id,
        meta,
    }: ConsumerRequest,
    body: JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let credentials = body.read()?;
    let email = required(credentials.email, "email")?;
    let password = required(credentials.password, "password")?;
    let issued = oauth1::password_login(
        &state.bus,
        (&state.vault, &state.ids),
        application_id,
        (&email, password),
        meta,
    )
    .await?;
    answer_issued(&state, &issued).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MfaAnswer {
    token: Option<String>,
    method_id: Option<String>,
    code: Option<String>,
}

/// `POST /auth/v2/oauth1/tokens/mfa`: the second step of an OAuth1 login.
async fn mfa_login(
    State(state): State<AuthService>,
    ConsumerRequest {
        application_id,
        meta,
    }: ConsumerRequest,
    body: JsonBody<MfaAnswer>,
) -> Result<Response, ApiError> {
    let request = body.read()?;
    let token = required(request.token, "token")?;
    let method_id = parse_id(&required(request.method_id, "methodId")?)?;
    let code = required(request.code, "code")?;
    let user_id = challenged_user(&state, &token).await?;
    let answer = Answer {
        token,
        method_id,
        code,
    };
    let issued = oauth1::mfa_login(
        &state.bus,
        (&state.vault, &state.ids),
        (user_id, application_id),
        answer,
        meta,
    )
    .await?;
    answer_issued(&state, &issued).await
}

fn token_json(row: &OAuth1TokenRow) -> Value {
    json!({
        "id": row.id,
        "userId": row.user_id,
        "applicationId": row.application_id,
        "creationTimestamp": row.creation_timestamp,
        "updateTimestamp": row.update_timestamp,
    })
}

/// `GET /auth/v2/oauth1/tokens`: one's own tokens, or everyone's with `VIEW_AUTHORIZATIONS`.
async fn list(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user_id.to_string();
    let of_user = (!caller.actor.allows("VIEW_AUTHORIZATIONS")).then_some(user.as_str());
    let listed = vigil_projections::auth::oauth1::list(&state.store, &query, of_user).await?;
    Ok(rendered_page(listed, &query, token_json))
}

/// `DELETE /auth/v2/oauth1/tokens/{id}`: one's own, or anyone's with `DELETE_AUTHORIZATIONS`.
async fn revoke(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    execute_on::<OAuth1Token>(&state, &caller, &id, OAuth1TokenCommand::Revoke).await
}

/// `POST /auth/v2/oauth1/ssoTokens/generate`: a one-time token for the caller, valid 5 minutes.
async fn generate_sso(
    State(state): State<AuthService>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let application_id = caller.application_id.ok_or_else(|| {
        ApiError::new(
            ExhCode::ApplicationNotAuthenticated,
            "An SSO token is made through an application",
        )
    })?;
    let sso = oauth1::generate_sso(
        &state.bus,
        &state.ids,
        (caller.user_id, application_id),
        &caller.meta(),
    )
    .await?;
    state.settle(sso.outcome.position).await?;
    let at = sso.at.millis();
    Ok(Json(json!({
        "id": sso.id.to_string(),
        "ssoToken": sso.token,
        "userId": sso.created.user_id.to_string(),
        "createdByApplicationId": application_id.to_string(),
        "expiryTimestamp": sso.created.expires_at.millis(),
        "creationTimestamp": at,
        "updateTimestamp": at,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consume {
    sso_token: Option<String>,
}

/// `POST /auth/v2/oauth1/ssoTokens/consume`: signed by the consuming application; the SSO token
/// for OAuth1 credentials of that application.
async fn consume_sso(
    State(state): State<AuthService>,
    ConsumerRequest {
        application_id,
        meta,
    }: ConsumerRequest,
    body: JsonBody<Consume>,
) -> Result<Response, ApiError> {
    let request = body.read()?;
    let token = required(request.sso_token, "ssoToken")?;
    let unknown = || {
        ApiError::new(
            ExhCode::ResourceUnknown,
            "The SSO token is unknown, used or expired",
        )
    };
    let sso_id = state
        .lookup(|access| access.sso_token(&secrets::token_digest(&token)))
        .await?
        .ok_or_else(unknown)?;
    let issued = oauth1::consume_sso(
        &state.bus,
        (&state.vault, &state.ids),
        (sso_id, &token),
        application_id,
        meta,
    )
    .await?;
    answer_issued(&state, &issued).await
}
