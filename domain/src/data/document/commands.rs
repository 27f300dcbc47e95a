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

impl SchemaSnapshot {
    /// The permission that lets a caller link and unlink a document's users and groups. Global
    /// only: a group role cannot hand out access to documents.
    pub fn access_permission(&self) -> String {
        format!("UPDATE_ACCESS_TO_DOCUMENT:{}", self.name)
    }
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

/// A command on a document: a change, decided against the schema as it is now.
#[derive(Debug, Clone)]
pub struct DocumentCommand {
    pub schema: Arc<SchemaSnapshot>,
    pub change: DocumentChange,
    /// What the change needs to know about the users it names (empty for the changes that name
    /// none: see [`DocumentChange::looks_up_users`]).
    pub lookups: Lookups,
    /// With a request's RQL guard: how many events the document had when the guard was checked.
    /// The change is refused as stale if the document has changed since.
    pub seen: Option<u64>,
}

impl DocumentCommand {
    /// `change` against `schema`, naming no users and unguarded.
    pub fn new(schema: Arc<SchemaSnapshot>, change: DocumentChange) -> Self {
        Self {
            schema,
            change,
            lookups: Lookups::default(),
            seen: None,
        }
    }

    /// The command with what it needs to know about the users it names.
    #[must_use]
    pub fn looked_up(self, lookups: Lookups) -> Self {
        Self { lookups, ..self }
    }

    /// The command, only if the document is still as it was when it had `seen` events.
    #[must_use]
    pub fn guarded(self, seen: u64) -> Self {
        Self {
            seen: Some(seen),
            ..self
        }
    }
}

/// What a document command changes.
#[derive(Debug, Clone)]
pub enum DocumentChange {
    Create {
        data: Map<String, Value>,
    },
    /// Sets the given fields of the data; `null` removes one.
    Update {
        changes: Map<String, Value>,
    },
    /// Removes fields by dotted path.
    DeleteFields {
        fields: Vec<String>,
    },
    Transition {
        choice: TransitionChoice,
        data: Map<String, Value>,
    },
    Delete,
    /// Adds groups; with `linkedUsersPatientEnlistments` nothing else changes.
    LinkGroups {
        group_ids: Vec<Id>,
    },
    /// Removes the given groups, or every group (`None`).
    UnlinkGroups {
        group_ids: Option<Vec<Id>>,
    },
    /// Adds users; with `linkedUsersPatientEnlistments` also the groups they are patients of.
    LinkUsers {
        user_ids: Vec<Id>,
    },
    /// Removes the given users, or every user (`None`).
    UnlinkUsers {
        user_ids: Option<Vec<Id>>,
    },
    /// Appends `object` under the new `id` to the array of objects at `field`.
    AppendToArray {
        field: String,
        id: Id,
        object: Map<String, Value>,
    },
    /// Sets the given fields of the element `id` of the array at `field`; `null` removes one.
    UpdateInArray {
        field: String,
        id: Id,
        changes: Map<String, Value>,
    },
    RemoveFromArray {
        field: String,
        id: Id,
    },
    /// Sets `groupIds` to what the schema's `groupSyncMode` asks for now (Vigil itself, when
    /// patient enlistments or the mode change).
    SyncGroups,
    /// Goes on with the step a `delay` paused, once it is due (Vigil itself). `lock` names the
    /// lock (its event number), so a lock already resumed is left alone.
    Resume {
        lock: u64,
    },
    AddComment {
        id: Id,
        text: String,
    },
    UpdateComment {
        id: Id,
        text: String,
    },
    RemoveComment {
        id: Id,
    },
}

impl DocumentChange {
    /// Whether deciding the change looks at the users it names (in the data's `userIdField`s, the
    /// linked users), so the command needs [`Lookups`] of them.
    pub fn looks_up_users(&self) -> bool {
        matches!(
            self,
            Self::Create { .. }
                | Self::Transition { .. }
                | Self::LinkUsers { .. }
                | Self::SyncGroups
                | Self::Resume { .. }
        )
    }

    /// Whether the change alters the document, and so must wait while a step is paused (reads,
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
            | Self::Delete
            | Self::SyncGroups
            | Self::Resume { .. }
            | Self::UpdateComment { .. }
            | Self::RemoveComment { .. } => false,
        }
    }
}
