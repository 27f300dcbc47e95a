//! What a document command is decided with and asks for.

use super::*;

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
    pub(super) fn schema(&self) -> &SchemaSnapshot {
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
    pub(super) fn waits_for_lock(&self) -> bool {
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
