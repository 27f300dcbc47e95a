//! Data-service benchmarks: creating documents over HTTP (schema validation, the creation
//! transition, read-your-writes), and a schema's documents at scale in either deployment — live
//! projection, RQL lists with and without a schema index, and rebuilding the read model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Map, Value, json};
use vigil_commands::ids::{self, IdGenerator};
use vigil_domain::commit::Commit;
use vigil_domain::data::document::{DocumentCreated, DocumentEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::json::JsonOf;
use vigil_projections::runner::{self, Projection};
use vigil_projections::store::ReadStore;
use vigil_tests::{Deployment, TestDatabase, TestServer};

use crate::auth::{Request, load, report_load, serving};
use crate::{meta, publish, rate};

/// The issue's `measurement` schema: `patientId` (string), `systolic` and `diastolic` (numbers),
/// `takenAt` (string); anyone may create and read documents. Returns its id.
async fn schema(server: &TestServer, token: &str) -> anyhow::Result<Id> {
    let token = Some(token);
    let mut steps = vec![(
        "/data/v1/".to_owned(),
        json!({"name": "measurement", "description": "benchmark", "createMode": "allUsers", "readMode": "allUsers"}),
    )];
    for (name, kind) in [
        ("patientId", "string"),
        ("systolic", "number"),
        ("diastolic", "number"),
        ("takenAt", "string"),
    ] {
        steps.push((
            "/data/v1/measurement/properties".to_owned(),
            json!({"name": name, "configuration": {"type": kind}}),
        ));
    }
    let mut id = None;
    for (path, body) in steps {
        let (status, answer) = server.call(Method::POST, &path, token, Some(body)).await?;
        anyhow::ensure!(status.is_success(), "{path}: {answer}");
        id = id.or_else(|| answer["id"].as_str().and_then(|id| id.parse().ok()));
    }
    id.context("the schema has no id")
}

/// The body of every created document, as the issue gives it.
fn body() -> Value {
    json!({"patientId": "p123", "systolic": 120, "diastolic": 80, "takenAt": "2026-01-01T00:00:00Z"})
}

/// The data of the `n`th of `documents` loaded documents: each patient has 100.
fn data(n: usize, documents: usize) -> Map<String, Value> {
    Map::from_iter([
        (
            "patientId".to_owned(),
            json!(format!("p{}", n % (documents / 100).max(1))),
        ),
        ("systolic".to_owned(), json!(90 + n % 90)),
        ("diastolic".to_owned(), json!(60 + n % 40)),
        ("takenAt".to_owned(), json!("2026-01-01T00:00:00Z")),
    ])
}

/// `documents-create`: `POST /data/v1/bench/documents` by `connections` clients for `seconds`.
pub async fn create(
    deployment: Deployment,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let (_env, server) = serving(deployment).await?;
    let token = server.admin_token().await?;
    schema(&server, &token).await?;
    let url = server.url("/data/v1/measurement/documents");
    let duration = Duration::from_secs(seconds);
    let post: Request =
        Arc::new(move |client, _| client.post(&url).bearer_auth(&token).json(&body()));
    let samples = tokio::task::spawn_blocking(move || load(connections, duration, post)).await??;
    println!(
        "documents-create: POST /data/v1/measurement/documents (4 properties checked, answered once the read models show it), {deployment:?} deployment, {connections} connections, {seconds}s, load generator in the same process on its own 2-thread runtime"
    );
    report_load(samples, duration, "documents/s", "throughput", "latency");
    Ok(())
}

/// The `n`th of `documents` documents of `schema_id`, created by `creator`, as the commit the
/// API would make.
fn document(schema_id: Id, creator: Id, id: Id, n: usize, documents: usize) -> Commit {
    let event = DocumentEvent::Created(DocumentCreated {
        schema_id,
        creator_id: Some(creator),
        status: "new".into(),
        data: JsonOf(data(n, documents)),
        user_ids: vec![creator],
        group_ids: Vec::new(),
    });
    Commit::next(
        StreamId::of("document", id),
        None,
        &meta(),
        ids::now(),
        vec![event.into()],
    )
}

/// `GET …?eq(data.patientId,p<n>)&limit(20)` by `connections` clients for `seconds`, each page
/// checked to hold 20 documents; prints the rate and latencies as `what`.
fn query(
    server: &TestServer,
    token: &str,
    documents: usize,
    connections: usize,
    seconds: u64,
    what: &str,
) -> anyhow::Result<()> {
    let url = server.url("/data/v1/measurement/documents");
    let patients = (documents / 100).max(1);
    let token = token.to_owned();
    let get: Request = Arc::new(move |client, n| {
        client
            .get(format!(
                "{url}?eq(data.patientId,p{})&limit(20)",
                (n * 37) % patients
            ))
            .bearer_auth(&token)
    });
    let duration = Duration::from_secs(seconds);
    let samples = load(connections, duration, get)?;
    report_load(samples, duration, "req/s", what, what);
    Ok(())
}

/// `documents-at-scale`: `documents` documents of the `measurement` schema, 100 per patient, in
/// `deployment`. Fills the log with the commits the API would make, lets the server project
/// them, lists `eq(data.patientId,p<n>)&limit(20)` (with `page.total`) with no schema index, adds
/// the index on `data.patientId` through the API and lists again once it is built, then rebuilds
/// the documents read model from the log into a fresh read store.
pub async fn at_scale(
    deployment: Deployment,
    documents: usize,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let env = crate::auth::served(deployment).await?;
    let server = TestServer::start(&env).await?;
    let token = server.admin_token().await?;
    let schema_id = schema(&server, &token).await?;
    let creator = server.admin.user_id;
    let log = server.state.bus.log().clone();

    // Fill the log with the commits the API would make: pipelined raw publishes to JetStream, or
    // concurrent appends to the embedded log.
    let ids = IdGenerator::new();
    let commits = (0..documents).map(|n| document(schema_id, creator, ids.next(), n, documents));
    let filling = Instant::now();
    let how = match &env.stream {
        Some(stream) => {
            publish(&stream.prefix, commits).await?;
            "raw publishes"
        }
        None => {
            append_all(log.as_ref(), commits).await?;
            "appends"
        }
    };
    let filled = filling.elapsed();
    let head = log.head().await?;
    server
        .state
        .projector
        .wait_for(head, Duration::from_secs(3600))
        .await?;
    let projected = filling.elapsed();
    let stores = match deployment {
        Deployment::Production => "NATS JetStream + Postgres",
        Deployment::Embedded => "embedded SQLite log and read store",
    };
    println!(
        "documents-at-scale: {documents} documents of `measurement`, 100 per patient, {stores}, {connections} connections, {seconds}s per list workload"
    );
    let label = format!("log filled ({how})");
    println!("  {label:<36}: {filled:>9.1?}");
    println!(
        "  projected live by the server        : {:>9.0} commits/s ({projected:.1?} from the first commit)",
        rate(documents, projected)
    );
    let store = &server.state.store;
    refresh_statistics(store).await?;
    let run = |what: &'static str| {
        let (server, token) = (&server, token.as_str());
        tokio::task::block_in_place(|| query(server, token, documents, connections, seconds, what))
    };
    run(match deployment {
        Deployment::Production => "no schema index (GIN on data)",
        Deployment::Embedded => "no schema index (a scan)",
    })?;

    let started = Instant::now();
    let (status, index) = server
        .call(
            Method::POST,
            "/data/v1/measurement/indexes",
            Some(&token),
            Some(json!({"fields": [{"name": "data.patientId", "type": "asc"}]})),
        )
        .await?;
    anyhow::ensure!(status.is_success(), "{index}");
    let name = format!(
        "d1_{schema_id}_{}",
        index["id"].as_str().unwrap_or_default()
    );
    while !built(store, &name).await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "  index on data.patientId built       : {:>9.1?} (CREATE INDEX CONCURRENTLY on Postgres)",
        started.elapsed()
    );
    refresh_statistics(store).await?;
    run("index on data.patientId")?;

    // Rebuild into a fresh read store from the same log.
    let database = match deployment {
        Deployment::Production => Some(TestDatabase::create().await?),
        Deployment::Embedded => None,
    };
    let fresh = match &database {
        Some(database) => ReadStore::postgres(&database.url, 8).await?,
        None => ReadStore::sqlite(&env.dir.path().join("rebuilt.sqlite")).await?,
    };
    let projections: Vec<Arc<dyn Projection>> =
        vec![Arc::new(vigil_projections::data::document::Documents)];
    let started = Instant::now();
    let rebuilt = runner::rebuild(&fresh, log.clone(), projections).await?;
    let rebuild = started.elapsed();
    let head = log.head().await?;
    anyhow::ensure!(rebuilt == head, "rebuilt to {rebuilt}, expected {head}");
    let rows: i64 = vigil_projections::with_pool!(&fresh, pool => {
        sqlx::query_scalar("SELECT count(*) FROM documents_v1")
            .fetch_one(pool)
            .await?
    });
    anyhow::ensure!(rows == documents as i64, "{rows} rows rebuilt");
    println!(
        "  rebuild of documents_v1 (its indexes and the schema index rebuilt): {:>9.0} commits/s ({rebuild:.1?}, {head} commits)",
        rate(usize::try_from(head)?, rebuild)
    );
    fresh.close().await;
    Ok(())
}

