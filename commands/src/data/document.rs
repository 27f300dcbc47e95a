//! Documents: the schema snapshot a document command is decided against (compiled once per schema
//! version), what it needs to know about the users a document names, and the use cases
//! ([`Documents`]) that put them together around the document's aggregate.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use lru::LruCache;
use serde_json::{Map, Value};
use vigil_domain::actor::Actor;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::data::document::{
    Document, DocumentChange, DocumentCommand, DocumentError, Lookups, SchemaSnapshot,
};
use vigil_domain::data::schema::{Schema, SchemaRef};
use vigil_domain::data::unique_index::{self, UniqueLookup, unique_keys};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::users::user::User;
use vigil_domain::value::Timestamp;
use vigil_schemas::compiled::CompiledSchema;
use vigil_schemas::workflow::{Action, Condition};

use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids;
use crate::unique::{Exclusive, Unique};

/// Compiled schemas by id and stream version: a new version compiles anew. Queries find them
/// by id and the read-model position of the schema's last change instead, so that a list does not
/// read the log.
pub struct Snapshots {
    cache: Mutex<LruCache<(Id, u64), Arc<SchemaSnapshot>>>,
    listed: Mutex<LruCache<(Id, i64), Arc<SchemaSnapshot>>>,
    /// The schema a name was last found to name. Only a hint: the schema's stream, read anew,
    /// must still give it that name (a schema holds its name's reservation from before it takes
    /// the name until after it gives it up, so then no other schema can hold it).
    names: Mutex<LruCache<String, Id>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshots")
    }
}

impl Default for Snapshots {
    fn default() -> Self {
        Self {
            cache: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(255))),
            listed: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(255))),
            names: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(255))),
        }
    }
}

/// The snapshot `cache` holds under `key`, if any.
fn remembered<K: std::hash::Hash + Eq>(
    cache: &Mutex<LruCache<K, Arc<SchemaSnapshot>>>,
    key: &K,
) -> Option<Arc<SchemaSnapshot>> {
    cache.lock().ok().and_then(|mut c| c.get(key).cloned())
}

/// Why a schema could not be used for documents.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the stored configuration of schema {0} does not compile: {1}")]
    Compile(Id, String),
}

impl Snapshots {
    /// The schema `id` as the read models show it, `position` being the log position of its
    /// last change there: from memory once it was loaded for that position (from the log then, so
    /// it may be a little newer than the read models, never older).
    pub async fn listed(
        &self,
        bus: &CommandBus,
        id: Id,
        position: i64,
    ) -> Result<Option<Arc<SchemaSnapshot>>, SnapshotError> {
        let key = (id, position);
        if let Some(found) = remembered(&self.listed, &key) {
            return Ok(Some(found));
        }
        let snapshot = self.get(bus, id).await?;
        if let (Some(snapshot), Ok(mut listed)) = (&snapshot, self.listed.lock()) {
            listed.put(key, snapshot.clone());
        }
        Ok(snapshot)
    }

    /// The schema `schema` names, as it is now, if there is one. A name found before costs one
    /// read of the log (its schema's stream), not two.
    pub async fn find(
        &self,
        bus: &CommandBus,
        schema: &SchemaRef,
    ) -> Result<Option<Arc<SchemaSnapshot>>, SnapshotError> {
        let name = match schema {
            SchemaRef::Id(id) => return self.get(bus, *id).await,
            SchemaRef::Name(name) => name,
        };
        let hint = self
            .names
            .lock()
            .ok()
            .and_then(|mut names| names.get(name).copied());
        if let Some(id) = hint {
            let (found, head) = bus.load::<Schema>(&StreamId::of(Schema::KIND, id)).await?;
            if found.created && !found.deleted && found.name == *name {
                return self
                    .compiled(id, found, head.map_or(0, |h| h.version))
                    .map(Some);
            }
        }
        let Some((id, found, version)) = crate::data::schema::find_loaded(bus, schema).await?
        else {
            return Ok(None);
        };
        if let Ok(mut names) = self.names.lock() {
            names.put(name.clone(), id);
        }
        self.compiled(id, found, version).map(Some)
    }

    /// The schema `id` as it is now, if it exists.
    pub async fn get(
        &self,
        bus: &CommandBus,
        id: Id,
    ) -> Result<Option<Arc<SchemaSnapshot>>, SnapshotError> {
        let (schema, head) = bus.load::<Schema>(&StreamId::of(Schema::KIND, id)).await?;
        if !schema.created || schema.deleted {
            return Ok(None);
        }
        self.compiled(id, schema, head.map_or(0, |h| h.version))
            .map(Some)
    }

