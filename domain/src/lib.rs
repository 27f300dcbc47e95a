//! Vigil's domain: what the system decides, with no I/O.
//!
//! Aggregates are pure and synchronous ([`aggregate::Aggregate`]): `handle` turns a command into
//! events or a business error, `apply` folds events into state. Everything impure — the clock, new
//! ids, secrets, what other aggregates look like — is resolved by the `commands` crate and passed
//! in. This crate also owns the commit envelope and its hash chain, the Extra Horizon error
//! catalogue, the permission catalogue and the [`log::EventLog`] contract.
//!
//! Layout:
//! - [`id`], [`value`], [`actor`], [`permission`], [`password`]: value objects and rules.
//! - [`aggregate`]: the aggregate contract (and the given/when/then test helper).
//! - [`event`], [`commit`], [`log`]: what the log stores and how it is read.
//! - [`error`]: the Extra Horizon error catalogue.
//! - [`json`]: JSON values (configurations, document data) inside events.
//! - One folder per Extra Horizon service, one module per aggregate in it: [`users`], [`auth`],
//!   [`data`], [`tasks`], [`events`], [`dispatchers`], [`localizations`], [`templates`]; and the aggregates every service uses: [`deployment`], [`reservation`].

pub mod actor;
pub mod aggregate;
pub mod auth;
pub mod commit;
pub mod data;
pub mod deployment;
pub mod dispatchers;
pub mod error;
pub mod event;
pub mod events;
pub mod id;
pub mod json;
pub mod localizations;
pub mod log;
pub mod password;
pub mod permission;
pub mod reservation;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod value;
