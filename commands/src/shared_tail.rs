//! One live subscription to the log per process, shared by every subscriber that has caught up.
//!
//! Each projection, the access cache and each reactor follows the whole log. Given one log
//! subscription each, every commit was sent by NATS and decoded by Vigil once per follower (about
//! sixteen times). [`SharedTail`] wraps a log: a subscriber first reads on its own subscription,
//! and once it has caught up with the shared tail it is fed the commits the tail decoded, from a
//! ring of the latest ones and a broadcast. A subscriber that falls behind the broadcast, or whose
//! tail failed, goes back to a subscription of its own from its last commit: so it sees every
//! commit once, in order, and an error of the log (a corrupt commit) on its own subscription.
//!
//! A follower of a few kinds of streams (a reactor) shares the tail too: it is handed the commits
//! of its kinds, and word of how far it has looked when there are none.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use vigil_domain::commit::{Commit, Recorded};
use vigil_domain::id::StreamId;
use vigil_domain::log::{Appended, BoxFuture, BoxStream, Delivery, EventLog, Filter, LogError};

/// The latest commits kept for subscribers that are about to catch up.
const RING: usize = 1024;
/// The commits a broadcast holds for a subscriber that is slow to take them.
const BROADCAST: usize = 4096;

/// A log whose subscriptions share one live subscription once caught up. Dropping it stops the
/// shared subscription.
pub struct SharedTail {
    inner: Arc<dyn EventLog>,
    tail: Arc<Mutex<Tail>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What the shared subscription has seen: every commit after `complete_after` is in `ring` (in
/// order), the last being at `last`; later ones go to `sender`.
struct Tail {
    running: bool,
    complete_after: u64,
    last: u64,
    ring: VecDeque<Arc<Recorded>>,
    ring_size: usize,
    broadcast: usize,
    sender: broadcast::Sender<Arc<Recorded>>,
}

impl SharedTail {
    pub fn new(inner: Arc<dyn EventLog>) -> Self {
        Self::with_sizes(inner, RING, BROADCAST)
    }

    /// With a ring of the latest `ring` commits and a broadcast of `broadcast` (small ones make
    /// subscribers fall back to their own subscriptions often, for tests).
    pub fn with_sizes(inner: Arc<dyn EventLog>, ring: usize, broadcast: usize) -> Self {
        Self {
            inner,
            tail: Arc::new(Mutex::new(Tail {
                running: false,
                complete_after: 0,
                last: 0,
                ring: VecDeque::with_capacity(ring),
                ring_size: ring.max(1),
                broadcast: broadcast.max(1),
                sender: broadcast::channel(broadcast.max(1)).0,
            })),
            task: Mutex::new(None),
        }
    }

    /// Starts the shared subscription on first use (from the log's head then).
    fn start(&self) {
        let Ok(mut task) = self.task.lock() else {
            return;
        };
        if task.is_none() {
            *task = Some(tokio::spawn(follow(self.inner.clone(), self.tail.clone())));
        }
    }
}

impl Drop for SharedTail {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Follows the log from its head into `tail`, forever; after an error (logged), starts a new
/// broadcast, so that the subscribers on it go back to subscriptions of their own.
async fn follow(inner: Arc<dyn EventLog>, tail: Arc<Mutex<Tail>>) {
    let mut pause = Duration::from_millis(100);
    loop {
        let head = match inner.head().await {
            Ok(head) => head,
            Err(error) => {
                tracing::warn!(%error, "the shared log subscription cannot start; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Ok(mut tail) = tail.lock() {
            tail.running = true;
            tail.complete_after = head;
            tail.last = head;
            tail.ring.clear();
        }
        let mut commits = inner.subscribe(head);
        while let Some(item) = commits.next().await {
            match item {
                Ok(recorded) => {
                    pause = Duration::from_millis(100);
                    let Ok(mut tail) = tail.lock() else {
                        return;
                    };
                    if recorded.position <= tail.last {
                        continue;
                    }
                    let recorded = Arc::new(recorded);
                    tail.last = recorded.position;
                    if tail.ring.len() >= tail.ring_size
                        && let Some(oldest) = tail.ring.pop_front()
                    {
                        tail.complete_after = oldest.position;
                    }
                    tail.ring.push_back(recorded.clone());
                    // No receiver is not an error: nobody has caught up yet.
                    let _ = tail.sender.send(recorded);
                }
                Err(error) => {
                    tracing::warn!(%error, "the shared log subscription failed; starting again");
                    break;
                }
            }
        }
        if let Ok(mut tail) = tail.lock() {
            tail.running = false;
            tail.ring.clear();
            tail.sender = broadcast::channel(tail.broadcast).0;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Where a subscriber reads from.
enum Source {
    Own(BoxStream<'static, Result<Delivery, LogError>>),
    Shared {
        replay: VecDeque<Arc<Recorded>>,
        receiver: broadcast::Receiver<Arc<Recorded>>,
    },
}

struct Subscriber {
    inner: Arc<dyn EventLog>,
    tail: Arc<Mutex<Tail>>,
    filter: Filter,
    /// The last position handed out or passed.
    after: u64,
    source: Source,
}

impl Subscriber {
    /// Joins the shared tail if it holds every commit after the last one handed out.
    fn join(&mut self) {
        let Ok(tail) = self.tail.lock() else {
            return;
        };
        if !tail.running || tail.complete_after > self.after {
            return;
        }
        let replay = tail
            .ring
            .iter()
            .filter(|r| r.position > self.after)
            .cloned()
            .collect();
        self.source = Source::Shared {
            replay,
            receiver: tail.sender.subscribe(),
        };
    }

    async fn next(&mut self) -> Option<Result<Delivery, LogError>> {
        loop {
            if matches!(self.source, Source::Own(_)) {
                self.join();
            }
            let (recorded, more) = match &mut self.source {
                Source::Own(deliveries) => match deliveries.next().await? {
                    Ok(Delivery::Commit(recorded)) if recorded.position > self.after => {
                        self.after = recorded.position;
                        return Some(Ok(Delivery::Commit(recorded)));
                    }
                    Ok(Delivery::Passed(position)) if position > self.after => {
                        self.after = position;
                        return Some(Ok(Delivery::Passed(position)));
                    }
                    Ok(_) => continue,
                    Err(error) => return Some(Err(error)),
                },
                Source::Shared { replay, receiver } => match replay.pop_front() {
                    Some(recorded) => (recorded, !replay.is_empty() || !receiver.is_empty()),
                    None => match receiver.recv().await {
                        Ok(recorded) => (recorded, !receiver.is_empty()),
                        Err(_) => {
                            // Fell behind, or the tail failed: on its own again.
                            self.source = Source::Own(self.inner.follow(self.after, self.filter));
                            continue;
                        }
                    },
                },
            };
            if recorded.position <= self.after {
                continue;
            }
            self.after = recorded.position;
            if self.filter.admits(&recorded.commit.stream) {
                return Some(Ok(Delivery::Commit(Arc::unwrap_or_clone(recorded))));
            }
            if !more {
                return Some(Ok(Delivery::Passed(self.after)));
            }
        }
    }
}

impl EventLog for SharedTail {
    fn append<'a>(
        &'a self,
        commit: &'a Commit,
        expected_position: u64,
    ) -> BoxFuture<'a, Result<Appended, LogError>> {
        self.inner.append(commit, expected_position)
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, LogError>> {
        self.inner.read_stream(stream, after)
    }

    fn read_all(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Recorded>, LogError>> {
        self.inner.read_all(after, limit)
    }

    fn follow(&self, after: u64, filter: Filter) -> BoxStream<'static, Result<Delivery, LogError>> {
        self.start();
        let mut subscriber = Subscriber {
            inner: self.inner.clone(),
            tail: self.tail.clone(),
            filter,
            after,
            source: Source::Own(self.inner.follow(after, filter)),
        };
        subscriber.join();
        Box::pin(futures::stream::unfold(
            subscriber,
            |mut subscriber| async move {
                let item = subscriber.next().await?;
                Some((item, subscriber))
            },
        ))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        self.inner.head()
    }
}
