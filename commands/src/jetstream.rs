//! The production log: one JetStream stream over `<prefix>.ev.>` (file storage, no deletes, no
//! purges), one subject per aggregate instance, one message per commit.
//!
//! - Position = the stream sequence, assigned by the stream leader in storage order, so a reader
//!   that checkpoints on it can never skip a commit that became visible late.
//! - Optimistic concurrency = `Nats-Expected-Last-Subject-Sequence` (0: the subject is new).
//! - Idempotency = `Nats-Msg-Id` set to the commit id; the server reports a duplicate inside its
//!   dedup window with the original sequence, which the log turns back into the original result.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, RawMessageErrorKind, StorageType};
use async_nats::jetstream::{self, Context};
use futures::{StreamExt, TryStreamExt};
use vigil_domain::commit::{Commit, MAX_COMMIT_BYTES, Recorded};
use vigil_domain::id::StreamId;
use vigil_domain::log::{Appended, BoxFuture, BoxStream, Delivery, EventLog, Filter, LogError};

/// How often an append is sent again when its acknowledgement is lost; the message id makes a
/// resend harmless.
const PUBLISH_ATTEMPTS: usize = 3;

/// The JetStream log. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamLog {
    inner: Arc<Inner>,
}

struct Inner {
    context: Context,
    stream: jetstream::stream::Stream,
    prefix: String,
}

fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}

/// Whether `prefix` can name both the JetStream stream and the first subject token.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A follower is told how far it has looked at least every so many commits it does not admit.
const PASSED_EVERY: u64 = 1024;

/// How often opening the stream is tried before NATS is called unavailable.
const OPEN_ATTEMPTS: u32 = 5;

impl JetStreamLog {
    /// The JetStream context the log uses, for the deployment's other JetStream resources
    /// (the blob store's bucket).
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// Connects to NATS at `url` and opens (creating if needed) the stream named `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LogError> {
        if !valid_prefix(prefix) {
            return Err(unavailable(format!(
                "prefix `{prefix}` must be 1-64 letters, digits, `_` or `-`"
            )));
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| unavailable(format!("cannot reach NATS at {url}: {e}")))?;
        let context = jetstream::new(client);
        let config = Config {
            name: prefix.to_owned(),
            subjects: vec![format!("{prefix}.ev.>")],
            storage: StorageType::File,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        // The server may fail to make a stream's storage for a moment (it removes its streams
        // directory when the last stream goes, racing a create): such a failure is tried again.
        let mut attempt = 0;
        let stream = loop {
            attempt += 1;
            match context.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                Err(error) if attempt < OPEN_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "cannot open the JetStream stream yet; trying again");
                    tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                }
                Err(error) => {
                    return Err(unavailable(format!(
                        "cannot open JetStream stream `{prefix}` at {url}: {error}"
                    )));
                }
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                context,
                stream,
                prefix: prefix.to_owned(),
            }),
        })
    }

    fn subject(&self, stream: &StreamId) -> String {
        format!("{}.ev.{}", self.inner.prefix, stream.subject_suffix())
    }

    async fn publish(&self, commit: &Commit, expected_position: u64) -> Result<Appended, LogError> {
        let (bytes, hash) = commit.encode_for_log()?;
        let payload = bytes::Bytes::from(bytes);
        let subject = self.subject(&commit.stream);
        let commit_id = commit.commit_id();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&commit_id)
                .expected_last_subject_sequence(expected_position);
            let sent = self
                .inner
                .context
                .send_publish(subject.clone(), message)
                .await;
            let acked = match sent {
                Ok(pending) => pending.await,
                Err(error) => Err(error),
            };
            match acked {
                Ok(ack) if ack.duplicate => return self.original(ack.sequence).await,
                Ok(ack) => {
                    return Ok(Appended {
                        position: ack.sequence,
                        version: commit.version,
                        hash,
                        duplicate: false,
                    });
                }
                Err(error) => match error.kind() {
                    PublishErrorKind::WrongLastSequence => {
                        return Err(LogError::Conflict {
                            stream: commit.stream.clone(),
                        });
                    }
                    PublishErrorKind::MaxPayloadExceeded => {
                        return Err(LogError::TooLarge {
                            size: payload.len(),
                            max: MAX_COMMIT_BYTES,
                        });
                    }
                    PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
                        if attempt < PUBLISH_ATTEMPTS =>
                    {
                        tracing::warn!(%error, attempt, "append not acknowledged, sending again");
                    }
                    _ => return Err(unavailable(error)),
                },
            }
        }
    }

    /// The result of the commit stored at `position`, for a duplicate append.
    async fn original(&self, position: u64) -> Result<Appended, LogError> {
        let message = self
            .inner
            .stream
            .get_raw_message(position)
            .await
            .map_err(unavailable)?;
        let recorded = Recorded::decode(position, &message.payload)?;
        Ok(Appended {
            position,
            version: recorded.commit.version,
            hash: recorded.hash,
            duplicate: true,
        })
    }

    /// An ephemeral consumer over the whole log starting after `after`.
    fn consumer_config(after: u64) -> DeliverPolicy {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    }
}

