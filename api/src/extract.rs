//! Extractors: the authenticated caller, JSON bodies (`JsonBody`, `OptionalJsonBody`), the schema
//! a path names (`SchemaPath`) and raw RQL, each failing with an Extra Horizon error instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use vigil_commands::{ids, secrets};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::commit::CommandMeta;
use vigil_domain::data::schema::SchemaRef;
use vigil_domain::error::ExhCode;
use vigil_domain::id::Id;
use vigil_domain::users::user::KeptLogin;
use vigil_projections::rql::{self, Query};

use crate::edge::Origin;
use crate::error::ApiError;
use crate::state::AppState;

/// Parses a JSON request body: a missing body is `EMPTY_BODY_EXCEPTION`, malformed JSON
/// `BODY_FORMAT_EXCEPTION`, and well-formed JSON of the wrong shape `FIELD_FORMAT_EXCEPTION`.
pub fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ExhCode::EmptyBody,
            "A request body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        let code = if error.is_data() {
            ExhCode::FieldFormat
        } else {
            ExhCode::BodyFormat
        };
        ApiError::new(code, format!("The request body is not valid: {error}"))
    })
}

/// Like [`json_body`], for a body that may be left out: none is the default value.
pub fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json_body(bytes)
    }
}

/// A JSON request body of type `T`, read by [`json_body`], so a handler's signature says what it
/// takes. A body that does not read (malformed, of the wrong shape, over the size limit, not
/// decompressible) is an Extra Horizon error given by [`JsonBody::read`]: a handler checks the
/// caller's permission first, so a caller without it learns nothing of what the body should be.
pub struct JsonBody<T>(Result<T, ApiError>);

/// A JSON request body that may be left out (then `T::default()`), read by
/// [`optional_json_body`].
pub struct OptionalJsonBody<T>(Result<T, ApiError>);

impl<T> JsonBody<T> {
    /// The body, or why it does not read.
    pub fn read(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T> OptionalJsonBody<T> {
    /// The body (the default when there is none), or why it does not read.
    pub fn read(self) -> Result<T, ApiError> {
        self.0
    }
}

/// The request body's bytes, or the Extra Horizon error for a body that cannot be read: `408`
/// for one that paused longer than the read timeout.
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = if timed_out(&rejection) {
                StatusCode::REQUEST_TIMEOUT
            } else {
                rejection.status()
            };
            ApiError {
                status: Some(status),
                ..ApiError::new(
                    ExhCode::BodyFormat,
                    format!(
                        "The request body could not be read: {}",
                        rejection.body_text()
                    ),
                )
            }
        })
}

/// Whether a body was refused because it stopped arriving.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A request body taken whole, as bytes: for the handlers that parse it by its content type
/// themselves (the OAuth2 token endpoint takes forms and JSON).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        body_bytes(request, state).await.map(Self)
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await;
        Ok(Self(bytes.and_then(|bytes| json_body(&bytes))))
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S>
    for OptionalJsonBody<T>
{
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await;
        Ok(Self(bytes.and_then(|bytes| optional_json_body(&bytes))))
    }
}

/// The schema a path's `{schema}` names, by id or by name. A segment that can be neither is
/// `INVALID_SCHEMA_PATH_PARAMETER`, given by [`SchemaPath::read`]: like a body's error, after the
/// caller's permission is checked.
pub struct SchemaPath(Result<SchemaRef, ApiError>);

impl SchemaPath {
    /// The schema reference, or why the path's segment is not one.
    pub fn read(self) -> Result<SchemaRef, ApiError> {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SchemaPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await;
        let segment = params
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "schema")
                    .map(|(_, value)| value.to_owned())
            })
            .unwrap_or_default();
        Ok(Self(SchemaRef::parse(&segment).ok_or_else(|| {
            ApiError::new(
                ExhCode::InvalidSchemaPathParameter,
                format!("`{segment}` is neither a schema id nor a schema name"),
            )
        })))
    }
}

/// An id from a path or a body: a malformed one is `ID_FORMAT_EXCEPTION`.
pub fn parse_id(text: &str) -> Result<Id, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ExhCode::IdFormat, format!("`{text}` is not a valid id")))
}

/// The request's RQL: the raw query string, parsed.
pub struct Rql(pub Query);

impl<S: Send + Sync> FromRequestParts<S> for Rql {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(rql::parse(parts.uri.query().unwrap_or(""))?))
    }
}

/// Marks a request a function's code makes in process (through [`crate::gateway`]): it acts as
/// the function's execution user, caused by `cause` (its task). Only Vigil itself sets it: a
/// request from the network carries no extensions.
#[derive(Debug, Clone)]
pub struct Internal {
    pub user_id: Id,
    pub cause: String,
}

/// Where a request came from, for the audit trail: its correlation id (the caller's
/// `X-Request-Id` when given), the client's address as this server sees it, and for a request
/// of a function's code, its cause.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub client_ip: Option<String>,
    pub causation_id: Option<String>,
}

