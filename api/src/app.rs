//! The HTTP application: every service router, mounted at its Extra Horizon path, behind the
//! layers all requests share.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, Uri};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::normalize_path::NormalizePath;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use vigil_domain::error::ExhCode;

use crate::edge::Edge;
use crate::error::ApiError;
use crate::routes;
use crate::state::AppState;

/// Extra Horizon's gateway limit on request bodies.
pub(crate) const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// The application. Paths are matched without a trailing slash, so the SDK's `/users/v1/?<rql>`
/// reaches the same route as `/users/v1`. A body that pauses longer than the edge's read timeout
/// is answered `408`.
pub fn app(state: AppState, edge: Edge) -> NormalizePath<Router> {
    let router = routes(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestDecompressionLayer::new())
        .layer(RequestBodyTimeoutLayer::new(edge.read_timeout))
        .layer(axum::middleware::map_request_with_state(
            edge.trusted_proxies.clone(),
            crate::edge::resolve_origin,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(axum::middleware::map_response(in_the_extra_horizon_shape));
    NormalizePath::trim_trailing_slash(router)
}

/// The services' routes, without the edge's layers: what [`app`] serves, and what a function's
/// code calls in process (`crate::gateway`).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .nest("/auth/v2", routes::auth_v2::router())
        .nest("/users/v1", routes::users_v1::router())
        .nest("/data/v1", routes::data_v1::router())
        .nest("/tasks/v1", routes::tasks_v1::router())
        .nest("/events/v1", routes::events_v1::router())
        .nest("/dispatchers/v1", routes::dispatchers_v1::router())
        .nest("/localizations/v1", routes::localizations_v1::router())
        .nest("/templates/v2", routes::templates_v2::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Every error answer in Extra Horizon's `{code, name, message}` JSON, with its status, also those
/// that axum and tower layers make themselves in plain text or empty (a path that is not UTF-8, an
/// unknown `Content-Encoding`, a request that timed out).
async fn in_the_extra_horizon_shape(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    ApiError::at_the_edge(status, &text).into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::new(
        ExhCode::ResourceUnknown,
        format!("No route for {method} {}", uri.path()),
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError {
        status: Some(axum::http::StatusCode::METHOD_NOT_ALLOWED),
        ..ApiError::new(
            ExhCode::ResourceUnknown,
            format!("{} does not accept {method}", uri.path()),
        )
    }
    .into_response()
}
