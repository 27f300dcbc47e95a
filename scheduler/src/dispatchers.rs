//! Runs the dispatchers' actions on the events they follow (see [`vigil_domain::dispatchers`]).
//!
//! The reactor keeps every dispatcher in memory (gathered from the read models when a node starts
//! running it, then followed in the log), and for each event the log publishes runs the actions of
//! the dispatchers of its type, in log order. A task action creates a task of its function with the
//! action's data plus `event` (the event as the event service shows it), under an id derived from
//! the event, the dispatcher and the action: an event dispatched again (after a crash or a takeover)
//! creates no second task. Mail actions wait for the mail service: they are logged and skipped.

use std::sync::Arc;

use futures::future::BoxFuture;
use vigil_commands::CommandBus;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::dispatchers::{ActionKind, Dispatcher};
use vigil_domain::events::{PUBLISHING_KINDS, Published, published};
use vigil_domain::id::Id;
use vigil_domain::json::JsonOf;
use vigil_domain::log::Filter;
use vigil_domain::tasks::task::TaskCreated;
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

use crate::followed::Followed;
use crate::runner::{Reactor, Retry};
use crate::tasks::{create_task, default_priority, system};

/// The stream kinds the reactor follows: those publishing events, and the dispatchers.
static KINDS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut kinds = PUBLISHING_KINDS.to_vec();
    kinds.push(Dispatcher::KIND);
    kinds
});

/// The dispatcher runner, a [`Reactor`].
pub struct Dispatchers {
    bus: Arc<CommandBus>,
    store: ReadStore,
    progresses: Progresses,
    dispatchers: Followed<Dispatcher>,
}

impl Dispatchers {
    pub fn new(bus: Arc<CommandBus>, store: ReadStore, progresses: Progresses) -> Self {
        Self {
            bus,
            store,
            progresses,
            dispatchers: Followed::new(|dispatcher| dispatcher.attributes.is_some()),
        }
    }

    /// Runs the actions of the dispatchers of `event`'s type.
    async fn dispatch(&self, event: &Published) -> Result<(), Retry> {
        let event_json = event.json();
        let following = self.dispatchers.items.iter().filter(|(_, dispatcher)| {
            dispatcher
                .attributes
                .as_ref()
                .is_some_and(|attributes| attributes.event_type == event.event_type)
        });
        for (dispatcher_id, dispatcher) in following {
            for action in &dispatcher.actions {
                let task = match &action.kind {
                    ActionKind::Task(task) => task,
                    ActionKind::Mail(_) => {
                        tracing::warn!(
                            dispatcher = %dispatcher_id,
                            action = %action.id,
                            event = %event.id,
                            "a dispatcher's mail action was not sent: this version of Vigil has no mail service yet"
                        );
                        continue;
                    }
                };
                let mut data = task.data.0.clone();
                data.insert("event".into(), event_json.clone());
                let seed = format!("dispatch/{}/{dispatcher_id}/{}", event.id, action.id);
                let created = TaskCreated {
                    function_name: task.function_name.clone(),
                    data: JsonOf(data),
                    tags: task.tags.clone(),
                    priority: default_priority(&self.bus, &task.function_name)
                        .await
                        .map_err(Retry::new)?,
                    start_at: task.start_at.unwrap_or(event.at),
                    created_by_user: None,
                    created_by_application: None,
                    retry_for: Vec::new(),
                    direct: false,
                };
                let meta = system(seed.clone(), Some(format!("event-{}", event.id)));
                create_task(
                    &self.bus,
                    Id::derived(event.at, seed.as_bytes()),
                    created,
                    &meta,
                )
                .await?;
            }
        }
        Ok(())
    }
}

impl Reactor for Dispatchers {
    fn name(&self) -> &'static str {
        "dispatchers"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(KINDS.as_slice())
    }

    /// Gathers the dispatchers the read models show (once they show the checkpoint), and follows
    /// the log from where they were.
    fn resume(&mut self, checkpoint: u64) -> BoxFuture<'_, Result<u64, Retry>> {
        Box::pin(async move {
            let store = &self.store;
            self.dispatchers
                .gather(&self.bus, &self.progresses, checkpoint, async || {
                    vigil_projections::dispatchers::ids(store).await
                })
                .await
        })
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            if self.dispatchers.fold(recorded) {
                return Ok(());
            }
            if self.dispatchers.items.is_empty() {
                return Ok(());
            }
            for event in published(&recorded.commit) {
                self.dispatch(&event).await?;
            }
            Ok(())
        })
    }
}
