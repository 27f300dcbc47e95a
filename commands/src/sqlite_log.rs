//! The embedded log: one SQLite table in WAL mode with `synchronous=FULL`, so an acknowledged
//! commit survives a power cut.
//!
//! One writer task owns the only write connection. Appends queue to it and are written in groups:
//! every append waiting when a transaction starts joins it, and all of them are acknowledged after
//! the one fsync of its commit (group commit). Checks and inserts happen inside that transaction,
//! so a stream's version and a commit id are checked against everything written before.

use std::collections::VecDeque;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::stream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use vigil_domain::commit::{Commit, Recorded};
use vigil_domain::id::{Digest, StreamId};
use vigil_domain::log::{Appended, BoxFuture, BoxStream, Delivery, EventLog, Filter, LogError};

/// How many queued appends one transaction takes at most.
const GROUP_LIMIT: usize = 512;
/// How many commits a subscriber reads per query.
const READ_BATCH: usize = 1024;
/// How often a caught-up subscriber looks for commits written by another process.
const POLL: Duration = Duration::from_secs(1);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/log-sqlite");

struct Request {
    stream: String,
    version: u64,
    commit_id: String,
    recorded_at: i64,
    bytes: Vec<u8>,
    hash: Digest,
    expected_position: u64,
    reply: oneshot::Sender<Result<Appended, LogError>>,
}

/// The embedded SQLite log. Cheap to clone.
#[derive(Clone)]
pub struct SqliteLog {
    inner: Arc<Inner>,
}

struct Inner {
    readers: SqlitePool,
    writer: mpsc::Sender<Request>,
    head: watch::Receiver<u64>,
}

fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}

fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
}

impl SqliteLog {
    /// Opens (creating if needed) the log at `path`.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        let options = connect_options(path);
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&mut writer).await.map_err(unavailable)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM commits")
            .fetch_one(&mut writer)
            .await
            .map_err(unavailable)?;
        let (head_tx, head_rx) = watch::channel(u64::try_from(head).unwrap_or(0));
        let (requests, queue) = mpsc::channel(4 * GROUP_LIMIT);
        tokio::spawn(write_loop(writer, queue, head_tx));
        Ok(Self {
            inner: Arc::new(Inner {
                readers,
                writer: requests,
                head: head_rx,
            }),
        })
    }

    /// Up to `limit` commits above `after` that `filter` admits, in order.
    async fn read_admitted(
        &self,
        after: u64,
        limit: usize,
        filter: Filter,
    ) -> Result<Vec<Recorded>, LogError> {
        let Filter::Kinds(kinds) = filter else {
            return self.read_all(after, limit).await;
        };
        let placeholders = (0..kinds.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT position, body FROM commits WHERE kind IN ({placeholders}) AND position > $1 \
             ORDER BY position LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(after))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        for kind in kinds {
            query = query.bind(*kind);
        }
        self.fetch(query).await
    }

    async fn fetch(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Vec<Recorded>, LogError> {
        let rows = query
            .fetch_all(&self.inner.readers)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get("position").map_err(unavailable)?;
                let body: Vec<u8> = row.try_get("body").map_err(unavailable)?;
                Recorded::decode(u64::try_from(position).unwrap_or(0), &body)
            })
            .collect()
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn write_loop(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<Request>,
    head: watch::Sender<u64>,
) {
    let mut group = Vec::with_capacity(GROUP_LIMIT);
    while queue.recv_many(&mut group, GROUP_LIMIT).await > 0 {
        match write_group(&mut conn, &group).await {
            Ok(results) => {
                // Publish the new head before acknowledging, so whoever hears back sees it.
                let written = results
                    .iter()
                    .flatten()
                    .map(|appended| appended.position)
                    .max();
                if let Some(position) = written {
                    head.send_if_modified(|last| {
                        let moved = position > *last;
                        *last = (*last).max(position);
                        moved
                    });
                }
                for (request, result) in group.drain(..).zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "embedded log write failed");
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(unavailable(&error)));
                }
            }
        }
    }
}

