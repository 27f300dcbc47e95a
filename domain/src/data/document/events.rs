//! A document's events: each carries the new values of what it changed.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentCreated {
    pub schema_id: Id,
    /// The user who created it (none when Vigil itself did).
    pub creator_id: Option<Id>,
    /// After the creation transition and its actions.
    pub status: String,
    pub data: JsonOf<Map<String, Value>>,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentUpdated {
    /// The whole new data.
    pub data: JsonOf<Map<String, Value>>,
}

/// A transition ran: the document's new status, data and links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentTransitioned {
    pub transition_id: Id,
    pub transition_name: Option<String>,
    pub from_status: String,
    pub to_status: String,
    pub data: JsonOf<Map<String, Value>>,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentDeleted {}

/// A `task` action (or after-action) asked for a task: durable here until the task service takes
/// it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskRequested {
    pub function_name: String,
    pub priority: Option<i64>,
    /// The action's data plus `schemaId` and `documentId`.
    pub data: JsonOf<Map<String, Value>>,
}

/// The users or groups a document is linked to, all of them now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LinksChanged {
    pub ids: Vec<Id>,
}

/// A `delay` action paused a workflow step: the document is locked (its `transitionLock`) until
/// the step goes on at `resume_at` with the actions after the delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentLocked {
    /// When the step began: the lock's `timestamp`.
    pub since: Timestamp,
    pub resume_at: Timestamp,
    /// The transition whose actions were paused (none: the creation transition).
    pub transition_id: Option<Id>,
    /// The first of its actions still to run.
    pub next_action: u32,
    /// The task after-actions to run once the step is done.
    #[cfg_attr(test, proptest(strategy = "tests::task_actions()"))]
    pub after_actions: JsonOf<Vec<TaskAction>>,
}

/// A paused step went on: the document after the rest of the paused transition's actions. The
/// lock is gone, unless a `document.locked` follows in the same commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentResumed {
    pub data: JsonOf<Map<String, Value>>,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
}

/// A comment on a document (a deprecated part of the data service, kept for its clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CommentAdded {
    pub comment_id: Id,
    pub schema_id: Id,
    /// Who wrote it (none when Vigil itself did).
    pub creator_id: Option<Id>,
    pub text: Personal<String>,
    /// How many comments the document has now.
    pub comment_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CommentUpdated {
    pub comment_id: Id,
    pub text: Personal<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CommentRemoved {
    pub comment_id: Id,
    /// How many comments the document has now.
    pub comment_count: u32,
}

events! {
    pub enum DocumentEvent {
        Created(DocumentCreated) = "document.created",
        Updated(DocumentUpdated) = "document.updated",
        Transitioned(DocumentTransitioned) = "document.transitioned",
        Deleted(DocumentDeleted) = "document.deleted",
        TaskRequested(TaskRequested) = "document.task_requested",
        UsersChanged(LinksChanged) = "document.users_changed",
        GroupsChanged(LinksChanged) = "document.groups_changed",
        Locked(DocumentLocked) = "document.locked",
        Resumed(DocumentResumed) = "document.resumed",
        CommentAdded(CommentAdded) = "document.comment_added",
        CommentUpdated(CommentUpdated) = "document.comment_updated",
        CommentRemoved(CommentRemoved) = "document.comment_removed",
    }
}
