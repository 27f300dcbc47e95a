//! The task service's procedures that span aggregates.

pub mod execution;
