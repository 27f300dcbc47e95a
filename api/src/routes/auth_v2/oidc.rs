//! OpenID Connect login providers: `/auth/v2/oidc/providers…`, the login through one
//! (`…/{providerName}/oAuth2Login`) and the record of such logins (`/auth/v2/oidc/loginAttempts`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::auth::oidc::{self, OidcError, OidcLogin, ProviderForm};
use vigil_commands::flow::CommandError;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::oidc::{
    AttemptError, LoginAttempted, OidcLogin as LoginRecord, OidcProvider, OidcProviderCommand,
};
use vigil_domain::error::{DomainError, ExhCode};
use vigil_domain::id::{Id, StreamId};
use vigil_projections::auth::oidc::{self as model, LoginAttemptRow, ProviderRow};

use super::{TokenRequest, authenticate_client, credentials, parse_request};
use crate::error::ApiError;
use crate::extract::{
    Caller, JsonBody, OptionalJsonBody, RawBody, RequestContext, Rql, json_body, parse_id,
};
use crate::routes::{execute_on, rendered_page};
use crate::state::{AppState, AuthService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oidc/providers", get(list).post(create))
        .route("/oidc/providers/{id}", put(update).delete(remove))
        .route("/oidc/providers/{id}/enable", post(enable))
        .route("/oidc/providers/{id}/disable", post(disable))
        .route(
            "/oidc/providers/{id}/generateAuthenticationUrl",
            post(authentication_url),
        )
        .route("/oidc/providers/{id}/oAuth2Login", post(login))
        .route("/oidc/providers/{id}/link", post(link))
        .route("/oidc/users/{id}/unlink", post(unlink))
        .route("/oidc/loginAttempts", get(login_attempts))
}

fn provider_json(row: &ProviderRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "clientId": row.client_id,
        "clientSecretHint": row.client_secret_hint,
        "issuerId": row.issuer_id,
        "authorizationEndpoint": row.authorization_endpoint,
        "tokenEndpoint": row.token_endpoint,
        "userinfoEndpoint": row.userinfo_endpoint,
        "redirectUri": row.redirect_uri,
        "enabled": row.enabled,
        "creationTimestamp": row.creation_timestamp,
        "updateTimestamp": row.update_timestamp,
    })
}

/// A provider's settings as the SDK sends them (camelCase).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Form {
    name: Option<String>,
    description: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    issuer_id: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    redirect_uri: Option<String>,
}

impl From<Form> for ProviderForm {
    fn from(form: Form) -> Self {
        Self {
            name: form.name,
            description: form.description,
            client_id: form.client_id,
            client_secret: form.client_secret,
            issuer_id: form.issuer_id,
            authorization_endpoint: form.authorization_endpoint,
            token_endpoint: form.token_endpoint,
            userinfo_endpoint: form.userinfo_endpoint,
            redirect_uri: form.redirect_uri,
        }
    }
}

