//! Identity benchmarks: the cost of authenticating a request with a warm access cache, `GET
//! /users/v1/me` over HTTP on loopback, and password logins alongside other traffic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::auth::session::{IssuedToken, SessionStarted};
use vigil_domain::commit::{CommandMeta, Commit, Recorded};
use vigil_domain::event::SessionEvent;
use vigil_domain::id::{Digest, Id, StreamId};
use vigil_domain::value::Timestamp;
use vigil_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Deployment, TestEnv, TestServer};

/// Latencies, sorted, with the percentile of each.
struct Latencies(Vec<Duration>);

/// Prints the rate of `samples` (answers within `duration`) in `unit`, as `rate`, then their
/// latencies, as `latency`.
pub(crate) fn report_load(
    samples: Vec<Duration>,
    duration: Duration,
    unit: &str,
    rate: &str,
    latency: &str,
) {
    println!(
        "  {rate:<36}: {:>9.0} {unit}",
        samples.len() as f64 / duration.as_secs_f64()
    );
    Latencies::new(samples).report(latency);
}

/// Prints the latencies of `samples` as `what`.
pub(crate) fn report_latencies(samples: Vec<Duration>, what: &str) {
    Latencies::new(samples).report(what);
}

impl Latencies {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(index).copied().unwrap_or_default()
    }

    fn report(&self, what: &str) {
        println!(
            "  {what:<36}: p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  ({} samples)",
            self.percentile(0.50),
            self.percentile(0.99),
            self.0.last().copied().unwrap_or_default(),
            self.0.len()
        );
    }
}

/// Fills the access cache with `sessions` other logins, so lookups run against a realistic map.
fn crowd(server: &TestServer, sessions: usize) {
    let meta = CommandMeta {
        command_id: String::new(),
        correlation_id: String::new(),
        causation_id: None,
        reason: None,
        actor: Actor::system(Via::Cli),
    };
    let far = Timestamp::now().plus_seconds(86_400);
    let start = server.state.access.position() + 1_000_000_000;
    for n in 0..sessions {
        let token = |kind: u8| IssuedToken {
            id: Id::from_bytes([kind; 12]),
            digest: Digest::of(format!("{kind}-{n}").as_bytes()),
            expires_at: far,
        };
        let started = SessionEvent::Started(SessionStarted {
            user_id: Id::from_bytes([7; 12]),
            application_id: Id::from_bytes([8; 12]),
            access: token(1),
            refresh: token(2),
        });
        let stream = StreamId::of("session", Id::from_bytes(rand::random()));
        let commit = Commit::next(stream, None, &meta, far, vec![started.into()]);
        server.state.access.apply(&Recorded {
            position: start + n as u64,
            commit,
            hash: Digest::default(),
        });
    }
}

/// `authenticate`: resolving a bearer token to a caller with its permissions, warm cache.
pub async fn authenticate(sessions: usize, requests: usize) -> anyhow::Result<()> {
    let env = TestEnv::new(Deployment::Embedded).await?;
    let server = TestServer::start(&env).await?;
    let token = server.admin_token().await?;
    crowd(&server, sessions);
    let header = format!("Bearer {token}");
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        let caller =
            vigil_api::extract::authenticate(&server.state, Some(&header), Via::Http, None).await;
        samples.push(start.elapsed());
        anyhow::ensure!(caller.is_ok(), "authentication failed");
    }
    println!(
        "authenticate: bearer token → caller with permissions (administrator, {} permissions), warm cache with {sessions} other sessions",
        vigil_domain::permission::CATALOGUE.len()
    );
    Latencies::new(samples).report("authenticate");
    let mut hashes = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        vigil_commands::secrets::hash_password("a password of some length".into()).await?;
        hashes.push(start.elapsed());
    }
    Latencies::new(hashes).report("argon2id hash (one at a time)");
    Ok(())
}

