//! Vigil's write side: the two [`EventLog`](vigil_domain::log::EventLog) implementations and the
//! command flow that decides commands on aggregates and appends them.
//!
//! Never reads read models: what a command needs from other aggregates it loads from the log.
//!
//! Layout:
//! - [`flow`]: the command bus (load, authorize, decide, append, retry) with its aggregate cache.
//! - [`unique`]: uniqueness reservations around a command.
//! - [`sqlite_log`], [`jetstream`]: the embedded and the production log.
//! - One folder per Extra Horizon service, one module per aggregate in it (named as in
//!   `vigil_domain`): the procedures around a command that the domain cannot do itself (resolving
//!   secrets, reserving unique values, loading what the command is decided against).
//!   - [`users`]: `user` (registration, passwords, deletion).
//!   - [`auth`]: `session` (logins, token refreshes), `mfa`, `oauth1`, `oidc`.
//!   - [`data`]: `schema` (unique names, finding a schema by id or name), `document` (compiled
//!     schema snapshots and the document use cases).
//!   - [`tasks`]: `execution` (a function's execution credentials).
//! - [`bootstrap`]: the first administrator and application of an empty deployment.
//! - [`ids`], [`secrets`]: the clock, new ids, password hashes and tokens.
//! - [`blobs`]: content kept outside the log by its digest (function code).

pub mod auth;
pub mod blobs;
pub mod bootstrap;
pub mod data;
pub mod flow;
pub mod ids;
pub mod jetstream;
pub mod secrets;
pub mod shared_tail;
pub mod sqlite_log;
pub mod tasks;
pub mod templates;
pub mod unique;
pub mod users;

pub use flow::{CommandBus, CommandError, Outcome};
