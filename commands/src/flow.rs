//! The command flow (DESIGN.md §5): load → authorize → decide → append, retried on conflict.
//!
//! Loading is optimistic: a stream's state is kept in an LRU cache with the head it was folded up
//! to, and a command decided on a cached state is appended with that head as the expected position.
//! If the stream moved on (another node, another request), the append conflicts, the cache catches
//! up from the log, and the command is decided again. A decision that appends nothing (a no-op or
//! a refusal) made on a cached state is confirmed against the log before it is returned, so a
//! stale cache can never make Vigil refuse or skip something the log would allow.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use vigil_domain::aggregate::{Aggregate, Ctx};
use vigil_domain::commit::{CodecError, CommandMeta, Commit, Head, Recorded};
use vigil_domain::event::AreaEvent;
use vigil_domain::id::StreamId;
use vigil_domain::log::{EventLog, LogError};
use vigil_domain::value::Timestamp;

use crate::ids;
use crate::unique::{Exclusive, Unique};

/// Decisions retried after a conflict before giving up with [`CommandError::Conflict`].
const ATTEMPTS: u32 = 12;
/// The longest pause before a decision is retried after a conflict, in milliseconds.
const LONGEST_BACKOFF_MS: u64 = 64;

/// A random pause before retry `attempt` (1, 2, ...) after a conflict: up to 2, 4, 8, ... ms,
/// capped, so writers racing on one stream spread out instead of colliding again at once.
fn backoff(attempt: u32) -> std::time::Duration {
    let ceiling = 1u64
        .checked_shl(attempt)
        .unwrap_or(LONGEST_BACKOFF_MS)
        .min(LONGEST_BACKOFF_MS);
    std::time::Duration::from_millis(rand::random_range(0..=ceiling))
}
/// Commits per stream whose command ids are remembered, so a retried command is recognised.
const RECENT: usize = 16;
/// Streams whose folded state is kept in memory.
const CACHE_STREAMS: usize = 100_000;

