//! The `vigil` command line: `serve`, `bootstrap`, `rebuild`, `unlock` and `lockout`, with the
//! storage flags they share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use vigil_commands::CommandBus;
use vigil_commands::auth::session::TokenLifetimes;
use vigil_commands::blobs::Blobs;
use vigil_commands::bootstrap::{self, AdminCredentials, BootstrapError};
use vigil_commands::ids::IdGenerator;
use vigil_commands::jetstream::JetStreamLog;
use vigil_commands::secrets::Vault;
use vigil_commands::shared_tail::SharedTail;
use vigil_commands::sqlite_log::SqliteLog;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::commit::CommandMeta;
use vigil_domain::deployment::{self, Deployment, DeploymentCommand};
use vigil_domain::log::EventLog;
use vigil_projections::access::AccessCache;
use vigil_projections::runner::{self, Projector};
use vigil_projections::store::ReadStore;
use vigil_scheduler::bulk::BulkJobs;
use vigil_scheduler::delays::Delays;
use vigil_scheduler::dispatchers::Dispatchers;
use vigil_scheduler::group_sync::GroupSync;
use vigil_scheduler::mail::{MailConfig, Mailer};
use vigil_scheduler::runner::{Reactor, Reactors};
use vigil_scheduler::subscriptions::Subscribers;
use vigil_scheduler::tasks::lambda::Runtimes;
use vigil_scheduler::tasks::{TaskRunner, TaskSettings, Tasks};

use crate::state::{AppState, AuthState, Core, DataState, Shared, TasksState, UsersState};
use crate::telemetry::{self, LogFormat};
use crate::views::UserViews;

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "An event-sourced medical backend speaking the Extra Horizon API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log as text or as JSON lines.
    #[arg(
        long,
        global = true,
        env = "VIGIL_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP and gRPC.
    Serve(ServeArgs),
    /// Create the first administrator and OAuth2 application of an empty deployment.
    Bootstrap(BootstrapArgs),
    /// Rebuild every read model from the log (stop the servers using this read store first).
    Rebuild(StorageArgs),
    /// Clear the failed logins of an account, ending its lock (recovers a locked administrator).
    Unlock(UnlockArgs),
    /// Set when failed logins lock an account, and for how long.
    Lockout(LockoutArgs),
    /// Run a finished rhai task again against its recorded host calls, and show whether it
    /// reaches the same outcome (exit status 1 if it does not).
    ReplayTask(ReplayTaskArgs),
}

#[derive(Debug, Args)]
struct ReplayTaskArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The task's id.
    id: String,
}

#[derive(Debug, Args)]
struct UnlockArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The account's email address.
    email: String,
}

#[derive(Debug, Args)]
struct LockoutArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Consecutive failed logins that lock an account (Extra Horizon: 50).
    #[arg(long, default_value_t = vigil_domain::users::login::LOCK_AFTER)]
    after: u32,
    /// How long a lock lasts after the latest failure, in minutes; without it, a lock lasts
    /// until an administrator resets the failures (Extra Horizon's rule) or `vigil unlock`.
    #[arg(long)]
    lock_minutes: Option<i64>,
}

/// Pooled connections to Postgres per node unless configured.
pub const DATABASE_POOL_SIZE: u32 = 16;