/// Writes one group in one transaction; the per-request results are only valid once it commits.
async fn write_group(
    conn: &mut SqliteConnection,
    group: &[Request],
) -> Result<Vec<Result<Appended, LogError>>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        // One statement on the happy path: insert if the stream is still where the caller saw it
        // and neither the commit id nor the stream version is taken.
        let inserted = sqlx::query(
            "INSERT INTO commits (stream, version, commit_id, recorded_at, body) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE COALESCE((SELECT MAX(position) FROM commits WHERE stream = $1), 0) = $6 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&request.stream)
        .bind(to_i64(request.version))
        .bind(&request.commit_id)
        .bind(request.recorded_at)
        .bind(&request.bytes)
        .bind(to_i64(request.expected_position))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            results.push(Ok(Appended {
                position: u64::try_from(inserted.last_insert_rowid()).unwrap_or(0),
                version: request.version,
                hash: request.hash,
                duplicate: false,
            }));
            continue;
        }
        let original =
            sqlx::query("SELECT position, version, body FROM commits WHERE commit_id = $1")
                .bind(&request.commit_id)
                .fetch_optional(&mut *tx)
                .await?;
        let result = match original {
            Some(row) => {
                let body: Vec<u8> = row.try_get("body")?;
                let hash = body
                    .len()
                    .checked_sub(32)
                    .and_then(|start| <[u8; 32]>::try_from(&body[start..]).ok())
                    .map(Digest::from_bytes)
                    .unwrap_or_default();
                Ok(Appended {
                    position: u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0),
                    version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0),
                    hash,
                    duplicate: true,
                })
            }
            None => {
                let stream = StreamId::from_str(&request.stream)
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                Err(LogError::Conflict { stream })
            }
        };
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

impl EventLog for SqliteLog {
    fn append<'a>(
        &'a self,
        commit: &'a Commit,
        expected_position: u64,
    ) -> BoxFuture<'a, Result<Appended, LogError>> {
        Box::pin(async move {
            let (bytes, hash) = commit.encode_for_log()?;
            let (reply, result) = oneshot::channel();
            let request = Request {
                stream: commit.stream.to_string(),
                version: commit.version,
                commit_id: commit.commit_id(),
                recorded_at: commit.recorded_at.millis(),
                bytes,
                hash,
                expected_position,
                reply,
            };
            self.inner
                .writer
                .send(request)
                .await
                .map_err(|_| unavailable("the embedded log writer has stopped"))?;
            result
                .await
                .map_err(|_| unavailable("the embedded log writer has stopped"))?
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, LogError>> {
        Box::pin(async move {
            let query = sqlx::query("SELECT position, body FROM commits WHERE stream = $1 AND position > $2 ORDER BY position")
                .bind(stream.to_string())
                .bind(to_i64(after));
            self.fetch(query).await
        })
    }

    fn read_all(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Recorded>, LogError>> {
        Box::pin(async move {
            let query = sqlx::query(
                "SELECT position, body FROM commits WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(to_i64(after))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
            self.fetch(query).await
        })
    }

    fn follow(&self, after: u64, filter: Filter) -> BoxStream<'static, Result<Delivery, LogError>> {
        let log = self.clone();
        let head = self.inner.head.clone();
        let state = (log, head, after, VecDeque::new(), false);
        Box::pin(stream::unfold(
            state,
            move |(log, mut head, mut after, mut buffer, failed)| async move {
                if failed {
                    return None;
                }
                loop {
                    if let Some(delivery) = buffer.pop_front() {
                        return Some((Ok(delivery), (log, head, after, buffer, false)));
                    }
                    // Every commit up to the head this process's writer reported is visible.
                    let reported = *head.borrow();
                    match log.read_admitted(after, READ_BATCH, filter).await {
                        Ok(batch) if !batch.is_empty() => {
                            after = batch.last().map_or(after, |last| last.position);
                            buffer.extend(batch.into_iter().map(Delivery::Commit));
                        }
                        Ok(_) if reported > after => {
                            // None after `after` is admitted up to `reported`.
                            after = reported;
                            buffer.push_back(Delivery::Passed(after));
                        }
                        Ok(_) => {
                            // Caught up: wait until the writer reports a commit beyond `after`,
                            // or a while, in case another process wrote.
                            let reported = head.wait_for(|&position| position > after);
                            if let Ok(Err(_)) = tokio::time::timeout(POLL, reported).await {
                                return None;
                            }
                        }
                        Err(error) => return Some((Err(error), (log, head, after, buffer, true))),
                    }
                }
            },
        ))
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(async move { Ok(*self.inner.head.borrow()) })
    }
}
