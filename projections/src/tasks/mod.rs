//! The task service's read models.

pub mod function;
pub mod schedule;
pub mod task;
