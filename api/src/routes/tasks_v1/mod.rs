//! The task service, `/tasks/v1`: functions and the tasks that run them.

pub mod functions;
pub mod tasks;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(functions::router())
        .merge(tasks::router())
        .merge(super::health())
}
