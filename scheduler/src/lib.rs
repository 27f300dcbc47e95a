//! Vigil's reactors: consumers of the log that cause side effects — the task queue and its rhai
//! runtime, schedules, dispatchers, event subscriptions, mail and notification delivery.
//!
//! A reactor consumes the log from its own checkpoint, is never run by a rebuild, is idempotent on
//! redelivery (keyed by commit id), and changes state only by issuing commands, so every effect is
//! in the audit trail (DESIGN.md §8).
//!
//! Nothing reacts to the log yet: the first reactor, mail delivery for the identity flows, arrives
//! with the user and auth services.
