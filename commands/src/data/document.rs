//! Documents: the schema snapshot a document command is decided against (compiled once per schema
//! version), and what it needs to know about the users a document names.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use lru::LruCache;
use serde_json::{Map, Value};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::data::document::{
    Document, DocumentCommand, DocumentError, Lookups, SchemaSnapshot,
};
use vigil_domain::data::schema::Schema;
use vigil_domain::data::unique_index::{self, UniqueLookup, unique_keys};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::users::user::User;
use vigil_domain::value::Timestamp;
use vigil_schemas::compiled::CompiledSchema;
use vigil_schemas::workflow::{Action, Condition};

use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
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

    /// The schema with the id, or else the name, `id_or_name`, as it is now, if there is one.
    /// A name found before costs one read of the log (its schema's stream), not two.
    pub async fn find(
        &self,
        bus: &CommandBus,
        id_or_name: &str,
    ) -> Result<Option<Arc<SchemaSnapshot>>, SnapshotError> {
        let hint = self
            .names
            .lock()
            .ok()
            .and_then(|mut names| names.get(id_or_name).copied());
        if let Some(id) = hint {
            let (schema, head) = bus.load::<Schema>(&StreamId::of(Schema::KIND, id)).await?;
            if schema.created && !schema.deleted && schema.name == id_or_name {
                return self
                    .compiled(id, schema, head.map_or(0, |h| h.version))
                    .map(Some);
            }
        }
        let Some((id, schema, version)) = crate::data::schema::find_loaded(bus, id_or_name).await?
        else {
            return Ok(None);
        };
        if id_or_name.parse::<Id>().is_err()
            && let Ok(mut names) = self.names.lock()
        {
            names.put(id_or_name.to_owned(), id);
        }
        self.compiled(id, schema, version).map(Some)
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

/// The groups each of `users` is a patient of now.
pub async fn lookups(bus: &CommandBus, users: BTreeSet<Id>) -> Result<Lookups, LogError> {
    let now = ids::now();
    let mut patient_groups = BTreeMap::new();
    for user_id in users {
        let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, user_id)).await?;
        if !user.registered || user.deleted {
            continue;
        }
        let active = |expiry: &Option<Timestamp>| expiry.is_none_or(|at| at > now);
        let groups = user
            .patient
            .iter()
            .filter(|(_, expiry)| active(expiry))
            .map(|(group, _)| *group)
            .collect();
        patient_groups.insert(user_id, groups);
    }
    Ok(Lookups { patient_groups })
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

/// Creates a document in `schema` from `data`.
pub async fn create(
    bus: &CommandBus,
    ids: &IdGenerator,
    schema: Arc<SchemaSnapshot>,
    data: Map<String, Value>,
    lookup: &dyn UniqueLookup,
    meta: &vigil_domain::commit::CommandMeta,
) -> Result<(Id, Outcome), CommandError<DocumentError>> {
    let id = ids.next();
    let lookups = lookups(bus, named_users(&schema, &data, &[])).await?;
    let unique = UniqueIndexes::of(&schema, id, lookup);
    let command = DocumentCommand::Create {
        schema: schema.clone(),
        data,
        lookups,
    };
    let outcome = bus
        .execute_new::<Document>(
            &StreamId::of(Document::KIND, id),
            &command,
            meta,
            unique.as_ref().map(|u| u as &dyn Exclusive<Document>),
        )
        .await?;
    Ok((id, outcome))
}

/// The lookups of a manual transition of `document` with `input`.
pub async fn transition_lookups(
    bus: &CommandBus,
    schema: &SchemaSnapshot,
    document: &Document,
    input: &Map<String, Value>,
) -> Result<Lookups, LogError> {
    let mut data = document.data.clone();
    data.extend(input.iter().map(|(k, v)| (k.clone(), v.clone())));
    lookups(bus, named_users(schema, &data, &document.user_ids)).await
}

/// Goes on with the step a `delay` paused in document `id`, as Vigil itself (the scheduler, once
/// the lock is due). `None` when there is nothing to resume: the document is gone or no longer
/// held by that lock.
pub async fn resume(
    bus: &CommandBus,
    snapshots: &Snapshots,
    id: Id,
    lookup: &dyn UniqueLookup,
    meta: impl FnOnce(u64) -> vigil_domain::commit::CommandMeta,
) -> Result<Option<Outcome>, ResumeError> {
    let stream = StreamId::of(Document::KIND, id);
    let (document, _) = bus.load::<Document>(&stream).await?;
    let (Some(lock), Some(schema_id)) = (&document.lock, document.schema_id) else {
        return Ok(None);
    };
    if document.deleted {
        return Ok(None);
    }
    let Some(schema) = snapshots.get(bus, schema_id).await? else {
        return Ok(None);
    };
    let mut users = named_users(&schema, &document.data, &document.user_ids);
    users.extend(document.creator_id);
    let lookups = lookups(bus, users).await?;
    let unique = UniqueIndexes::of(&schema, id, lookup);
    let command = DocumentCommand::Resume {
        schema: schema.clone(),
        lookups,
        lock: lock.event,
    };
    Ok(Some(
        bus.execute_holding::<Document>(
            &stream,
            &command,
            &meta(lock.event),
            unique.as_ref().map(|u| u as &dyn Exclusive<Document>),
        )
        .await?,
    ))
}

/// Why a paused step could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Command(#[from] CommandError<DocumentError>),
}

impl From<LogError> for ResumeError {
    fn from(error: LogError) -> Self {
        Self::Snapshot(SnapshotError::Log(error))
    }
}
