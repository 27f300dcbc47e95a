//! The projection runner (DESIGN.md §7).
//!
//! Each projection runs in its own task: it reads the log from its checkpoint, applies a batch of
//! commits to a [`Changes`] set, and writes the rows and the new checkpoint **in one transaction**,
//! so a crash can neither lose nor repeat a commit. The checkpoint write is a compare-and-set on
//! the previous checkpoint: if another node's projector moved it, this transaction rolls back and
//! the runner starts over from the stored checkpoint. On Postgres, a session advisory lock elects
//! one projector per read model across nodes; the others follow its progress through
//! `LISTEN/NOTIFY` so they can still answer read-your-writes waits.
//!
//! A commit that cannot be applied (it does not decode, the projection refuses it, the database
//! rejects the rows) **halts** that projection and raises an alarm: a medical read model never
//! skips a commit. A transient failure (the log or the database unreachable) is retried.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use sqlx::Connection as _;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use vigil_domain::commit::Recorded;
use vigil_domain::log::{Delivery, EventLog, Filter, LogError};

use crate::store::ReadStore;
use crate::table::{ChangeError, Changes, Table};

/// Commits applied per transaction at most.
const BATCH: usize = 4096;
/// Commits read ahead of the one being applied.
const READ_AHEAD: usize = 16_384;
/// Applied batches waiting for the writer.
const WRITES_AHEAD: usize = 2;
const CHANNEL: &str = "vigil_projections";
/// How often a node that does not project a read model checks whether it should take over.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// How long the checkpoint of batches without row changes may wait to be stored (see
/// `write_batches`).
const CHECKPOINT_DELAY: Duration = Duration::from_millis(20);

/// A read model built from the log.
pub trait Projection: Send + Sync + 'static {
    /// The checkpoint key; a new shape of the read model gets a new name (`users_v2`) and tables.
    fn name(&self) -> &'static str;
    /// The stream kinds whose commits it applies (of every event it matches, the aggregate's
    /// `KIND`): the log hands it only those, and word of how far it has looked past the others.
    fn filter(&self) -> Filter;
    fn tables(&self) -> &'static [&'static Table];
    /// Records the row changes `recorded` makes (most commits make none).
    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError>;
    /// Indexes the read model derives from rows of its own, if any.
    fn derived_indexes(&self) -> Option<&'static DerivedIndexes> {
        None
    }
}

/// Indexes a read model derives from rows of its own (the data service's schema indexes become
/// indexes of their documents). They are kept in line with those rows by the node that runs the
/// projection, *outside* the batch transactions: at start, and after each batch that changes the
/// rows. Building an index then never holds up the projection (on Postgres it is built
/// `CONCURRENTLY`, without blocking writers), and the reconciliation is idempotent: whatever a crash
/// interrupted — an index half built (Postgres marks it invalid), a batch committed but its index
/// not yet made — is found and finished by the next one.
pub struct DerivedIndexes {
    /// The table whose rows say which indexes there should be.
    pub source: &'static Table,
    /// The start of the name of every derived index: one so named that is not wanted is dropped.
    pub prefix: &'static str,
    /// The indexes wanted, as (name, statement creating it if it does not exist).
    pub wanted: for<'a> fn(&'a ReadStore) -> BoxFuture<'a, Wanted>,
}

/// The derived indexes wanted: (name, statement creating it if it does not exist).
pub type Wanted = Result<Vec<(String, String)>, sqlx::Error>;

