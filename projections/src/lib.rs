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
pub mod dispatchers;
pub mod events;
pub mod json_sql;
pub mod localizations;
pub mod nonces;
pub mod page;
pub mod rql;
pub mod runner;
pub mod sql;
pub mod store;
pub mod table;
pub mod tasks;
pub mod templates;
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
        Arc::new(tasks::function::Functions),
        Arc::new(tasks::task::Tasks),
        Arc::new(tasks::schedule::Schedules),
        Arc::new(events::Events),
        Arc::new(dispatchers::Dispatchers),
        Arc::new(tasks::api_request::ApiRequests),
        Arc::new(events::subscriptions::Subscriptions),
        Arc::new(localizations::Localizations),
        Arc::new(templates::Templates),
    ]
}

#[cfg(test)]
mod tests {
    use vigil_domain::actor::{Actor, Via};
    use vigil_domain::commit::{CommandMeta, Commit, Recorded};
    use vigil_domain::id::{Digest, StreamId};
    use vigil_domain::value::Timestamp;

    use crate::table::Changes;

    /// A read model that applied an event of a kind its filter leaves out would silently miss it:
    /// the log never hands it those commits.
    #[test]
    fn every_read_model_follows_the_kinds_of_the_events_it_applies() {
        let meta = CommandMeta {
            command_id: "c".into(),
            correlation_id: String::new(),
            causation_id: None,
            reason: None,
            actor: Actor::system(Via::Cli),
        };
        for projection in super::all() {
            for (event, wire_name, _) in vigil_domain::samples::samples() {
                let kind = event.stream_kind();
                if projection.filter().admits_kind(kind) {
                    continue;
                }
                let stream = StreamId::new(kind, "0102030405060708090a0b0c").unwrap();
                let commit = Commit::next(stream, None, &meta, Timestamp(1), vec![event]);
                let recorded = Recorded {
                    position: 1,
                    commit,
                    hash: Digest::default(),
                };
                let mut changes = Changes::default();
                let applied = projection.apply(&recorded, &mut changes);
                assert!(
                    applied.is_ok() && changes.is_empty(),
                    "{} applies {wire_name} but does not follow the kind {kind}",
                    projection.name()
                );
            }
        }
    }
}
