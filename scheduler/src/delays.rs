//! Resumes the workflow steps that `delay` actions paused, when they are due.
//!
//! A paused step holds its document locked (`transitionLock`) until it goes on. At start, and
//! whenever it lost the log, the reactor reads every locked document from the read models (once
//! they show the log as it was); then it follows the log for new locks. Each is resumed at its
//! time by a `Resume` command as Vigil itself, with a command id naming the lock, so several
//! nodes resuming the same lock make one commit between them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use vigil_commands::CommandBus;
use vigil_commands::documents::{self, ResumeError, Snapshots};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::data::document::{DocumentError, DocumentEvent};
use vigil_domain::event::Event;
use vigil_domain::id::Id;
use vigil_domain::log::EventLog;
use vigil_domain::value::Timestamp;
use vigil_projections::documents::locked;
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

/// How long to wait for the log or the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// How long a step that cannot go on (its data no longer fits the schema, say) waits before it is
/// tried again; it stays locked meanwhile, and every attempt is logged.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// A running resumer of paused steps.
pub struct Delays {
    task: JoinHandle<()>,
}

impl Delays {
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

impl Drop for Delays {
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
fn until(at: i64) -> Duration {
    let wait = at.saturating_sub(Timestamp::now().millis());
    Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

impl Reactor {
    async fn run(self, log: Arc<dyn EventLog>) {
        loop {
            let Some((start, mut due)) = self.pending(&*log).await else {
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            };
            let mut commits = log.subscribe(start);
            loop {
                let next_due = due.first().map(|(at, _)| *at);
                let wait = next_due.map_or(Duration::from_secs(3600), until);
                tokio::select! {
                    next = commits.next() => match next {
                        Some(Ok(recorded)) => due.extend(locks(&recorded)),
                        Some(Err(error)) => {
                            tracing::warn!(%error, "the delay resumer lost the log; resuming");
                            break;
                        }
                        None => break,
                    },
                    () = tokio::time::sleep(wait), if next_due.is_some() => {
                        if let Some((_, document)) = due.pop_first()
                            && let Some(again) = self.resume(document).await
                        {
                            due.insert((again, document));
                        }
                    }
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Where the log is now, and the locked documents the read models show as of there.
    async fn pending(&self, log: &dyn EventLog) -> Option<(u64, Due)> {
        let start = log
            .head()
            .await
            .map_err(|error| tracing::warn!(%error, "the delay resumer cannot reach the log"))
            .ok()?;
        self.progresses
            .wait_for(start, RETRY_EVERY)
            .await
            .map_err(|error| tracing::warn!(%error, "the delay resumer waits for the read models"))
            .ok()?;
        let rows = locked(&self.store)
            .await
            .map_err(|error| tracing::warn!(%error, "the delay resumer cannot read the documents"))
            .ok()?;
        let due = rows
            .into_iter()
            .filter_map(|(id, at)| Some((at, id.parse().ok()?)))
            .collect();
        Some((start, due))
    }

    /// Resumes document `id`'s paused step; when to try again, if it did not go on.
    async fn resume(&self, id: Id) -> Option<i64> {
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
        match documents::resume(&self.bus, &self.snapshots, id, &self.store, meta).await {
            Ok(_) => None,
            // This node's clock is behind the one that locked it: the log knows when.
            Err(ResumeError::Command(vigil_commands::CommandError::Domain(
                DocumentError::NotDue,
            ))) => Some(later(Duration::from_secs(1))),
            Err(ResumeError::Command(vigil_commands::CommandError::Domain(error))) => {
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
