//! Vigil's read side: projections that build queryable read models from the log, the runner that
//! keeps them current, and the queries (RQL compiled to SQL with bound parameters) over them.
//!
//! Never appends to the log. Read models are disposable: `vigil rebuild` recreates them from the
//! log, to the same rows.
//!
//! Layout:
//! - [`store`]: the Postgres / SQLite pools and migrations (`migrations/<backend>/`).
//! - [`table`]: table definitions and batched, position-guarded row changes.
//! - [`runner`]: the projection trait, the runner, read-your-writes waiting, rebuild.
//! - [`rql`], [`sql`], [`json_sql`], [`page`]: RQL parsing, compilation to SQL (JSON columns
//!   too), paged lists.
//! - [`access`]: the in-memory access cache (tokens, clients, permissions) every request uses.
//! - One folder per Extra Horizon service, one module per read model in it, named after the
//!   aggregate it shows (as in `vigil_domain`): [`users`] (`user`, `group`, `role`,
//!   `verification`), [`auth`] (`application`, `authorization`, `token`, `mfa`, `oauth1`, `oidc`),
//!   [`data`] (`schema`, `document`, `document_unique`).

pub mod access;
pub mod auth;
pub mod data;
pub mod json_sql;
pub mod page;
pub mod rql;
pub mod runner;
pub mod sql;
pub mod store;
pub mod table;
pub mod users;

use std::sync::Arc;

/// Every read model, in the order they are started.
pub fn all() -> Vec<Arc<dyn runner::Projection>> {
    vec![
        Arc::new(users::user::Users),
        Arc::new(users::role::Roles),
        Arc::new(auth::application::Applications),
        Arc::new(auth::token::Tokens),
        Arc::new(users::group::Groups),
        Arc::new(auth::authorization::Authorizations),
        Arc::new(auth::mfa::MfaSettings),
        Arc::new(auth::oauth1::OAuth1Tokens),
        Arc::new(users::verification::VerificationRequests),
        Arc::new(auth::oidc::Oidc),
        Arc::new(data::schema::Schemas),
        Arc::new(data::document::Documents),
    ]
}