/// The stream kind of a commit's subject, `<prefix>.ev.<kind>.<key>`.
fn subject_kind(subject: &str) -> Option<&str> {
    subject.split('.').nth(2)
}

fn message_info(message: &jetstream::Message) -> Result<jetstream::message::Info<'_>, LogError> {
    message
        .info()
        .map_err(|e| unavailable(format!("message without JetStream metadata: {e}")))
}

impl EventLog for JetStreamLog {
    fn append<'a>(
        &'a self,
        commit: &'a Commit,
        expected_position: u64,
    ) -> BoxFuture<'a, Result<Appended, LogError>> {
        Box::pin(self.publish(commit, expected_position))
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, LogError>> {
        Box::pin(async move {
            // Aggregate streams are short and usually cached, so one direct lookup per commit
            // is cheaper than setting up a consumer.
            let subject = self.subject(stream);
            let mut next = after + 1;
            let mut commits = Vec::new();
            loop {
                let found = self
                    .inner
                    .stream
                    .raw_message_builder()
                    .sequence(next)
                    .next_by_subject(subject.clone())
                    .send()
                    .await;
                match found {
                    Ok(message) => {
                        commits.push(Recorded::decode(message.sequence, &message.payload)?);
                        next = message.sequence + 1;
                    }
                    Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => {
                        return Ok(commits);
                    }
                    Err(error) => return Err(unavailable(error)),
                }
            }
        })
    }

    fn read_all(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Recorded>, LogError>> {
        Box::pin(async move {
            let config = pull::Config {
                deliver_policy: Self::consumer_config(after),
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            };
            let consumer = self
                .inner
                .stream
                .create_consumer(config)
                .await
                .map_err(unavailable)?;
            let messages = consumer
                .fetch()
                .max_messages(limit)
                .messages()
                .await
                .map_err(unavailable)?;
            let messages: Vec<_> = messages.try_collect().await.map_err(unavailable)?;
            let name = consumer.cached_info().name.clone();
            if let Err(error) = self.inner.stream.delete_consumer(&name).await {
                tracing::debug!(%error, "ephemeral consumer left to expire");
            }
            messages
                .iter()
                .map(|message| {
                    Recorded::decode(message_info(message)?.stream_sequence, &message.payload)
                })
                .collect()
        })
    }

    /// The server is not asked to filter: NATS 2.9 rescans the stream for a consumer filtered by
    /// a subject it seldom finds (measured with a log of a million commits: every consumer of the
    /// stream read 2.4 times slower), and a filtered consumer would not say how far it looked.
    /// The commits are filtered here by subject, before decoding.
    fn follow(&self, after: u64, filter: Filter) -> BoxStream<'static, Result<Delivery, LogError>> {
        let stream = self.inner.stream.clone();
        let messages = async move {
            let config = pull::OrderedConfig {
                deliver_policy: Self::consumer_config(after),
                ..Default::default()
            };
            let consumer = stream.create_consumer(config).await.map_err(unavailable)?;
            consumer.messages().await.map_err(unavailable)
        };
        let delivery = move |message: jetstream::Message| -> Option<Result<Delivery, LogError>> {
            let (position, pending) = match message_info(&message) {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(error) => return Some(Err(error)),
            };
            let admitted = filter == Filter::All
                || subject_kind(&message.subject).is_some_and(|kind| filter.admits_kind(kind));
            if admitted {
                Some(Recorded::decode(position, &message.payload).map(Delivery::Commit))
            } else if pending == 0 || position % PASSED_EVERY == 0 {
                Some(Ok(Delivery::Passed(position)))
            } else {
                None
            }
        };
        Box::pin(
            futures::stream::once(messages)
                .map(move |opened| match opened {
                    Ok(messages) => messages
                        .filter_map(move |item| {
                            futures::future::ready(match item {
                                Ok(message) => delivery(message),
                                Err(error) => Some(Err(unavailable(error))),
                            })
                        })
                        .left_stream(),
                    Err(error) => futures::stream::once(async { Err(error) }).right_stream(),
                })
                .flatten(),
        )
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(async move {
            let info = self.inner.stream.get_info().await.map_err(unavailable)?;
            Ok(info.state.last_sequence)
        })
    }
}
