//! Keeps the `groupIds` of documents in line with their schema's `groupSyncMode` when patient
//! enlistments change in the user service, or a schema's mode changes (applied retroactively).
//!
//! Two reactors: one follows the users' commits for enlistments, the other the schemas' commits
//! for mode changes. On each change, the documents concerned are found in the read models (once
//! they have applied the change); each is changed by a `SyncGroups` command as Vigil itself, with
//! a command id derived from the causing commit, so a change reacted to twice (after a takeover,
//! or by a repeated reaction) makes one commit.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use vigil_commands::CommandBus;
use vigil_commands::data::document::{Documents, Snapshots};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::data::schema::Schema;
use vigil_domain::event::{Event, SchemaEvent, UserEvent};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::users::user::User;
use vigil_projections::data::document::{SyncScope, group_synced};
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

use crate::runner::{Reactor, Retry};

/// How long to wait for the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// A group synchroniser, a [`Reactor`]: of one of the two kinds of change.
pub struct GroupSync {
    follows: Follows,
    bus: Arc<CommandBus>,
    snapshots: Snapshots,
    store: ReadStore,
    progresses: Progresses,
}

/// Which changes a synchroniser follows.
#[derive(Clone, Copy)]
enum Follows {
    Enlistments,
    Modes,
}

impl GroupSync {
    /// The synchroniser of patient enlistments (the users' commits).
    pub fn enlistments(bus: Arc<CommandBus>, store: ReadStore, progresses: Progresses) -> Self {
        Self::new(Follows::Enlistments, bus, store, progresses)
    }

    /// The synchroniser of schemas' `groupSyncMode` changes (the schemas' commits).
    pub fn modes(bus: Arc<CommandBus>, store: ReadStore, progresses: Progresses) -> Self {
        Self::new(Follows::Modes, bus, store, progresses)
    }

    fn new(
        follows: Follows,
        bus: Arc<CommandBus>,
        store: ReadStore,
        progresses: Progresses,
    ) -> Self {
        Self {
            follows,
            bus,
            snapshots: Snapshots::default(),
            store,
            progresses,
        }
    }
}

impl Reactor for GroupSync {
    fn name(&self) -> &'static str {
        match self.follows {
            Follows::Enlistments => "group_sync_enlistments",
            Follows::Modes => "group_sync_modes",
        }
    }

    fn filter(&self) -> Filter {
        match self.follows {
            Follows::Enlistments => Filter::Kinds(&[User::KIND]),
            Follows::Modes => Filter::Kinds(&[Schema::KIND]),
        }
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            let Some(changed) = Changed::of(recorded) else {
                return Ok(());
            };
            let cause = format!("{}@{}", recorded.commit.stream, recorded.commit.version);
            self.sync(changed.scope(), recorded.position, &cause).await
        })
    }
}

/// Whose documents a commit asks to bring in line.
enum Changed {
    /// A user's patient enlistments.
    Enlistments(String),
    /// A schema's `groupSyncMode`.
    Mode(String),
}

impl Changed {
    fn of(recorded: &Recorded) -> Option<Self> {
        let id = recorded.commit.stream.key().to_owned();
        recorded.commit.events.iter().find_map(|event| match event {
            Event::User(UserEvent::PatientEnlisted(_) | UserEvent::PatientRemoved(_)) => {
                Some(Self::Enlistments(id.clone()))
            }
            Event::Schema(SchemaEvent::Updated(e))
                if e.settings.0.contains_key("groupSyncMode") =>
            {
                Some(Self::Mode(id.clone()))
            }
            _ => None,
        })
    }

    fn scope(&self) -> SyncScope<'_> {
        match self {
            Self::Enlistments(user) => SyncScope::User(user),
            Self::Mode(schema) => SyncScope::Schema(schema),
        }
    }
}

impl GroupSync {
    /// Brings the documents in `scope` in line, once the read models show `position`. The
    /// documents it could not bring in line are tried again by the next attempt.
    async fn sync(&self, scope: SyncScope<'_>, position: u64, cause: &str) -> Result<(), Retry> {
        self.progresses
            .wait_for(position, RETRY_EVERY)
            .await
            .map_err(Retry::new)?;
        let documents = group_synced(&self.store, scope).await.map_err(Retry::new)?;
        let mut failed = 0;
        for (document, schema) in &documents {
            if let Err(error) = self.sync_one(document, schema, cause).await {
                tracing::warn!(%error, %document, "a document's groups could not be synchronised");
                failed += 1;
            }
        }
        match failed {
            0 => Ok(()),
            _ => Err(Retry(format!(
                "{failed} of {} documents could not be synchronised",
                documents.len()
            ))),
        }
    }

    async fn sync_one(
        &self,
        document: &str,
        schema: &str,
        cause: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (document_id, schema_id): (Id, Id) = (document.parse()?, schema.parse()?);
        let Some(schema) = self.snapshots.get(&self.bus, schema_id).await? else {
            return Ok(());
        };
        let meta = CommandMeta {
            command_id: format!("group-sync/{cause}/{document}"),
            correlation_id: "group-sync".into(),
            causation_id: Some(cause.to_owned()),
            reason: Some("groupSyncMode".into()),
            actor: Actor::system(Via::Scheduler),
        };
        let documents = Documents {
            bus: &self.bus,
            snapshots: &self.snapshots,
            unique: &self.store,
        };
        documents.sync_groups(schema, document_id, &meta).await?;
        Ok(())
    }
}