    /// `schema` (`id` at stream `version`) compiled, from memory if it was before.
    fn compiled(
        &self,
        id: Id,
        schema: Schema,
        version: u64,
    ) -> Result<Arc<SchemaSnapshot>, SnapshotError> {
        let key = (id, version);
        if let Some(found) = remembered(&self.cache, &key) {
            return Ok(found);
        }
        let compiled = CompiledSchema::compile(schema.definition)
            .map_err(|e| SnapshotError::Compile(id, e.to_string()))?;
        let snapshot = Arc::new(SchemaSnapshot {
            id,
            name: schema.name,
            disabled: schema.disabled,
            compiled,
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(key, snapshot.clone());
        }
        Ok(snapshot)
    }
}

/// The user ids a step over `data` may look at: in the `userIdField`s of the schema's conditions
/// and `linkUserFromData` actions, and the document's linked users.
fn named_users(schema: &SchemaSnapshot, data: &Map<String, Value>, linked: &[Id]) -> BTreeSet<Id> {
    let definition = &schema.compiled.definition;
    let creation = &definition.creation_transition;
    let conditions = creation
        .conditions
        .iter()
        .chain(definition.transitions.iter().flat_map(|t| &t.conditions));
    let actions = creation
        .actions
        .iter()
        .chain(definition.transitions.iter().flat_map(|t| &t.actions));
    let fields = conditions
        .filter_map(|c| match c {
            Condition::InitiatorHasRelationToUserInData { user_id_field, .. } => {
                Some(user_id_field)
            }
            _ => None,
        })
        .chain(actions.filter_map(|a| match a {
            Action::LinkUserFromData { user_id_field } => Some(user_id_field),
            _ => None,
        }));
    let mut users: BTreeSet<Id> = linked.iter().copied().collect();
    for field in fields {
        let value = vigil_domain::data::document::value_at(data, field);
        if let Some(id) = value.and_then(Value::as_str).and_then(|s| s.parse().ok()) {
            users.insert(id);
        }
    }
    users
}

/// How many users' streams [`lookups`] reads at once.
const LOOKUPS_AT_ONCE: usize = 16;

/// The groups each of `users` is a patient of now, their streams read together.
async fn lookups(bus: &CommandBus, users: BTreeSet<Id>) -> Result<Lookups, LogError> {
    let now = ids::now();
    let active = |expiry: &Option<Timestamp>| expiry.is_none_or(|at| at > now);
    let loaded: Vec<(Id, User)> = stream::iter(users)
        .map(|user_id| async move {
            let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, user_id)).await?;
            Ok::<_, LogError>((user_id, user))
        })
        .buffered(LOOKUPS_AT_ONCE)
        .try_collect()
        .await?;
    let patient_groups = loaded
        .into_iter()
        .filter(|(_, user)| user.registered && !user.deleted)
        .map(|(user_id, user)| {
            let groups = user
                .patient
                .iter()
                .filter(|(_, expiry)| active(expiry))
                .map(|(group, _)| *group)
                .collect();
            (user_id, groups)
        })
        .collect();
    Ok(Lookups { patient_groups })
}

/// The users whose patient enlistments deciding `change` on `document` looks at.
fn users_named(
    schema: &SchemaSnapshot,
    change: &DocumentChange,
    document: &Document,
) -> BTreeSet<Id> {
    match change {
        DocumentChange::Create { data } => named_users(schema, data, &[]),
        DocumentChange::Transition { data: input, .. } => {
            let mut data = document.data.clone();
            data.extend(input.iter().map(|(k, v)| (k.clone(), v.clone())));
            named_users(schema, &data, &document.user_ids)
        }
        DocumentChange::LinkUsers { user_ids } => user_ids.iter().copied().collect(),
        DocumentChange::SyncGroups => {
            let mut users: BTreeSet<Id> = document.user_ids.iter().copied().collect();
            users.extend(document.creator_id);
            users
        }
        DocumentChange::Resume { .. } => {
            let mut users = named_users(schema, &document.data, &document.user_ids);
            users.extend(document.creator_id);
            users
        }
        _ => BTreeSet::new(),
    }
}

/// The values document `document` holds under the unique indexes of `schema`, which no other
/// document of the schema may hold: reserved in the log, and looked up in the read models for
/// documents written before an index was unique.
pub struct UniqueIndexes<'a> {
    schema: &'a SchemaSnapshot,
    document: Id,
    lookup: &'a dyn UniqueLookup,
}

