//! The user service's procedures.

pub mod bulk;
pub mod user;
