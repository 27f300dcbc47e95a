//! The one mapping from Vigil errors to Extra Horizon's error responses.
//!
//! Every error leaves as `{code, name, message}` with the catalogue's status; internal errors are
//! logged inside the request span and leave as code 1 with a generic message. The OAuth2 token
//! endpoint answers in RFC 6749's shape instead ([`OAuthError`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vigil_commands::CommandError;
use vigil_commands::auth::LoginError;
use vigil_domain::error::{DomainError, ExhCode};
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
}

impl ApiError {
    pub fn new(code: ExhCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
        }
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
}

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
        let body = json!({
            "code": self.code.code(),
            "name": self.code.name(),
            "message": self.message,
        });
        (self.status(), Json(body)).into_response()
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

impl<E: DomainError> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Domain(domain) => Self::new(domain.exh(), domain.to_string()),
            CommandError::Conflict(_) => Self::new(ExhCode::Conflict, error.to_string()),
            CommandError::Taken("email") => {
                Self::new(ExhCode::EmailUsed, "This email address is already used")
            }
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
}

impl OAuthError {
    pub fn new(error: &'static str, code: ExhCode, description: impl Into<String>) -> Self {
        Self {
            error,
            code,
            description: description.into(),
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
        let body = json!({
            "error": self.error,
            "description": self.description,
            "exh_error": {
                "code": self.code.code(),
                "name": self.code.name(),
                "description": self.description,
            },
        });
        (status, Json(body)).into_response()
    }
}

impl From<ApiError> for OAuthError {
    fn from(error: ApiError) -> Self {
        let kind = match error.code {
            ExhCode::Server | ExhCode::ServiceUnavailable | ExhCode::Conflict => "server_error",
            _ => "invalid_request",
        };
        Self::new(kind, error.code, error.message)
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
