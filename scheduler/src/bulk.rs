//! Finishes the jobs that change many users at once (see [`vigil_domain::users::bulk`]) when the
//! node that started one stopped before finishing it: a job not finished [`GRACE`] after it
//! started is carried out again (nothing changes twice) and finished, as the scheduler, caused by
//! the job. The checkpoint stays before the earliest unfinished job, so a node that takes over
//! sees it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use vigil_commands::CommandBus;
use vigil_commands::users::bulk::carry_out;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::event::{BulkEvent, Event};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::users::bulk::BulkJob;
use vigil_domain::value::Timestamp;

use crate::delays::until;
use crate::runner::{Reactor, Retry};

/// How long the node that started a job has to finish it before the scheduler does: longer than
/// a request may take (60 s).
pub const GRACE: Duration = Duration::from_secs(90);
/// How long after a failed attempt a job is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The unfinished jobs, each with the position of its start and when it is due.
pub struct BulkJobs {
    bus: Arc<CommandBus>,
    grace: Duration,
    unfinished: BTreeMap<Id, (u64, Instant)>,
}

impl BulkJobs {
    pub fn new(bus: Arc<CommandBus>) -> Self {
        Self::with_grace(bus, GRACE)
    }

    /// With another grace (a short one, for tests).
    pub fn with_grace(bus: Arc<CommandBus>, grace: Duration) -> Self {
        Self {
            bus,
            grace,
            unfinished: BTreeMap::new(),
        }
    }
}

/// When a job started at `at` is due: `grace` after its start (at once, for one that started
/// longer ago than that).
fn due(at: Timestamp, grace: Duration) -> Instant {
    let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    Instant::now() + until(at.millis().saturating_add(grace))
}

impl Reactor for BulkJobs {
    fn name(&self) -> &'static str {
        "bulk_jobs"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[BulkJob::KIND])
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        if let Some(job) = recorded.commit.stream.id() {
            for event in &recorded.commit.events {
                match event {
                    Event::Bulk(BulkEvent::Started(started)) => {
                        let due = due(started.at, self.grace);
                        self.unfinished.insert(job, (recorded.position, due));
                    }
                    Event::Bulk(BulkEvent::Finished(_)) => {
                        self.unfinished.remove(&job);
                    }
                    _ => {}
                }
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn due(&self) -> Option<Instant> {
        self.unfinished.values().map(|(_, due)| *due).min()
    }

    fn work(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let now = Instant::now();
            let due: Vec<Id> = self
                .unfinished
                .iter()
                .filter(|(_, (_, at))| *at <= now)
                .map(|(job, _)| *job)
                .collect();
            for job in due {
                let meta = CommandMeta {
                    command_id: vigil_commands::ids::command_id(),
                    correlation_id: format!("bulk-{job}"),
                    causation_id: None,
                    reason: Some("finishing a job its node left unfinished".into()),
                    actor: Actor::system(Via::Scheduler),
                };
                match carry_out(&self.bus, job, &meta).await {
                    Ok(_) => {
                        self.unfinished.remove(&job);
                    }
                    Err(error) => {
                        tracing::warn!(%error, %job, "a bulk job could not be finished; trying again");
                        if let Some((_, at)) = self.unfinished.get_mut(&job) {
                            *at = Instant::now() + RETRY_AFTER;
                        }
                    }
                }
            }
        })
    }

    fn holds(&self) -> Option<u64> {
        self.unfinished
            .values()
            .map(|(position, _)| *position)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_due_its_grace_after_it_started_not_after_it_was_seen() {
        let grace = Duration::from_secs(90);
        let long_ago = Timestamp(Timestamp::now().millis() - 200_000);
        assert!(due(long_ago, grace) <= Instant::now());
        let seconds_ago = Timestamp(Timestamp::now().millis() - 30_000);
        let left = due(seconds_ago, grace) - Instant::now();
        assert!(
            left <= Duration::from_secs(60) && left > Duration::from_secs(55),
            "{left:?}"
        );
    }
}
