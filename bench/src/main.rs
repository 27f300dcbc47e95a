//! Vigil's benchmarks, against the real services (never timed tests). Each prints what it measured
//! and the baseline it is compared with, measured in the same run:
//!
//! - `jetstream-append`: `EventLog::append` of 1-event commits by concurrent writers on distinct
//!   streams, against raw async-nats publishes with the same headers and payload size.
//! - `sqlite-append`: the embedded log's appends with `synchronous=FULL`.
//! - `postgres-rebuild`: rebuilding the users read model from a JetStream log of N commits, against
//!   a raw `INSERT ... SELECT FROM UNNEST` of the same rows.
//! - `authenticate`, `http-me`, `logins`: request authentication with a warm access cache, `GET
//!   /users/v1/me` over HTTP, and password logins alongside other requests (see [`auth`]).
//! - `documents-create`, `documents-at-scale`: creating documents over HTTP, and a million
//!   documents listed with and without a schema index and rebuilt (see [`documents`]).
//! - `startup`: a node starting and restarting on a log of a million commits (see [`startup`]).
//! - `tasks`: trivial rhai and Node.js functions run end to end, `execute`, and event → task
//!   (see [`tasks`]).
//!
//! Run in release: `cargo run --release -p vigil-bench -- <benchmark> [options]`.

