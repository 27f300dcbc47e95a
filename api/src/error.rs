//! The one mapping from Vigil errors to Extra Horizon's error responses.
//!
//! Every error leaves as `{code, name, message}` with the catalogue's status; internal errors are
//! logged inside the request span and leave as code 1 with a generic message. The OAuth2 token
//! endpoint answers in RFC 6749's shape instead ([`OAuthError`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use vigil_commands::CommandError;
use vigil_commands::auth::mfa::{Challenge, MfaFailure};
use vigil_commands::auth::session::LoginError;
use vigil_commands::data::document::{DocumentsError, SnapshotError};
use vigil_domain::auth::mfa::MfaError;
use vigil_domain::error::{DomainError, ExhCode, bounded_message};
use vigil_domain::log::LogError;
use vigil_projections::page::QueryError;
use vigil_projections::rql::RqlError;

/// An Extra Horizon error response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ExhCode,
    pub message: String,
    /// Overrides the catalogue's status (405 for a known path with another method).
    pub status: Option<StatusCode>,
    /// Fields some errors carry besides the three (`mfa`, `remainingDelay`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// The error with `message`, cut to a bounded length (see [`bounded_message`]).
    pub fn new(code: ExhCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: bounded_message(message.into()),
            status: None,
            extra: Map::new(),
        }
    }

    /// This error with one more field in its body.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.extra.insert(field.into(), value);
        self
    }

    /// An unexpected failure: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ExhCode::Server, "An unexpected error occurred")
    }

    pub fn no_permission(permission: &str) -> Self {
        Self::new(
            ExhCode::NoPermission,
            format!("Permission {permission} is required"),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
            .or_else(|| StatusCode::from_u16(self.code.status()).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// An error that the HTTP stack in front of the handlers made (hyper, axum or a tower layer),
    /// with its status and what it said (or the status's reason when it said nothing).
    pub fn at_the_edge(status: StatusCode, said: &str) -> Self {
        let mut message: String = said.trim().chars().take(EDGE_ECHOED).collect();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("Error").to_owned();
        }
        let code = match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                ExhCode::ServiceUnavailable
            }
            _ if status.is_server_error() => ExhCode::Server,
            _ => ExhCode::BodyFormat,
        };
        Self {
            status: Some(status),
            ..Self::new(code, message)
        }
    }

    /// The JSON body: `{code, name, message}` and the extra fields.
    pub fn body(&self) -> Value {
        let mut body = self.extra.clone();
        body.insert("code".into(), json!(self.code.code()));
        body.insert("name".into(), json!(self.code.name()));
        body.insert("message".into(), json!(self.message));
        Value::Object(body)
    }
}

/// How much of the HTTP stack's own error text an answer repeats.
const EDGE_ECHOED: usize = 200;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.name(),
            self.code.code(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<LogError> for ApiError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Conflict { .. } => {
                Self::new(ExhCode::Conflict, "A concurrent change won; try again")
            }
            LogError::TooLarge { size, max } => Self::new(
                ExhCode::FieldFormat,
                format!("The change is {size} bytes; at most {max} bytes are accepted"),
            ),
            LogError::Unavailable(cause) => {
                tracing::error!(error = %cause, "the log is unavailable");
                Self::new(ExhCode::ServiceUnavailable, "The event log is unavailable")
            }
            other => Self::internal(other),
        }
    }
}

impl From<DocumentsError> for ApiError {
    fn from(error: DocumentsError) -> Self {
        match error {
            DocumentsError::Command(error) => error.into(),
            DocumentsError::Snapshot(SnapshotError::Log(error)) => error.into(),
            DocumentsError::Snapshot(error @ SnapshotError::Compile(..)) => Self::internal(error),
            // The guard's checker is this crate's: its errors are ours.
            DocumentsError::Guard(error) => match error.downcast::<ApiError>() {
                Ok(error) => *error,
                Err(error) => Self::internal(error),
            },
        }
    }
}