/// `POST /auth/v2/oidc/providers`: a new provider, disabled until enabled.
async fn create(
    State(state): State<AuthService>,
    caller: Caller,
    body: JsonBody<Form>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_OIDC_PROVIDER")?;
    let form = body.read()?;
    let (id, outcome) = oidc::create(
        &state.bus,
        &state.ids,
        &state.vault,
        form.into(),
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    let query = vigil_projections::rql::parse(&format!("eq(id,{id})"))?;
    let page = model::providers(&state.store, &query).await?;
    let row = page
        .data
        .first()
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No provider with this id"))?;
    Ok(Json(provider_json(row)))
}

/// `GET /auth/v2/oidc/providers?<rql>`.
async fn list(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_OIDC_PROVIDERS")?;
    let page = model::providers(&state.store, &query).await?;
    Ok(rendered_page(page, &query, provider_json))
}

/// `PUT /auth/v2/oidc/providers/{id}`: changes the given settings.
async fn update(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<Form>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_OIDC_PROVIDER")?;
    let id = parse_id(&id)?;
    let form = body.read()?;
    let outcome = oidc::update(&state.bus, &state.vault, id, form.into(), &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /auth/v2/oidc/providers/{id}`: only a disabled provider nobody logs in through.
async fn remove(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_OIDC_PROVIDER")?;
    let id = parse_id(&id)?;
    state.settle(state.bus.log().head().await?).await?;
    let linked = model::linked_users(&state.store, &id.to_string()).await?;
    let outcome = oidc::delete(&state.bus, id, linked, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

async fn enable(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    execute_on::<OidcProvider>(&state, &caller, &id, OidcProviderCommand::Enable).await
}

async fn disable(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    execute_on::<OidcProvider>(&state, &caller, &id, OidcProviderCommand::Disable).await
}

/// The provider named `name` (whether it may be used is the command's to check).
async fn named(state: &AuthService, name: &str) -> Result<(Id, OidcProvider), ApiError> {
    oidc::by_name(&state.bus, name)
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No OIDC provider of this name"))
}

#[derive(Deserialize, Default)]
struct UrlRequest {
    state: Option<String>,
}

/// `POST /auth/v2/oidc/providers/{providerName}/generateAuthenticationUrl` (public): where to send
/// the user to log in at the provider.
async fn authentication_url(
    State(state): State<AuthService>,
    Path(name): Path<String>,
    body: OptionalJsonBody<UrlRequest>,
) -> Result<Json<Value>, ApiError> {
    let request = body.read()?;
    let (id, provider) = named(&state, &name).await?;
    let settings = provider
        .usable()
        .map_err(|e| ApiError::new(e.exh(), e.to_string()))?;
    let nonce = oidc::nonce(&state.vault, id, vigil_commands::ids::now());
    let url = oidc::authentication_url(settings, &nonce, request.state.as_deref());
    Ok(Json(json!({"authenticationUrl": url})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginRequest {
    authorization_code: Option<String>,
}

fn oidc_error(error: OidcError) -> ApiError {
    match error {
        OidcError::InvalidAuthorizationCode(why) => ApiError::new(
            ExhCode::OidcInvalidAuthorizationCode,
            format!("The provider refused the authorization code: {why}"),
        ),
        OidcError::ProviderResponse(why) => ApiError::new(ExhCode::OidcProviderResponse, why),
        OidcError::IdToken(why) => ApiError::new(
            ExhCode::OidcIdToken,
            format!("The ID token could not be verified: {why}"),
        ),
        OidcError::Nonce => ApiError::new(ExhCode::InvalidNonce, error.to_string()),
        OidcError::Provider(error) => error.into(),
        OidcError::User(CommandError::Taken("email")) => {
            ApiError::new(ExhCode::EmailUsed, "This email address is already in use")
        }
        OidcError::User(error) => error.into(),
        OidcError::Login(error) => error.into(),
        OidcError::Vault(error) => ApiError::internal(error),
    }
}

/// `POST /auth/v2/oidc/providers/{providerName}/oAuth2Login` (client credentials): redeems the
/// provider's authorization code; the user it names (created on the first login) gets tokens.
/// Every attempt through an existing provider is recorded.
async fn login(
    State(state): State<AuthService>,
    context: RequestContext,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let client: TokenRequest =
        parse_request(&headers, &body).map_err(|e| ApiError::new(e.code, e.description))?;
    let (application_id, _) = authenticate_client(&state, &headers, &client)
        .await
        .map_err(|e| ApiError::new(e.code, e.description))?;
    let LoginRequest { authorization_code } = json_body(&body)?;
    let code = authorization_code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ExhCode::MissingRequiredFields,
                "authorizationCode is required",
            )
        })?;
    let (provider_id, provider) = named(&state, &name).await?;
    let meta = context.meta(Actor::anonymous(
        Some(application_id),
        Via::Http,
        context.client_ip.clone(),
    ));
    let mut subject = None;
    let login = OidcLogin {
        provider_id,
        provider: &provider,
        application_id,
        authorization_code: &code,
    };
    let result = oidc::login(
        &state.bus,
        (&state.ids, &state.vault, state.auth().lifetimes),
        &state.auth().oidc,
        login,
        &mut subject,
        meta.clone(),
    )
    .await
    .map_err(oidc_error);
    let attempt = LoginAttempted {
        provider_id,
        provider_name: provider
            .settings
            .as_ref()
            .map_or_else(|| name.clone(), |s| s.name.clone()),
        subject_id: subject,
        user_id: result.as_ref().ok().map(|tokens| tokens.user_id),
        error: result.as_ref().err().map(|error| AttemptError {
            code: error.code.code(),
            name: error.code.name().to_owned(),
            message: error.message.clone(),
        }),
    };
    let record = meta.step("attempt");
    let attempt_id = state.ids.next();
    let recorded = state
        .bus
        .execute::<LoginRecord>(
            &StreamId::of(LoginRecord::KIND, attempt_id),
            &attempt,
            &record,
        )
        .await?;
    // A refused login is listed before it is answered, like a successful one.
    state.settle(recorded.position).await?;
    let tokens = result?;
    state.settle(tokens.outcome.position).await?;
    Ok(credentials(json!({
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
        "user_id": tokens.user_id.to_string(),
        "application_id": tokens.application_id.to_string(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkRequest {
    presence_token: Option<String>,
    authorization_code: Option<String>,
}

/// `POST /auth/v2/oidc/providers/{providerName}/link`: the caller logs in through the provider
/// from now on (with a presence token: their password is removed, every login ends).
async fn link(
    State(state): State<AuthService>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<LinkRequest>,
) -> Result<Json<Value>, ApiError> {
    let LinkRequest {
        presence_token,
        authorization_code,
    } = body.read()?;
    let (Some(presence_token), Some(code)) = (presence_token, authorization_code) else {
        return Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            "presenceToken and authorizationCode are required",
        ));
    };
    let (provider_id, provider) = named(&state, &name).await?;
    let outcome = oidc::link(
        &state.bus,
        (&state.vault, &state.auth().oidc),
        caller.user_id,
        (provider_id, &provider, &code),
        &presence_token,
        &caller.meta(),
    )
    .await
    .map_err(|error| match error {
        OidcError::User(CommandError::Taken(_)) => ApiError::new(
            ExhCode::ResourceAlreadyExists,
            "This identity at the provider is linked to another account",
        ),
        other => oidc_error(other),
    })?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `POST /auth/v2/oidc/users/{userId}/unlink` (`UNLINK_USER_FROM_OIDC`): the user no longer logs
/// in through OIDC and is mailed a code to choose a password with.
async fn unlink(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UNLINK_USER_FROM_OIDC")?;
    let user_id = parse_id(&id)?;
    if !state.sends_mail {
        return Err(ApiError::new(
            ExhCode::IllegalState,
            "This deployment sends no mail (no SMTP server is configured); the unlinked user could not choose a password",
        ));
    }
    let outcome = oidc::unlink(&state.bus, &state.ids, user_id, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

fn attempt_json(row: &LoginAttemptRow) -> Value {
    let mut attempt = json!({
        "id": row.id,
        "status": row.status,
        "providerId": row.provider_id,
        "providerName": row.provider_name,
        "providerSubjectId": row.provider_subject_id,
        "creationTimestamp": row.creation_timestamp,
        "updateTimestamp": row.creation_timestamp,
    });
    if let Some(user_id) = &row.user_id {
        attempt["userId"] = json!(user_id);
    }
    if let Some(error) = &row.error {
        attempt["error"] = error.0.clone();
    }
    attempt
}

/// `GET /auth/v2/oidc/loginAttempts?<rql>`.
async fn login_attempts(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_OIDC_LOGIN_ATTEMPTS")?;
    let page = model::login_attempts(&state.store, &query).await?;
    Ok(rendered_page(page, &query, attempt_json))
}
