//! The task service: functions, the tasks that run them, and the schedules that make tasks.

pub mod api_request;
pub mod function;
pub mod schedule;
pub mod task;