impl<E: DomainError> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Domain(domain) => Self::new(domain.exh(), domain.to_string()),
            CommandError::Conflict(_) => Self::new(ExhCode::Conflict, error.to_string()),
            CommandError::Taken("email") => {
                Self::new(ExhCode::EmailUsed, "This email address is already used")
            }
            CommandError::Taken(vigil_domain::data::unique_index::NAMESPACE) => Self::new(
                ExhCode::ResourceAlreadyExists,
                "Another document of this schema holds the same values of the fields of a unique index",
            ),
            CommandError::Taken(namespace) => Self::new(
                ExhCode::ResourceAlreadyExists,
                format!("This {namespace} is already used"),
            ),
            CommandError::Log(log) => log.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => Self::new(
                ExhCode::Authentication,
                "The email or password is incorrect",
            ),
            LoginError::Throttled(throttled) => Self::new(throttled.exh(), throttled.to_string()),
            LoginError::Secret(secret) => Self::internal(secret),
            LoginError::Command(command) => command.into(),
            LoginError::Guard(guard) => guard.into(),
            LoginError::Authorization(authorization) => authorization.into(),
            LoginError::MfaRequired(challenge) => Self::new(
                ExhCode::MfaRequired,
                "A second factor is required to finish this login",
            )
            .with("mfa", challenge_json(&challenge)),
            LoginError::Mfa(mfa) => mfa_error(mfa),
            LoginError::Vault(vault) => Self::internal(vault),
            LoginError::Presence(presence) => presence.into(),
            LoginError::OAuth1(token) => token.into(),
            LoginError::Sso(sso) => sso.into(),
        }
    }
}

/// The `mfa` field of an MFA-required answer: the challenge token and the methods that answer it.
fn challenge_json(challenge: &Challenge) -> Value {
    let methods: Vec<Value> = challenge
        .methods
        .iter()
        .map(|(id, method_type, name, tags)| {
            json!({
                "id": id.to_string(),
                "type": method_type.wire_name(),
                "name": name,
                "tags": tags,
            })
        })
        .collect();
    json!({
        "token": challenge.token,
        "tokenExpiresIn": challenge.expires_in_millis,
        "methods": methods,
    })
}

/// An MFA refusal; a re-attempt delay says how long is left, in milliseconds.
fn mfa_error(error: CommandError<MfaError>) -> ApiError {
    let remaining = match &error {
        CommandError::Domain(MfaError::TooSoon { remaining_millis }) => Some(*remaining_millis),
        _ => None,
    };
    let api = ApiError::from(error);
    match remaining {
        Some(remaining) => api.with("remainingDelay", json!(remaining)),
        None => api,
    }
}

impl From<MfaFailure> for ApiError {
    fn from(failure: MfaFailure) -> Self {
        match failure {
            MfaFailure::Command(command) => mfa_error(command),
            MfaFailure::Vault(vault) => Self::internal(vault),
        }
    }
}

impl From<RqlError> for ApiError {
    fn from(error: RqlError) -> Self {
        Self::new(ExhCode::InvalidRql, error.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Rql(rql) => rql.into(),
            QueryError::Store(store) => Self::internal(store),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

/// An OAuth2 token-endpoint error (RFC 6749 §5.2) with the Extra Horizon error inside, which the
/// SDK maps to its typed error classes.
#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub code: ExhCode,
    pub description: String,
    /// Fields besides the standard ones (`mfa`, `remainingDelay`).
    pub extra: Map<String, Value>,
}

impl OAuthError {
    pub fn new(error: &'static str, code: ExhCode, description: impl Into<String>) -> Self {
        Self {
            error,
            code,
            description: bounded_message(description.into()),
            extra: Map::new(),
        }
    }

    /// The same Extra Horizon error (with its extra fields) under the OAuth2 error `error`.
    pub fn relabel(error: &'static str, api: ApiError) -> Self {
        Self {
            extra: api.extra,
            ..Self::new(error, api.code, api.message)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = if self.error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut body = self.extra;
        body.insert("error".into(), json!(self.error));
        body.insert("description".into(), json!(self.description));
        body.insert(
            "exh_error".into(),
            json!({
                "code": self.code.code(),
                "name": self.code.name(),
                "description": self.description,
            }),
        );
        (status, Json(Value::Object(body))).into_response()
    }
}

impl From<ApiError> for OAuthError {
    fn from(error: ApiError) -> Self {
        let kind = match error.code {
            ExhCode::Server | ExhCode::ServiceUnavailable | ExhCode::Conflict => "server_error",
            _ => "invalid_request",
        };
        Self::relabel(kind, error)
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error.code {
            ExhCode::NoPermission => Self::permission_denied(message),
            code if code.status() == 401 => Self::unauthenticated(message),
            ExhCode::ResourceUnknown => Self::not_found(message),
            ExhCode::ServiceUnavailable => Self::unavailable(message),
            ExhCode::Server => Self::internal(message),
            _ => Self::invalid_argument(message),
        }
    }
}