impl<'a> UniqueIndexes<'a> {
    /// `None` when `schema` has no unique index.
    pub fn of(
        schema: &'a SchemaSnapshot,
        document: Id,
        lookup: &'a dyn UniqueLookup,
    ) -> Option<Self> {
        let unique = schema
            .compiled
            .definition
            .indexes
            .iter()
            .any(|index| index.unique_fields().is_some());
        unique.then_some(Self {
            schema,
            document,
            lookup,
        })
    }
}

impl Exclusive<Document> for UniqueIndexes<'_> {
    fn values(&self, state: &Document) -> Vec<Unique> {
        unique_keys(self.schema, state)
            .iter()
            .map(|key| Unique {
                namespace: unique_index::NAMESPACE,
                value: key.reserved(self.schema.id),
            })
            .collect()
    }

    fn held_elsewhere<'a>(
        &'a self,
        state: &'a Document,
        value: &'a Unique,
    ) -> BoxFuture<'a, Result<bool, LogError>> {
        Box::pin(async move {
            let keys = unique_keys(self.schema, state);
            let Some(key) = keys
                .iter()
                .find(|key| key.reserved(self.schema.id) == value.value)
            else {
                return Ok(false);
            };
            self.lookup
                .held_elsewhere(self.schema.id, self.document, key)
                .await
                .map_err(LogError::Unavailable)
        })
    }
}

/// Whether a document, as the read models show it, passes a request's RQL guard. The write side
/// does not read the read models, so what has them (the API) checks, and the use case retries.
pub trait Guard: Send + Sync {
    /// Whether document `id` of `schema`, as the read models show it exactly at log `position`,
    /// passes the guard; `None` when they show it at another position (it has changed since:
    /// check again).
    fn passes<'a>(
        &'a self,
        schema: &'a SchemaSnapshot,
        id: Id,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<bool>, GuardFailure>>;
}

/// Why a guard could not be checked (the read models failed, or the guard is not a valid query),
/// as the checker says it.
pub type GuardFailure = Box<dyn std::error::Error + Send + Sync>;

/// How often a guarded write is tried when the document keeps changing under it.
const GUARD_ATTEMPTS: usize = 5;

/// Why a document use case did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Command(#[from] CommandError<DocumentError>),
    #[error(transparent)]
    Guard(GuardFailure),
}

impl From<LogError> for DocumentsError {
    fn from(error: LogError) -> Self {
        Self::Command(CommandError::Log(error))
    }
}

impl From<DocumentError> for DocumentsError {
    fn from(error: DocumentError) -> Self {
        Self::Command(CommandError::Domain(error))
    }
}

/// The data service's document use cases: the schema a request names found (one read of its
/// stream once its name is known) and compiled (once per version), the users a change names
/// looked up together, the values held under unique indexes kept unique, and a request's guard
/// checked with the retries that needs.
pub struct Documents<'a> {
    pub bus: &'a CommandBus,
    pub snapshots: &'a Snapshots,
    /// Which values other documents hold under unique indexes (for documents written before an
    /// index was unique).
    pub unique: &'a dyn UniqueLookup,
}