/// Where the log and the read models live. Without NATS or Postgres URLs, both are SQLite
/// files in the data directory.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory of the embedded log and read store.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "./vigil-data")]
    pub data_dir: PathBuf,
    /// NATS server holding the log in JetStream (instead of the embedded log).
    #[arg(long, env = "VIGIL_NATS_URL")]
    pub nats_url: Option<String>,
    /// Postgres database holding the read models (instead of the embedded read store).
    #[arg(long, env = "VIGIL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Pooled connections to Postgres.
    #[arg(long, env = "VIGIL_DATABASE_POOL_SIZE", default_value_t = DATABASE_POOL_SIZE)]
    pub database_pool_size: u32,
    /// Name of the JetStream stream and first token of its subjects.
    #[arg(long, env = "VIGIL_PREFIX", default_value = "vigil")]
    pub prefix: String,
    /// The deployment key (64 hex digits) that seals MFA secrets in the log. Every node of a
    /// deployment needs the same one; required with --nats-url. Without it, the embedded
    /// deployment keeps a key in `<data-dir>/secrets.key`, made on first start.
    #[arg(
        long,
        env = "VIGIL_SECRETS_KEY",
        hide_env_values = true,
        conflicts_with = "secrets_key_file"
    )]
    pub secrets_key: Option<String>,
    /// A file holding the deployment key (so that it is not in the command line, which every
    /// local user can read).
    #[arg(long, env = "VIGIL_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// HTTP listen address.
    #[arg(
        long = "http",
        env = "VIGIL_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http: SocketAddr,
    /// gRPC listen address.
    #[arg(
        long = "grpc",
        env = "VIGIL_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    grpc: SocketAddr,
    /// Bootstrap on first start with this administrator email (with VIGIL_ADMIN_PASSWORD).
    #[arg(long, env = "VIGIL_ADMIN_EMAIL", hide = true)]
    admin_email: Option<String>,
    #[arg(
        long,
        env = "VIGIL_ADMIN_PASSWORD",
        hide_env_values = true,
        hide = true,
        conflicts_with = "admin_password_file"
    )]
    admin_password: Option<String>,
    #[arg(long, env = "VIGIL_ADMIN_PASSWORD_FILE", hide = true)]
    admin_password_file: Option<PathBuf>,
    /// Seconds a request's head may take to arrive (idle kept-alive connections close after
    /// as long) and a request's body may pause (then `408`).
    #[arg(long, env = "VIGIL_READ_TIMEOUT_SECONDS", default_value_t = crate::edge::READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    read_timeout_seconds: u64,
    /// Tasks this node runs at once (queued tasks wait for a free slot; a direct execution
    /// finding none is refused).
    #[arg(long, env = "VIGIL_TASK_CONCURRENCY", default_value_t = vigil_scheduler::tasks::CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    task_concurrency: usize,
    /// Seconds after its time limit that a running task's claim lasts; a task still in progress
    /// then lost its node (killed, partitioned) and is failed as `zombieTaskCleaned` by another.
    #[arg(long, env = "VIGIL_TASK_LEASE_GRACE_SECONDS", default_value_t = vigil_scheduler::tasks::LEASE_GRACE_SECONDS, value_parser = clap::value_parser!(i64).range(0..=86_400))]
    task_lease_grace_seconds: i64,
    /// Reverse proxies (addresses or networks, comma-separated) whose `X-Forwarded-For`,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` are believed; from anyone else they are ignored.
    #[arg(long, env = "VIGIL_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::edge::parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "VIGIL_ACCESS_TOKEN_SECONDS", default_value_t = 3600)]
    access_token_seconds: i64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "VIGIL_REFRESH_TOKEN_SECONDS", default_value_t = 60 * 24 * 3600)]
    refresh_token_seconds: i64,
    /// SMTP server for activation and password-reset mails: `smtp://host:port` (plain),
    /// `smtps://…` (TLS) or `smtp://…?tls=required` (STARTTLS), with optional `user:pass@`.
    /// Without it, mailed activation and password resets are refused.
    #[arg(long, env = "VIGIL_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of those mails.
    #[arg(
        long,
        env = "VIGIL_MAIL_FROM",
        default_value = "Vigil <no-reply@localhost>"
    )]
    mail_from: String,
}

#[derive(Debug, Args)]
struct BootstrapArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[arg(long, env = "VIGIL_ADMIN_EMAIL")]
    admin_email: String,
    /// The administrator's password; `--admin-password-file` or the environment keep it out of
    /// the command line, which every local user can read.
    #[arg(
        long,
        env = "VIGIL_ADMIN_PASSWORD",
        hide_env_values = true,
        required_unless_present = "admin_password_file",
        conflicts_with = "admin_password_file"
    )]
    admin_password: Option<String>,
    /// A file holding the administrator's password (its first line).
    #[arg(long, env = "VIGIL_ADMIN_PASSWORD_FILE")]
    admin_password_file: Option<PathBuf>,
}

