//! The `EventLog` contract. Implementations live in `commands` (JetStream and SQLite); projections,
//! the scheduler and the API depend only on this trait.

use std::future::Future;
use std::pin::Pin;

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

impl Filter {
    /// Whether a commit of `stream` is wanted.
    pub fn admits(&self, stream: &StreamId) -> bool {
        match self {
            Self::All => true,
            Self::Kinds(kinds) => kinds.contains(&stream.kind()),
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

    /// Every commit above `after` that `filter` admits, then each new one as it is appended; never
    /// ends by itself. The log applies the filter where it is stored, so a subscriber to a few
    /// kinds is not handed the whole log.
    fn subscribe(
        &self,
        after: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<Recorded, LogError>>;

    /// The position of the last commit (0 for an empty log).
    fn head(&self) -> BoxFuture<'_, Result<u64, LogError>>;
}
