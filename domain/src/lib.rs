//! Vigil's domain: what the system decides, with no I/O.
//!
//! Aggregates are pure and synchronous ([`aggregate::Aggregate`]): `handle` turns a command into
//! events or a business error, `apply` folds events into state. Everything impure — the clock, new
//! ids, secrets, what other aggregates look like — is resolved by the `commands` crate and passed
//! in. This crate also owns the commit envelope and its hash chain, the Extra Horizon error
//! catalogue, the permission catalogue and the [`log::EventLog`] contract.
//!
//! Layout:
//! - [`id`], [`value`], [`actor`], [`permission`], [`password`], [`verification`]: value objects
//!   and rules.
//! - [`aggregate`]: the aggregate contract (and the given/when/then test helper).
//! - [`event`], [`commit`], [`log`]: what the log stores and how it is read.
//! - [`error`]: the Extra Horizon error catalogue.
//! - One module per aggregate: [`deployment`], [`reservation`], [`user`], [`role`],
//!   [`application`], [`session`], [`login`], [`settings`], [`group`],
//!   [`authorization`], [`mfa`], [`presence`], [`oauth1`], [`sso`], [`address`], [`oidc`],
//!   [`schema`], [`document`] (and [`unique_index`]: what a document holds under unique indexes).
//! - [`json`]: JSON values (configurations, document data) inside events.

pub mod actor;
pub mod address;
pub mod aggregate;
pub mod application;
pub mod authorization;
pub mod commit;
pub mod deployment;
pub mod document;
pub mod error;
pub mod event;
pub mod group;
pub mod id;
pub mod json;
pub mod log;
pub mod login;
pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod password;
pub mod permission;
pub mod presence;
pub mod reservation;
pub mod role;
pub mod schema;
pub mod session;
pub mod settings;
pub mod sso;
pub mod unique_index;
pub mod user;
pub mod user_view;
pub mod value;
pub mod verification;