/// Where a command left its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stream: StreamId,
    /// The stream's version after the command (unchanged when nothing was appended).
    pub version: u64,
    /// The global position of the command's commit, or of the stream's last commit when the command
    /// appended nothing: what a reader waits for to see the command's effect.
    pub position: u64,
    /// Whether this command appended a commit (a retried command reports its original commit).
    pub appended: bool,
    /// When the command's commit was recorded (`None` when it appended none, or when the log
    /// answered that it holds the command already without saying when).
    pub recorded_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(E),
    /// The stream kept changing under the command.
    #[error("{0} kept changing; try again")]
    Conflict(StreamId),
    /// A value that must be unique (`namespace`: email, name, ...) is already taken.
    #[error("this {0} is already taken")]
    Taken(&'static str),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Events the aggregate decided, authorized: the only thing [`CommandBus`] appends. It can only be
/// made by [`decide`], which always runs `authorize` first, so an unauthorized decision cannot
/// reach the log.
struct Decision<E, R> {
    events: Vec<E>,
    /// Set when the command was refused but its attempt is still recorded (`events`).
    refusal: Option<R>,
}

fn decide<A: Aggregate>(
    state: &A,
    command: &A::Command,
    ctx: &Ctx<'_>,
) -> Result<Decision<A::Event, A::Error>, A::Error> {
    state.authorize(command, ctx)?;
    match state.handle(command, ctx) {
        Ok(events) => Ok(Decision {
            events,
            refusal: None,
        }),
        Err(error) => match state.recorded_refusal(command, &error, ctx) {
            events if events.is_empty() => Err(error),
            events => Ok(Decision {
                events,
                refusal: Some(error),
            }),
        },
    }
}

#[derive(Clone)]
struct Cached {
    head: Head,
    state: Arc<dyn Any + Send + Sync>,
    recent: Recent,
}

/// The latest commits of a stream, by command id: `(command id, version, position, recorded at)`.
type Recent = Arc<Vec<(String, u64, u64, Timestamp)>>;

/// A stream folded up to `head`.
struct Loaded<A> {
    state: A,
    head: Option<Head>,
    recent: Recent,
}

impl<A: Default> Loaded<A> {
    fn new() -> Self {
        Self {
            state: A::default(),
            head: None,
            recent: Arc::default(),
        }
    }
}

impl<A> Loaded<A> {
    /// The outcome of `command_id` if it is one of the stream's latest commits.
    fn done(&self, stream: &StreamId, command_id: &str) -> Option<Outcome> {
        self.recent.iter().find(|(id, ..)| id == command_id).map(
            |(_, version, position, recorded_at)| Outcome {
                stream: stream.clone(),
                version: *version,
                position: *position,
                appended: true,
                recorded_at: Some(*recorded_at),
            },
        )
    }
}

fn remember_command(
    recent: &Recent,
    command_id: &str,
    version: u64,
    position: u64,
    recorded_at: Timestamp,
) -> Recent {
    let mut latest: Vec<_> = recent
        .iter()
        .skip((recent.len() + 1).saturating_sub(RECENT))
        .cloned()
        .collect();
    latest.push((command_id.to_owned(), version, position, recorded_at));
    Arc::new(latest)
}

/// Runs commands against the log. Cheap to share behind an `Arc`.
pub struct CommandBus {
    log: Arc<dyn EventLog>,
    cache: Mutex<LruCache<StreamId, Cached>>,
}

impl CommandBus {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        let capacity = NonZeroUsize::new(CACHE_STREAMS).unwrap_or(NonZeroUsize::MIN);
        Self {
            log,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Decides `command` on the aggregate of `stream` and appends the result.
    #[tracing::instrument(name = "command", skip_all, fields(stream = %stream, command_id = %meta.command_id))]
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<Outcome, CommandError<A::Error>> {
        self.execute_holding::<A>(stream, command, meta, None).await
    }

    /// [`Self::execute`], with the values the aggregate holds kept to it alone: those the command
    /// makes it hold are claimed before the commit (and the command refused with
    /// [`CommandError::Taken`] if another stream holds one), those it stops holding released after.
    pub async fn execute_holding<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
        exclusive: Option<&dyn Exclusive<A>>,
    ) -> Result<Outcome, CommandError<A::Error>> {
        let start = match self.cached::<A>(stream) {
            Some(loaded) => (loaded, false),
            None => (self.catch_up(stream, Loaded::new()).await?, true),
        };
        self.execute_from(stream, command, meta, start, exclusive)
            .await
    }

    /// Runs `command` on a stream whose id was just made for it (a new document's): nothing can
    /// be in the log under it, so it is decided without reading the log first. Were something
    /// there, the append would conflict and the command be decided again against it, and a
    /// refusal is confirmed against the log before it is answered, as for a cached state.
    pub async fn execute_new<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
        exclusive: Option<&dyn Exclusive<A>>,
    ) -> Result<Outcome, CommandError<A::Error>> {
        self.execute_from(
            stream,
            command,
            meta,
            (Loaded::<A>::new(), false),
            exclusive,
        )
        .await
    }

    /// Decides and appends `command` from `start` (a state and whether it was just read from
    /// the log), deciding again after a conflict; releases what it claimed for `exclusive` values
    /// if it fails.
    async fn execute_from<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
        start: (Loaded<A>, bool),
        exclusive: Option<&dyn Exclusive<A>>,
    ) -> Result<Outcome, CommandError<A::Error>> {
        let mut claimed = Vec::new();
        let result = self
            .decide_and_append(stream, command, meta, start, exclusive, &mut claimed)
            .await;
        if result.is_err() && !claimed.is_empty() {
            Box::pin(self.release_all(stream, &claimed, meta)).await;
        }
        result
    }

    async fn decide_and_append<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
        start: (Loaded<A>, bool),
        exclusive: Option<&dyn Exclusive<A>>,
        claimed: &mut Vec<Unique>,
    ) -> Result<Outcome, CommandError<A::Error>> {
        let (mut loaded, mut fresh) = start;
        for attempt in 0..ATTEMPTS {
            if let Some(original) = loaded.done(stream, &meta.command_id) {
                // A retry of a command that already took effect.
                return Ok(original);
            }
            let now = ids::now();
            let ctx = Ctx {
                now,
                actor: &meta.actor,
                stream,
            };
            let decided = decide(&loaded.state, command, &ctx);
            let (events, refusal) = match decided {
                Ok(decision) if !decision.events.is_empty() => (decision.events, decision.refusal),
                refused_or_nothing => {
                    if !fresh {
                        // Confirm against the log before answering from a cached state.
                        let before = loaded.head.map(|h| h.position);
                        loaded = self.catch_up(stream, loaded).await?;
                        fresh = true;
                        if loaded.head.map(|h| h.position) != before {
                            continue;
                        }
                    }
                    return match refused_or_nothing {
                        Ok(_) => Ok(Outcome {
                            stream: stream.clone(),
                            version: loaded.head.map_or(0, |h| h.version),
                            position: loaded.head.map_or(0, |h| h.position),
                            appended: false,
                            recorded_at: None,
                        }),
                        Err(error) => Err(CommandError::Domain(error)),
                    };
                }
            };
            let released = match exclusive {
                // Boxed: claiming runs commands of its own (on reservation streams).
                Some(exclusive) => {
                    Box::pin(self.claim_held(
                        stream,
                        exclusive,
                        &loaded.state,
                        &events,
                        meta,
                        claimed,
                    ))
                    .await?
                }
                None => Vec::new(),
            };
            let head = loaded.head;
            // A recorded refusal is its own commit: a retry of the command is decided afresh
            // (and refused again) instead of being taken for a success.
            let refusal_meta;
            let commit_meta = match &refusal {
                Some(_) => {
                    refusal_meta = meta.step("refused");
                    &refusal_meta
                }
                None => meta,
            };
            let commit = Commit::next(
                stream.clone(),
                head.as_ref(),
                commit_meta,
                now,
                events.iter().cloned().map(Into::into).collect(),
            );
            match self
                .log
                .append(&commit, head.map_or(0, |h| h.position))
                .await
            {
                Ok(appended) if appended.duplicate => {
                    // A retry of a command already in the log: report the original commit, and
                    // let the next command read the stream afresh.
                    self.forget(stream);
                    Box::pin(self.release_all(stream, &released, meta)).await;
                    if let Some(error) = refusal {
                        return Err(CommandError::Domain(error));
                    }
                    return Ok(Outcome {
                        stream: stream.clone(),
                        version: appended.version,
                        position: appended.position,
                        appended: true,
                        // The original may have been decided at another time.
                        recorded_at: None,
                    });
                }
                Ok(appended) => {
                    for event in &events {
                        loaded.state.apply(event);
                    }
                    loaded.head = Some(Head {
                        version: appended.version,
                        position: appended.position,
                        hash: appended.hash,
                    });
                    loaded.recent = remember_command(
                        &loaded.recent,
                        &commit_meta.command_id,
                        appended.version,
                        appended.position,
                        now,
                    );
                    self.remember(stream, &loaded);
                    Box::pin(self.release_all(stream, &released, meta)).await;
                    if let Some(error) = refusal {
                        return Err(CommandError::Domain(error));
                    }
                    return Ok(Outcome {
                        stream: stream.clone(),
                        version: appended.version,
                        position: appended.position,
                        appended: true,
                        recorded_at: Some(now),
                    });
                }
                Err(LogError::Conflict { .. }) => {
                    tracing::debug!("stream moved on; deciding again");
                    tokio::time::sleep(backoff(attempt + 1)).await;
                    loaded = self.catch_up(stream, loaded).await?;
                    fresh = true;
                }
                Err(error) => return Err(CommandError::Log(error)),
            }
        }
        Err(CommandError::Conflict(stream.clone()))
    }

    /// The current state of the aggregate of `stream` and its head (`None`: no commits yet).
    pub async fn load<A: Aggregate>(
        &self,
        stream: &StreamId,
    ) -> Result<(A, Option<Head>), LogError> {
        let loaded = self.cached::<A>(stream).unwrap_or_else(Loaded::new);
        let loaded = self.catch_up(stream, loaded).await?;
        Ok((loaded.state, loaded.head))
    }

    /// Folds the commits after `loaded.head` into it, checking that they continue the hash chain.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
    ) -> Result<Loaded<A>, LogError> {
        let commits = self
            .log
            .read_stream(stream, loaded.head.map_or(0, |h| h.position))
            .await?;
        if commits.is_empty() {
            return Ok(loaded);
        }
        for recorded in &commits {
            check_link(loaded.head.as_ref(), recorded)?;
            for event in recorded.commit.events.iter().filter_map(A::Event::within) {
                loaded.state.apply(event);
            }
            loaded.head = Some(recorded.head());
            loaded.recent = remember_command(
                &loaded.recent,
                &recorded.commit.command_id,
                recorded.commit.version,
                recorded.position,
                recorded.commit.recorded_at,
            );
        }
        self.remember(stream, &loaded);
        Ok(loaded)
    }

    /// The state of `stream` as this node last saw it, read from the log only when it has not
    /// seen it: for work that ends in a command, whose append is checked against the log anyway
    /// (a stale state there is decided again).
    pub async fn load_seen<A: Aggregate>(
        &self,
        stream: &StreamId,
    ) -> Result<(A, Option<Head>), LogError> {
        match self.cached::<A>(stream) {
            Some(loaded) => Ok((loaded.state, loaded.head)),
            None => self.load::<A>(stream).await,
        }
    }

    /// The versions of the latest commits of `stream` this node remembers, with when each was
    /// recorded, oldest first; nothing is read from the log (empty once the stream is evicted).
    pub fn seen_commits(&self, stream: &StreamId) -> Vec<(u64, Timestamp)> {
        let Ok(cache) = self.cache.lock() else {
            return Vec::new();
        };
        cache.peek(stream).map_or_else(Vec::new, |entry| {
            entry
                .recent
                .iter()
                .map(|(_, version, _, at)| (*version, *at))
                .collect()
        })
    }

    fn cached<A: Aggregate>(&self, stream: &StreamId) -> Option<Loaded<A>> {
        let mut cache = self.cache.lock().ok()?;
        let entry = cache.get(stream)?;
        let state = entry.state.downcast_ref::<A>()?.clone();
        Some(Loaded {
            state,
            head: Some(entry.head),
            recent: entry.recent.clone(),
        })
    }

    fn remember<A: Aggregate>(&self, stream: &StreamId, loaded: &Loaded<A>) {
        let Some(head) = loaded.head else {
            return;
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(
                stream.clone(),
                Cached {
                    head,
                    state: Arc::new(loaded.state.clone()),
                    recent: loaded.recent.clone(),
                },
            );
        }
    }

    /// The state of the stream an outcome's commit left, while it is the stream's latest state in
    /// memory (no log read: `None` once another commit followed or it was evicted).
    pub fn state_after<A: Aggregate>(&self, outcome: &Outcome) -> Option<A> {
        let loaded = self.cached::<A>(&outcome.stream)?;
        (loaded.head?.position == outcome.position).then_some(loaded.state)
    }

    fn forget(&self, stream: &StreamId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.pop(stream);
        }
    }
}

/// A commit must follow its predecessor: the next version, chained to its hash.
fn check_link(previous: Option<&Head>, recorded: &Recorded) -> Result<(), LogError> {
    let (version, hash) = previous.map_or((1, Default::default()), |h| (h.version + 1, h.hash));
    if recorded.commit.version == version && recorded.commit.prev_hash == hash {
        Ok(())
    } else {
        Err(LogError::Corrupt {
            position: recorded.position,
            source: CodecError::BrokenChain {
                stream: recorded.commit.stream.to_string(),
                version: recorded.commit.version,
            },
        })
    }
}