/// A request a load loop sends: built afresh from the client and the loop's request number.
pub(crate) type Request =
    Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// Runs `connections` loops of `request` for `duration` on a runtime of its own (the load
/// generator), returning every latency. Every answer must be a success.
pub(crate) fn load(
    connections: usize,
    duration: Duration,
    request: Request,
) -> anyhow::Result<Vec<Duration>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for connection in 0..connections {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                // One client per connection: each keeps its own keep-alive connection.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()?;
                let mut samples = Vec::new();
                let end = Instant::now() + duration;
                let mut n = connection;
                while Instant::now() < end {
                    let start = Instant::now();
                    let response = request(&client, n).send().await?;
                    let status = response.status();
                    let body = response.bytes().await?;
                    anyhow::ensure!(
                        status.is_success(),
                        "{status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    samples.push(start.elapsed());
                    n += connections;
                }
                anyhow::Ok(samples)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await??);
        }
        Ok(all)
    })
}

/// `GET url` with a bearer token.
fn get(url: String, token: String) -> Request {
    Arc::new(move |client, _| client.get(&url).bearer_auth(&token))
}

pub(crate) async fn serving(deployment: Deployment) -> anyhow::Result<(TestEnv, TestServer)> {
    let env = served(deployment).await?;
    let server = TestServer::start(&env).await?;
    Ok((env, server))
}

/// A deployment configured as a server is by default (the tests' deployments hold fewer
/// connections to Postgres, since many run at once).
pub(crate) async fn served(deployment: Deployment) -> anyhow::Result<TestEnv> {
    let mut env = TestEnv::new(deployment).await?;
    env.pool_size = vigil_api::cli::DATABASE_POOL_SIZE;
    Ok(env)
}

/// `http-me`: `GET /users/v1/me` over loopback HTTP with `connections` keep-alive connections.
pub async fn http_me(
    deployment: Deployment,
    connections: usize,
    seconds: u64,
    path: &str,
) -> anyhow::Result<()> {
    let (_env, server) = serving(deployment).await?;
    let token = server.admin_token().await?;
    let url = server.url(path);
    let duration = Duration::from_secs(seconds);
    let samples =
        tokio::task::spawn_blocking(move || load(connections, duration, get(url, token))).await??;
    println!(
        "http-me: GET {path}, {deployment:?} deployment, {connections} connections, {seconds}s, load generator in the same process on its own 2-thread runtime"
    );
    report_load(samples, duration, "req/s", "throughput", "latency");
    Ok(())
}

/// `logins`: password logins by `concurrent` clients in a loop, while 8 connections read
/// `/users/v1/me`; reports logins/s and the latency of `me` meanwhile.
pub async fn logins(deployment: Deployment, concurrent: usize, seconds: u64) -> anyhow::Result<()> {
    let (_env, server) = serving(deployment).await?;
    let server = Arc::new(server);
    let token = server.admin_token().await?;
    let duration = Duration::from_secs(seconds);
    let url = server.url("/users/v1/me");
    let readers = tokio::task::spawn_blocking(move || load(8, duration, get(url, token)));
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrent {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut logins = 0usize;
            while Instant::now() < end {
                server
                    .login(ADMIN_EMAIL, ADMIN_PASSWORD)
                    .await
                    .context("login")?;
                logins += 1;
            }
            anyhow::Ok(logins)
        }));
    }
    let mut logins = 0;
    for task in tasks {
        logins += task.await??;
    }
    let samples = readers.await??;
    println!(
        "logins: {concurrent} clients logging in with the password grant (Argon2id) in a loop for {seconds}s, {deployment:?} deployment, while 8 connections read /users/v1/me"
    );
    println!(
        "  logins                              : {:>9.1} logins/s",
        logins as f64 / duration.as_secs_f64()
    );
    report_load(
        samples,
        duration,
        "req/s",
        "me meanwhile",
        "me latency during logins",
    );
    Ok(())
}
