//! Resumes the workflow steps that `delay` actions paused, when they are due.
//!
//! A paused step holds its document locked (`transitionLock`) until it goes on. When a node starts
//! running this reactor, it reads every locked document from the read models (once they show the
//! log up to its checkpoint); then it follows the documents' commits for new locks. Each is
//! resumed at its time by a `Resume` command as Vigil itself, with a command id naming the lock,
//! so a lock resumed twice (after a takeover) makes one commit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use vigil_commands::CommandBus;
use vigil_commands::CommandError;
use vigil_commands::data::document::{Documents, DocumentsError, Snapshots};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::data::document::{Document, DocumentError, DocumentEvent};
use vigil_domain::event::Event;
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::value::Timestamp;
use vigil_projections::data::document::locked;
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

use crate::runner::{Reactor, Retry};

/// How long to wait for the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// How long a step that cannot go on (its data no longer fits the schema, say) waits before it is
/// tried again; it stays locked meanwhile, and every attempt is logged.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// The resumer of paused steps, a [`Reactor`].
pub struct Delays {
    bus: Arc<CommandBus>,
    snapshots: Snapshots,
    store: ReadStore,
    progresses: Progresses,
    paused: Due,
}

impl Delays {
    pub fn new(bus: Arc<CommandBus>, store: ReadStore, progresses: Progresses) -> Self {
        Self {
            bus,
            snapshots: Snapshots::default(),
            store,
            progresses,
            paused: Due::new(),
        }
    }
}

/// Locked documents by when they are due (epoch ms), earliest first.
type Due = BTreeSet<(i64, Id)>;

/// The locks a commit makes.
fn locks(recorded: &Recorded) -> impl Iterator<Item = (i64, Id)> + '_ {
    let document = recorded.commit.stream.id();
    recorded
        .commit
        .events
        .iter()
        .filter_map(move |event| match event {
            Event::Document(DocumentEvent::Locked(locked)) => {
                Some((locked.resume_at.millis(), document?))
            }
            _ => None,
        })
}

/// How long until `at` (epoch ms), from now.
pub(crate) fn until(at: i64) -> Duration {
    let wait = at.saturating_sub(Timestamp::now().millis());
    Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

impl Reactor for Delays {
    fn name(&self) -> &'static str {
        "delays"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Document::KIND])
    }

    /// Gathers the locked documents the read models show (once they show the checkpoint), and
    /// follows the log from where they were: the locks before are among those gathered.
    fn resume(&mut self, checkpoint: u64) -> BoxFuture<'_, Result<u64, Retry>> {
        Box::pin(async move {
            self.progresses
                .wait_for(checkpoint, RETRY_EVERY)
                .await
                .map_err(Retry::new)?;
            let shown = self.progresses.position();
            let rows = locked(&self.store).await.map_err(Retry::new)?;
            self.paused = rows
                .into_iter()
                .filter_map(|(id, at)| Some((at, id.parse().ok()?)))
                .collect();
            Ok(shown)
        })
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        self.paused.extend(locks(recorded));
        Box::pin(async { Ok(()) })
    }

    fn due(&self) -> Option<Instant> {
        let (at, _) = self.paused.first()?;
        Some(Instant::now() + until(*at))
    }

    fn work(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some((_, document)) = self.paused.pop_first()
                && let Some(again) = self.resume_step(document).await
            {
                self.paused.insert((again, document));
            }
        })
    }
}

impl Delays {
    /// Resumes document `id`'s paused step; when to try again, if it did not go on.
    async fn resume_step(&self, id: Id) -> Option<i64> {
        let meta = |lock: u64| CommandMeta {
            command_id: format!("resume/{id}/{lock}"),
            correlation_id: "delay".into(),
            causation_id: None,
            reason: Some("delay".into()),
            actor: Actor::system(Via::Scheduler),
        };
        let later = |after: Duration| {
            Timestamp::now()
                .millis()
                .saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
        };
        let documents = Documents {
            bus: &self.bus,
            snapshots: &self.snapshots,
            unique: &self.store,
        };
        match documents.resume(id, meta).await {
            Ok(_) => None,
            // This node's clock is behind the one that locked it: the log knows when.
            Err(DocumentsError::Command(CommandError::Domain(DocumentError::NotDue))) => {
                Some(later(Duration::from_secs(1)))
            }
            Err(DocumentsError::Command(CommandError::Domain(error))) => {
                tracing::error!(%error, document = %id, "a paused workflow step cannot go on; the document stays locked");
                Some(later(REFUSED_RETRY))
            }
            Err(error) => {
                tracing::warn!(%error, document = %id, "a paused workflow step could not be resumed yet");
                Some(later(RETRY_EVERY))
            }
        }
    }
}
