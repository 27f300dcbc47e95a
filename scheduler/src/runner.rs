//! The reactor runner: one loop that follows the log for every reactor (DESIGN.md §8).
//!
//! A [`Reactor`] names itself, says which commits it wants (a [`Filter`] the log applies where
//! it is stored), and reacts to each by issuing commands through the shared command bus. The
//! runner gives each reactor its own task and:
//!
//! - **elects one node** to run it: on Postgres, the node holding the session advisory lock named
//!   after the reactor (the others try again every second, so one takes over when the holder
//!   stops or its connection drops). The embedded deployment is one node; should several share
//!   its files, each runs every reactor (reactions are idempotent);
//! - **keeps its checkpoint** in the read store (`reactor_checkpoints`): the position up to which
//!   every reaction is done. It is written every moment rather than every commit, on Postgres by a
//!   compare-and-set on the position read at takeover, so a node that lost the election cannot
//!   move it; a reaction a reactor still holds (a mail not yet delivered) keeps it back;
//! - **resumes** after the checkpoint, so no node re-reads the log from its start, and hands the
//!   reactor every commit after it at least once: a reaction that fails is tried again, with a
//!   growing pause, until it goes through. Reactions are idempotent (their commands are keyed by
//!   the causing commit), so one repeated after a crash or a takeover changes nothing twice.
//!
//! A reactor may also have work of its own that comes due with time (a paused step to resume, a
//! mail to retry): the runner calls it when [`Reactor::due`] says.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil_domain::commit::Recorded;
use vigil_domain::log::{Delivery, EventLog, Filter};
use vigil_projections::store::{ReadStore, try_lock};

/// The first pause after a failure; it doubles with each failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause after failures.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// How often a node that does not run a reactor checks whether it should take over.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// How often a reactor's checkpoint is stored when it moved.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// A reaction that did not go through: the runner tries it again after a pause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retry(pub String);

impl Retry {
    pub fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// A consumer of the log that causes effects by issuing commands.
pub trait Reactor: Send + 'static {
    /// The checkpoint's name; never reused for another reactor.
    fn name(&self) -> &'static str;

    /// The commits it reacts to.
    fn filter(&self) -> Filter;

    /// Called when this node starts running the reactor, before the first commit after
    /// `checkpoint`: the place to gather work pending from before it (from the read models).
    /// Answers the position to follow the log from: the checkpoint, or a later one when what the
    /// reactor gathered covers the commits up to there.
    fn resume(&mut self, checkpoint: u64) -> BoxFuture<'_, Result<u64, Retry>> {
        Box::pin(async move { Ok(checkpoint) })
    }

    /// Reacts to one commit the filter admits.
    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>>;

    /// When its own work next comes due, if it has any.
    fn due(&self) -> Option<Instant> {
        None
    }

    /// Does the work that is due.
    fn work(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// The earliest commit whose reaction is not finished yet (it holds work from it for later):
    /// the checkpoint stays before it.
    fn holds(&self) -> Option<u64> {
        None
    }
}

/// The reactors running on this node.
pub struct Reactors {
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Reactors {
    /// Starts one task per reactor; each runs wherever it is elected.
    pub fn start(
        log: Arc<dyn EventLog>,
        store: ReadStore,
        reactors: Vec<Box<dyn Reactor>>,
    ) -> Self {
        Self::start_with(log, store, reactors, CHECKPOINT_EVERY)
    }

    /// With checkpoints stored every `checkpoint_every` (a long one makes a crash repeat
    /// reactions, for tests).
    pub fn start_with(
        log: Arc<dyn EventLog>,
        store: ReadStore,
        reactors: Vec<Box<dyn Reactor>>,
        checkpoint_every: Duration,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = reactors
            .into_iter()
            .map(|reactor| {
                let runner = Runner {
                    log: log.clone(),
                    store: store.clone(),
                    checkpoint_every,
                };
                tokio::spawn(runner.run(reactor, stopped.clone()))
            })
            .collect();
        Self {
            tasks: std::sync::Mutex::new(tasks),
            stop,
        }
    }

    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        self.tasks
            .lock()
            .map(|mut tasks| std::mem::take(&mut *tasks))
            .unwrap_or_default()
    }