impl Documents<'_> {
    /// The schema `schema` names, ready for document commands.
    pub async fn schema(&self, schema: &SchemaRef) -> Result<Arc<SchemaSnapshot>, DocumentsError> {
        self.snapshots
            .find(self.bus, schema)
            .await?
            .ok_or(DocumentsError::from(DocumentError::UnknownSchema))
    }

    /// Creates a document in the schema `schema` names from `data`, under the id `id`.
    pub async fn create(
        &self,
        schema: &SchemaRef,
        id: Id,
        data: Map<String, Value>,
        meta: &CommandMeta,
    ) -> Result<Outcome, DocumentsError> {
        let schema = self.schema(schema).await?;
        let change = DocumentChange::Create { data };
        let lookups = lookups(
            self.bus,
            users_named(&schema, &change, &Document::default()),
        )
        .await?;
        let unique = UniqueIndexes::of(&schema, id, self.unique);
        let command = DocumentCommand::new(schema.clone(), change).looked_up(lookups);
        Ok(self
            .bus
            .execute_new::<Document>(
                &StreamId::of(Document::KIND, id),
                &command,
                meta,
                unique.as_ref().map(|u| u as &dyn Exclusive<Document>),
            )
            .await?)
    }

    /// Makes `change` to document `id` of the schema `schema` names. With `guard`, only if the
    /// document passes it as it is when the change is decided: `None` when it does not (nothing
    /// was written).
    pub async fn change(
        &self,
        schema: &SchemaRef,
        id: Id,
        change: DocumentChange,
        guard: Option<&dyn Guard>,
        meta: &CommandMeta,
    ) -> Result<Option<Outcome>, DocumentsError> {
        let schema = self.schema(schema).await?;
        if let DocumentChange::LinkUsers { .. } = change {
            // Checked before the users are looked up, so a caller without it learns nothing of
            // them (the aggregate checks it again, with the document's own rules).
            let permission = schema.access_permission();
            if !meta.actor.allows(&permission) {
                return Err(DocumentError::NoPermission(permission).into());
            }
        }
        let stream = StreamId::of(Document::KIND, id);
        let unique = UniqueIndexes::of(&schema, id, self.unique);
        let unique = unique.as_ref().map(|u| u as &dyn Exclusive<Document>);
        let command = DocumentCommand::new(schema.clone(), change);
        for _ in 0..GUARD_ATTEMPTS {
            let (document, head) = if guard.is_some() || command.change.looks_up_users() {
                self.bus.load::<Document>(&stream).await?
            } else {
                (Document::default(), None)
            };
            let users = users_named(&schema, &command.change, &document);
            let command = command.clone().looked_up(lookups(self.bus, users).await?);
            let Some(guard) = guard else {
                let outcome = self
                    .bus
                    .execute_holding::<Document>(&stream, &command, meta, unique)
                    .await?;
                return Ok(Some(outcome));
            };
            let command = command.guarded(document.events);
            let Some(head) = head else {
                // No such document: the command says why.
                self.bus
                    .execute::<Document>(&stream, &command, meta)
                    .await?;
                return Err(DocumentError::NotFound.into());
            };
            match guard
                .passes(&schema, id, head.position)
                .await
                .map_err(DocumentsError::Guard)?
            {
                None => continue,
                Some(false) => return Ok(None),
                Some(true) => {}
            }
            match self
                .bus
                .execute_holding::<Document>(&stream, &command, meta, unique)
                .await
            {
                Ok(outcome) => return Ok(Some(outcome)),
                Err(CommandError::Domain(DocumentError::Stale)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(CommandError::Conflict(stream).into())
    }

    /// The schema `schema` names, once `actor` is found to be allowed to read the comments of
    /// its document `id`.
    pub async fn comments_readable(
        &self,
        schema: &SchemaRef,
        id: Id,
        actor: &Actor,
    ) -> Result<Arc<SchemaSnapshot>, DocumentsError> {
        let schema = self.schema(schema).await?;
        let (document, _) = self
            .bus
            .load::<Document>(&StreamId::of(Document::KIND, id))
            .await?;
        document.comments_readable_by(actor, &schema)?;
        Ok(schema)
    }

    /// Goes on with the step a `delay` paused in document `id`, as Vigil itself (the scheduler,
    /// once the lock is due). `None` when there is nothing to resume: the document is gone or no
    /// longer held by that lock.
    pub async fn resume(
        &self,
        id: Id,
        meta: impl FnOnce(u64) -> CommandMeta,
    ) -> Result<Option<Outcome>, DocumentsError> {
        let stream = StreamId::of(Document::KIND, id);
        let (document, _) = self.bus.load::<Document>(&stream).await?;
        let (Some(lock), Some(schema_id)) = (&document.lock, document.schema_id) else {
            return Ok(None);
        };
        if document.deleted {
            return Ok(None);
        }
        let Some(schema) = self.snapshots.get(self.bus, schema_id).await? else {
            return Ok(None);
        };
        let change = DocumentChange::Resume { lock: lock.event };
        let lookups = lookups(self.bus, users_named(&schema, &change, &document)).await?;
        let unique = UniqueIndexes::of(&schema, id, self.unique);
        let command = DocumentCommand::new(schema.clone(), change).looked_up(lookups);
        Ok(Some(
            self.bus
                .execute_holding::<Document>(
                    &stream,
                    &command,
                    &meta(lock.event),
                    unique.as_ref().map(|u| u as &dyn Exclusive<Document>),
                )
                .await?,
        ))
    }

    /// Sets document `id`'s groups to what its schema's `groupSyncMode` asks for now, as Vigil
    /// itself (`meta`).
    pub async fn sync_groups(
        &self,
        schema: Arc<SchemaSnapshot>,
        id: Id,
        meta: &CommandMeta,
    ) -> Result<Outcome, DocumentsError> {
        let stream = StreamId::of(Document::KIND, id);
        let (document, _) = self.bus.load::<Document>(&stream).await?;
        let change = DocumentChange::SyncGroups;
        let lookups = lookups(self.bus, users_named(&schema, &change, &document)).await?;
        let command = DocumentCommand::new(schema, change).looked_up(lookups);
        Ok(self
            .bus
            .execute::<Document>(&stream, &command, meta)
            .await?)
    }
}