/// A secret given inline or in a file (its first line, without the line break); `flag` names
/// the file's flag in errors.
fn secret(
    inline: Option<&String>,
    file: Option<&PathBuf>,
    flag: &str,
) -> Result<Option<String>, Fatal> {
    match (inline, file) {
        (Some(value), _) => Ok(Some(value.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Fatal(format!("{flag} {}: {e}", path.display())))?;
            let value = text.lines().next().unwrap_or_default().to_owned();
            if value.is_empty() {
                return Err(Fatal(format!(
                    "{flag} {}: the file is empty",
                    path.display()
                )));
            }
            Ok(Some(value))
        }
        (None, None) => Ok(None),
    }
}

/// A start-up failure, reported as one line.
#[derive(Debug)]
pub struct Fatal(pub String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

/// Runs the command line and reports failures on one line, without a backtrace.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The trace exporter needs the runtime, to start and to flush when dropped.
    let _runtime = runtime.enter();
    let _telemetry = match telemetry::init(cli.log_format) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot set up logging: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Bootstrap(args) => run_bootstrap(args).await,
            Command::Rebuild(storage) => rebuild(storage).await,
            Command::Unlock(args) => unlock(args).await,
            Command::Lockout(args) => lockout(args).await,
            Command::ReplayTask(args) => replay_task(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The opened log and read store.
pub struct Storage {
    pub log: Arc<dyn EventLog>,
    pub store: ReadStore,
    /// Content kept outside the log (function code).
    pub blobs: Blobs,
    /// Where function code is unpacked to run.
    pub runtimes_dir: PathBuf,
}

/// Makes the embedded deployment's data directory, readable by Vigil's user only (it holds
/// password hashes and medical data), whatever the umask.
fn prepare_data_dir(dir: &Path) -> Result<(), Fatal> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        Fatal(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    restrict(dir, 0o700)?;
    let probe = dir.join(".vigil-write-check");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            Fatal(format!(
                "data directory {} is not writable: {e}",
                dir.display()
            ))
        })
}

/// Sets `path`'s permission bits to `mode` (on Unix).
fn restrict(path: &Path, mode: u32) -> Result<(), Fatal> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Fatal(format!("cannot restrict {}: {e}", path.display())))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Makes the SQLite database `path` (if it is not there yet) and its journal files readable and
/// writable by Vigil's user only, before SQLite opens it: SQLite gives the journal files it makes
/// the database file's permissions.
fn private_database(path: &Path) -> Result<&Path, Fatal> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", path.display())))?;
    for file in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{file}", path.display()));
        if file.exists() {
            restrict(&file, 0o600)?;
        }
    }
    Ok(path)
}

impl StorageArgs {
    pub async fn open(&self) -> Result<Storage, Fatal> {
        if self.nats_url.is_none() || self.database_url.is_none() {
            prepare_data_dir(&self.data_dir)?;
        }
        let (log, blobs): (Arc<dyn EventLog>, Blobs) = match &self.nats_url {
            Some(url) => {
                let log = JetStreamLog::connect(url, &self.prefix).await?;
                let blobs = Blobs::jetstream(log.context(), &self.prefix)
                    .await
                    .map_err(|e| Fatal(e.to_string()))?;
                (Arc::new(log), blobs)
            }
            None => (
                Arc::new(
                    SqliteLog::open(private_database(&self.data_dir.join("log.sqlite"))?)
                        .await
                        .map_err(|e| {
                            Fatal(format!(
                                "cannot open the embedded log in {}: {e}",
                                self.data_dir.display()
                            ))
                        })?,
                ),
                Blobs::directory(&self.data_dir.join("blobs")).map_err(|e| Fatal(e.to_string()))?,
            ),
        };
        // One live subscription of the log for all who follow it in this process.
        let log: Arc<dyn EventLog> = Arc::new(SharedTail::new(log));
        let store = match &self.database_url {
            Some(url) => ReadStore::postgres(url, self.database_pool_size).await?,
            None => {
                ReadStore::sqlite(private_database(&self.data_dir.join("read.sqlite"))?).await?
            }
        };
        // Unpacked code can be made again from the blobs: without a data directory of its own,
        // a node unpacks it in the temporary directory.
        let runtimes_dir = if self.nats_url.is_some() && self.database_url.is_some() {
            std::env::temp_dir().join("vigil-functions")
        } else {
            self.data_dir.join("functions")
        };
        Ok(Storage {
            log,
            store,
            blobs,
            runtimes_dir,
        })
    }