    /// Stops the reactors between reactions, storing their checkpoints.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        for task in self.take_tasks() {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a reactor did not stop in time");
            }
        }
    }

    /// Stops the reactors at once, wherever they are, as a crash would.
    pub fn abort(&self) {
        for task in self.take_tasks() {
            task.abort();
        }
    }
}

impl Drop for Reactors {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The position up to which reactor `name` has reacted (0: not yet started anywhere).
pub async fn checkpoint(store: &ReadStore, name: &str) -> Result<u64, sqlx::Error> {
    let position: Option<i64> = vigil_projections::with_pool!(store, pool => {
        sqlx::query_scalar("SELECT position FROM reactor_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
    });
    Ok(position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
}

/// Moves reactor `name`'s checkpoint from `from` to `to`; false if it is no longer at `from`
/// (another node moved it).
async fn store_checkpoint(
    store: &ReadStore,
    name: &str,
    from: u64,
    to: u64,
) -> Result<bool, sqlx::Error> {
    let now = vigil_domain::value::Timestamp::now().millis();
    let (from, to) = (
        i64::try_from(from).unwrap_or(i64::MAX),
        i64::try_from(to).unwrap_or(i64::MAX),
    );
    let moved = match store {
        ReadStore::Postgres(pool) => sqlx::query(
            "INSERT INTO reactor_checkpoints (name, position, updated_at) VALUES ($1, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, \
             updated_at = EXCLUDED.updated_at WHERE reactor_checkpoints.position = $2",
        )
        .bind(name)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected(),
        // No election: every node sharing the files runs the reactor, and the checkpoint keeps
        // the furthest any got to.
        ReadStore::Sqlite(pool) => sqlx::query(
            "INSERT INTO reactor_checkpoints (name, position, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET position = max(position, EXCLUDED.position), \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(name)
        .bind(to)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(moved == 1)
}

struct Runner {
    log: Arc<dyn EventLog>,
    store: ReadStore,
    checkpoint_every: Duration,
}

/// Why following stopped.
enum Stop {
    /// Asked to.
    Stopped,
    /// Start over after a pause.
    Interrupted(String),
}

/// The pause before the next attempt after failures in a row: 100 ms, doubling up to 30 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(FIRST_PAUSE)
    }

    /// Waits the pause (less if asked to stop), and doubles the next one; whether to go on.
    async fn wait(&mut self, stopped: &mut watch::Receiver<bool>) -> bool {
        let go_on = pause_unless_stopped(self.0, stopped).await;
        self.0 = (self.0 * 2).min(LONGEST_PAUSE);
        go_on
    }
}

/// Waits `pause`, or less if asked to stop; whether to go on.
async fn pause_unless_stopped(pause: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => !*stopped.borrow(),
        _ = stopped.changed() => false,
    }
}

impl Runner {
    async fn run(self, mut reactor: Box<dyn Reactor>, mut stopped: watch::Receiver<bool>) {
        let name = reactor.name();
        let mut backoff = Backoff::new();
        while !*stopped.borrow() {
            let leader = match self.lead(name, &mut stopped).await {
                Ok(Some(leader)) => leader,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(reactor = name, %error, "cannot elect a node to run a reactor; retrying");
                    if !backoff.wait(&mut stopped).await {
                        return;
                    }
                    continue;
                }
            };
            let following = Instant::now();
            let followed = self.follow(reactor.as_mut(), &mut stopped).await;
            drop(leader);
            match followed {
                Stop::Stopped => return,
                Stop::Interrupted(error) => {
                    if following.elapsed() > LONGEST_PAUSE {
                        // It ran well for a while: this is a new run of failures.
                        backoff = Backoff::new();
                    }
                    tracing::warn!(reactor = name, %error, "reactor interrupted; resuming");
                    if !backoff.wait(&mut stopped).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits until this node is elected to run reactor `name`: the connection holding the lock
    /// (none on the embedded deployment), or `None` once asked to stop.
    async fn lead(
        &self,
        name: &str,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Option<Option<sqlx::PgConnection>>, sqlx::Error> {
        let ReadStore::Postgres(pool) = &self.store else {
            return Ok(Some(None));
        };
        let lock = format!("reactor:{name}");
        loop {
            if let Some(conn) = try_lock(pool, &lock).await? {
                return Ok(Some(Some(conn)));
            }
            if !pause_unless_stopped(FOLLOW_INTERVAL, stopped).await {
                return Ok(None);
            }
        }
    }

    /// Runs the reactor from its checkpoint until asked to stop or interrupted.
    async fn follow(&self, reactor: &mut dyn Reactor, stopped: &mut watch::Receiver<bool>) -> Stop {
        let name = reactor.name();
        let mut stored = match checkpoint(&self.store, name).await {
            Ok(position) => position,
            Err(error) => return Stop::Interrupted(format!("cannot read the checkpoint: {error}")),
        };
        let mut backoff = Backoff::new();
        let from = loop {
            match reactor.resume(stored).await {
                Ok(from) => break from.max(stored),
                Err(retry) => {
                    tracing::warn!(reactor = name, error = %retry, "a reactor cannot resume yet; retrying");
                    if !backoff.wait(stopped).await {
                        return Stop::Stopped;
                    }
                }
            }
        };
        tracing::info!(reactor = name, checkpoint = stored, from, "reactor running");
        let mut commits = self.log.follow(from, reactor.filter());
        let mut reacted = from;
        let mut save = tokio::time::interval_at(
            Instant::now() + self.checkpoint_every,
            self.checkpoint_every,
        );
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = reactor.due();
            let (stop, time_to_save) = tokio::select! {
                next = commits.next() => match next {
                    Some(Ok(Delivery::Passed(position))) => {
                        reacted = reacted.max(position);
                        (None, false)
                    }
                    Some(Ok(Delivery::Commit(recorded))) if recorded.position <= reacted => {
                        (None, false)
                    }
                    Some(Ok(Delivery::Commit(recorded))) => {
                        if self.react(reactor, &recorded, stopped).await {
                            reacted = recorded.position;
                            (None, false)
                        } else {
                            (Some(Stop::Stopped), true)
                        }
                    }
                    Some(Err(error)) => (Some(Stop::Interrupted(error.to_string())), false),
                    None => (Some(Stop::Interrupted("the log subscription ended".into())), false),
                },
                () = sleep_until(due), if due.is_some() => {
                    reactor.work().await;
                    (None, false)
                }
                _ = save.tick() => (None, true),
                _ = stopped.changed() => (Some(Stop::Stopped), true),
            };
            let target = reactor
                .holds()
                .map_or(reacted, |held| reacted.min(held.saturating_sub(1)));
            if target > stored && time_to_save {
                match store_checkpoint(&self.store, name, stored, target).await {
                    Ok(true) => stored = target,
                    Ok(false) => {
                        return Stop::Interrupted(
                            "another node moved the checkpoint; starting over from it".into(),
                        );
                    }
                    Err(error) => {
                        tracing::warn!(reactor = name, %error, "cannot store the checkpoint");
                    }
                }
            }
            if let Some(stop) = stop {
                return stop;
            }
        }
    }

    /// Reacts to `recorded` until the reaction goes through; false if asked to stop first.
    async fn react(
        &self,
        reactor: &mut dyn Reactor,
        recorded: &Recorded,
        stopped: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut backoff = Backoff::new();
        loop {
            match reactor.react(recorded).await {
                Ok(()) => return true,
                Err(retry) => {
                    tracing::warn!(
                        reactor = reactor.name(),
                        position = recorded.position,
                        stream = %recorded.commit.stream,
                        error = %retry,
                        "a reaction did not go through; trying it again"
                    );
                    if !backoff.wait(stopped).await {
                        return false;
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
