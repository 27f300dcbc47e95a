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
use crate::json::{Json, JsonOf};
use crate::value::{Personal, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentCreated {
    pub schema_id: Id,
    /// The user who created it (none when Vigil itself did).
    pub creator_id: Option<Id>,
    /// After the creation transition and its actions.
    pub status: String,
    pub data: Json,
    pub user_ids: Vec<Id>,
    pub group_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentUpdated {
    /// The whole new data.
    pub data: Json,
}

/// A transition ran: the document's new status, data and links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocumentTransitioned {
    pub transition_id: Id,
    pub transition_name: Option<String>,
    pub from_status: String,
    pub to_status: String,
    pub data: Json,
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
    pub data: Json,
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
    pub data: Json,
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

/// The schema a document command is decided against, as of a version of its stream.
#[derive(Debug)]
pub struct SchemaSnapshot {
    pub id: Id,
    pub name: String,
    pub disabled: bool,
    pub compiled: CompiledSchema,
}

/// What a command needs to know about other users: the groups each user named in the document
/// (in a `userIdField`, or linked) is a patient of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    pub patient_groups: BTreeMap<Id, BTreeSet<Id>>,
}

/// Which manual transition a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionChoice {
    Id(Id),
    Name(String),
}

#[derive(Debug, Clone)]
pub enum DocumentCommand {
    Create {
        schema: Arc<SchemaSnapshot>,
        data: Map<String, Value>,
        lookups: Lookups,
    },
    /// Sets the given fields of the data; `null` removes one.
    Update {
        schema: Arc<SchemaSnapshot>,
        changes: Map<String, Value>,
    },
    /// Removes fields by dotted path.
    DeleteFields {
        schema: Arc<SchemaSnapshot>,
        fields: Vec<String>,
    },
    Transition {
        schema: Arc<SchemaSnapshot>,
        choice: TransitionChoice,
        data: Map<String, Value>,
        lookups: Lookups,
    },
    Delete {
        schema: Arc<SchemaSnapshot>,
    },
    /// Adds groups; with `linkedUsersPatientEnlistments` nothing else changes.
    LinkGroups {
        schema: Arc<SchemaSnapshot>,
        group_ids: Vec<Id>,
    },
    /// Removes the given groups, or every group (`None`).
    UnlinkGroups {
        schema: Arc<SchemaSnapshot>,
        group_ids: Option<Vec<Id>>,
    },
    /// Adds users; with `linkedUsersPatientEnlistments` also the groups they are patients of
    /// (in `lookups`).
    LinkUsers {
        schema: Arc<SchemaSnapshot>,
        user_ids: Vec<Id>,
        lookups: Lookups,
    },
    /// Removes the given users, or every user (`None`).
    UnlinkUsers {
        schema: Arc<SchemaSnapshot>,
        user_ids: Option<Vec<Id>>,
    },
    /// Appends `object` under the new `id` to the array of objects at `field`.
    AppendToArray {
        schema: Arc<SchemaSnapshot>,
        field: String,
        id: Id,
        object: Map<String, Value>,
    },
    /// Sets the given fields of the element `id` of the array at `field`; `null` removes one.
    UpdateInArray {
        schema: Arc<SchemaSnapshot>,
        field: String,
        id: Id,
        changes: Map<String, Value>,
    },
    RemoveFromArray {
        schema: Arc<SchemaSnapshot>,
        field: String,
        id: Id,
    },
    /// Sets `groupIds` to what the schema's `groupSyncMode` asks for now (Vigil itself, when
    /// patient enlistments or the mode change).
    SyncGroups {
        schema: Arc<SchemaSnapshot>,
        lookups: Lookups,
    },
    /// Goes on with the step a `delay` paused, once it is due (Vigil itself). `lock` names the
    /// lock (its event number), so a lock already resumed is left alone.
    Resume {
        schema: Arc<SchemaSnapshot>,
        lookups: Lookups,
        lock: u64,
    },
    AddComment {
        schema: Arc<SchemaSnapshot>,
        id: Id,
        text: String,
    },
    UpdateComment {
        schema: Arc<SchemaSnapshot>,
        id: Id,
        text: String,
    },
    RemoveComment {
        schema: Arc<SchemaSnapshot>,
        id: Id,
    },
    /// `command`, only if the document is still as it was when it had `seen` events (the state a
    /// request's RQL guard was checked against).
    Guarded {
        seen: u64,
        command: Box<DocumentCommand>,
    },
}

impl DocumentCommand {
    fn schema(&self) -> &SchemaSnapshot {
        match self {
            Self::Create { schema, .. }
            | Self::Update { schema, .. }
            | Self::DeleteFields { schema, .. }
            | Self::Transition { schema, .. }
            | Self::Delete { schema }
            | Self::LinkGroups { schema, .. }
            | Self::UnlinkGroups { schema, .. }
            | Self::LinkUsers { schema, .. }
            | Self::UnlinkUsers { schema, .. }
            | Self::AppendToArray { schema, .. }
            | Self::UpdateInArray { schema, .. }
            | Self::RemoveFromArray { schema, .. }
            | Self::SyncGroups { schema, .. }
            | Self::Resume { schema, .. }
            | Self::AddComment { schema, .. }
            | Self::UpdateComment { schema, .. }
            | Self::RemoveComment { schema, .. } => schema,
            Self::Guarded { command, .. } => command.schema(),
        }
    }

    /// Whether the command changes the document, and so must wait while a step is paused (reads,
    /// deletion and Vigil's own group synchronisation go on).
    fn waits_for_lock(&self) -> bool {
        match self {
            Self::Update { .. }
            | Self::DeleteFields { .. }
            | Self::Transition { .. }
            | Self::LinkGroups { .. }
            | Self::UnlinkGroups { .. }
            | Self::LinkUsers { .. }
            | Self::UnlinkUsers { .. }
            | Self::AppendToArray { .. }
            | Self::UpdateInArray { .. }
            | Self::RemoveFromArray { .. }
            | Self::AddComment { .. } => true,
            Self::Create { .. }
            | Self::Delete { .. }
            | Self::SyncGroups { .. }
            | Self::Resume { .. }
            | Self::UpdateComment { .. }
            | Self::RemoveComment { .. } => false,
            Self::Guarded { command, .. } => command.waits_for_lock(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("document not found")]
    NotFound,
    #[error("this document exists already")]
    AlreadyExists,
    #[error("the schema is disabled")]
    SchemaDisabled,
    #[error("the document's data is not valid: {0}")]
    InvalidData(String),
    #[error("{0}")]
    IllegalArgument(String),
    #[error("no transition {0}")]
    UnknownTransition(String),
    #[error("no array element {0}")]
    UnknownElement(String),
    #[error("the document changed since its guard was checked")]
    Stale,
    #[error("the document is in a transition that has not finished yet")]
    Locked,
    #[error("the paused step is not due yet")]
    NotDue,
    #[error("no comment {0}")]
    UnknownComment(Id),
    #[error("permission {0} is required")]
    NoPermission(String),
    /// A document command was run on a stream whose key is not a document id (a defect of the
    /// caller, never of the request).
    #[error("stream {0} is not a document's")]
    NotADocumentStream(crate::id::StreamId),
}

impl DomainError for DocumentError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NotFound
            | Self::UnknownTransition(_)
            | Self::UnknownElement(_)
            | Self::UnknownComment(_) => ExhCode::ResourceUnknown,
            Self::Locked => ExhCode::LockedDocument,
            Self::NotDue => ExhCode::IllegalState,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Stale => ExhCode::Conflict,
            Self::SchemaDisabled => ExhCode::IllegalState,
            Self::InvalidData(_) => ExhCode::FieldFormat,
            Self::IllegalArgument(_) => ExhCode::IllegalArgument,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::NotADocumentStream(_) => ExhCode::Server,
        }
    }
}

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

/// The id of the document a command is run on: its stream's key.
fn document_id(ctx: &Ctx<'_>) -> Result<Id, DocumentError> {
    ctx.stream
        .id()
        .ok_or_else(|| DocumentError::NotADocumentStream(ctx.stream.clone()))
}

/// How the actor relates to a document, for the relational access modes.
fn relates(actor: &Actor, document: &Document, relation: Relation) -> bool {
    match relation {
        Relation::Creator => document.creator_id.is_some_and(|c| actor.is_user(c)),
        Relation::LinkedUsers => document.user_ids.iter().any(|u| actor.is_user(*u)),
        Relation::LinkedGroupStaff => document.group_ids.iter().any(|g| actor.is_staff_of(*g)),
        Relation::LinkedGroupPatients => {
            let patient: BTreeSet<Id> = actor.patient_groups().collect();
            document.group_ids.iter().any(|g| patient.contains(g))
        }
    }
}

/// Whether the actor holds `permission` globally or through a group role of one of the
/// document's groups.
fn permitted(actor: &Actor, document: &Document, permission: &str) -> bool {
    actor.allows(permission)
        || document
            .group_ids
            .iter()
            .any(|g| actor.allows_in(*g, permission))
}

/// Whether `mode` lets the actor at the document (permission holders always may).
fn access(actor: &Actor, document: &Document, mode: &AccessMode, permission: &str) -> bool {
    permitted(actor, document, permission)
        || match mode {
            AccessMode::PermissionRequired => false,
            AccessMode::AllUsers => true,
            AccessMode::Relational(relations) => {
                relations.iter().any(|r| relates(actor, document, *r))
            }
        }
}

