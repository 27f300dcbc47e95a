//! The in-process [`Gateway`]: a function's code calling Vigil's API goes through the very routes
//! an HTTP request goes through (authorization, validation, commands, read-your-writes), as the
//! function's execution user, with its task as the cause of every commit it makes.

use std::sync::Weak;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::http::header::CONTENT_TYPE;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_http::normalize_path::NormalizePath;
use vigil_scheduler::tasks::gateway::{ApiAnswer, ApiCall, Gateway};

use crate::app::{BODY_LIMIT, routes};
use crate::extract::Internal;
use crate::state::{AppState, Shared};

/// The largest answer a function's code is given.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// Calls the API in process. It holds the state weakly: the state holds it (through the task
/// runner), and a stopped server must be dropped whole.
pub struct InProcess {
    state: Weak<Shared>,
}

impl InProcess {
    pub fn new(state: &AppState) -> Self {
        Self {
            state: state.downgrade(),
        }
    }
}

fn answer(status: u16, name: &str, message: &str) -> ApiAnswer {
    ApiAnswer {
        status,
        body: json!({"name": name, "message": message}),
    }
}

impl Gateway for InProcess {
    fn call(&self, call: ApiCall) -> BoxFuture<'_, ApiAnswer> {
        Box::pin(async move {
            let Some(state) = AppState::upgrade(&self.state) else {
                return answer(503, "ServiceUnavailable", "Vigil is stopping");
            };
            let body = call.body.map(|body| body.to_string()).unwrap_or_default();
            let request = Request::builder()
                .method(call.method.as_str())
                .uri(&call.path)
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from(body));
            let mut request = match request {
                Ok(request) => request,
                Err(error) => return answer(400, "InvalidRequest", &error.to_string()),
            };
            request.extensions_mut().insert(Internal {
                user_id: call.user_id,
                cause: call.cause,
            });
            let router = routes(state).layer(DefaultBodyLimit::max(BODY_LIMIT));
            let Ok(response) = NormalizePath::trim_trailing_slash(router)
                .oneshot(request)
                .await;
            let status = response.status().as_u16();
            match axum::body::to_bytes(response.into_body(), ANSWER_LIMIT).await {
                Ok(bytes) => ApiAnswer {
                    status,
                    body: serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    }),
                },
                Err(error) => answer(502, "InvalidAnswer", &error.to_string()),
            }
        })
    }
}
