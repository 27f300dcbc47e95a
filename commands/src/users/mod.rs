//! The user service's procedures.

pub mod user;
