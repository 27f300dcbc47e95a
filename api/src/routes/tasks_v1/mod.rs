//! The task service, `/tasks/v1`: functions, the tasks that run them, and schedules.

pub mod api_functions;
pub mod execution;
pub mod functions;
pub mod schedules;
pub mod tasks;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(functions::router())
        .merge(execution::router())
        .merge(api_functions::router())
        .merge(schedules::router())
        .merge(tasks::router())
        .merge(super::health())
}

/// The answer to a function that failed when run for a request (directly or as an API function):
/// `1405` when it could not start, `1406` when it failed, `1409` when its answer was none, each
/// with `runtimeError: {name, message}`.
pub(crate) fn function_failed(
    error: &vigil_domain::tasks::task::RunError,
) -> crate::error::ApiError {
    use vigil_domain::error::ExhCode;
    use vigil_domain::tasks::task::ErrorKind;
    let code = match error.kind {
        ErrorKind::Invocation => ExhCode::FunctionInvocation,
        ErrorKind::Runtime => ExhCode::FunctionRuntime,
        ErrorKind::Response => ExhCode::InvalidApiFunctionResult,
    };
    crate::error::ApiError::new(code, format!("The function failed: {}", error.message)).with(
        "runtimeError",
        serde_json::json!({"name": error.name, "message": error.message}),
    )
}
