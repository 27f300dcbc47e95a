//! The user service (`/users/v1`): users and their activation and reset codes, roles, groups and
//! enlistments, login throttling, the service's settings, and which view of a user a caller gets.

pub mod address;
pub mod bulk;
pub mod group;
pub mod login;
pub mod role;
pub mod settings;
pub mod user;
pub mod user_view;
pub mod verification;