/// Brings the derived indexes in line with the rows that ask for them: drops those not wanted
/// (and any a crash left invalid), then creates those missing.
pub async fn reconcile(store: &ReadStore, derived: &DerivedIndexes) -> Result<(), sqlx::Error> {
    let wanted = (derived.wanted)(store).await?;
    let existing: Vec<(String, bool)> = match store {
        ReadStore::Postgres(pool) => {
            sqlx::query_as(
                "SELECT c.relname::text, x.indisvalid FROM pg_index x \
                 JOIN pg_class c ON c.oid = x.indexrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND starts_with(c.relname, $1)",
            )
            .bind(derived.prefix)
            .fetch_all(pool)
            .await?
        }
        ReadStore::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT name, TRUE FROM sqlite_master WHERE type = 'index' \
                 AND substr(name, 1, length($1)) = $1",
            )
            .bind(derived.prefix)
            .fetch_all(pool)
            .await?
        }
    };
    let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut ready = Vec::new();
    for (name, valid) in existing {
        if valid && wanted.iter().any(|(wanted, _)| *wanted == name) {
            ready.push(name);
            continue;
        }
        tracing::info!(index = %name, valid, "dropping a derived index");
        let drop = match store {
            ReadStore::Postgres(_) => {
                format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted(&name))
            }
            ReadStore::Sqlite(_) => format!("DROP INDEX IF EXISTS {}", quoted(&name)),
        };
        crate::with_pool!(store, pool => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(pool).await.map(|_| ())?
        });
    }
    // One index that cannot be built does not hold up the others; the first refusal is reported
    // (and the reconciliation tried again) once all were tried.
    let mut refused = None;
    for (name, create) in wanted {
        if ready.contains(&name) {
            continue;
        }
        tracing::info!(index = %name, "building a derived index");
        let built = crate::with_pool!(store, pool => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(pool).await.map(|_| ())
        });
        if let Err(error) = built {
            tracing::warn!(index = %name, %error, "a derived index cannot be built");
            refused.get_or_insert(error);
        }
    }
    refused.map_or(Ok(()), Err)
}

/// Reconciles the derived indexes at start and whenever `changed` is notified, retrying after a
/// pause when the database refuses (until the next notification or pause).
async fn keep_indexes(store: ReadStore, derived: &'static DerivedIndexes, changed: Arc<Notify>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match reconcile(&store, derived).await {
            Ok(()) => {
                pause = Duration::from_millis(100);
                changed.notified().await;
            }
            Err(error) => {
                tracing::warn!(table = derived.source.name, %error, "cannot bring derived indexes in line; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = changed.notified() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("{0}")]
    Refused(String),
}

/// How far a projection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every commit up to this position is applied.
    Running(u64),
    /// Stopped at a commit it could not apply; `position` is the last one applied.
    Halted { position: u64, error: String },
}

impl Progress {
    pub fn position(&self) -> u64 {
        match self {
            Self::Running(position) | Self::Halted { position, .. } => *position,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("the read models did not reach position {0} in time")]
    TimedOut(u64),
    #[error("read model {name} has halted: {error}")]
    Halted { name: &'static str, error: String },
}

enum Failure {
    /// Retry after a pause.
    Transient(String),
    /// Stop this projection and raise the alarm.
    Halt { position: u64, error: String },
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The database refused the rows: applying them again would fail again. Lock and
            // serialization failures, and a server shutting down, are the exceptions.
            sqlx::Error::Database(db)
                if !matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "40001" | "40P01" | "57P01")
                ) =>
            {
                Failure::Halt {
                    position: 0,
                    error: db.to_string(),
                }
            }
            other => Failure::Transient(other.to_string()),
        }
    }
}

impl From<LogError> for Failure {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Corrupt { position, source } => Failure::Halt {
                position,
                error: source.to_string(),
            },
            other => Failure::Transient(other.to_string()),
        }
    }
}

struct Runner {
    projection: Arc<dyn Projection>,
    store: ReadStore,
    log: Arc<dyn EventLog>,
    progress: Arc<watch::Sender<Progress>>,
}

/// The progress of the read models, for waiting on them elsewhere (a reactor that queries them).
#[derive(Clone)]
pub struct Progresses(Vec<(&'static str, watch::Receiver<Progress>)>);

impl Progresses {
    /// The position every read model has applied (the least of their positions).
    pub fn position(&self) -> u64 {
        self.0
            .iter()
            .map(|(_, receiver)| receiver.borrow().position())
            .min()
            .unwrap_or(0)
    }

    /// Waits until every read model has applied `position`, or `timeout` passes.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for (name, receiver) in &self.0 {
            let mut receiver = receiver.clone();
            let reached = tokio::time::timeout_at(
                deadline,
                receiver
                    .wait_for(|p| p.position() >= position || matches!(p, Progress::Halted { .. })),
            )
            .await;
            match reached {
                Ok(Ok(progress)) => {
                    if let Progress::Halted { error, .. } = &*progress {
                        return Err(WaitError::Halted {
                            name,
                            error: error.clone(),
                        });
                    }
                }
                Ok(Err(_)) | Err(_) => return Err(WaitError::TimedOut(position)),
            }
        }
        Ok(())
    }
}

