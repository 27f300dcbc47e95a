//! The task service's read models.

pub mod api_request;
pub mod function;
pub mod schedule;
pub mod task;
