//! Test support: isolated deployments on the real services, an in-process server, and the
//! `vigil` binary for tests that need a separate process.
//!
//! Every [`TestEnv`] gets its own data directory, its own JetStream stream and subject prefix, and
//! its own Postgres database, all removed when it is dropped. The services are the machine's
//! NATS (`VIGIL_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) and Postgres
//! (`VIGIL_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`); an
//! unreachable service fails the test, it is never skipped. On a fresh machine the first test
//! installs and starts what is missing (see [`services`]).

pub mod oidc;
pub mod services;
pub mod smtp;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vigil_api::cli::{Storage, StorageArgs};
use vigil_api::state::AppState;
use vigil_commands::auth::session::TokenLifetimes;
use vigil_commands::bootstrap::{self, AdminCredentials};
use vigil_commands::secrets::Vault;
use vigil_domain::actor::Via;
use vigil_scheduler::mail::MailConfig;

/// The two ways Vigil runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// SQLite log and read store in a data directory.
    Embedded,
    /// JetStream log and Postgres read store.
    Production,
}

pub fn nats_url() -> String {
    services::ensure();
    std::env::var("VIGIL_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn postgres_url() -> String {
    services::ensure();
    std::env::var("VIGIL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh name for a stream, a prefix or a database.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// A database URL for `name` on the test server.
fn database_url(name: &str) -> String {
    let admin = postgres_url();
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => admin,
    }
}

/// A fresh Postgres database, dropped with this value.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let name = unique_name("vigil_t");
        let mut admin = sqlx::PgConnection::connect(&postgres_url())
            .await
            .with_context(|| format!("Postgres is unreachable at {}", postgres_url()))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        Ok(Self {
            url: database_url(&name),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        cleanup(async move {
            let mut admin = sqlx::PgConnection::connect(&postgres_url()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            Ok(())
        });
    }
}

/// A JetStream stream name (and subject prefix) of its own, deleted with this value.
pub struct TestStream {
    pub prefix: String,
}

impl TestStream {
    pub fn new() -> Self {
        Self {
            prefix: unique_name("vigil_t"),
        }
    }
}

impl Default for TestStream {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        cleanup(async move {
            let client = async_nats::connect(nats_url()).await?;
            let context = async_nats::jetstream::new(client);
            // The stream and the blob bucket may never have been created by the test.
            let _ = context.delete_stream(&prefix).await;
            let _ = context
                .delete_object_store(vigil_commands::blobs::bucket(&prefix))
                .await;
            Ok(())
        });
    }
}

/// Runs async clean-up from `Drop`, on a thread of its own so it works inside or outside a runtime.
fn cleanup(work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static) {
    let finished = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(work)
    })
    .join();
    if let Ok(Err(error)) = finished {
        eprintln!("test clean-up failed: {error:#}");
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An isolated deployment: storage of its own, removed when dropped.
pub struct TestEnv {
    pub deployment: Deployment,
    pub dir: TempDir,
    pub stream: Option<TestStream>,
    pub database: Option<TestDatabase>,
    /// The deployment key every node of this deployment shares.
    pub secrets_key: String,
    /// Pooled connections to Postgres per node: few for tests, which run many deployments at
    /// once; a benchmark sets the server's default.
    pub pool_size: u32,
}

impl TestEnv {
    pub async fn new(deployment: Deployment) -> anyhow::Result<Self> {
        services::ensure();
        let (stream, database) = match deployment {
            Deployment::Embedded => (None, None),
            Deployment::Production => {
                (Some(TestStream::new()), Some(TestDatabase::create().await?))
            }
        };
        Ok(Self {
            deployment,
            dir: tempfile::tempdir()?,
            stream,
            database,
            secrets_key: hex::encode(rand::random::<[u8; 32]>()),
            pool_size: 4,
        })
    }

    pub fn storage_args(&self) -> StorageArgs {
        StorageArgs {
            data_dir: self.dir.path().join("data"),
            nats_url: self.stream.as_ref().map(|_| nats_url()),
            database_url: self.database.as_ref().map(|d| d.url.clone()),
            database_pool_size: self.pool_size,
            prefix: self
                .stream
                .as_ref()
                .map_or_else(|| "vigil".into(), |s| s.prefix.clone()),
            secrets_key: Some(self.secrets_key.clone()),
            secrets_key_file: None,
        }
    }

    /// The same storage as command-line flags for the `vigil` binary.
    pub fn cli_args(&self) -> Vec<String> {
        let args = self.storage_args();
        let mut flags = vec![
            "--data-dir".into(),
            args.data_dir.display().to_string(),
            "--secrets-key".into(),
            self.secrets_key.clone(),
        ];
        if let Some(url) = args.nats_url {
            flags.extend(["--nats-url".into(), url, "--prefix".into(), args.prefix]);
        }
        if let Some(url) = args.database_url {
            flags.extend([
                "--database-url".into(),
                url,
                "--database-pool-size".into(),
                self.pool_size.to_string(),
            ]);
        }
        flags
    }

    pub fn vault(&self) -> anyhow::Result<Vault> {
        self.storage_args()
            .vault()
            .map_err(|e| anyhow::anyhow!(e.0))
    }

    pub async fn open(&self) -> anyhow::Result<Storage> {
        self.storage_args()
            .open()
            .await
            .map_err(|e| anyhow::anyhow!(e.0))
    }
}

/// Vigil serving HTTP and gRPC in this process on loopback ports, until dropped.
pub struct TestServer {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub state: AppState,
    pub admin: AdminCredentials,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

impl TestServer {
    /// Opens `env`, bootstraps it and serves it.
    pub async fn start(env: &TestEnv) -> anyhow::Result<Self> {
        Self::start_with(env, None).await
    }

    /// Like [`TestServer::start`], delivering mails through `mail`.
    pub async fn start_with(env: &TestEnv, mail: Option<&MailConfig>) -> anyhow::Result<Self> {
        let state = vigil_api::cli::start(
            env.open().await?,
            TokenLifetimes::default(),
            mail,
            env.vault()?,
            vigil_scheduler::tasks::TaskSettings::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.0))?;
        let admin = bootstrap::bootstrap(
            &state.bus,
            &state.ids,
            Via::Cli,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
        )
        .await?;
        state.settle(state.bus.log().head().await?).await?;
        Self::serve(state, admin).await
    }

    /// Another node of the deployment `first` serves: same log and read store, its own caches.
    pub async fn another_node(env: &TestEnv, first: &TestServer) -> anyhow::Result<Self> {
        Self::restart(env, first.admin.clone()).await
    }

    /// A node of the bootstrapped deployment `env`, whose administrator is `admin` (after the
    /// others stopped, it is a restart).
    pub async fn restart(env: &TestEnv, admin: AdminCredentials) -> anyhow::Result<Self> {
        Self::restart_with(env, admin, None).await
    }

    /// Like [`TestServer::restart`], delivering mails through `mail`.
    pub async fn restart_with(
        env: &TestEnv,
        admin: AdminCredentials,
        mail: Option<&MailConfig>,
    ) -> anyhow::Result<Self> {
        let state = vigil_api::cli::start(
            env.open().await?,
            TokenLifetimes::default(),
            mail,
            env.vault()?,
            vigil_scheduler::tasks::TaskSettings::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.0))?;
        state.settle(state.bus.log().head().await?).await?;
        Self::serve(state, admin).await
    }

    async fn serve(state: AppState, admin: AdminCredentials) -> anyhow::Result<Self> {
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let grpc = TcpListener::bind("127.0.0.1:0").await?;
        let (http_address, grpc_address) = (http.local_addr()?, grpc.local_addr()?);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(vigil_api::server::run(
            state.clone(),
            http,
            grpc,
            // Tests stand in for a reverse proxy on the loopback.
            vigil_api::edge::Edge {
                trusted_proxies: vec![
                    vigil_api::edge::parse_proxy("127.0.0.0/8").map_err(anyhow::Error::msg)?,
                ]
                .into(),
                ..vigil_api::edge::Edge::default()
            },
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            http: http_address,
            grpc: grpc_address,
            state,
            admin,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The events of `stream` (`schema-<id>`) in the log, in order: wire name and rendering.
    pub async fn history(&self, stream: &str) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let stream: vigil_domain::id::StreamId = stream
            .parse()
            .map_err(|e: vigil_domain::id::InvalidStreamId| anyhow::anyhow!(e.0))?;
        let commits = self.state.bus.log().read_stream(&stream, 0).await?;
        Ok(commits
            .iter()
            .flat_map(|recorded| &recorded.commit.events)
            .map(|event| (event.wire_name().to_owned(), event.data_json()))
            .collect())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Logs in with the password grant; returns the token response.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::new()
            .post(self.url("/auth/v2/oauth2/tokens"))
            .json(&serde_json::json!({
                "grant_type": "password",
                "username": email,
                "password": password,
                "client_id": self.admin.client_id,
                "client_secret": self.admin.client_secret,
            }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "login failed: {}",
            response.text().await?
        );
        Ok(response.json().await?)
    }

    /// Sends one request with an optional bearer token and JSON body; returns the status and the
    /// JSON answer (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
        let mut request = reqwest::Client::new().request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?
        };
        Ok((status, json))
    }

    /// An access token of the bootstrapped administrator.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        let tokens = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        tokens["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access token")
    }

    /// Stops serving, finishing requests in flight.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        self.state.projector.shutdown().await;
        self.state.store.close().await;
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Audit metadata for a command issued by Vigil itself, with a fresh command id.
pub fn system_meta() -> vigil_domain::commit::CommandMeta {
    vigil_domain::commit::CommandMeta {
        command_id: vigil_commands::ids::command_id(),
        correlation_id: "test".into(),
        causation_id: None,
        reason: None,
        actor: vigil_domain::actor::Actor::system(Via::Cli),
    }
}

/// The log of an environment, on its own (no projections, no server).
pub async fn log_of(env: &TestEnv) -> anyhow::Result<Arc<dyn vigil_domain::log::EventLog>> {
    Ok(env.open().await?.log)
}

/// A zip holding `files`, base64-encoded as a function's `code`.
pub fn code_of(files: &[(&str, &str)]) -> anyhow::Result<String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, text) in files {
        writer.start_file(*path, zip::write::SimpleFileOptions::default())?;
        writer.write_all(text.as_bytes())?;
    }
    let zip = writer.finish()?.into_inner();
    Ok(base64::engine::general_purpose::STANDARD.encode(zip))
}
