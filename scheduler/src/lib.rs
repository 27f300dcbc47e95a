//! Vigil's reactors: consumers of the log that cause side effects — the task queue and its rhai
//! runtime, schedules, dispatchers, event subscriptions, mail and notification delivery.
//!
//! A reactor follows the log, is never run by a rebuild, is idempotent on redelivery, and changes
//! state only by issuing commands, so every effect is in the audit trail (DESIGN.md §8).
//!
//! Layout:
//! - [`runner`]: the [`runner::Reactor`] trait and the runner that elects the node running each
//!   reactor, keeps its checkpoint, resumes from it and retries its reactions.
//! - [`mail`]: delivery of the identity mails (activation, password reset) over SMTP.
//! - [`group_sync`]: documents' groups kept in line with their schema's `groupSyncMode`.
//! - [`delays`]: workflow steps paused by `delay` actions, resumed when they are due.
//! - [`bulk`]: changes to many users at once, finished when the node that started one stopped.
//! - [`tasks`]: the task queue, the task runner and the `rhai` runtime.
//! - [`dispatchers`]: the dispatchers' actions, run on the events they follow.

pub mod bulk;
pub mod delays;
pub mod dispatchers;
pub mod followed;
pub mod group_sync;
pub mod mail;
pub mod runner;
pub mod subscriptions;
pub mod tasks;
pub mod templates;
