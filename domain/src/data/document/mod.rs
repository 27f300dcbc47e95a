//! Data-service documents: data checked against their schema, moved through its workflow. One
//! stream per document (`document-<id>`).
//!
//! A command runs a whole workflow step at once: the creation transition (or a manual one), its
//! actions, then the automatic transitions that follow, in configuration order, and the tasks they
//! ask for. All of it is one commit, so nobody ever sees a document half-way through a transition
//! and concurrent writers are serialised by the log's optimistic concurrency (never a lost update).
//! Every event carries the new values of what it changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vigil_schemas::access::{AccessMode, CreateMode, GroupSyncMode, Relation};
use vigil_schemas::compiled::CompiledSchema;
use vigil_schemas::workflow::{
    Action, AfterAction, Condition, GroupRelation, LONGEST_PATH, TaskAction, TransitionType,
};

use crate::actor::Actor;
use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::json::JsonOf;
use crate::value::{Personal, Timestamp};

mod access;
mod aggregate;
mod commands;
mod data;
mod decide;
mod error;
mod events;
#[cfg(test)]
pub(crate) mod tests;
mod workflow;

use access::*;
pub use commands::*;
pub use data::*;
pub use error::*;
pub use events::*;
use workflow::*;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// How many events the document has had: which state of it a guard was checked against.
    pub events: u64,
    pub created: bool,
    pub deleted: bool,
    pub schema_id: Option<Id>,
    pub creator_id: Option<Id>,
    pub status: String,
    pub data: Map<String, Value>,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
    /// The paused step, while a `delay` holds the document.
    pub lock: Option<Lock>,
    /// The comments, each with its writer.
    pub comments: BTreeMap<Id, Option<Id>>,
}

/// A workflow step a `delay` paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Lock {
    /// The document's event that locked it: which lock a resumption is for.
    pub event: u64,
    pub since: Timestamp,
    pub resume_at: Timestamp,
    pub transition_id: Option<Id>,
    pub next_action: usize,
    pub after_actions: Vec<TaskAction>,
}
