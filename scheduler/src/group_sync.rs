//! Keeps the `groupIds` of documents in line with their schema's `groupSyncMode` when patient
//! enlistments change in the user service, or a schema's mode changes (applied retroactively).
//!
//! It follows the log; once caught up with where the log was when it started, it brings every
//! document of a synchronising schema in line (whatever changed while it was not running), then
//! reacts to each enlistment or mode change. The documents concerned are found in the read
//! models (after they have applied the change); each is changed by a `SyncGroups` command as
//! Vigil itself, with a command id derived from the causing commit, so several nodes reacting to
//! the same change make one commit between them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use vigil_commands::documents::{self, Snapshots};
use vigil_commands::{CommandBus, ids};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::data::document::{Document, DocumentCommand};
use vigil_domain::event::{Event, SchemaEvent, UserEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::EventLog;
use vigil_projections::documents::{SyncScope, group_synced};
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

/// How long to wait for the log or the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// A running group synchroniser.
pub struct GroupSync {
    task: JoinHandle<()>,
}

impl GroupSync {
    pub fn start(log: Arc<dyn EventLog>, store: ReadStore, progresses: Progresses) -> Self {
        let reactor = Reactor {
            bus: CommandBus::new(log.clone()),
            snapshots: Snapshots::default(),
            store,
            progresses,
        };
        Self {
            task: tokio::spawn(reactor.run(log)),
        }
    }

    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for GroupSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Reactor {
    bus: CommandBus,
    snapshots: Snapshots,
    store: ReadStore,
    progresses: Progresses,
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

impl Reactor {
    async fn run(self, log: Arc<dyn EventLog>) {
        let mut position = 0;
        let mut reconciled = false;
        loop {
            let start = match log.head().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::warn!(%error, "group sync cannot reach the log; retrying");
                    tokio::time::sleep(RETRY_EVERY).await;
                    continue;
                }
            };
            if !reconciled && start <= position {
                reconciled = self.sync(SyncScope::All, position, None).await;
            }
            let mut commits = log.subscribe(position);
            while let Some(next) = commits.next().await {
                let recorded = match next {
                    Ok(recorded) => recorded,
                    Err(error) => {
                        tracing::warn!(%error, "group sync lost the log; resuming");
                        break;
                    }
                };
                position = recorded.position;
                if !reconciled {
                    if position >= start {
                        reconciled = self.sync(SyncScope::All, position, None).await;
                    }
                    continue;
                }
                let Some(changed) = Changed::of(&recorded) else {
                    continue;
                };
                let cause = format!("{}@{}", recorded.commit.stream, recorded.commit.version);
                if !self.sync(changed.scope(), position, Some(cause)).await {
                    // Start over from here; every document is brought in line again.
                    reconciled = false;
                    break;
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Brings the documents in `scope` in line, once the read models show `position`. Whether it
    /// got through (else it is tried again later).
    async fn sync(&self, scope: SyncScope<'_>, position: u64, cause: Option<String>) -> bool {
        if let Err(error) = self.progresses.wait_for(position, RETRY_EVERY).await {
            tracing::warn!(%error, "group sync waits for the read models");
            return false;
        }
        let documents = match group_synced(&self.store, scope).await {
            Ok(documents) => documents,
            Err(error) => {
                tracing::warn!(%error, "group sync cannot read the documents");
                return false;
            }
        };
        let mut done = true;
        for (document, schema) in documents {
            if let Err(error) = self.sync_one(&document, &schema, cause.as_deref()).await {
                tracing::warn!(%error, %document, "a document's groups could not be synchronised");
                done = false;
            }
        }
        done
    }

    async fn sync_one(
        &self,
        document: &str,
        schema: &str,
        cause: Option<&str>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (document_id, schema_id): (Id, Id) = (document.parse()?, schema.parse()?);
        let Some(schema) = self.snapshots.get(&self.bus, schema_id).await? else {
            return Ok(());
        };
        let stream = StreamId::of(Document::KIND, document_id);
        let (state, _) = self.bus.load::<Document>(&stream).await?;
        let mut users: std::collections::BTreeSet<Id> = state.user_ids.iter().copied().collect();
        users.extend(state.creator_id);
        let lookups = documents::lookups(&self.bus, users).await?;
        let meta = CommandMeta {
            command_id: match cause {
                Some(cause) => format!("group-sync/{cause}/{document}"),
                None => ids::command_id(),
            },
            correlation_id: "group-sync".into(),
            causation_id: cause.map(str::to_owned),
            reason: Some("groupSyncMode".into()),
            actor: Actor::system(Via::Scheduler),
        };
        self.bus
            .execute::<Document>(
                &stream,
                &DocumentCommand::SyncGroups { schema, lookups },
                &meta,
            )
            .await?;
        Ok(())
    }
}
