//! `/auth/v2`: the OAuth2 token endpoint (password, refresh, authorization-code and MFA grants).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use vigil_commands::auth::session::{self, LoginError, Tokens};
use vigil_commands::{CommandError, secrets};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::auth::session::SessionError;
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;

use crate::error::{ApiError, OAuthError};
use crate::extract::{RawBody, RequestContext, json_body};
use crate::state::{AppState, AuthService};

mod applications;
mod authorizations;
mod mfa;
mod oauth1;
mod oidc;
mod tokens;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/tokens", post(token))
        .merge(applications::router())
        .merge(authorizations::router())
        .merge(mfa::router())
        .merge(oauth1::router())
        .merge(oidc::router())
        .merge(tokens::router())
        .merge(super::health())
}

/// The token request, as JSON (what the SDK sends) or form-encoded (RFC 6749).
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    /// The MFA grant: the challenge token, the method answering it and its code.
    token: Option<String>,
    method_id: Option<String>,
}

fn parse_request(headers: &HeaderMap, body: &Bytes) -> Result<TokenRequest, OAuthError> {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        serde_urlencoded::from_bytes(body).map_err(|e| {
            OAuthError::new(
                "invalid_request",
                ExhCode::BodyFormat,
                format!("The request body is not valid: {e}"),
            )
        })
    } else {
        Ok(json_body(body)?)
    }
}

/// Client credentials from HTTP Basic authentication, if given.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Authenticates the client application: its id must be known, and a confidential client must
/// present its secret (compared by digest, in constant time). Answers the application and the
/// client id it authenticated with.
async fn authenticate_client(
    state: &AuthService,
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<(Id, String), OAuthError> {
    let (client_id, secret) = match basic_credentials(headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (request.client_id.clone(), request.client_secret.clone()),
    };
    let Some(client_id) = client_id.filter(|id| !id.is_empty()) else {
        return Err(OAuthError::new(
            "invalid_request",
            ExhCode::OAuth2MissingClientCredentials,
            "client_id is required",
        ));
    };
    let client = state
        .lookup(|access| access.client(&client_id))
        .await?
        .ok_or_else(|| {
            OAuthError::new(
                "invalid_client",
                ExhCode::OAuth2ClientId,
                "Unknown client_id",
            )
        })?;
    if client.confidential {
        let presented = secret.map(|s| secrets::token_digest(&s));
        if !presented.is_some_and(|digest| digest.ct_eq(&client.secret_digest)) {
            return Err(OAuthError::new(
                "invalid_client",
                ExhCode::OAuth2ClientSecret,
                "The client secret is missing or wrong",
            ));
        }
    }
    Ok((client.application_id, client_id))
}

/// The user an open MFA challenge was issued to, by the challenge's token (the second step of an
/// OAuth2 or OAuth1 login).
async fn challenged_user(state: &AuthService, token: &str) -> Result<Id, ApiError> {
    state
        .lookup(|access| access.mfa_challenge_user(&secrets::token_digest(token)))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ExhCode::InvalidMfaToken,
                "The MFA token is unknown or has expired",
            )
        })
}

/// New credentials as a JSON answer that no cache may keep.
fn credentials(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A field the request must carry, not empty (at the token endpoint an `invalid_request`).
fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::new(
            ExhCode::MissingRequiredFields,
            format!("{name} is required"),
        )
    })
}

fn session_error(error: CommandError<SessionError>) -> OAuthError {
    match error {
        CommandError::Domain(SessionError::RefreshTokenExpired) => OAuthError::new(
            "invalid_grant",
            ExhCode::RefreshTokenExpired,
            "The refresh token has expired",
        ),
        // A reused one ended its session, but is answered like any unknown one.
        CommandError::Domain(
            SessionError::RefreshTokenUnknown | SessionError::RefreshTokenReused,
        ) => OAuthError::new(
            "invalid_grant",
            ExhCode::RefreshTokenUnknown,
            "The refresh token is unknown",
        ),
        other => ApiError::from(other).into(),
    }
}