impl RequestContext {
    /// Audit metadata for one command issued by `actor` in this request.
    pub fn meta(&self, actor: Actor) -> CommandMeta {
        CommandMeta {
            command_id: ids::command_id(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            reason: None,
            actor,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(internal) = parts.extensions.get::<Internal>() {
            return Ok(Self {
                correlation_id: internal.cause.clone(),
                client_ip: None,
                causation_id: Some(internal.cause.clone()),
            });
        }
        let correlation_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(ids::command_id, str::to_owned);
        let client_ip = Origin::of(parts).address.map(|address| address.to_string());
        Ok(Self {
            correlation_id,
            client_ip,
            causation_id: None,
        })
    }
}

/// An authenticated user: a valid bearer token, with the user's permissions as of now.
pub struct Caller {
    pub user_id: Id,
    pub application_id: Option<Id>,
    pub actor: Actor,
    pub context: RequestContext,
    /// The login the request was made with (an OAuth2 session or an OAuth1 token).
    pub login: KeptLogin,
}

impl Caller {
    /// Audit metadata for a command this caller issues.
    pub fn meta(&self) -> CommandMeta {
        self.context.meta(self.actor.clone())
    }

    /// Refuses unless the caller holds `permission`.
    pub fn require(&self, permission: &'static str) -> Result<(), ApiError> {
        self.actor.require(permission, ApiError::no_permission)
    }
}

/// Resolves `Authorization: Bearer <token>` to a caller.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
    via: Via,
    client_ip: Option<String>,
) -> Result<(Id, Option<Id>, Actor, KeptLogin), ApiError> {
    let Some(header) = authorization else {
        return Err(ApiError::new(
            ExhCode::UserNotAuthenticated,
            "This request needs an access token",
        ));
    };
    let Some(token) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
    else {
        return Err(ApiError::new(
            ExhCode::UserNotAuthenticated,
            "Only bearer access tokens are accepted",
        ));
    };
    let digest = secrets::token_digest(token.trim());
    let bearer = state
        .lookup(|access| access.bearer(&digest))
        .await?
        .ok_or_else(|| ApiError::new(ExhCode::AccessTokenUnknown, "The access token is unknown"))?;
    if bearer.expires_at <= ids::now() {
        return Err(ApiError::new(
            ExhCode::AccessTokenExpired,
            "The access token has expired",
        ));
    }
    let rights = state.access.rights(bearer.user_id);
    let actor = Actor::user(
        bearer.user_id,
        Some(bearer.application_id),
        rights,
        via,
        client_ip,
    );
    let login = KeptLogin::Session(bearer.session_id);
    Ok((bearer.user_id, Some(bearer.application_id), actor, login))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(context) = RequestContext::from_request_parts(parts, state).await;
        if let Some(internal) = parts.extensions.get::<Internal>() {
            let rights = state.access.rights(internal.user_id);
            return Ok(Self {
                user_id: internal.user_id,
                application_id: None,
                actor: Actor::user(internal.user_id, None, rights, Via::Scheduler, None),
                context,
                login: KeptLogin::None,
            });
        }
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let (user_id, application_id, actor, login) = match authorization {
            Some(header) if header.starts_with("OAuth ") => {
                let origin = Origin::of(parts);
                let signed = crate::oauth1::verify(
                    state,
                    header,
                    &parts.method,
                    original_uri(parts),
                    &origin,
                )
                .await?;
                let holder = signed.token.ok_or_else(|| {
                    ApiError::new(
                        ExhCode::UserNotAuthenticated,
                        "This request needs an OAuth token",
                    )
                })?;
                let rights = state.access.rights(holder.user_id);
                let actor = Actor::user(
                    holder.user_id,
                    Some(holder.application_id),
                    rights,
                    Via::Http,
                    context.client_ip.clone(),
                );
                let login = KeptLogin::OAuth1Token(holder.token_id);
                (holder.user_id, Some(holder.application_id), actor, login)
            }
            _ => authenticate(state, authorization, Via::Http, context.client_ip.clone()).await?,
        };
        Ok(Self {
            user_id,
            application_id,
            actor,
            context,
            login,
        })
    }
}

/// The request's URI as the client sent it (a nested router sees only the rest of the path).
pub fn original_uri(parts: &Parts) -> &axum::http::Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
}

/// The caller of a route open to anyone (a function executed directly in `public` mode): a user
/// when the request carries credentials, which must then be valid; anonymous without.
pub enum MaybeCaller {
    User(Box<Caller>),
    Anonymous(RequestContext),
}

impl MaybeCaller {
    pub fn user(&self) -> Option<&Caller> {
        match self {
            Self::User(caller) => Some(caller),
            Self::Anonymous(_) => None,
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Self::User(caller) => caller.actor.clone(),
            Self::Anonymous(context) => {
                Actor::anonymous(None, Via::Http, context.client_ip.clone())
            }
        }
    }

    /// Audit metadata for a command this caller issues.
    pub fn meta(&self) -> CommandMeta {
        match self {
            Self::User(caller) => caller.meta(),
            Self::Anonymous(context) => context.meta(self.actor()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) || parts.extensions.get::<Internal>().is_some()
        {
            Ok(Self::User(Box::new(
                Caller::from_request_parts(parts, state).await?,
            )))
        } else {
            let Ok(context) = RequestContext::from_request_parts(parts, state).await;
            Ok(Self::Anonymous(context))
        }
    }
}