    /// The deployment key: given, or the embedded deployment's key file.
    pub fn vault(&self) -> Result<Vault, Fatal> {
        let key = secret(
            self.secrets_key.as_ref(),
            self.secrets_key_file.as_ref(),
            "--secrets-key-file",
        )?;
        match (&key, &self.nats_url) {
            (Some(key), _) => Ok(Vault::from_hex(key).map_err(|e| Fatal(format!("--secrets-key: {e}")))?),
            (None, Some(_)) => Err(Fatal(
                "--secrets-key (VIGIL_SECRETS_KEY) is required with --nats-url: every node must seal MFA secrets with the same key".into(),
            )),
            (None, None) => {
                prepare_data_dir(&self.data_dir)?;
                Ok(Vault::load_or_create(&self.data_dir.join("secrets.key"))?)
            }
        }
    }
}

async fn bind(address: SocketAddr, what: &str) -> Result<TcpListener, Fatal> {
    TcpListener::bind(address)
        .await
        .map_err(|e| Fatal(format!("cannot listen for {what} on {address}: {e}")))
}

async fn serve(args: ServeArgs) -> Result<(), Fatal> {
    let http = bind(args.http, "HTTP").await?;
    let grpc = bind(args.grpc, "gRPC").await?;
    let vault = args.storage.vault()?;
    let storage = args.storage.open().await?;
    let lifetimes = TokenLifetimes {
        access_seconds: args.access_token_seconds,
        refresh_seconds: args.refresh_token_seconds,
    };
    let mail = args.smtp_url.clone().map(|smtp_url| MailConfig {
        smtp_url,
        from: args.mail_from.clone(),
    });
    let state = start(
        storage,
        lifetimes,
        mail.as_ref(),
        vault,
        TaskSettings {
            concurrency: args.task_concurrency,
            lease_grace_seconds: args.task_lease_grace_seconds,
        },
    )
    .await?;
    let password = secret(
        args.admin_password.as_ref(),
        args.admin_password_file.as_ref(),
        "--admin-password-file",
    )?;
    if let (Some(email), Some(password)) = (&args.admin_email, &password) {
        match bootstrap::bootstrap(&state.bus, &state.ids, Via::Cli, email, password).await {
            Ok(credentials) => {
                state.settle(state.bus.log().head().await?).await?;
                tracing::info!(
                    user_id = %credentials.user_id,
                    client_id = %credentials.client_id,
                    "bootstrapped the deployment; the client secret is printed once on standard output, never logged"
                );
                print_credentials(&credentials)?;
            }
            Err(BootstrapError::AlreadyBootstrapped) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let edge = crate::edge::Edge {
        read_timeout: Duration::from_secs(args.read_timeout_seconds),
        trusted_proxies: args.trusted_proxies.into(),
    };
    crate::server::run(state.clone(), http, grpc, edge, shutdown_signal()).await?;
    state.reactors.shutdown().await;
    state.projector.shutdown().await;
    state.access.shutdown();
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the projections and the reactors (the group synchronisers, the delay resumer, and the
/// mailer given SMTP) and assembles what request handlers share.
pub async fn start(
    storage: Storage,
    lifetimes: TokenLifetimes,
    mail: Option<&MailConfig>,
    vault: Vault,
    tasks: TaskSettings,
) -> Result<AppState, Fatal> {
    let Storage {
        log,
        store,
        blobs,
        runtimes_dir,
    } = storage;
    let bus = Arc::new(CommandBus::new(log.clone()));
    register_secrets_key(&bus, &vault).await?;
    let projector = Projector::start(store.clone(), log.clone(), vigil_projections::all()).await?;
    let access = AccessCache::follow(log.clone());
    let progresses = projector.progresses();
    let mut reactors: Vec<Box<dyn Reactor>> = vec![
        Box::new(GroupSync::enlistments(
            bus.clone(),
            store.clone(),
            progresses.clone(),
        )),
        Box::new(GroupSync::modes(
            bus.clone(),
            store.clone(),
            progresses.clone(),
        )),
        Box::new(Delays::new(bus.clone(), store.clone(), progresses.clone())),
        Box::new(BulkJobs::new(bus.clone())),
    ];
    let runtimes = Runtimes::new(&runtimes_dir)
        .map_err(|e| Fatal(format!("cannot prepare {}: {e}", runtimes_dir.display())))?;
    let runner = TaskRunner::new(bus.clone(), blobs, vault.clone(), runtimes, tasks);
    reactors.push(Box::new(Tasks::new(
        runner.clone(),
        bus.clone(),
        store.clone(),
        progresses.clone(),
    )));
    reactors.push(Box::new(Dispatchers::new(
        bus.clone(),
        store.clone(),
        progresses.clone(),
    )));
    reactors.push(Box::new(Subscribers::new(
        bus.clone(),
        store.clone(),
        progresses,
    )));
    if let Some(config) = mail {
        let mailer =
            Mailer::new(bus.clone(), config, vault.clone()).map_err(|e| Fatal(e.to_string()))?;
        reactors.push(Box::new(mailer));
    }
    let reactors = Reactors::start(log.clone(), store.clone(), reactors);
    let state = AppState::new(Shared {
        core: Arc::new(Core {
            bus,
            store,
            projector,
            access,
            ids: IdGenerator::new(),
            read_your_writes: Duration::from_secs(5),
            vault,
            sends_mail: mail.is_some(),
        }),
        users: Arc::new(UsersState {
            views: UserViews::new(),
        }),
        auth: Arc::new(AuthState {
            lifetimes,
            oidc: vigil_commands::auth::oidc::OidcClient::default(),
            nonces: crate::oauth1::Nonces::default(),
        }),
        data: Arc::new(DataState::default()),
        tasks: Arc::new(TasksState {
            runner: runner.clone(),
        }),
        reactors,
    });
    runner.connect(Arc::new(crate::gateway::InProcess::new(&state)));
    Ok(state)
}

/// Registers the secrets key on the deployment's first start, and refuses any other key later.
async fn register_secrets_key(bus: &CommandBus, vault: &Vault) -> Result<(), Fatal> {
    let meta = cli_meta("start");
    let command = DeploymentCommand::UseSecretsKey {
        fingerprint: vault.fingerprint(),
    };
    bus.execute::<Deployment>(&deployment::stream(), &command, &meta)
        .await
        .map(|_| ())
        .map_err(|error| Fatal(error.to_string()))
}

async fn run_bootstrap(args: BootstrapArgs) -> Result<(), Fatal> {
    let password = secret(
        args.admin_password.as_ref(),
        args.admin_password_file.as_ref(),
        "--admin-password-file",
    )?
    .unwrap_or_default();
    let Storage { log, .. } = args.storage.open().await?;
    let bus = CommandBus::new(log);
    let credentials = bootstrap::bootstrap(
        &bus,
        &IdGenerator::new(),
        Via::Cli,
        &args.admin_email,
        &password,
    )
    .await
    .map_err(|error| match error {
        BootstrapError::AlreadyBootstrapped => {
            Fatal("this deployment is already bootstrapped; nothing was changed".into())
        }
        other => Fatal(other.to_string()),
    })?;
    print_credentials(&credentials)
}

/// Prints bootstrap credentials as one JSON line on standard output (logs go to standard error).
fn print_credentials(credentials: &AdminCredentials) -> Result<(), Fatal> {
    #[derive(serde::Serialize)]
    struct Printed<'a> {
        user_id: String,
        client_id: &'a str,
        client_secret: &'a str,
    }
    let line = serde_json::to_string(&Printed {
        user_id: credentials.user_id.to_string(),
        client_id: &credentials.client_id,
        client_secret: &credentials.client_secret,
    })?;
    println!("{line}");
    Ok(())
}

async fn rebuild(storage: StorageArgs) -> Result<(), Fatal> {
    let Storage { log, store, .. } = storage.open().await?;
    let position = runner::rebuild(&store, log, vigil_projections::all()).await?;
    tracing::info!(position, "read models rebuilt");
    store.close().await;
    Ok(())
}

/// The metadata of a command given on the command line, with `reason` (what was run).
fn cli_meta(reason: &str) -> CommandMeta {
    CommandMeta {
        command_id: vigil_commands::ids::command_id(),
        correlation_id: vigil_commands::ids::command_id(),
        causation_id: None,
        reason: Some(reason.into()),
        actor: Actor::system(Via::Cli),
    }
}

async fn replay_task(args: ReplayTaskArgs) -> Result<(), Fatal> {
    let id = args
        .id
        .parse()
        .map_err(|_| Fatal(format!("{} is not a task id", args.id)))?;
    let Storage {
        log, store, blobs, ..
    } = args.storage.open().await?;
    store.close().await;
    let replayed = vigil_scheduler::tasks::replay::replay(log.as_ref(), &blobs, id)
        .await
        .map_err(|error| Fatal(error.to_string()))?;
    println!("recorded: {}", replayed.recorded);
    println!("replayed: {}", replayed.replayed);
    if replayed.recorded_logs != replayed.replayed_logs {
        println!(
            "the log lines differ: recorded {:?}, replayed {:?}",
            replayed.recorded_logs, replayed.replayed_logs
        );
    }
    if let Some(diverged) = &replayed.diverged {
        println!("diverged: {diverged}");
    }
    if replayed.same() {
        println!("the replay reaches the same outcome");
        Ok(())
    } else {
        Err(Fatal(
            "the replay does not reach the recorded outcome".into(),
        ))
    }
}

async fn unlock(args: UnlockArgs) -> Result<(), Fatal> {
    let Storage { log, store, .. } = args.storage.open().await?;
    store.close().await;
    let bus = CommandBus::new(log);
    let email = vigil_domain::value::Email::parse(&args.email)
        .map_err(|_| Fatal(format!("{} is not an email address", args.email)))?;
    let (user_id, _) = vigil_commands::auth::session::user_by_email(&bus, &email)
        .await?
        .ok_or_else(|| Fatal(format!("no account has the address {}", email.as_str())))?;
    let cleared = vigil_commands::users::user::clear_failed_logins(
        &bus,
        user_id,
        true,
        &cli_meta("vigil unlock"),
    )
    .await
    .map_err(|error| Fatal(error.to_string()))?;
    match cleared {
        Some(_) => println!(
            "{}: failed logins cleared, the account is unlocked",
            email.as_str()
        ),
        None => println!("{}: no failed logins to clear", email.as_str()),
    }
    Ok(())
}

async fn lockout(args: LockoutArgs) -> Result<(), Fatal> {
    use vigil_domain::users::login::LockoutPolicy;
    use vigil_domain::users::settings::{self, Settings, SettingsCommand};
    let Storage { log, store, .. } = args.storage.open().await?;
    store.close().await;
    let bus = CommandBus::new(log);
    let policy = LockoutPolicy {
        after: args.after,
        lasts_millis: args
            .lock_minutes
            .map(|minutes| minutes.saturating_mul(60_000)),
    };
    bus.execute::<Settings>(
        &settings::stream(),
        &SettingsCommand::SetLockoutPolicy(policy),
        &cli_meta("vigil lockout"),
    )
    .await
    .map_err(|error| Fatal(error.to_string()))?;
    match args.lock_minutes {
        Some(minutes) => println!(
            "{} failed logins lock an account for {minutes} minutes",
            args.after
        ),
        None => println!(
            "{} failed logins lock an account until its failures are reset",
            args.after
        ),
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