/// The running projections of this process.
pub struct Projector {
    progress: Vec<(&'static str, watch::Receiver<Progress>)>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Projector {
    /// Starts one runner per projection. Refuses a read store that is ahead of the log: it was
    /// built from another log, and serving it would show data the log does not hold.
    pub async fn start(
        store: ReadStore,
        log: Arc<dyn EventLog>,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Self, StartError> {
        restore_indexes(&store).await?;
        let head = log.head().await?;
        let (stop, stopped) = watch::channel(false);
        let mut progress = Vec::new();
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for projection in projections {
            let checkpoint = read_checkpoint(&store, projection.name()).await?;
            if checkpoint > head {
                return Err(StartError::AheadOfLog {
                    name: projection.name(),
                    checkpoint,
                    head,
                });
            }
            let (sender, receiver) = watch::channel(Progress::Running(checkpoint));
            let sender = Arc::new(sender);
            progress.push((projection.name(), receiver));
            senders.push((projection.name(), sender.clone()));
            let runner = Runner {
                projection,
                store: store.clone(),
                log: log.clone(),
                progress: sender,
            };
            tasks.push(tokio::spawn(runner.run(stopped.clone())));
        }
        if let ReadStore::Postgres(pool) = &store {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(CHANNEL).await?;
            tasks.push(tokio::spawn(follow(listener, senders, stopped)));
        }
        Ok(Self {
            progress,
            tasks: std::sync::Mutex::new(tasks),
            stop,
        })
    }

    /// Waits until every read model has applied `position`, or `timeout` passes.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitError> {
        self.progresses().wait_for(position, timeout).await
    }

    /// The read models' progress, to wait on from elsewhere.
    pub fn progresses(&self) -> Progresses {
        Progresses(self.progress.clone())
    }

    /// The position every read model has applied (the least of their positions): a query started
    /// now sees at least every commit up to it.
    pub fn position(&self) -> u64 {
        self.progresses().position()
    }

    /// How far the read model `name` has applied the log (0 for one this process does not run).
    pub fn applied(&self, name: &str) -> u64 {
        self.progress
            .iter()
            .find(|(own, _)| *own == name)
            .map_or(0, |(_, receiver)| receiver.borrow().position())
    }

    /// Every projection's progress.
    pub fn status(&self) -> Vec<(&'static str, Progress)> {
        self.progress
            .iter()
            .map(|(name, receiver)| (*name, receiver.borrow().clone()))
            .collect()
    }

    /// Stops the runners between batches (a batch in flight rolls back, which loses nothing).
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut tasks| std::mem::take(&mut *tasks))
            .unwrap_or_default();
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a projection did not stop in time");
            }
        }
    }
}

/// Rebuilds `projections` from position 0: empties their tables, then applies the whole log up to
/// its current head. Returns that head. Run while no other projector writes these read models.
pub async fn rebuild(
    store: &ReadStore,
    log: Arc<dyn EventLog>,
    projections: Vec<Arc<dyn Projection>>,
) -> Result<u64, RebuildError> {
    let head = log.head().await.map_err(|e| RebuildError(e.to_string()))?;
    for projection in projections {
        reset(store, projection.as_ref())
            .await
            .map_err(|e| RebuildError(e.to_string()))?;
        let (progress, _) = watch::channel(Progress::Running(0));
        let runner = Runner {
            projection: projection.clone(),
            store: store.clone(),
            log: log.clone(),
            progress: Arc::new(progress),
        };
        let (_keep, stopped) = watch::channel(false);
        let applied = runner.run_from(0, Some(head), stopped).await;
        restore_indexes(store)
            .await
            .map_err(|e| RebuildError(format!("cannot recreate an index: {e}")))?;
        if let (Ok(()), Some(derived)) = (&applied, projection.derived_indexes()) {
            reconcile(store, derived)
                .await
                .map_err(|e| RebuildError(format!("cannot build a derived index: {e}")))?;
        }
        match applied {
            Ok(_) => {}
            Err(Failure::Transient(error)) => return Err(RebuildError(error)),
            Err(Failure::Halt { position, error }) => {
                return Err(RebuildError(format!(
                    "{} cannot apply the commit after position {position}: {error}",
                    projection.name()
                )));
            }
        }
    }
    Ok(head)
}