mod auth;
mod documents;
mod startup;
mod tasks;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sqlx::{AssertSqlSafe, Row as _};
use vigil_commands::ids::{self, IdGenerator};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::commit::{CommandMeta, Commit, Head};
use vigil_domain::event::{RoleEvent, UserEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::EventLog;
use vigil_domain::users::role::RoleCreated;
use vigil_domain::users::user::{PasswordHash, UserRegistered};
use vigil_domain::value::Personal;
use vigil_projections::runner::{self, Projection};
use vigil_projections::store::ReadStore;
use vigil_projections::table::{ColumnType, Table};
use vigil_tests::{TestDatabase, TestEnv, TestStream};

// The same allocator as the `vigil` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// JetStream appends by concurrent writers vs raw publishes.
    JetstreamAppend {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long, default_value_t = 300)]
        commits_per_writer: usize,
    },
    /// Embedded SQLite log appends (synchronous=FULL).
    SqliteAppend {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long, default_value_t = 300)]
        commits_per_writer: usize,
    },
    /// Rebuilding the users read model in Postgres from a JetStream log vs a raw UNNEST insert.
    PostgresRebuild {
        #[arg(long, default_value_t = 1_000_000)]
        commits: usize,
        #[arg(long, value_enum, default_value = "users")]
        read_model: ReadModel,
    },
    /// Authenticating a bearer token with a warm access cache.
    Authenticate {
        #[arg(long, default_value_t = 100_000)]
        sessions: usize,
        #[arg(long, default_value_t = 200_000)]
        requests: usize,
    },
    /// `GET /users/v1/me` over loopback HTTP.
    HttpMe {
        #[arg(long, value_enum, default_value = "embedded")]
        deployment: DeploymentArg,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Another authenticated GET path to load instead (for comparison).
        #[arg(long, default_value = "/users/v1/me")]
        path: String,
    },
    /// Password logins by concurrent clients while other requests are served.
    Logins {
        #[arg(long, value_enum, default_value = "embedded")]
        deployment: DeploymentArg,
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// `POST /data/v1/{schema}/documents` over loopback HTTP.
    DocumentsCreate {
        #[arg(long, value_enum, default_value = "production")]
        deployment: DeploymentArg,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// A schema's documents at scale: live projection, unindexed and indexed lists, rebuild.
    DocumentsAtScale {
        #[arg(long, value_enum, default_value = "production")]
        deployment: DeploymentArg,
        #[arg(long, default_value_t = 1_000_000)]
        documents: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Trivial functions run by tasks, by execute and by a dispatcher, end to end over HTTP.
    Tasks {
        #[arg(long, value_enum, default_value = "embedded")]
        deployment: DeploymentArg,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// A node (the `vigil` binary) starting, then restarting, on a JetStream log of N commits.
    Startup {
        #[arg(long, default_value_t = 1_000_000)]
        commits: usize,
        /// The `vigil` binary to start (default: the one built beside this benchmark).
        #[arg(long)]
        binary: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DeploymentArg {
    Embedded,
    Production,
}

impl From<DeploymentArg> for vigil_tests::Deployment {
    fn from(arg: DeploymentArg) -> Self {
        match arg {
            DeploymentArg::Embedded => Self::Embedded,
            DeploymentArg::Production => Self::Production,
        }
    }
}

fn meta() -> CommandMeta {
    CommandMeta {
        command_id: ids::command_id(),
        correlation_id: ids::command_id(),
        causation_id: None,
        reason: None,
        actor: Actor::system(Via::Cli),
    }
}

/// A realistic one-event commit: a user registration.
fn registration(stream: &StreamId, head: Option<&Head>, n: usize) -> Commit {
    let event = UserEvent::Registered(UserRegistered {
        email: Personal(format!("user{n}@example.com")),
        first_name: Personal(format!("First{n}")),
        last_name: Personal(format!("Last{n}")),
        phone_number: None,
        language: "EN".into(),
        time_zone: "Europe/Brussels".into(),
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".into()),
        activated: true,
    });
    Commit::next(
        stream.clone(),
        head,
        &meta(),
        ids::now(),
        vec![event.into()],
    )
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// `writers` tasks each appending `per_writer` commits, one after the other, to a stream of their own.
async fn append_concurrently(
    log: Arc<dyn EventLog>,
    writers: usize,
    per_writer: usize,
) -> anyhow::Result<Duration> {
    let ids = Arc::new(IdGenerator::new());
    let started = Instant::now();
    let mut tasks = FuturesUnordered::new();
    for writer in 0..writers {
        let (log, ids) = (log.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::of("user", ids.next());
            let mut head: Option<Head> = None;
            for n in 0..per_writer {
                let commit = registration(&stream, head.as_ref(), writer * per_writer + n);
                let appended = log.append(&commit, head.map_or(0, |h| h.position)).await?;
                head = Some(Head {
                    version: appended.version,
                    position: appended.position,
                    hash: appended.hash,
                });
            }
            anyhow::Ok(())
        }));
    }
    while let Some(done) = tasks.next().await {
        done??;
    }
    Ok(started.elapsed())
}

async fn jetstream_append(writers: usize, per_writer: usize) -> anyhow::Result<()> {
    let total = writers * per_writer;
    let env = TestEnv::new(vigil_tests::Deployment::Production).await?;
    let log = vigil_tests::log_of(&env).await?;
    let sample = registration(&StreamId::of("user", Id::from_bytes([7; 12])), None, 0);
    let payload_size = sample.encode()?.0.len();

    // Raw async-nats: the same headers and payload size, on a stream of its own.
    let raw_stream = TestStream::new();
    let client = async_nats::connect(vigil_tests::nats_url()).await?;
    let context = jetstream::new(client);
    context
        .create_stream(jetstream::stream::Config {
            name: raw_stream.prefix.clone(),
            subjects: vec![format!("{}.>", raw_stream.prefix)],
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![7u8; payload_size]);
    let started = Instant::now();
    let mut tasks = FuturesUnordered::new();
    for writer in 0..writers {
        let (context, payload, prefix) =
            (context.clone(), payload.clone(), raw_stream.prefix.clone());
        tasks.push(tokio::spawn(async move {
            let subject = format!("{prefix}.w{writer}");
            let mut last = 0;
            for n in 0..per_writer {
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(format!("{writer}-{n}"))
                    .expected_last_subject_sequence(last);
                last = context
                    .send_publish(subject.clone(), message)
                    .await?
                    .await?
                    .sequence;
            }
            anyhow::Ok(())
        }));
    }
    while let Some(done) = tasks.next().await {
        done??;
    }
    let raw = started.elapsed();

    let vigil = append_concurrently(log, writers, per_writer).await?;
    let (raw_rate, vigil_rate) = (rate(total, raw), rate(total, vigil));
    println!(
        "jetstream-append: {writers} writers x {per_writer} one-event commits of {payload_size} bytes"
    );
    println!("  raw async-nats publish+ack : {raw_rate:>10.0} msgs/s");
    println!("  EventLog::append (JetStream): {vigil_rate:>10.0} commits/s");
    println!(
        "  ratio                       : {:>10.1} %",
        100.0 * vigil_rate / raw_rate
    );
    Ok(())
}

async fn sqlite_append(writers: usize, per_writer: usize) -> anyhow::Result<()> {
    let env = TestEnv::new(vigil_tests::Deployment::Embedded).await?;
    let log = vigil_tests::log_of(&env).await?;
    let single = append_concurrently(log.clone(), 1, per_writer).await?;
    let concurrent = append_concurrently(log, writers, per_writer).await?;
    println!("sqlite-append (WAL, synchronous=FULL, group commit)");
    println!(
        "  1 writer            : {:>10.0} commits/s",
        rate(per_writer, single)
    );
    println!(
        "  {writers} concurrent writers: {:>10.0} commits/s",
        rate(writers * per_writer, concurrent)
    );
    Ok(())
}

/// A read model to rebuild, and the commits that fill it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ReadModel {
    /// `users_v1` (14 columns, two unique indexes) from user registrations.
    Users,
    /// `roles_v1` (6 columns, a primary key) from role creations.
    Roles,
}

impl ReadModel {
    fn projection(self) -> Arc<dyn Projection> {
        match self {
            Self::Users => Arc::new(vigil_projections::users::user::Users),
            Self::Roles => Arc::new(vigil_projections::users::role::Roles),
        }
    }

    fn table(self) -> &'static Table {
        match self {
            Self::Users => &vigil_projections::users::user::USERS,
            Self::Roles => &vigil_projections::users::role::ROLES,
        }
    }

    /// The `n`th commit, on a stream of its own.
    fn commit(self, id: Id, n: usize) -> Commit {
        match self {
            Self::Users => registration(&StreamId::of("user", id), None, n),
            Self::Roles => {
                let event = RoleEvent::Created(RoleCreated {
                    name: format!("role {n}"),
                    description: "a role of the benchmark".into(),
                });
                Commit::next(
                    StreamId::of("role", id),
                    None,
                    &meta(),
                    ids::now(),
                    vec![event.into()],
                )
            }
        }
    }
}

/// Appends `commits` to the JetStream log of `prefix` as raw publishes, 1,024 in flight: the
/// fastest way to fill a log with what the API would write.
async fn publish(prefix: &str, commits: impl Iterator<Item = Commit>) -> anyhow::Result<()> {
    let client = async_nats::connect(vigil_tests::nats_url()).await?;
    let context = jetstream::new(client);
    let mut pending = FuturesUnordered::new();
    for commit in commits {
        let subject = format!("{prefix}.ev.{}", commit.stream.subject_suffix());
        let (bytes, _) = commit.encode()?;
        pending.push(context.publish(subject, bytes.into()).await?.into_future());
        if pending.len() >= 1024 {
            while let Some(ack) = pending.next().await {
                ack?;
            }
        }
    }
    while let Some(ack) = pending.next().await {
        ack?;
    }
    Ok(())
}

async fn postgres_rebuild(commits: usize, model: ReadModel) -> anyhow::Result<()> {
    let stream = TestStream::new();
    let database = TestDatabase::create().await?;
    let log: Arc<dyn EventLog> = Arc::new(
        vigil_commands::jetstream::JetStreamLog::connect(&vigil_tests::nats_url(), &stream.prefix)
            .await?,
    );

    // Fill the log: pipelined raw publishes of encoded commits (each on a stream of its own).
    let ids = IdGenerator::new();
    let filling = Instant::now();
    publish(
        &stream.prefix,
        (0..commits).map(|n| model.commit(ids.next(), n)),
    )
    .await?;
    let table = model.table();
    println!(
        "postgres-rebuild of {}: filled the log with {commits} commits in {:.1?}",
        table.name,
        filling.elapsed()
    );

    // The log side alone: replaying and decoding every commit.
    let started = Instant::now();
    let mut replay = log.subscribe(0).take(commits);
    while let Some(commit) = replay.next().await {
        commit?;
    }
    let replayed = started.elapsed();
    println!(
        "  log replay and decode        : {:>10.0} commits/s ({replayed:.1?})",
        rate(commits, replayed)
    );

    let store = ReadStore::postgres(&database.url, 8).await?;
    let started = Instant::now();
    let head = runner::rebuild(&store, log, vec![model.projection()]).await?;
    let rebuild = started.elapsed();
    anyhow::ensure!(
        head == commits as u64,
        "rebuilt to {head}, expected {commits}"
    );

    let ReadStore::Postgres(pool) = &store else {
        anyhow::bail!("not Postgres");
    };
    let (rows, unnest) = raw_unnest_insert(pool, table).await?;
    let copy = raw_copy(pool, table).await?;
    let vigil_rate = rate(commits, rebuild);
    let best = rate(rows, unnest.min(copy));
    println!("  projection rebuild           : {vigil_rate:>10.0} commits/s ({rebuild:.1?})");
    println!(
        "  raw UNNEST insert, same rows : {:>10.0} rows/s ({unnest:.1?})",
        rate(rows, unnest)
    );
    println!(
        "  raw COPY, same rows          : {:>10.0} rows/s ({copy:.1?})",
        rate(rows, copy)
    );
    println!(
        "  ratio to the faster raw      : {:>10.1} %",
        100.0 * vigil_rate / best
    );
    store.close().await;
    Ok(())
}

/// The baseline: the rows the rebuild wrote, inserted again with a plain `INSERT ... SELECT FROM
/// UNNEST(...)` of typed arrays, in batches of 4096, into a copy of the table with the same indexes.
async fn raw_unnest_insert(
    pool: &sqlx::PgPool,
    table: &Table,
) -> anyhow::Result<(usize, Duration)> {
    let raw = format!("{}_raw", table.name);
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {raw} (LIKE {} INCLUDING ALL)",
        table.name
    )))
    .execute(pool)
    .await?;
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM {}",
        names.join(", "),
        table.name
    )))
    .fetch_all(pool)
    .await?;
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            ColumnType::Text | ColumnType::Json => format!("${}::text[]", i + 1),
            ColumnType::BigInt => format!("${}::int8[]", i + 1),
            ColumnType::Bool => format!("${}::bool[]", i + 1),
        })
        .collect();
    let selected: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| match kind {
            ColumnType::Json => format!("u.{name}::jsonb"),
            _ => format!("u.{name}"),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {raw} ({cols}) SELECT {selected} FROM UNNEST({arrays}) AS u({cols})",
        cols = names.join(", "),
        selected = selected.join(", "),
        arrays = arrays.join(", "),
    );
    let started = Instant::now();
    for chunk in rows.chunks(4096) {
        let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
        for (i, (_, kind)) in table.columns.iter().enumerate() {
            query = match kind {
                ColumnType::Text => query.bind(column::<Option<String>>(chunk, i)?),
                ColumnType::Json => query.bind(
                    column::<Option<serde_json::Value>>(chunk, i)?
                        .into_iter()
                        .map(|v| v.map(|v| v.to_string()))
                        .collect::<Vec<_>>(),
                ),
                ColumnType::BigInt => query.bind(column::<Option<i64>>(chunk, i)?),
                ColumnType::Bool => query.bind(column::<Option<bool>>(chunk, i)?),
            };
        }
        let mut tx = pool.begin().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await.context("raw insert")?;
    }
    Ok((rows.len(), started.elapsed()))
}