impl Document {
    fn exists(&self) -> Result<(), DocumentError> {
        if self.created && !self.deleted {
            Ok(())
        } else {
            Err(DocumentError::NotFound)
        }
    }

    /// Whether the actor may read the document under its schema's settings.
    pub fn readable_by(&self, actor: &Actor, schema: &SchemaSnapshot) -> bool {
        let settings = &schema.compiled.definition.settings;
        access(
            actor,
            self,
            &settings.read_mode,
            &format!("VIEW_DOCUMENTS:{}", schema.name),
        )
    }

    /// Whether the actor may read the document's comments: their own document's, or with
    /// `VIEW_DOCUMENT_COMMENTS` (globally or through a group role of one of its groups).
    pub fn comments_readable_by(
        &self,
        actor: &Actor,
        schema: &SchemaSnapshot,
    ) -> Result<(), DocumentError> {
        let permission = format!("VIEW_DOCUMENT_COMMENTS:{}", schema.name);
        self.reachable(actor, schema, &[&permission])?;
        if self.owned_by(actor) || permitted(actor, self, &permission) {
            Ok(())
        } else {
            Err(DocumentError::NoPermission(permission))
        }
    }

    fn updatable_by(&self, actor: &Actor, schema: &SchemaSnapshot) -> bool {
        let settings = &schema.compiled.definition.settings;
        access(
            actor,
            self,
            &settings.update_mode,
            &format!("UPDATE_DOCUMENTS:{}", schema.name),
        )
    }

    /// A document that exists and that the actor may read (or holds one of `permissions` for), in a
    /// schema that is enabled: one the actor cannot see is not found.
    fn reachable(
        &self,
        actor: &Actor,
        schema: &SchemaSnapshot,
        permissions: &[&str],
    ) -> Result<(), DocumentError> {
        self.exists()?;
        if self.schema_id != Some(schema.id) {
            return Err(DocumentError::NotFound);
        }
        let permitted_any = permissions.iter().any(|p| permitted(actor, self, p));
        if !self.readable_by(actor, schema) && !permitted_any {
            return Err(DocumentError::NotFound);
        }
        if schema.disabled {
            return Err(DocumentError::SchemaDisabled);
        }
        Ok(())
    }
}

/// The permission that allows the transition a request chooses, whatever the modes say.
fn transition_permission(schema: &SchemaSnapshot, choice: &TransitionChoice) -> String {
    let name = match choice {
        TransitionChoice::Name(name) => Some(name.as_str()),
        TransitionChoice::Id(id) => schema
            .compiled
            .definition
            .transitions
            .iter()
            .find(|t| t.id == id.to_string())
            .and_then(|t| t.name.as_deref()),
    };
    format!(
        "TRANSITION_DOCUMENTS:{}:{}",
        schema.name,
        name.unwrap_or_default()
    )
}

/// A dotted path a request names: names joined by dots, not too many.
fn check_path(path: &str) -> Result<(), DocumentError> {
    let names = path.split('.');
    if path.is_empty() || names.clone().count() > LONGEST_PATH || names.clone().any(str::is_empty) {
        return Err(DocumentError::InvalidData(format!(
            "`{path}` is not a path of at most {LONGEST_PATH} names joined by dots"
        )));
    }
    Ok(())
}

/// The value at a dotted path of `data`.
pub fn value_at<'a>(data: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = data.get(parts.next()?)?;
    parts.try_fold(first, |value, part| value.get(part))
}

fn get_path_mut<'a>(data: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let first = data.get_mut(parts.next()?)?;
    parts.try_fold(first, |value, part| value.get_mut(part))
}

/// Sets the value at a dotted path, making the objects on the way.
fn set_path(data: &mut Map<String, Value>, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = data;
    for part in parents {
        let entry = current
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert((*last).to_owned(), value);
}

/// Removes the value at a dotted path, if there is one.
fn remove_path(data: &mut Map<String, Value>, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = data;
    for part in parents {
        let Some(Value::Object(next)) = current.get_mut(*part) else {
            return;
        };
        current = next;
    }
    current.remove(*last);
}

fn id_at(data: &Map<String, Value>, field: &str) -> Option<Id> {
    value_at(data, field)?.as_str()?.parse().ok()
}

fn add_id(ids: &mut Vec<Id>, id: Id) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// A document while a workflow step runs over it.
struct Working<'a> {
    document_id: Id,
    schema: &'a SchemaSnapshot,
    actor: &'a Actor,
    lookups: &'a Lookups,
    creator_id: Option<Id>,
    status: String,
    data: Map<String, Value>,
    user_ids: Vec<Id>,
    group_ids: Vec<Id>,
    tasks: Vec<TaskRequested>,
    /// When the step began, and when a `delay` would end.
    since: Timestamp,
    now: Timestamp,
    /// The after-actions to run once the step is done.
    deferred: Vec<TaskAction>,
    /// Where a `delay` stopped the step.
    paused: Option<Pause>,
}

/// Where a `delay` stopped a step, and until when.
struct Pause {
    transition_id: Option<Id>,
    next_action: usize,
    resume_at: Timestamp,
}

/// How many automatic transitions one step may chain (a loop in the configuration ends here).
const MOST_AUTOMATIC_TRANSITIONS: usize = 64;