#[derive(Debug, thiserror::Error)]
#[error("rebuild failed: {0}")]
pub struct RebuildError(String);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "read model {name} is at position {checkpoint} but the log ends at {head}: this read store was built \
         from another log (rebuild it with `vigil rebuild`, or point Vigil at the right log)"
    )]
    AheadOfLog {
        name: &'static str,
        checkpoint: u64,
        head: u64,
    },
    #[error("cannot start the projections: {0}")]
    Log(#[from] LogError),
    #[error("cannot start the projections: {0}")]
    Store(#[from] sqlx::Error),
}

/// Empties a projection's tables and checkpoint for a rebuild. Their secondary indexes are dropped
/// too (a bulk load then one index build is much cheaper than updating indexes row by row), and
/// recorded so that [`restore_indexes`] recreates them afterwards, or at the next start.
async fn reset(store: &ReadStore, projection: &dyn Projection) -> Result<(), sqlx::Error> {
    let (secondary_indexes, empty) = match store {
        ReadStore::Postgres(_) => (
            "SELECT i.relname::text, pg_get_indexdef(i.oid) FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace AND NOT x.indisprimary",
            "TRUNCATE",
        ),
        // Indexes behind PRIMARY KEY and UNIQUE constraints have no SQL, and stay.
        ReadStore::Sqlite(_) => (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
            "DELETE FROM",
        ),
    };
    crate::with_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        for table in projection.tables() {
            let indexes: Vec<(String, String)> =
                sqlx::query_as(secondary_indexes).bind(table.name).fetch_all(&mut *tx).await?;
            for (name, definition) in indexes {
                // Derived indexes are not recorded: the rebuild reconciles them at its end.
                let derived = projection
                    .derived_indexes()
                    .is_some_and(|derived| name.starts_with(derived.prefix));
                if derived {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\""))).execute(&mut *tx).await?;
                    continue;
                }
                sqlx::query(
                    "INSERT INTO projection_deferred_indexes (index_name, table_name, definition) \
                     VALUES ($1, $2, $3) ON CONFLICT (index_name) DO NOTHING",
                )
                .bind(&name)
                .bind(table.name)
                .bind(definition)
                .execute(&mut *tx)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}"))).execute(&mut *tx).await?;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("{empty} {}", table.name))).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })
}

/// Recreates the indexes a rebuild dropped, each in the transaction that forgets it. On Postgres
/// they are built at once, each on a connection of its own (builds of one table share its lock).
pub async fn restore_indexes(store: &ReadStore) -> Result<(), sqlx::Error> {
    match store {
        ReadStore::Postgres(pool) => {
            let deferred = deferred_indexes(&mut *pool.acquire().await?).await?;
            futures::future::try_join_all(deferred.into_iter().map(
                |(name, definition)| async move {
                    restore_one(&mut *pool.acquire().await?, name, definition).await
                },
            ))
            .await?;
            Ok(())
        }
        // A connection of its own: a pooled one may hold a schema from before the indexes were
        // dropped, and SQLite would refuse to create an index it still believes exists.
        ReadStore::Sqlite(pool) => {
            let mut fresh = sqlx::SqliteConnection::connect_with(&pool.connect_options()).await?;
            let mut restored = Ok(());
            for (name, definition) in deferred_indexes(&mut fresh).await? {
                restored = restore_one(&mut fresh, name, definition).await;
                if restored.is_err() {
                    break;
                }
            }
            fresh.close().await?;
            restored
        }
    }
}

/// The indexes a rebuild dropped and has yet to recreate: name and definition.
async fn deferred_indexes<C>(conn: &mut C) -> Result<Vec<(String, String)>, sqlx::Error>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    for<'q> <C::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<C::Database>,
    for<'r> (String, String): sqlx::FromRow<'r, <C::Database as sqlx::Database>::Row>,
{
    sqlx::query_as(
        "SELECT index_name, definition FROM projection_deferred_indexes ORDER BY index_name",
    )
    .fetch_all(&mut *conn)
    .await
}