/// A failed login in the OAuth2 error shape: a refused grant is `invalid_grant`, a login that
/// needs its second factor `mfa_required`.
fn login_error(error: LoginError) -> OAuthError {
    let label = match &error {
        LoginError::MfaRequired(_) => Some("mfa_required"),
        LoginError::InvalidCredentials
        | LoginError::Throttled(_)
        | LoginError::Authorization(CommandError::Domain(_))
        | LoginError::Mfa(CommandError::Domain(_)) => Some("invalid_grant"),
        _ => None,
    };
    if let LoginError::Command(command) = error {
        return session_error(command);
    }
    let error = ApiError::from(error);
    match label {
        Some(label) => OAuthError::relabel(label, error),
        None => error.into(),
    }
}

/// `POST /auth/v2/oauth2/tokens`.
async fn token(
    State(state): State<AuthService>,
    context: RequestContext,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    match grant(&state, &context, &headers, &body).await {
        Ok(tokens) => {
            let body = json!({
                "access_token": tokens.access_token,
                "token_type": "bearer",
                "expires_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token,
                "user_id": tokens.user_id.to_string(),
                "application_id": tokens.application_id.to_string(),
            });
            credentials(body)
        }
        Err(error) => {
            // A refused grant may have ended a session (a reused refresh token, a replayed
            // code): answer once this node's access cache shows it, so the next request finds
            // its tokens dead.
            if let Err(lagging) = state.catch_up_access().await {
                tracing::warn!(error = %lagging, "the access cache is lagging behind a refusal");
            }
            error.into_response()
        }
    }
}

async fn grant(
    state: &AuthService,
    context: &RequestContext,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Tokens, OAuthError> {
    let request = parse_request(headers, body)?;
    let grant_type = required(request.grant_type.clone(), "grant_type")?;
    let (application_id, client_id) = authenticate_client(state, headers, &request).await?;
    let meta = context.meta(Actor::anonymous(
        Some(application_id),
        Via::Http,
        context.client_ip.clone(),
    ));
    let tokens = match grant_type.as_str() {
        "password" => {
            let username = required(request.username, "username")?;
            let password = required(request.password, "password")?;
            session::password_login(
                &state.bus,
                &state.ids,
                state.auth().lifetimes,
                application_id,
                &username,
                password,
                meta,
            )
            .await
            .map_err(login_error)?
        }
        "authorization_code" => {
            let code = required(request.code, "code")?;
            let authorization = state
                .lookup(|access| access.authorization_of_code(&secrets::token_digest(&code)))
                .await?
                .ok_or_else(|| {
                    OAuthError::new(
                        "invalid_grant",
                        ExhCode::AuthorizationUnknown,
                        "The authorization code is unknown or already used",
                    )
                })?;
            let redemption = session::CodeRedemption {
                authorization_id: authorization,
                client_id,
                code,
                redirect_uri: request.redirect_uri,
                code_verifier: request.code_verifier,
            };
            session::code_login(
                &state.bus,
                &state.ids,
                state.auth().lifetimes,
                application_id,
                redemption,
                meta,
            )
            .await
            .map_err(login_error)?
        }
        "mfa" => {
            let token = required(request.token, "token")?;
            let method_id = required(request.method_id, "method_id")?;
            let code = required(request.code, "code")?;
            let method_id = crate::extract::parse_id(&method_id)?;
            let user_id = match challenged_user(state, &token).await {
                Err(unknown) if unknown.code == ExhCode::InvalidMfaToken => {
                    return Err(OAuthError::relabel("invalid_grant", unknown));
                }
                found => found?,
            };
            let answer = vigil_commands::auth::mfa::Answer {
                token,
                method_id,
                code,
            };
            vigil_commands::auth::mfa::login(
                &state.bus,
                (&state.vault, &state.ids, state.auth().lifetimes),
                (user_id, application_id),
                answer,
                meta,
            )
            .await
            .map_err(login_error)?
        }
        "refresh_token" => {
            let presented = required(request.refresh_token, "refresh_token")?;
            let digest = secrets::token_digest(&presented);
            let session = state
                .lookup(|access| access.session_of_refresh_token(&digest))
                .await?
                .ok_or_else(|| {
                    session_error(CommandError::Domain(SessionError::RefreshTokenUnknown))
                })?;
            session::refresh(
                &state.bus,
                &state.ids,
                state.auth().lifetimes,
                session,
                application_id,
                &presented,
                &meta,
            )
            .await
            .map_err(session_error)?
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                ExhCode::UnsupportedGrant,
                format!("Grant type {other} is not supported"),
            ));
        }
    };
    state.settle(tokens.outcome.position).await?;
    Ok(tokens)
}
