//! The `EventLog` contract. Implementations live in `commands` (JetStream and SQLite); projections,
//! the scheduler and the API depend only on this trait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::commit::{CodecError, Commit, Recorded};
use crate::id::StreamId;

/// Which commits a subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every commit.
    All,
    /// The commits of the streams of these kinds (`user`, `document`, …: `Aggregate::KIND`).
    Kinds(&'static [&'static str]),
}

/// What [`EventLog::follow`] hands out.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every delivery is a commit: boxing it would add an allocation to each"
)]
pub enum Delivery {
    /// A commit the filter admits.
    Commit(Recorded),
    /// Every commit up to this position that the filter admits has been handed out.
    Passed(u64),
}

impl Filter {
    /// Whether a commit of `stream` is wanted.
    pub fn admits(&self, stream: &StreamId) -> bool {
        self.admits_kind(stream.kind())
    }

    /// Whether a commit of a stream of `kind` is wanted.
    pub fn admits_kind(&self, kind: &str) -> bool {
        match self {
            Self::All => true,
            Self::Kinds(kinds) => kinds.contains(&kind),
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub position: u64,
    pub version: u64,
    pub hash: crate::id::Digest,
    /// The commit id was already in the log: this is the original result, nothing was written.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The stream moved on since it was read (optimistic concurrency).
    #[error("stream {stream} has changed since it was read")]
    Conflict { stream: StreamId },
    #[error("a commit of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes that do not decode or do not match their hash: never skipped.
    #[error("commit at position {position} is corrupt: {source}")]
    Corrupt { position: u64, source: CodecError },
    #[error("commit could not be encoded: {0}")]
    Encode(CodecError),
}

/// The system of record: an append-only sequence of commits with one global order.
pub trait EventLog: Send + Sync + 'static {
    /// Appends `commit` if its stream's last commit is still at `expected_position` (0: the stream
    /// must not exist yet). A commit id already in the log returns the original result.
    fn append<'a>(
        &'a self,
        commit: &'a Commit,
        expected_position: u64,
    ) -> BoxFuture<'a, Result<Appended, LogError>>;

    /// The commits of one stream with a position above `after`, in order.
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, LogError>>;

    /// Up to `limit` commits with a position above `after`, in order.
    fn read_all(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Recorded>, LogError>>;

    /// Every commit above `after`, then each new one as it is appended; never ends by itself.
    fn subscribe(&self, after: u64) -> BoxStream<'static, Result<Recorded, LogError>> {
        Box::pin(Commits(self.follow(after, Filter::All)))
    }

    /// Like [`EventLog::subscribe`], for the commits `filter` admits only, with word from time to
    /// time of how far the log has been looked through ([`Delivery::Passed`]), so a follower of
    /// kinds that are seldom written can still keep a checkpoint close to the head. The commits it
    /// does not admit are not decoded.
    fn follow(&self, after: u64, filter: Filter) -> BoxStream<'static, Result<Delivery, LogError>>;

    /// The position of the last commit (0 for an empty log).
    fn head(&self) -> BoxFuture<'_, Result<u64, LogError>>;
}

/// The commits of a [`EventLog::follow`] stream, without its word of how far it looked.
struct Commits(BoxStream<'static, Result<Delivery, LogError>>);

impl Stream for Commits {
    type Item = Result<Recorded, LogError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.0.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(Delivery::Passed(_)))) => {}
                Poll::Ready(Some(Ok(Delivery::Commit(recorded)))) => {
                    return Poll::Ready(Some(Ok(recorded)));
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
