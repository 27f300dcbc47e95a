//! The data service, `/data/v1`: schemas (and, built on them, documents).

pub mod documents;
pub mod schemas;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(schemas::router())
        .merge(documents::router())
        .merge(super::health())
}
