//! Vigil's write side: the two [`EventLog`](vigil_domain::log::EventLog) implementations and the
//! command flow that decides commands on aggregates and appends them.
//!
//! Never reads read models: what a command needs from other aggregates it loads from the log.
//!
//! Layout:
//! - [`flow`]: the command bus (load, authorize, decide, append, retry) with its aggregate cache.
//! - [`unique`]: uniqueness reservations around a command.
//! - [`sqlite_log`], [`jetstream`]: the embedded and the production log.
//! - [`auth`], [`mfa`], [`oauth1`], [`oidc`], [`bootstrap`], [`users`]: procedures that resolve
//!   secrets before deciding.
//! - [`schemas`]: data-service schemas, unique by name; [`documents`]: compiled schema
//!   snapshots and what document commands need to know about users.
//! - [`ids`], [`secrets`]: the clock, new ids, password hashes and tokens.

pub mod auth;
pub mod bootstrap;
pub mod documents;
pub mod flow;
pub mod ids;
pub mod jetstream;
pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod schemas;
pub mod secrets;
pub mod shared_tail;
pub mod sqlite_log;
pub mod unique;
pub mod users;

pub use flow::{CommandBus, CommandError, Outcome};
