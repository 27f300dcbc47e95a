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
//! - One module per read model: [`users`], [`roles`], [`applications`], [`tokens`], [`groups`],
//!   [`authorizations`], [`mfa`], [`oauth1`], [`verification`], [`oidc`], [`schemas`],
//!   [`documents`].

pub mod access;
pub mod applications;
pub mod authorizations;
pub mod document_unique;
pub mod documents;
pub mod groups;
pub mod json_sql;
pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod page;
pub mod roles;
pub mod rql;
pub mod runner;
pub mod schemas;
pub mod sql;
pub mod store;
pub mod table;
pub mod tokens;
pub mod users;
pub mod verification;

use std::sync::Arc;

/// Every read model, in the order they are started.
pub fn all() -> Vec<Arc<dyn runner::Projection>> {
    vec![
        Arc::new(users::Users),
        Arc::new(roles::Roles),
        Arc::new(applications::Applications),
        Arc::new(tokens::Tokens),
        Arc::new(groups::Groups),
        Arc::new(authorizations::Authorizations),
        Arc::new(mfa::MfaSettings),
        Arc::new(oauth1::OAuth1Tokens),
        Arc::new(verification::VerificationRequests),
        Arc::new(oidc::Oidc),
        Arc::new(schemas::Schemas),
        Arc::new(documents::Documents),
    ]
}