async fn restore_one<C>(conn: &mut C, name: String, definition: String) -> Result<(), sqlx::Error>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    for<'q> <C::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<C::Database>,
    for<'q> String: sqlx::Encode<'q, C::Database> + sqlx::Type<C::Database>,
{
    tracing::info!(index = %name, "recreating an index dropped for a rebuild");
    let mut tx = conn.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(definition))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_deferred_indexes WHERE index_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn read_checkpoint(store: &ReadStore, name: &str) -> Result<u64, sqlx::Error> {
    let position: Option<i64> = crate::with_pool!(store, pool => {
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
    });
    Ok(position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Runner {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let name = self.projection.name();
        let mut pause = Duration::from_millis(100);
        while !*stopped.borrow() {
            let leader = match self.lead(&mut stopped).await {
                Ok(Some(leader)) => leader,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(projection = name, %error, "cannot elect a projector; retrying");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let from = match read_checkpoint(&self.store, name).await {
                Ok(position) => position,
                Err(error) => {
                    tracing::warn!(projection = name, %error, "cannot read checkpoint; retrying");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let result = self.run_from(from, None, stopped.clone()).await;
            drop(leader);
            match result {
                Ok(()) => return,
                Err(Failure::Transient(error)) => {
                    tracing::warn!(projection = name, %error, "projection interrupted; resuming");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(Failure::Halt { position, error }) => {
                    let position = position.max(self.progress.borrow().position());
                    tracing::error!(
                        alarm = true,
                        projection = name,
                        position,
                        %error,
                        "read model HALTED: it cannot apply the next commit and will not skip it"
                    );
                    if let Err(record) = self.record_halt(position, &error).await {
                        tracing::error!(projection = name, %record, "could not record the halt");
                    }
                    self.progress
                        .send_replace(Progress::Halted { position, error });
                    return;
                }
            }
        }
    }

    /// On Postgres, waits until this node holds the projection's advisory lock, following the
    /// leader's checkpoint meanwhile (notifications arrive through the projector's listener);
    /// `None` when asked to stop first. SQLite has one node.
    async fn lead(
        &self,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Option<Option<sqlx::PgConnection>>, sqlx::Error> {
        let ReadStore::Postgres(pool) = &self.store else {
            return Ok(Some(None));
        };
        loop {
            if let Some(conn) = crate::store::try_lock(pool, self.projection.name()).await? {
                return Ok(Some(Some(conn)));
            }
            let checkpoint = read_checkpoint(&self.store, self.projection.name()).await?;
            self.progress.send_if_modified(|p| advance(p, checkpoint));
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                _ = stopped.changed() => return Ok(None),
            }
        }
    }

    /// Applies the log from `from` until stopped, or until `until` is reached.
    ///
    /// Three stages run concurrently: reading and decoding the log, applying commits to a batch of
    /// row changes, and writing batches (each with its checkpoint, in order). So the database
    /// writes one batch while the next is being prepared.
    async fn run_from(
        &self,
        from: u64,
        until: Option<u64>,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), Failure> {
        if until.is_some_and(|until| from >= until) {
            return Ok(());
        }
        let (sender, mut receiver) = mpsc::channel(READ_AHEAD);
        let mut commits = self.log.follow(from, self.projection.filter());
        let pump = tokio::spawn(async move {
            while let Some(item) = commits.next().await {
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        let _pump = AbortOnDrop(pump);
        // A rebuild (`until`) reconciles the derived indexes once, at its end.
        let derived = self
            .projection
            .derived_indexes()
            .filter(|_| until.is_none());
        let changed = Arc::new(Notify::new());
        let _keeper = derived.map(|derived| {
            AbortOnDrop(tokio::spawn(keep_indexes(
                self.store.clone(),
                derived,
                changed.clone(),
            )))
        });
        let (to_writer, batches) = mpsc::channel(WRITES_AHEAD);
        let writer = tokio::spawn(write_batches(
            self.store.clone(),
            self.projection.name(),
            self.progress.clone(),
            batches,
            derived.map(|derived| (derived.source, changed.clone())),
        ));
        let applied = self
            .apply_batches(from, until, &mut receiver, &to_writer, &mut stopped)
            .await;
        // The writer finishes what it was given, then reports how that went.
        drop(to_writer);
        let written = writer.await.unwrap_or_else(|error| {
            Err(Failure::Transient(format!(
                "the batch writer stopped: {error}"
            )))
        });
        written.and(applied)
    }

    /// Applies commits into batches and hands them to the writer, until stopped, until `until`,
    /// or until the writer stops taking them (it failed, and says why).
    async fn apply_batches(
        &self,
        from: u64,
        until: Option<u64>,
        receiver: &mut mpsc::Receiver<Result<Delivery, LogError>>,
        to_writer: &mpsc::Sender<Batch>,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), Failure> {
        let mut checkpoint = from;
        let mut commits = Vec::with_capacity(BATCH);
        loop {
            commits.clear();
            let received = tokio::select! {
                received = receiver.recv_many(&mut commits, BATCH) => received,
                _ = stopped.changed() => return Ok(()),
            };
            if received == 0 {
                return Err(Failure::Transient("the log subscription ended".into()));
            }
            let mut changes = Changes::default();
            let mut last = checkpoint;
            for item in commits.drain(..) {
                let delivery = item.map_err(|e| match Failure::from(e) {
                    Failure::Halt { error, .. } => Failure::Halt {
                        position: last,
                        error,
                    },
                    transient => transient,
                })?;
                let recorded = match delivery {
                    Delivery::Commit(recorded) => recorded,
                    // Nothing up to there is of concern to this read model.
                    Delivery::Passed(position) => {
                        last = last.max(position);
                        continue;
                    }
                };
                if recorded.position <= last {
                    continue;
                }
                self.projection
                    .apply(&recorded, &mut changes)
                    .map_err(|error| Failure::Halt {
                        position: last,
                        error: format!(
                            "commit {} ({}): {error}",
                            recorded.position, recorded.commit.stream
                        ),
                    })?;
                last = recorded.position;
            }
            if last == checkpoint {
                continue;
            }
            let batch = Batch {
                changes,
                from: checkpoint,
                to: last,
            };
            if to_writer.send(batch).await.is_err() {
                return Ok(());
            }
            checkpoint = last;
            if until.is_some_and(|until| checkpoint >= until) {
                return Ok(());
            }
        }
    }

    async fn record_halt(&self, position: u64, error: &str) -> Result<(), sqlx::Error> {
        let name = self.projection.name();
        crate::with_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, position, status, last_error, updated_at) \
                 VALUES ($1, $2, 'halted', $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET status = 'halted', last_error = EXCLUDED.last_error, \
                 updated_at = EXCLUDED.updated_at",
            )
            .bind(name)
            .bind(to_i64(position))
            .bind(error)
            .bind(now_millis())
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}

/// Relays other nodes' progress (`NOTIFY vigil_projections, '<name>:<position>'`) to this node's
/// read-your-writes waits, with one listening connection for all projections.
async fn follow(
    mut listener: PgListener,
    senders: Vec<(&'static str, Arc<watch::Sender<Progress>>)>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let notification = tokio::select! {
            notification = listener.recv() => notification,
            _ = stopped.changed() => return,
        };
        match notification {
            Ok(notification) => {
                let Some((name, position)) = notification.payload().rsplit_once(':') else {
                    continue;
                };
                let (Some((_, sender)), Ok(position)) =
                    (senders.iter().find(|(n, _)| *n == name), position.parse())
                else {
                    continue;
                };
                sender.send_if_modified(|p| advance(p, position));
            }
            Err(error) => {
                // PgListener reconnects on the next `recv`; followers also poll checkpoints.
                tracing::warn!(%error, "projection notifications interrupted");
                tokio::time::sleep(FOLLOW_INTERVAL).await;
            }
        }
    }
}

/// Row changes for the commits after `from` up to `to`.
struct Batch {
    changes: Changes,
    from: u64,
    to: u64,
}

/// Writes batches in order, each with its checkpoint, publishing progress after each.
///
/// A batch without row changes is published at once but its checkpoint is stored with the next
/// batch that has changes, or after [`CHECKPOINT_DELAY`] (or when the batches end), whichever
/// comes first: most commits are of no concern to most read models, and storing each of their
/// checkpoints was most of the read store's work under load. A crash loses only such checkpoints,
/// whose commits are then applied again, changing nothing; other nodes see the read model move
/// that much later.
async fn write_batches(
    store: ReadStore,
    name: &'static str,
    progress: Arc<watch::Sender<Progress>>,
    mut batches: mpsc::Receiver<Batch>,
    derived: Option<(&'static Table, Arc<Notify>)>,
) -> Result<(), Failure> {
    // The stored checkpoint and the position published beyond it, with when to store it.
    let mut deferred: Option<(u64, u64, tokio::time::Instant)> = None;
    loop {
        let next = match deferred {
            Some((_, _, due)) => tokio::select! {
                batch = batches.recv() => batch,
                () = tokio::time::sleep_until(due) => None,
            },
            None => batches.recv().await,
        };
        let Some(Batch { changes, from, to }) = next else {
            if let Some((stored, published, _)) = deferred.take() {
                write(&store, name, Changes::default(), stored, published).await?;
            }
            if batches.is_closed() && batches.is_empty() {
                return Ok(());
            }
            continue;
        };
        let from = deferred.map_or(from, |(stored, _, _)| stored);
        if changes.is_empty() {
            let due = deferred.map_or_else(
                || tokio::time::Instant::now() + CHECKPOINT_DELAY,
                |(_, _, due)| due,
            );
            deferred = Some((from, to, due));
            progress.send_replace(Progress::Running(to));
            continue;
        }
        deferred = None;
        let changed = derived
            .as_ref()
            .filter(|(source, _)| changes.touches(source))
            .map(|(_, changed)| changed.clone());
        write(&store, name, changes, from, to)
            .await
            .map_err(|failure| match failure {
                Failure::Halt { error, .. } => Failure::Halt {
                    position: from,
                    error,
                },
                transient => transient,
            })?;
        progress.send_replace(Progress::Running(to));
        if let Some(changed) = changed {
            changed.notify_one();
        }
    }
}

/// Writes one batch and moves the checkpoint from `from` to `to`, atomically.
///
/// The transaction does not wait for its commit record to reach disk (`synchronous_commit = off`,
/// set on every connection of the read store's pool): a crash can lose the last batches, but only
/// together with their checkpoint, so they are applied again from the log. Nothing is lost or
/// applied twice.
async fn write(
    store: &ReadStore,
    name: &str,
    changes: Changes,
    from: u64,
    to: u64,
) -> Result<(), Failure> {
    let moved = match store {
        // A batch without row changes (the commits were of no concern to the read model) is one
        // statement, its own transaction: the checkpoint and the notification.
        ReadStore::Postgres(pool) if changes.is_empty() => {
            move_checkpoint_postgres(pool, name, from, to).await?
        }
        ReadStore::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            changes.flush_postgres(&mut tx).await?;
            let moved = move_checkpoint_postgres(&mut *tx, name, from, to).await?;
            if moved {
                tx.commit().await?;
            }
            moved
        }
        ReadStore::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            changes.flush_sqlite(&mut tx).await?;
            let moved = move_checkpoint_sqlite(&mut tx, name, from, to).await?;
            if moved {
                tx.commit().await?;
            }
            moved
        }
    };
    if moved {
        Ok(())
    } else {
        Err(Failure::Transient(format!(
            "checkpoint of {name} moved away from {from}: another projector is writing"
        )))
    }
}

const MOVE_CHECKPOINT: &str = "INSERT INTO projection_checkpoints (name, position, status, last_error, updated_at) \
     VALUES ($1, $2, 'running', NULL, $4) \
     ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, status = 'running', \
     last_error = NULL, updated_at = EXCLUDED.updated_at \
     WHERE projection_checkpoints.position = $3";

/// Moves the checkpoint from `from` to `to` inside the batch's transaction; `false` when another
/// projector moved it first.
async fn move_checkpoint_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    name: &str,
    from: u64,
    to: u64,
) -> Result<bool, sqlx::Error> {
    let affected = sqlx::query(MOVE_CHECKPOINT)
        .bind(name)
        .bind(to_i64(to))
        .bind(to_i64(from))
        .bind(now_millis())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(affected == 1)
}

/// Moves the checkpoint from `from` to `to` and tells the other nodes (`NOTIFY`, delivered when
/// the transaction commits), in one statement; `false` when another projector moved it first.
async fn move_checkpoint_postgres<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    name: &str,
    from: u64,
    to: u64,
) -> Result<bool, sqlx::Error> {
    static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("WITH moved AS ({MOVE_CHECKPOINT} RETURNING 1) SELECT pg_notify($5, $6) FROM moved")
    });
    let notified = sqlx::query(sqlx::AssertSqlSafe(STATEMENT.as_str()))
        .bind(name)
        .bind(to_i64(to))
        .bind(to_i64(from))
        .bind(now_millis())
        .bind(CHANNEL)
        .bind(format!("{name}:{to}"))
        .fetch_optional(executor)
        .await?;
    Ok(notified.is_some())
}

fn advance(progress: &mut Progress, position: u64) -> bool {
    match progress {
        Progress::Running(current) if *current < position => {
            *current = position;
            true
        }
        _ => false,
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