/// The other baseline: the same rows as COPY text, 4096 rows a transaction, into another copy of
/// the table with the same indexes.
async fn raw_copy(pool: &sqlx::PgPool, table: &Table) -> anyhow::Result<Duration> {
    let raw = format!("{}_copy", table.name);
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {raw} (LIKE {} INCLUDING ALL)",
        table.name
    )))
    .execute(pool)
    .await?;
    let mut export = pool.acquire().await?;
    let mut lines = Vec::new();
    let mut out = export
        .copy_out_raw(&format!("COPY {} TO STDOUT", table.name))
        .await?;
    while let Some(chunk) = out.next().await {
        lines.extend_from_slice(&chunk?);
    }
    drop(out);
    let rows: Vec<&[u8]> = lines.split_inclusive(|b| *b == b'\n').collect();
    let started = Instant::now();
    for chunk in rows.chunks(4096) {
        let mut tx = pool.begin().await?;
        let mut copy = tx.copy_in_raw(&format!("COPY {raw} FROM STDIN")).await?;
        copy.send(chunk.concat()).await?;
        copy.finish().await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

fn column<T>(rows: &[sqlx::postgres::PgRow], index: usize) -> anyhow::Result<Vec<T>>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    Ok(rows
        .iter()
        .map(|row| row.try_get::<T, _>(index))
        .collect::<Result<_, _>>()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().benchmark {
        Benchmark::JetstreamAppend {
            writers,
            commits_per_writer,
        } => jetstream_append(writers, commits_per_writer).await,
        Benchmark::SqliteAppend {
            writers,
            commits_per_writer,
        } => sqlite_append(writers, commits_per_writer).await,
        Benchmark::PostgresRebuild {
            commits,
            read_model,
        } => postgres_rebuild(commits, read_model).await,
        Benchmark::Authenticate { sessions, requests } => {
            auth::authenticate(sessions, requests).await
        }
        Benchmark::HttpMe {
            deployment,
            connections,
            seconds,
            path,
        } => auth::http_me(deployment.into(), connections, seconds, &path).await,
        Benchmark::Logins {
            deployment,
            concurrent,
            seconds,
        } => auth::logins(deployment.into(), concurrent, seconds).await,
        Benchmark::DocumentsCreate {
            deployment,
            connections,
            seconds,
        } => documents::create(deployment.into(), connections, seconds).await,
        Benchmark::Startup { commits, binary } => startup::startup(commits, binary).await,
        Benchmark::Tasks {
            deployment,
            connections,
            seconds,
        } => tasks::tasks(deployment.into(), connections, seconds).await,
        Benchmark::DocumentsAtScale {
            deployment,
            documents,
            connections,
            seconds,
        } => documents::at_scale(deployment.into(), documents, connections, seconds).await,
    }
}