/// Appends `commits` (each the first of its stream) to `log`, 64 at a time.
async fn append_all(
    log: &dyn vigil_domain::log::EventLog,
    commits: impl Iterator<Item = Commit>,
) -> anyhow::Result<()> {
    use futures::stream::{self, TryStreamExt as _};
    stream::iter(commits.map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(64, |commit| async move {
            log.append(&commit, 0).await?;
            Ok(())
        })
        .await
}

/// What autovacuum (or SQLite's `ANALYZE`) does in time after so many inserts — statistics, and on
/// Postgres hint bits and the visibility map — now.
async fn refresh_statistics(store: &ReadStore) -> anyhow::Result<()> {
    let statement = match store {
        ReadStore::Postgres(_) => "VACUUM ANALYZE documents_v1",
        ReadStore::Sqlite(_) => "ANALYZE",
    };
    vigil_projections::with_pool!(store, pool => {
        sqlx::raw_sql(statement).execute(pool).await?;
    });
    Ok(())
}

/// Whether the database index `name` is built (and, on Postgres, valid).
async fn built(store: &ReadStore, name: &str) -> anyhow::Result<bool> {
    Ok(match store {
        ReadStore::Postgres(pool) => sqlx::query_scalar::<_, bool>(
            "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
             WHERE c.relname = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?
        .unwrap_or(false),
        ReadStore::Sqlite(pool) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = $1",
            )
            .bind(name)
            .fetch_one(pool)
            .await?
                == 1
        }
    })
}
