//! Aggregates of one kind a reactor keeps in memory ([`Followed`]): gathered from the read models
//! when the reactor resumes, then kept current by folding their commits from the log.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_commands::CommandBus;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::AreaEvent;
use vigil_domain::id::{Id, StreamId};
use vigil_projections::page::QueryError;
use vigil_projections::runner::Progresses;

use crate::runner::Retry;

/// How long to wait for the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Every aggregate of kind `A` that `exists` says is live, by id.
pub struct Followed<A> {
    pub items: BTreeMap<Id, A>,
    exists: fn(&A) -> bool,
}

impl<A: Aggregate + Default> Followed<A> {
    pub fn new(exists: fn(&A) -> bool) -> Self {
        Self {
            items: BTreeMap::new(),
            exists,
        }
    }

    /// Gathers the aggregates whose `ids` the read models give once they show `checkpoint`,
    /// each as the log has it; the position to follow the log from.
    pub async fn gather(
        &mut self,
        bus: &CommandBus,
        progresses: &Progresses,
        checkpoint: u64,
        ids: impl AsyncFnOnce() -> Result<Vec<String>, QueryError>,
    ) -> Result<u64, Retry> {
        progresses
            .wait_for(checkpoint, RETRY_EVERY)
            .await
            .map_err(Retry::new)?;
        let shown = progresses.position();
        let ids = ids().await.map_err(Retry::new)?;
        self.items.clear();
        for id in ids.iter().filter_map(|id| id.parse::<Id>().ok()) {
            let (found, _) = bus
                .load::<A>(&StreamId::of(A::KIND, id))
                .await
                .map_err(Retry::new)?;
            if (self.exists)(&found) {
                self.items.insert(id, found);
            }
        }
        Ok(shown)
    }

    /// Folds `recorded` if it is a commit of an `A`; whether it was. Every event carries the new
    /// values, so folding a commit again changes nothing.
    pub fn fold(&mut self, recorded: &Recorded) -> bool {
        if recorded.commit.stream.kind() != A::KIND {
            return false;
        }
        if let Some(id) = recorded.commit.stream.id() {
            let item = self.items.entry(id).or_default();
            for event in recorded.commit.events.iter().filter_map(A::Event::within) {
                item.apply(event);
            }
            if !(self.exists)(item) {
                self.items.remove(&id);
            }
        }
        true
    }
}
