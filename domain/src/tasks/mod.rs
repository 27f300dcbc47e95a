//! The task service: functions, and the tasks that run them.

pub mod function;
pub mod task;