impl Working<'_> {
    /// The document as a `document` condition sees it.
    fn as_json(&self) -> Value {
        json!({
            "id": self.document_id.to_string(),
            "status": self.status,
            "data": self.data,
            "creatorId": self.creator_id.map(|c| c.to_string()),
            "userIds": self.user_ids.iter().map(Id::to_string).collect::<Vec<_>>(),
            "groupIds": self.group_ids.iter().map(Id::to_string).collect::<Vec<_>>(),
        })
    }

    /// Whether every condition of a transition (`None`: the creation transition) holds.
    fn conditions_hold(
        &self,
        transition: Option<usize>,
        conditions: &[Condition],
        input: Option<&Map<String, Value>>,
    ) -> bool {
        let actor = self.actor;
        conditions.iter().enumerate().all(|(i, condition)| {
            let validator = self.schema.compiled.condition(transition, i);
            match condition {
                Condition::Input { .. } => {
                    let input = Value::Object(input.cloned().unwrap_or_default());
                    validator.is_some_and(|v| v.validate(&input).is_ok())
                }
                Condition::Document { .. } => {
                    validator.is_some_and(|v| v.validate(&self.as_json()).is_ok())
                }
                Condition::InitiatorHasRelationToUserInData { user_id_field, .. } => {
                    id_at(&self.data, user_id_field).is_some_and(|patient| {
                        self.lookups
                            .patient_groups
                            .get(&patient)
                            .is_some_and(|groups| groups.iter().any(|g| actor.is_staff_of(*g)))
                    })
                }
                Condition::InitiatorHasRelationToGroupInData {
                    group_id_field,
                    relation,
                    required_permission,
                } => id_at(&self.data, group_id_field).is_some_and(|group| match relation {
                    GroupRelation::Patient => actor.patient_groups().any(|g| g == group),
                    GroupRelation::Staff => {
                        actor.is_staff_of(group)
                            && required_permission
                                .as_deref()
                                .is_none_or(|p| actor.allows_in(group, p))
                    }
                }),
            }
        })
    }

    fn request_task(&mut self, task: &TaskAction) {
        let mut data = task.data.clone().unwrap_or_default();
        data.insert("schemaId".into(), json!(self.schema.id.to_string()));
        data.insert("documentId".into(), json!(self.document_id.to_string()));
        self.tasks.push(TaskRequested {
            function_name: task.function_name.clone(),
            priority: task.priority,
            data: Json(Value::Object(data)),
        });
    }

    fn patient_groups_of(&self, user: Id) -> Vec<Id> {
        if self.actor.is_user(user) {
            return self.actor.patient_groups().collect();
        }
        self.lookups
            .patient_groups
            .get(&user)
            .map(|groups| groups.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Runs `actions` from the one at `from`, until a `delay` pauses the step.
    fn run(&mut self, actions: &[Action], from: usize, transition_id: Option<Id>) {
        for (at, action) in actions.iter().enumerate().skip(from) {
            match action {
                Action::Set { field, value } => set_path(&mut self.data, field, value.clone()),
                Action::Unset { fields } => {
                    for field in fields {
                        remove_path(&mut self.data, field);
                    }
                }
                Action::AddItems { field, values } => {
                    let mut items = match value_at(&self.data, field) {
                        Some(Value::Array(items)) => items.clone(),
                        _ => Vec::new(),
                    };
                    for value in values {
                        if !items.contains(value) {
                            items.push(value.clone());
                        }
                    }
                    set_path(&mut self.data, field, Value::Array(items));
                }
                Action::RemoveItems { field, values } => {
                    if let Some(Value::Array(items)) = value_at(&self.data, field) {
                        let kept = items
                            .iter()
                            .filter(|i| !values.contains(i))
                            .cloned()
                            .collect();
                        set_path(&mut self.data, field, Value::Array(kept));
                    }
                }
                Action::LinkCreator {} => {
                    if let Some(creator) = self.creator_id {
                        add_id(&mut self.user_ids, creator);
                    }
                }
                Action::LinkUserFromData { user_id_field } => {
                    if let Some(user) = id_at(&self.data, user_id_field) {
                        add_id(&mut self.user_ids, user);
                    }
                }
                Action::LinkEnlistedGroups { .. } => {
                    if let Some(creator) = self.creator_id {
                        for group in self.patient_groups_of(creator) {
                            add_id(&mut self.group_ids, group);
                        }
                    }
                }
                Action::LinkGroupFromData { group_id_field } => {
                    if let Some(group) = id_at(&self.data, group_id_field) {
                        add_id(&mut self.group_ids, group);
                    }
                }
                Action::Task(task) => self.request_task(task),
                Action::Delay { time } => {
                    // A configured delay is finite and not negative; `as` saturates.
                    let millis = (time * 1000.0).round() as i64;
                    self.paused = Some(Pause {
                        transition_id,
                        next_action: at + 1,
                        resume_at: Timestamp(self.now.millis().saturating_add(millis)),
                    });
                    return;
                }
                Action::MeasurementReviewedNotification {} => {}
            }
        }
    }

    fn after(&mut self, after_actions: &[AfterAction]) {
        for after_action in after_actions {
            if let AfterAction::Task(task) = after_action {
                self.deferred.push(task.clone());
            }
        }
    }

    /// Runs the automatic transitions that apply, in configuration order, until none does or a
    /// `delay` pauses the step.
    fn automatic(&mut self) -> Result<Vec<DocumentTransitioned>, DocumentError> {
        let transitions = &self.schema.compiled.definition.transitions;
        let mut ran = Vec::new();
        for _ in 0..MOST_AUTOMATIC_TRANSITIONS {
            if self.paused.is_some() {
                break;
            }
            let next = transitions.iter().enumerate().find(|(i, t)| {
                t.kind == TransitionType::Automatic
                    && t.from_statuses.contains(&self.status)
                    && self.conditions_hold(Some(*i), &t.conditions, None)
            });
            let Some((_, transition)) = next else { break };
            ran.push(self.transition(transition)?);
            self.after(&transition.after_actions);
        }
        Ok(ran)
    }

    fn transition(
        &mut self,
        transition: &vigil_schemas::workflow::Transition,
    ) -> Result<DocumentTransitioned, DocumentError> {
        let transition_id = transition.id.parse().map_err(|_| {
            DocumentError::IllegalArgument(format!("`{}` is not a transition id", transition.id))
        })?;
        let from_status = std::mem::replace(&mut self.status, transition.to_status.clone());
        self.run(&transition.actions, 0, Some(transition_id));
        Ok(DocumentTransitioned {
            transition_id,
            transition_name: transition.name.clone(),
            from_status,
            to_status: self.status.clone(),
            data: Json(Value::Object(self.data.clone())),
            user_ids: self.user_ids.clone(),
            group_ids: self.group_ids.clone(),
        })
    }

    /// The events of the automatic transitions and the tasks of a step — or of the lock, if a
    /// `delay` paused it — once its data is checked (fields the document already had outside
    /// the schema are left alone).
    fn finish(
        mut self,
        mut events: Vec<DocumentEvent>,
        before: Option<&Map<String, Value>>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let automatic = self.automatic()?;
        check_data(self.schema, before, &self.data)?;
        events.extend(automatic.into_iter().map(DocumentEvent::Transitioned));
        match self.paused.take() {
            Some(pause) => events.push(DocumentEvent::Locked(DocumentLocked {
                since: self.since,
                resume_at: pause.resume_at,
                transition_id: pause.transition_id,
                next_action: u32::try_from(pause.next_action).unwrap_or(u32::MAX),
                after_actions: JsonOf(self.deferred.clone()),
            })),
            None => {
                for task in std::mem::take(&mut self.deferred) {
                    self.request_task(&task);
                }
            }
        }
        events.extend(self.tasks.into_iter().map(DocumentEvent::TaskRequested));
        Ok(events)
    }
}

/// The longest comment, in characters.
pub const LONGEST_COMMENT: usize = 10_000;

/// A comment's text: not empty, not too long.
fn comment_text(text: &str) -> Result<String, DocumentError> {
    let length = text.chars().count();
    if text.trim().is_empty() || length > LONGEST_COMMENT {
        return Err(DocumentError::InvalidData(format!(
            "text: a comment is 1 to {LONGEST_COMMENT} characters"
        )));
    }
    Ok(text.to_owned())
}

/// How deep a document's data may nest.
const DEEPEST_DATA: usize = 32;

fn deeper_than(value: &Value, levels: usize) -> bool {
    match value {
        Value::Object(fields) => levels == 0 || fields.values().any(|v| deeper_than(v, levels - 1)),
        Value::Array(items) => levels == 0 || items.iter().any(|v| deeper_than(v, levels - 1)),
        _ => false,
    }
}

/// Checks data against the schema's properties. Root fields outside the schema that the document
/// already had (`before`) with the same value are left alone: removing a property from a schema
/// does not lock the documents that have it.
fn check_data(
    schema: &SchemaSnapshot,
    before: Option<&Map<String, Value>>,
    data: &Map<String, Value>,
) -> Result<(), DocumentError> {
    if data.values().any(|v| deeper_than(v, DEEPEST_DATA)) {
        return Err(DocumentError::InvalidData(format!(
            "/: data nests deeper than {DEEPEST_DATA} levels"
        )));
    }
    let properties = &schema.compiled.definition.properties;
    let checked: Map<String, Value> = data
        .iter()
        .filter(|(key, value)| {
            properties.contains_key(*key) || before.and_then(|b| b.get(*key)) != Some(*value)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    schema
        .compiled
        .validate_data(&Value::Object(checked))
        .map_err(|violations| {
            DocumentError::InvalidData(
                violations
                    .iter()
                    .map(|v| {
                        format!(
                            "{}: {}",
                            if v.path.is_empty() { "/" } else { &v.path },
                            v.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
}

impl Aggregate for Document {
    const KIND: &'static str = "document";
    type Command = DocumentCommand;
    type Event = DocumentEvent;
    type Error = DocumentError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let schema = command.schema();
        let settings = &schema.compiled.definition.settings;
        let actor = ctx.actor;
        match command {
            DocumentCommand::Guarded { command, .. } => self.authorize(command, ctx),
            DocumentCommand::SyncGroups { .. } | DocumentCommand::Resume { .. }
                if actor.is_system() =>
            {
                self.exists()
            }
            DocumentCommand::SyncGroups { .. } | DocumentCommand::Resume { .. } => {
                Err(DocumentError::NoPermission("Vigil itself".into()))
            }
            DocumentCommand::AddComment { .. } => {
                let permission = format!("CREATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if self.owned_by(actor) || permitted(actor, self, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::UpdateComment { id, .. }
            | DocumentCommand::RemoveComment { id, .. } => {
                let permission = format!("UPDATE_DOCUMENT_COMMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                let writer = self
                    .comments
                    .get(id)
                    .ok_or(DocumentError::UnknownComment(*id))?;
                // Anyone may change their own comment; others need the permission, which only
                // removal takes through a group role too.
                let own = writer.is_some_and(|w| actor.is_user(w));
                let allowed = match command {
                    DocumentCommand::RemoveComment { .. } => permitted(actor, self, &permission),
                    _ => actor.allows(&permission),
                };
                if own || allowed {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::Create { .. } => {
                let permission = format!("CREATE_DOCUMENTS:{}", schema.name);
                if settings.create_mode == CreateMode::AllUsers || actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::LinkGroups { .. }
            | DocumentCommand::UnlinkGroups { .. }
            | DocumentCommand::LinkUsers { .. }
            | DocumentCommand::UnlinkUsers { .. } => {
                // Global only: a group role cannot hand out access to documents.
                let permission = format!("UPDATE_ACCESS_TO_DOCUMENT:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if actor.allows(&permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            DocumentCommand::Update { .. }
            | DocumentCommand::DeleteFields { .. }
            | DocumentCommand::AppendToArray { .. }
            | DocumentCommand::UpdateInArray { .. }
            | DocumentCommand::RemoveFromArray { .. } => {
                let permission = format!("UPDATE_DOCUMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if access(actor, self, &settings.update_mode, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
            // Which transition, and so which permission, is known once it is chosen.
            // The update permission, or the one for this transition, lets a caller reach it.
            DocumentCommand::Transition { choice, .. } => {
                let update = format!("UPDATE_DOCUMENTS:{}", schema.name);
                let transition = transition_permission(schema, choice);
                self.reachable(actor, schema, &[&update, &transition])
            }
            DocumentCommand::Delete { .. } => {
                let permission = format!("DELETE_DOCUMENTS:{}", schema.name);
                self.reachable(actor, schema, &[&permission])?;
                if access(actor, self, &settings.delete_mode, &permission) {
                    Ok(())
                } else {
                    Err(DocumentError::NoPermission(permission))
                }
            }
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if self.lock.is_some() && command.waits_for_lock() {
            return Err(DocumentError::Locked);
        }
        match command {
            DocumentCommand::Guarded { seen, .. } if *seen != self.events => {
                Err(DocumentError::Stale)
            }
            DocumentCommand::Resume {
                schema,
                lookups,
                lock,
            } => match &self.lock {
                Some(held) if held.event == *lock && !self.deleted => {
                    if ctx.now < held.resume_at {
                        return Err(DocumentError::NotDue);
                    }
                    self.resumed(held, schema, lookups, ctx)
                }
                // Resumed already, or gone.
                _ => Ok(vec![]),
            },
            DocumentCommand::AddComment { schema, id, text } => {
                Ok(vec![DocumentEvent::CommentAdded(CommentAdded {
                    comment_id: *id,
                    schema_id: schema.id,
                    creator_id: ctx.actor.record().user_id,
                    text: Personal(comment_text(text)?),
                    comment_count: self.comment_count().saturating_add(1),
                })])
            }
            DocumentCommand::UpdateComment { id, text, .. } => {
                Ok(vec![DocumentEvent::CommentUpdated(CommentUpdated {
                    comment_id: *id,
                    text: Personal(comment_text(text)?),
                })])
            }
            DocumentCommand::RemoveComment { id, .. } => {
                Ok(vec![DocumentEvent::CommentRemoved(CommentRemoved {
                    comment_id: *id,
                    comment_count: self.comment_count().saturating_sub(1),
                })])
            }
            DocumentCommand::Guarded { command, .. } => self.handle(command, ctx),
            DocumentCommand::SyncGroups { schema, lookups } => {
                let patients_of =
                    |user: &Id| lookups.patient_groups.get(user).into_iter().flatten();
                let mut groups = Vec::new();
                match schema.compiled.definition.settings.group_sync_mode {
                    GroupSyncMode::Disabled => return Ok(vec![]),
                    GroupSyncMode::CreatorPatientEnlistments => {
                        for group in self.creator_id.iter().flat_map(patients_of) {
                            add_id(&mut groups, *group);
                        }
                    }
                    GroupSyncMode::LinkedUsersPatientEnlistments => {
                        for group in self.user_ids.iter().flat_map(patients_of) {
                            add_id(&mut groups, *group);
                        }
                    }
                }
                Ok(self.groups_now(groups))
            }
            DocumentCommand::Create {
                schema,
                data,
                lookups,
            } => {
                if self.created {
                    return Err(DocumentError::AlreadyExists);
                }
                if schema.disabled {
                    return Err(DocumentError::SchemaDisabled);
                }
                check_data(schema, None, data)?;
                let definition = &schema.compiled.definition;
                let creation = &definition.creation_transition;
                let document_id = document_id(ctx)?;
                let creator_id = ctx.actor.record().user_id;
                let mut working = Working {
                    document_id,
                    schema,
                    actor: ctx.actor,
                    lookups,
                    creator_id,
                    status: creation.to_status.clone(),
                    data: data.clone(),
                    user_ids: Vec::new(),
                    group_ids: Vec::new(),
                    tasks: Vec::new(),
                    since: ctx.now,
                    now: ctx.now,
                    deferred: Vec::new(),
                    paused: None,
                };
                if !working.conditions_hold(None, &creation.conditions, Some(data)) {
                    return Err(DocumentError::IllegalArgument(
                        "The conditions of the creation transition are not met".into(),
                    ));
                }
                working.run(&creation.actions, 0, None);
                match definition.settings.group_sync_mode {
                    GroupSyncMode::Disabled => {}
                    GroupSyncMode::CreatorPatientEnlistments => {
                        if let Some(creator) = creator_id {
                            for group in working.patient_groups_of(creator) {
                                add_id(&mut working.group_ids, group);
                            }
                        }
                    }
                    GroupSyncMode::LinkedUsersPatientEnlistments => {
                        for user in working.user_ids.clone() {
                            for group in working.patient_groups_of(user) {
                                add_id(&mut working.group_ids, group);
                            }
                        }
                    }
                }
                working.after(&creation.after_actions);
                let created = DocumentEvent::Created(DocumentCreated {
                    schema_id: schema.id,
                    creator_id,
                    status: working.status.clone(),
                    data: Json(Value::Object(working.data.clone())),
                    user_ids: working.user_ids.clone(),
                    group_ids: working.group_ids.clone(),
                });
                working.finish(vec![created], None)
            }
            DocumentCommand::Update { schema, changes } => {
                let mut data = self.data.clone();
                for (field, value) in changes {
                    if value.is_null() {
                        data.remove(field);
                    } else {
                        data.insert(field.clone(), value.clone());
                    }
                }
                self.updated(schema, data)
            }
            DocumentCommand::DeleteFields { schema, fields } => {
                let mut data = self.data.clone();
                for field in fields {
                    check_path(field)?;
                    remove_path(&mut data, field);
                }
                self.updated(schema, data)
            }
            DocumentCommand::Transition {
                schema,
                choice,
                data,
                lookups,
            } => self.transitioned(schema, choice, data, lookups, ctx),
            DocumentCommand::Delete { .. } => Ok(vec![DocumentEvent::Deleted(DocumentDeleted {})]),
            DocumentCommand::LinkGroups { group_ids, .. } => {
                let mut groups = self.group_ids.clone();
                for group in group_ids {
                    add_id(&mut groups, *group);
                }
                Ok(self.groups_now(groups))
            }
            DocumentCommand::UnlinkGroups { group_ids, .. } => {
                let groups = match group_ids {
                    Some(gone) => self
                        .group_ids
                        .iter()
                        .filter(|g| !gone.contains(g))
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                Ok(self.groups_now(groups))
            }
            DocumentCommand::LinkUsers {
                schema,
                user_ids,
                lookups,
            } => {
                let mut users = self.user_ids.clone();
                for user in user_ids {
                    add_id(&mut users, *user);
                }
                let mut events = Vec::new();
                if users != self.user_ids {
                    events.push(DocumentEvent::UsersChanged(LinksChanged { ids: users }));
                }
                if schema.compiled.definition.settings.group_sync_mode
                    == GroupSyncMode::LinkedUsersPatientEnlistments
                {
                    let mut groups = self.group_ids.clone();
                    for user in user_ids {
                        for group in lookups.patient_groups.get(user).into_iter().flatten() {
                            add_id(&mut groups, *group);
                        }
                    }
                    events.extend(self.groups_now(groups));
                }
                Ok(events)
            }
            DocumentCommand::UnlinkUsers { user_ids, .. } => {
                let users: Vec<Id> = match user_ids {
                    Some(gone) => self
                        .user_ids
                        .iter()
                        .filter(|u| !gone.contains(u))
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                if users == self.user_ids {
                    return Ok(vec![]);
                }
                Ok(vec![DocumentEvent::UsersChanged(LinksChanged {
                    ids: users,
                })])
            }
            DocumentCommand::AppendToArray {
                schema,
                field,
                id,
                object,
            } => {
                check_path(field)?;
                let mut data = self.data.clone();
                let mut items = match value_at(&data, field) {
                    Some(Value::Array(items)) => items.clone(),
                    Some(_) => {
                        return Err(DocumentError::IllegalArgument(format!(
                            "`{field}` is not an array"
                        )));
                    }
                    None => Vec::new(),
                };
                let mut object = object.clone();
                object.insert("id".into(), json!(id.to_string()));
                items.push(Value::Object(object));
                set_path(&mut data, field, Value::Array(items));
                self.updated(schema, data)
            }
            DocumentCommand::UpdateInArray {
                schema,
                field,
                id,
                changes,
            } => {
                check_path(field)?;
                let mut data = self.data.clone();
                let element = element_mut(&mut data, field, *id)?;
                for (key, value) in changes {
                    if key == "id" {
                        continue;
                    }
                    if value.is_null() {
                        element.remove(key);
                    } else {
                        element.insert(key.clone(), value.clone());
                    }
                }
                self.updated(schema, data)
            }
            DocumentCommand::RemoveFromArray { schema, field, id } => {
                check_path(field)?;
                let mut data = self.data.clone();
                element_mut(&mut data, field, *id)?;
                if let Some(Value::Array(items)) = value_at(&data, field) {
                    let kept = items
                        .iter()
                        .filter(|item| {
                            item.get("id").and_then(Value::as_str) != Some(&id.to_string())
                        })
                        .cloned()
                        .collect();
                    set_path(&mut data, field, Value::Array(kept));
                }
                self.updated(schema, data)
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        self.events += 1;
        let data_of = |json: &Json| json.get().as_object().cloned().unwrap_or_default();
        match event {
            DocumentEvent::Created(e) => {
                self.created = true;
                self.schema_id = Some(e.schema_id);
                self.creator_id = e.creator_id;
                self.status = e.status.clone();
                self.data = data_of(&e.data);
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::Updated(e) => self.data = data_of(&e.data),
            DocumentEvent::Transitioned(e) => {
                self.status = e.to_status.clone();
                self.data = data_of(&e.data);
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::Deleted(_) => self.deleted = true,
            DocumentEvent::TaskRequested(_) => {}
            DocumentEvent::UsersChanged(e) => self.user_ids = e.ids.clone(),
            DocumentEvent::GroupsChanged(e) => self.group_ids = e.ids.clone(),
            DocumentEvent::Locked(e) => {
                self.lock = Some(Lock {
                    event: self.events,
                    since: e.since,
                    resume_at: e.resume_at,
                    transition_id: e.transition_id,
                    next_action: usize::try_from(e.next_action).unwrap_or(usize::MAX),
                    after_actions: e.after_actions.0.clone(),
                });
            }
            DocumentEvent::Resumed(e) => {
                self.lock = None;
                self.data = data_of(&e.data);
                self.user_ids = e.user_ids.clone();
                self.group_ids = e.group_ids.clone();
            }
            DocumentEvent::CommentAdded(e) => {
                self.comments.insert(e.comment_id, e.creator_id);
            }
            DocumentEvent::CommentUpdated(_) => {}
            DocumentEvent::CommentRemoved(e) => {
                self.comments.remove(&e.comment_id);
            }
        }
    }
}

/// The element with `id` of the array of objects at `field`.
fn element_mut<'a>(
    data: &'a mut Map<String, Value>,
    field: &str,
    id: Id,
) -> Result<&'a mut Map<String, Value>, DocumentError> {
    let id = id.to_string();
    get_path_mut(data, field)
        .and_then(Value::as_array_mut)
        .and_then(|items| {
            items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .find(|item| item.get("id").and_then(Value::as_str) == Some(id.as_str()))
        })
        .ok_or_else(|| DocumentError::UnknownElement(format!("{field}/{id}")))
}

impl Document {
    /// A `GroupsChanged` event if `groups` are not the document's (in any order).
    fn groups_now(&self, groups: Vec<Id>) -> Vec<DocumentEvent> {
        let same = groups.iter().collect::<BTreeSet<_>>() == self.group_ids.iter().collect();
        if same && groups.len() == self.group_ids.len() {
            Vec::new()
        } else {
            vec![DocumentEvent::GroupsChanged(LinksChanged { ids: groups })]
        }
    }

    fn updated(
        &self,
        schema: &SchemaSnapshot,
        data: Map<String, Value>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        if data == self.data {
            return Ok(vec![]);
        }
        check_data(schema, Some(&self.data), &data)?;
        Ok(vec![DocumentEvent::Updated(DocumentUpdated {
            data: Json(Value::Object(data)),
        })])
    }

    /// A manual transition, then the automatic ones it leads to.
    fn transitioned(
        &self,
        schema: &SchemaSnapshot,
        choice: &TransitionChoice,
        input: &Map<String, Value>,
        lookups: &Lookups,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let transitions = &schema.compiled.definition.transitions;
        let candidates: Vec<(usize, &vigil_schemas::workflow::Transition)> = transitions
            .iter()
            .enumerate()
            .filter(|(_, t)| match choice {
                TransitionChoice::Id(id) => t.id == id.to_string(),
                TransitionChoice::Name(name) => t.name.as_deref() == Some(name.as_str()),
            })
            .collect();
        if candidates.is_empty() {
            return Err(DocumentError::UnknownTransition(match choice {
                TransitionChoice::Id(id) => id.to_string(),
                TransitionChoice::Name(name) => name.clone(),
            }));
        }
        // Permission first: a caller without it learns nothing of the conditions.
        let permission = transition_permission(schema, choice);
        if !self.updatable_by(ctx.actor, schema) && !permitted(ctx.actor, self, &permission) {
            return Err(DocumentError::NoPermission(permission));
        }
        // Fields of the input that are properties of the schema are written into the data.
        let mut data = self.data.clone();
        for (field, value) in input {
            if schema.compiled.definition.properties.contains_key(field) {
                data.insert(field.clone(), value.clone());
            }
        }
        let mut working = self.working(schema, lookups, ctx)?;
        working.data = data;
        let chosen = candidates.into_iter().find(|(i, t)| {
            t.kind == TransitionType::Manual
                && t.from_statuses.contains(&self.status)
                && working.conditions_hold(Some(*i), &t.conditions, Some(input))
        });
        let Some((_, transition)) = chosen else {
            return Err(DocumentError::IllegalArgument(format!(
                "The transition cannot run from status `{}`, or its conditions are not met",
                self.status
            )));
        };
        let manual = working.transition(transition)?;
        working.after(&transition.after_actions);
        working.finish(vec![DocumentEvent::Transitioned(manual)], Some(&self.data))
    }

    /// A step over the document as it is now.
    fn working<'a>(
        &self,
        schema: &'a SchemaSnapshot,
        lookups: &'a Lookups,
        ctx: &Ctx<'a>,
    ) -> Result<Working<'a>, DocumentError> {
        Ok(Working {
            document_id: document_id(ctx)?,
            schema,
            actor: ctx.actor,
            lookups,
            creator_id: self.creator_id,
            status: self.status.clone(),
            data: self.data.clone(),
            user_ids: self.user_ids.clone(),
            group_ids: self.group_ids.clone(),
            tasks: Vec::new(),
            since: ctx.now,
            now: ctx.now,
            deferred: Vec::new(),
            paused: None,
        })
    }

    /// Goes on with the step the lock paused: the rest of the paused transition's actions (as
    /// the schema configures them now), then the automatic transitions and after-actions.
    fn resumed(
        &self,
        lock: &Lock,
        schema: &SchemaSnapshot,
        lookups: &Lookups,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<DocumentEvent>, DocumentError> {
        let definition = &schema.compiled.definition;
        let actions: &[Action] = match lock.transition_id {
            None => &definition.creation_transition.actions,
            Some(id) => definition
                .transitions
                .iter()
                .find(|t| t.id == id.to_string())
                .map_or(&[], |t| &t.actions),
        };
        let mut working = self.working(schema, lookups, ctx)?;
        working.since = lock.since;
        working.deferred = lock.after_actions.clone();
        working.run(actions, lock.next_action, lock.transition_id);
        let resumed = DocumentEvent::Resumed(DocumentResumed {
            data: Json(Value::Object(working.data.clone())),
            user_ids: working.user_ids.clone(),
            group_ids: working.group_ids.clone(),
        });
        working.finish(vec![resumed], Some(&self.data))
    }

    fn comment_count(&self) -> u32 {
        u32::try_from(self.comments.len()).unwrap_or(u32::MAX)
    }

    /// Whether the document is the actor's own: they created it or are linked to it.
    fn owned_by(&self, actor: &Actor) -> bool {
        relates(actor, self, Relation::Creator) || relates(actor, self, Relation::LinkedUsers)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::actor::{Rights, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;
    use vigil_schemas::definition::{Definition, Write};

    const GROUP: u8 = 40;

    /// Task after-actions for generated `document.locked` events.
    pub(crate) fn task_actions()
    -> impl proptest::strategy::Strategy<Value = JsonOf<Vec<TaskAction>>> {
        use proptest::prelude::*;
        let action = (
            "[a-z]{1,8}",
            proptest::option::of(0i64..10),
            proptest::option::of(Just(Map::new())),
        )
            .prop_map(|(function_name, priority, data)| TaskAction {
                function_name,
                priority,
                data,
            });
        proptest::collection::vec(action, 0..3).prop_map(JsonOf)
    }

    fn user(n: u8, permissions: &[&str]) -> Actor {
        let global: Permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
        Actor::user(id(n), None, global, Via::Http, None)
    }

    fn staff(n: u8) -> Actor {
        let rights = Rights {
            staff: [(id(GROUP), Permissions::default())].into(),
            ..Rights::default()
        };
        Actor::user(id(n), None, rights, Via::Http, None)
    }

    fn patient(n: u8) -> Actor {
        let rights = Rights {
            patient: [id(GROUP)].into(),
            ..Rights::default()
        };
        Actor::user(id(n), None, rights, Via::Http, None)
    }

    /// Blood pressure: `new` → (automatic, systolic ≥ 140) `alarm`; manual `review` from `new` or
    /// `alarm` to `reviewed`.
    fn blood_pressure(configure: impl FnOnce(&mut Definition)) -> Arc<SchemaSnapshot> {
        let mut d = Definition::default();
        d.write_property(
            "systolic",
            &json!({"type": "number", "minimum": 0}),
            Write::Add,
        )
        .unwrap();
        d.write_property("note", &json!({"type": "string"}), Write::Add)
            .unwrap();
        d.write_property(
            "readings",
            &json!({"type": "array", "items": {"type": "object", "properties": {"value": {"type": "number"}}}}),
            Write::Add,
        )
        .unwrap();
        d.write_property(
            "flag",
            &json!({"type": "object", "properties": {"high": {"type": "boolean"}}}),
            Write::Add,
        )
        .unwrap();
        d.write_property(
            "tags",
            &json!({"type": "array", "items": {"type": "string"}}),
            Write::Add,
        )
        .unwrap();
        for status in ["alarm", "reviewed"] {
            d.write_status(status, Map::new(), Write::Add).unwrap();
        }
        d.set_creation_transition(&json!({
            "type": "manual", "toStatus": "new",
            "actions": [{"type": "linkCreator"}, {"type": "addItems", "field": "tags", "values": ["measured"]}],
            "afterActions": [{"type": "task", "functionName": "analyze", "data": {"kind": "bp"}}],
        }))
        .unwrap();
        d.write_transition(&id(1).to_string(), &json!({
            "name": "alarm", "type": "automatic", "fromStatuses": ["new"], "toStatus": "alarm",
            "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}}],
            "actions": [{"type": "set", "field": "flag.high", "value": true}],
        }), Write::Add)
        .unwrap();
        d.write_transition(&id(2).to_string(), &json!({
            "name": "review", "type": "manual", "fromStatuses": ["alarm"], "toStatus": "reviewed",
            "conditions": [{"type": "input", "configuration": {"type": "object", "required": ["note"]}}],
        }), Write::Add)
        .unwrap();
        d.write_transition(
            &id(3).to_string(),
            &json!({
                "name": "review", "type": "manual", "fromStatuses": ["new"], "toStatus": "reviewed",
            }),
            Write::Add,
        )
        .unwrap();
        configure(&mut d);
        Arc::new(SchemaSnapshot {
            id: id(30),
            name: "bp".into(),
            disabled: false,
            compiled: CompiledSchema::compile(d).unwrap(),
        })
    }

    fn create(schema: &Arc<SchemaSnapshot>, data: Value) -> DocumentCommand {
        DocumentCommand::Create {
            schema: schema.clone(),
            data: data.as_object().cloned().unwrap_or_default(),
            lookups: Lookups::default(),
        }
    }

    fn created_by(actor: Actor, schema: &Arc<SchemaSnapshot>, data: Value) -> Vec<DocumentEvent> {
        given::<Document>(&[])
            .on(id(50))
            .by(actor)
            .when(create(schema, data))
            .events()
    }

    #[test]
    fn creation_runs_the_creation_transition_then_the_automatic_ones() {
        let schema = blood_pressure(|_| {});
        let events = created_by(patient(7), &schema, json!({"systolic": 150}));
        let DocumentEvent::Created(created) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(created.status, "new");
        assert_eq!(created.creator_id, Some(id(7)));
        assert_eq!(created.user_ids, [id(7)]);
        assert_eq!(
            created.data.get(),
            &json!({"systolic": 150, "tags": ["measured"]})
        );
        let DocumentEvent::Transitioned(alarm) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (alarm.from_status.as_str(), alarm.to_status.as_str()),
            ("new", "alarm")
        );
        assert_eq!(alarm.data.get()["flag"], json!({"high": true}));
        let DocumentEvent::TaskRequested(task) = &events[2] else {
            panic!("{events:?}")
        };
        assert_eq!(task.function_name, "analyze");
        assert_eq!(
            task.data.get(),
            &json!({"kind": "bp", "schemaId": id(30).to_string(), "documentId": id(50).to_string()})
        );
        assert_eq!(events.len(), 3);
        assert_eq!(Document::fold(&events).status, "alarm");

        let calm = created_by(patient(7), &schema, json!({"systolic": 120}));
        assert_eq!(calm.len(), 2, "no automatic transition applies: {calm:?}");
        assert_eq!(Document::fold(&calm).status, "new");
    }

    #[test]
    fn data_outside_the_schema_is_refused_naming_the_path() {
        let schema = blood_pressure(|_| {});
        let refused = given::<Document>(&[])
            .by(patient(7))
            .when(create(&schema, json!({"systolic": -1, "unknown": 1})))
            .events_or_error();
        let Err(DocumentError::InvalidData(message)) = refused else {
            panic!("{refused:?}")
        };
        assert!(message.contains("/systolic"), "{message}");
    }

    #[test]
    fn create_mode_permission_required_needs_the_permission_for_the_schema() {
        let schema = blood_pressure(|d| {
            d.settings.create_mode = CreateMode::PermissionRequired;
        });
        given::<Document>(&[])
            .by(patient(7))
            .when(create(&schema, json!({})))
            .then_err(DocumentError::NoPermission("CREATE_DOCUMENTS:bp".into()));
        assert_eq!(
            created_by(user(7, &["CREATE_DOCUMENTS:bp"]), &schema, json!({})).len(),
            2
        );
        assert_eq!(
            created_by(user(7, &["CREATE_DOCUMENTS"]), &schema, json!({})).len(),
            2
        );
        given::<Document>(&[])
            .by(user(7, &["CREATE_DOCUMENTS:other"]))
            .when(create(&schema, json!({})))
            .then_err(DocumentError::NoPermission("CREATE_DOCUMENTS:bp".into()));
    }

    #[test]
    fn updates_follow_the_update_mode_and_null_clears_a_field() {
        let schema = blood_pressure(|d| {
            d.creation_transition
                .actions
                .push(Action::LinkEnlistedGroups { only_active: None });
        });
        let history = created_by(
            patient(7),
            &schema,
            json!({"systolic": 120, "note": "rest"}),
        );
        let update = |changes: Value| DocumentCommand::Update {
            schema: schema.clone(),
            changes: changes.as_object().cloned().unwrap_or_default(),
        };
        let events = given::<Document>(&history)
            .by(patient(7))
            .when(update(json!({"note": null, "systolic": 125})))
            .events();
        assert_eq!(
            events,
            [DocumentEvent::Updated(DocumentUpdated {
                data: Json(json!({"systolic": 125, "tags": ["measured"]}))
            })]
        );
        // Staff of the document's group may (default modes); a stranger does not even see it.
        assert_eq!(
            given::<Document>(&history)
                .by(staff(8))
                .when(update(json!({"systolic": 1})))
                .events()
                .len(),
            1
        );
        given::<Document>(&history)
            .by(user(9, &[]))
            .when(update(json!({"systolic": 1})))
            .then_err(DocumentError::NotFound);
        given::<Document>(&history)
            .by(user(9, &["VIEW_DOCUMENTS:bp"]))
            .when(update(json!({"systolic": 1})))
            .then_err(DocumentError::NoPermission("UPDATE_DOCUMENTS:bp".into()));
        given::<Document>(&history)
            .by(patient(7))
            .when(update(json!({"systolic": "high"})))
            .events_or_error()
            .unwrap_err();
        given::<Document>(&history)
            .by(patient(7))
            .when(update(json!({"systolic": 120})))
            .then(&[]);
    }

    #[test]
    fn a_manual_transition_by_name_takes_the_one_that_fits_the_status() {
        let schema = blood_pressure(|_| {});
        let transition = |actor: Actor, history: &[DocumentEvent], input: Value| {
            given::<Document>(history)
                .by(actor)
                .when(DocumentCommand::Transition {
                    schema: schema.clone(),
                    choice: TransitionChoice::Name("review".into()),
                    data: input.as_object().cloned().unwrap_or_default(),
                    lookups: Lookups::default(),
                })
        };
        let calm = created_by(patient(7), &schema, json!({"systolic": 120}));
        let events = transition(patient(7), &calm, json!({})).events();
        let DocumentEvent::Transitioned(review) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(review.transition_id, id(3));

        let alarm = created_by(patient(7), &schema, json!({"systolic": 150}));
        let refused = transition(patient(7), &alarm, json!({})).events_or_error();
        assert!(
            matches!(refused, Err(DocumentError::IllegalArgument(_))),
            "{refused:?}"
        );
        let events = transition(patient(7), &alarm, json!({"note": "seen", "other": 1})).events();
        let DocumentEvent::Transitioned(review) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(review.transition_id, id(2));
        assert_eq!(
            review.data.get()["note"],
            "seen",
            "input fields that are properties are kept"
        );
        assert!(review.data.get().get("other").is_none());

        let reader = user(9, &["VIEW_DOCUMENTS:bp"]);
        transition(reader, &alarm, json!({"note": "x"})).then_err(DocumentError::NoPermission(
            "TRANSITION_DOCUMENTS:bp:review".into(),
        ));
        let transitioner = user(9, &["VIEW_DOCUMENTS:bp", "TRANSITION_DOCUMENTS:bp:review"]);
        assert_eq!(
            transition(transitioner, &alarm, json!({"note": "x"}))
                .events()
                .len(),
            1
        );
        let unknown = given::<Document>(&alarm)
            .by(patient(7))
            .when(DocumentCommand::Transition {
                schema: schema.clone(),
                choice: TransitionChoice::Id(id(99)),
                data: Map::new(),
                lookups: Lookups::default(),
            });
        unknown.then_err(DocumentError::UnknownTransition(id(99).to_string()));
    }

    #[test]
    fn a_cycle_of_automatic_transitions_ends() {
        let schema = blood_pressure(|d| {
            d.write_transition(&id(4).to_string(), &json!({
                "name": "back", "type": "automatic", "fromStatuses": ["alarm"], "toStatus": "new",
            }), Write::Add)
            .unwrap();
        });
        let events = created_by(patient(7), &schema, json!({"systolic": 150}));
        let transitions = events
            .iter()
            .filter(|e| matches!(e, DocumentEvent::Transitioned(_)))
            .count();
        assert_eq!(transitions, MOST_AUTOMATIC_TRANSITIONS);
    }

    #[test]
    fn deletion_needs_the_permission_by_default() {
        let schema = blood_pressure(|_| {});
        let history = created_by(patient(7), &schema, json!({}));
        let delete = || DocumentCommand::Delete {
            schema: schema.clone(),
        };
        given::<Document>(&history)
            .by(patient(7))
            .when(delete())
            .then_err(DocumentError::NoPermission("DELETE_DOCUMENTS:bp".into()));
        given::<Document>(&history)
            .by(user(9, &["DELETE_DOCUMENTS"]))
            .when(delete())
            .then(&[DocumentEvent::Deleted(DocumentDeleted {})]);
        let mut deleted = history.clone();
        deleted.push(DocumentEvent::Deleted(DocumentDeleted {}));
        given::<Document>(&deleted)
            .by(user(9, &["DELETE_DOCUMENTS"]))
            .when(delete())
            .then_err(DocumentError::NotFound);
    }

    #[test]
    fn links_need_the_global_access_permission() {
        let schema = blood_pressure(|d| {
            d.settings.group_sync_mode = GroupSyncMode::LinkedUsersPatientEnlistments;
        });
        let history = created_by(patient(7), &schema, json!({}));
        let link = |users: Vec<Id>| DocumentCommand::LinkUsers {
            schema: schema.clone(),
            user_ids: users,
            lookups: Lookups {
                patient_groups: [(id(8), [id(41)].into())].into(),
            },
        };
        given::<Document>(&history)
            .by(patient(7))
            .when(link(vec![id(8)]))
            .then_err(DocumentError::NoPermission(
                "UPDATE_ACCESS_TO_DOCUMENT:bp".into(),
            ));
        let manager = user(9, &["UPDATE_ACCESS_TO_DOCUMENT:bp"]);
        let events = given::<Document>(&history)
            .by(manager.clone())
            .when(link(vec![id(8), id(7)]))
            .events();
        assert_eq!(
            events,
            [
                DocumentEvent::UsersChanged(LinksChanged {
                    ids: vec![id(7), id(8)]
                }),
                DocumentEvent::GroupsChanged(LinksChanged {
                    ids: vec![id(GROUP), id(41)]
                }),
            ]
        );
        let mut linked = history.clone();
        linked.extend(events);
        given::<Document>(&linked)
            .by(manager.clone())
            .when(DocumentCommand::UnlinkGroups {
                schema: schema.clone(),
                group_ids: Some(vec![]),
            })
            .then(&[]);
        given::<Document>(&linked)
            .by(manager.clone())
            .when(DocumentCommand::UnlinkGroups {
                schema: schema.clone(),
                group_ids: None,
            })
            .then(&[DocumentEvent::GroupsChanged(LinksChanged { ids: vec![] })]);
        given::<Document>(&linked)
            .by(manager)
            .when(DocumentCommand::UnlinkUsers {
                schema: schema.clone(),
                user_ids: Some(vec![id(7)]),
            })
            .then(&[DocumentEvent::UsersChanged(LinksChanged {
                ids: vec![id(8)],
            })]);
    }

    #[test]
    fn arrays_of_objects_get_elements_with_ids() {
        let schema = blood_pressure(|_| {});
        let history = created_by(patient(7), &schema, json!({"readings": [{"value": 1}]}));
        let events = given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::AppendToArray {
                schema: schema.clone(),
                field: "readings".into(),
                id: id(60),
                object: json!({"value": 2}).as_object().cloned().unwrap_or_default(),
            })
            .events();
        let mut history = history;
        history.extend(events);
        assert_eq!(
            Document::fold(&history).data["readings"],
            json!([{"value": 1}, {"value": 2, "id": id(60).to_string()}])
        );
        let events = given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::UpdateInArray {
                schema: schema.clone(),
                field: "readings".into(),
                id: id(60),
                changes: json!({"value": 3, "id": "forged"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
            .events();
        history.extend(events);
        assert_eq!(
            Document::fold(&history).data["readings"][1],
            json!({"value": 3, "id": id(60).to_string()})
        );
        given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::RemoveFromArray {
                schema: schema.clone(),
                field: "readings".into(),
                id: id(61),
            })
            .then_err(DocumentError::UnknownElement(format!(
                "readings/{}",
                id(61)
            )));
        let events = given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::RemoveFromArray {
                schema: schema.clone(),
                field: "readings".into(),
                id: id(60),
            })
            .events();
        history.extend(events);
        assert_eq!(
            Document::fold(&history).data["readings"],
            json!([{"value": 1}])
        );
        given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::UpdateInArray {
                schema: schema.clone(),
                field: "readings".into(),
                id: id(60),
                changes: Map::new(),
            })
            .then_err(DocumentError::UnknownElement(format!(
                "readings/{}",
                id(60)
            )));
    }

    /// What a random step does to a document.
    #[derive(Debug, Clone)]
    enum Step {
        Transition(&'static str, i64),
        Update(i64),
        Delete,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (
                prop_oneof![Just("review"), Just("alarm"), Just("back"), Just("nothing")],
                0i64..200
            )
                .prop_map(|(name, systolic)| Step::Transition(name, systolic)),
            (-50i64..200).prop_map(Step::Update),
            Just(Step::Delete),
        ]
    }

    proptest::proptest! {
        /// Whatever is asked, in whatever order, a document only ever moves along the configured
        /// transitions into configured statuses, and its data always fits the schema.
        #[test]
        fn random_steps_stay_inside_the_workflow(
            systolic in 0i64..200,
            steps in proptest::collection::vec(step(), 0..12),
        ) {
            let schema = blood_pressure(|d| {
                d.write_transition(&id(4).to_string(), &json!({
                    "name": "back", "type": "manual", "fromStatuses": ["reviewed"], "toStatus": "new",
                }), Write::Add)
                .unwrap();
            });
            let definition = &schema.compiled.definition;
            let edges: BTreeSet<(String, String)> = definition
                .transitions
                .iter()
                .flat_map(|t| t.from_statuses.iter().map(|from| (from.clone(), t.to_status.clone())))
                .collect();
            let actor = user(7, &["UPDATE_DOCUMENTS", "VIEW_DOCUMENTS", "DELETE_DOCUMENTS"]);
            let mut history = given::<Document>(&[])
                .by(actor.clone())
                .when(create(&schema, json!({"systolic": systolic})))
                .events();
            for step in steps {
                let command = match step {
                    Step::Transition(name, systolic) => DocumentCommand::Transition {
                        schema: schema.clone(),
                        choice: TransitionChoice::Name(name.into()),
                        data: json!({"systolic": systolic, "note": "n"}).as_object().cloned().unwrap_or_default(),
                        lookups: Lookups::default(),
                    },
                    Step::Update(systolic) => DocumentCommand::Update {
                        schema: schema.clone(),
                        changes: json!({"systolic": systolic}).as_object().cloned().unwrap_or_default(),
                    },
                    Step::Delete => DocumentCommand::Delete { schema: schema.clone() },
                };
                match given::<Document>(&history).by(actor.clone()).when(command).events_or_error() {
                    Ok(events) => history.extend(events),
                    // What a step may be refused for: data outside the schema, a transition that
                    // does not apply or exist, a document already deleted.
                    Err(
                        DocumentError::InvalidData(_)
                        | DocumentError::IllegalArgument(_)
                        | DocumentError::UnknownTransition(_)
                        | DocumentError::NotFound,
                    ) => {}
                    Err(other) => proptest::prop_assert!(false, "refused with {other:?}"),
                }
                let document = Document::fold(&history);
                proptest::prop_assert!(definition.statuses.contains_key(&document.status));
                proptest::prop_assert!(schema.compiled.validate_data(&Value::Object(document.data.clone())).is_ok());
            }
            for event in &history {
                if let DocumentEvent::Transitioned(t) = event {
                    proptest::prop_assert!(
                        edges.contains(&(t.from_status.clone(), t.to_status.clone())),
                        "{} -> {} is not configured", t.from_status, t.to_status
                    );
                }
            }
        }
    }

    /// The blood-pressure schema whose automatic `alarm` transition waits 30 seconds between
    /// flagging the document and tagging it.
    fn delayed_alarm() -> Arc<SchemaSnapshot> {
        blood_pressure(|d| {
            d.write_transition(&id(1).to_string(), &json!({
                "name": "alarm", "type": "automatic", "fromStatuses": ["new"], "toStatus": "alarm",
                "conditions": [{"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}}],
                "actions": [
                    {"type": "set", "field": "flag.high", "value": true},
                    {"type": "delay", "time": 30},
                    {"type": "addItems", "field": "tags", "values": ["alarmed"]},
                ],
                "afterActions": [{"type": "task", "functionName": "page-a-doctor"}],
            }), Write::Replace)
            .unwrap();
        })
    }

    fn resume(schema: &Arc<SchemaSnapshot>, history: &[DocumentEvent]) -> DocumentCommand {
        DocumentCommand::Resume {
            schema: schema.clone(),
            lookups: Lookups::default(),
            lock: Document::fold(history).lock.map_or(0, |l| l.event),
        }
    }

    #[test]
    fn a_delay_locks_the_document_until_the_step_resumes() {
        let schema = delayed_alarm();
        let history = created_by(patient(7), &schema, json!({"systolic": 150}));
        // Created, the alarm transition up to the delay, the lock; no task yet.
        let names: Vec<&str> = history.iter().map(DocumentEvent::wire_name).collect();
        assert_eq!(
            names,
            [
                "document.created",
                "document.transitioned",
                "document.locked"
            ]
        );
        let DocumentEvent::Locked(locked) = &history[2] else {
            panic!("{history:?}")
        };
        assert_eq!(locked.since, NOW);
        assert_eq!(locked.resume_at, Timestamp(NOW.millis() + 30_000));
        assert_eq!(locked.transition_id, Some(id(1)));
        assert_eq!(locked.next_action, 2);
        let document = Document::fold(&history);
        assert_eq!(document.status, "alarm");
        assert_eq!(document.data["flag"], json!({"high": true}));
        assert!(document.lock.is_some());

        // Changes wait; reading and deleting do not.
        let update = DocumentCommand::Update {
            schema: schema.clone(),
            changes: json!({"note": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        given::<Document>(&history)
            .by(patient(7))
            .when(update.clone())
            .then_err(DocumentError::Locked);
        given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::AddComment {
                schema: schema.clone(),
                id: id(61),
                text: "hello".into(),
            })
            .then_err(DocumentError::Locked);
        assert!(document.readable_by(&patient(7), &schema));
        given::<Document>(&history)
            .by(user(9, &["DELETE_DOCUMENTS"]))
            .when(DocumentCommand::Delete {
                schema: schema.clone(),
            })
            .then(&[DocumentEvent::Deleted(DocumentDeleted {})]);

        // Only Vigil resumes, and only once the delay is over.
        given::<Document>(&history)
            .by(patient(7))
            .when(resume(&schema, &history))
            .then_err(DocumentError::NoPermission("Vigil itself".into()));
        given::<Document>(&history)
            .at(Timestamp(NOW.millis() + 29_999))
            .when(resume(&schema, &history))
            .then_err(DocumentError::NotDue);
        let resumed = given::<Document>(&history)
            .at(Timestamp(NOW.millis() + 30_000))
            .when(resume(&schema, &history))
            .events();
        let names: Vec<&str> = resumed.iter().map(DocumentEvent::wire_name).collect();
        // The after-actions of the whole step: the creation transition's, then the alarm's.
        let tasks: Vec<&str> = resumed
            .iter()
            .filter_map(|e| match e {
                DocumentEvent::TaskRequested(t) => Some(t.function_name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names[0], "document.resumed");
        assert_eq!(tasks, ["analyze", "page-a-doctor"]);
        let mut after = history.clone();
        after.extend(resumed);
        let document = Document::fold(&after);
        assert!(document.lock.is_none());
        assert_eq!(document.data["tags"], json!(["measured", "alarmed"]));
        given::<Document>(&after)
            .by(patient(7))
            .when(update)
            .then(&[DocumentEvent::Updated(DocumentUpdated {
                data: Json(json!({"systolic": 150, "tags": ["measured", "alarmed"], "flag": {"high": true}, "note": "x"})),
            })]);
        // A lock resumed already is left alone (a second node, a retry).
        given::<Document>(&after)
            .at(Timestamp(NOW.millis() + 60_000))
            .when(resume(&schema, &history))
            .then(&[]);
    }

    #[test]
    fn a_step_paused_twice_keeps_its_first_timestamp() {
        let schema = blood_pressure(|d| {
            d.set_creation_transition(&json!({
                "type": "manual", "toStatus": "new",
                "actions": [{"type": "delay", "time": 1}, {"type": "delay", "time": 0.5}, {"type": "linkCreator"}],
            }))
            .unwrap();
        });
        let history = created_by(patient(7), &schema, json!({"systolic": 100}));
        let second = given::<Document>(&history)
            .at(Timestamp(NOW.millis() + 1_000))
            .when(resume(&schema, &history))
            .events();
        let [DocumentEvent::Resumed(_), DocumentEvent::Locked(locked)] = second.as_slice() else {
            panic!("{second:?}")
        };
        assert_eq!(locked.since, NOW);
        assert_eq!(locked.resume_at, Timestamp(NOW.millis() + 1_500));
        assert_eq!(locked.transition_id, None);
        let mut history = history;
        history.extend(second);
        let third = given::<Document>(&history)
            .at(Timestamp(NOW.millis() + 1_500))
            .when(resume(&schema, &history))
            .events();
        history.extend(third);
        let document = Document::fold(&history);
        assert!(document.lock.is_none());
        assert_eq!(document.user_ids, [id(7)]);
    }

    #[test]
    fn comments_belong_to_their_writers() {
        let schema = blood_pressure(|_| {});
        let mut history = created_by(patient(7), &schema, json!({"systolic": 120}));
        let add = |text: &str| DocumentCommand::AddComment {
            schema: schema.clone(),
            id: id(61),
            text: text.into(),
        };
        // Someone who cannot see the document does not find it; the owner may comment.
        given::<Document>(&history)
            .by(user(8, &[]))
            .when(add("hi"))
            .then_err(DocumentError::NotFound);
        given::<Document>(&history)
            .by(patient(7))
            .when(add("  "))
            .then_err(DocumentError::InvalidData(format!(
                "text: a comment is 1 to {LONGEST_COMMENT} characters"
            )));
        let added = given::<Document>(&history)
            .by(patient(7))
            .when(add("feeling dizzy"))
            .events();
        assert_eq!(
            added,
            [DocumentEvent::CommentAdded(CommentAdded {
                comment_id: id(61),
                schema_id: id(30),
                creator_id: Some(id(7)),
                text: Personal("feeling dizzy".into()),
                comment_count: 1,
            })]
        );
        history.extend(added);
        // A reader with the permission may comment too, but not change another's comment.
        let reader = user(8, &["VIEW_DOCUMENTS", "CREATE_DOCUMENT_COMMENTS"]);
        given::<Document>(&history)
            .by(reader.clone())
            .when(add("noted"))
            .events();
        let update = DocumentCommand::UpdateComment {
            schema: schema.clone(),
            id: id(61),
            text: "edited".into(),
        };
        given::<Document>(&history)
            .by(reader)
            .when(update.clone())
            .then_err(DocumentError::NoPermission(
                "UPDATE_DOCUMENT_COMMENTS:bp".into(),
            ));
        given::<Document>(&history)
            .by(patient(7))
            .when(update)
            .then(&[DocumentEvent::CommentUpdated(CommentUpdated {
                comment_id: id(61),
                text: Personal("edited".into()),
            })]);
        let remove = |comment: u8| DocumentCommand::RemoveComment {
            schema: schema.clone(),
            id: id(comment),
        };
        given::<Document>(&history)
            .by(user(8, &["VIEW_DOCUMENTS", "UPDATE_DOCUMENT_COMMENTS"]))
            .when(remove(61))
            .events();
        given::<Document>(&history)
            .by(patient(7))
            .when(remove(62))
            .then_err(DocumentError::UnknownComment(id(62)));
        history.extend(
            given::<Document>(&history)
                .by(patient(7))
                .when(remove(61))
                .events(),
        );
        assert!(Document::fold(&history).comments.is_empty());
    }

    #[test]
    fn a_guarded_command_needs_the_document_as_it_was() {
        let schema = blood_pressure(|_| {});
        let history = created_by(patient(7), &schema, json!({"systolic": 120}));
        let guarded = |seen: u64| DocumentCommand::Guarded {
            seen,
            command: Box::new(DocumentCommand::Update {
                schema: schema.clone(),
                changes: json!({"note": "x"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }),
        };
        let seen = Document::fold(&history).events;
        assert_eq!(
            given::<Document>(&history)
                .by(patient(7))
                .when(guarded(seen))
                .events()
                .len(),
            1
        );
        given::<Document>(&history)
            .by(patient(7))
            .when(guarded(seen - 1))
            .then_err(DocumentError::Stale);
        given::<Document>(&history)
            .by(user(9, &[]))
            .when(guarded(seen))
            .then_err(DocumentError::NotFound);
    }

    #[test]
    fn fields_outside_the_schema_are_refused_when_written_and_kept_when_left_alone() {
        let with_extra = blood_pressure(|d| {
            d.write_property("extra", &json!({"type": "string"}), Write::Add)
                .unwrap();
        });
        let history = created_by(
            patient(7),
            &with_extra,
            json!({"extra": "kept", "systolic": 120}),
        );
        // The property is removed from the schema; the document keeps it and stays usable.
        let without = blood_pressure(|_| {});
        let update = |changes: Value| DocumentCommand::Update {
            schema: without.clone(),
            changes: changes.as_object().cloned().unwrap_or_default(),
        };
        assert_eq!(
            given::<Document>(&history)
                .by(patient(7))
                .when(update(json!({"systolic": 121})))
                .events()
                .len(),
            1
        );
        let changed = given::<Document>(&history)
            .by(patient(7))
            .when(update(json!({"extra": "changed"})))
            .events_or_error();
        assert!(
            matches!(changed, Err(DocumentError::InvalidData(_))),
            "{changed:?}"
        );
        // An action writing outside the schema is refused with the step.
        let setting = blood_pressure(|d| {
            d.creation_transition.actions.push(Action::Set {
                field: "elsewhere".into(),
                value: json!(1),
            });
        });
        let refused = given::<Document>(&[])
            .by(patient(7))
            .when(create(&setting, json!({})))
            .events_or_error();
        assert!(
            matches!(refused, Err(DocumentError::InvalidData(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn paths_and_data_are_bounded() {
        let schema = blood_pressure(|_| {});
        let history = created_by(patient(7), &schema, json!({}));
        let deep_path = vec!["a"; 17].join(".");
        let refused = given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::AppendToArray {
                schema: schema.clone(),
                field: deep_path,
                id: id(60),
                object: Map::new(),
            })
            .events_or_error();
        assert!(
            matches!(refused, Err(DocumentError::InvalidData(_))),
            "{refused:?}"
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let refused = given::<Document>(&history)
            .by(patient(7))
            .when(DocumentCommand::Update {
                schema: schema.clone(),
                changes: json!({"tags": deep})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
            .events_or_error();
        assert!(
            matches!(&refused, Err(DocumentError::InvalidData(m)) if m.contains("deeper")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_command_on_a_stream_that_names_no_document_is_refused() {
        let stream = crate::id::StreamId::new(Document::KIND, "not-an-id").unwrap();
        let actor = Actor::system(Via::Cli);
        let ctx = Ctx {
            now: NOW,
            actor: &actor,
            stream: &stream,
        };
        let created = Document::default().handle(
            &DocumentCommand::Create {
                schema: blood_pressure(|_| {}),
                data: Map::new(),
                lookups: Lookups::default(),
            },
            &ctx,
        );
        assert!(
            matches!(&created, Err(DocumentError::NotADocumentStream(s)) if *s == stream),
            "{created:?}"
        );
    }
}
