//! The task service, `/tasks/v1`: functions, the tasks that run them, and schedules.

pub mod functions;
pub mod schedules;
pub mod tasks;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(functions::router())
        .merge(schedules::router())
        .merge(tasks::router())
        .merge(super::health())
}
