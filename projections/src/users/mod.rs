//! The user service's read models: users (`users_v1`), groups, global roles, and verification
//! requests (activation and password-reset codes).

pub mod group;
pub mod role;
pub mod user;
pub mod verification;
