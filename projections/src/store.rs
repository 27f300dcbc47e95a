//! The read store: Postgres in production, SQLite embedded. Both hold the same tables (migrations
//! per backend in `migrations/`), and most code is written once for both with [`with_pool!`].

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, SqlitePool};

static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A connection pool to the read models.
#[derive(Clone, Debug)]
pub enum ReadStore {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach the read store at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("read-store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("read-store query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Runs the same code against whichever pool `store` holds; `$pool` is a `&PgPool` in one arm
/// and a `&SqlitePool` in the other, so the body must type-check for both.
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::ReadStore::Postgres($pool) => $body,
            $crate::store::ReadStore::Sqlite($pool) => $body,
        }
    };
}

impl ReadStore {
    /// Connects to Postgres at `url` with up to `connections` pooled connections, and brings its
    /// schema up to date. (Each projector also holds one connection of its own for its lock.)
    pub async fn postgres(url: &str, connections: u32) -> Result<Self, StoreError> {
        let target = redact(url);
        let options: PgConnectOptions = url.parse().map_err(|source| StoreError::Connect {
            target: target.clone(),
            source,
        })?;
        let pool = PgPoolOptions::new()
            // Read models can be rebuilt from the log, so a commit need not wait for its record
            // to reach disk (a crash loses the last batches with their checkpoints, see runner).
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET synchronous_commit = off")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        POSTGRES.run(&pool).await?;
        Ok(Self::Postgres(pool))
    }

    /// Opens (creating if needed) the SQLite read store at `path` and brings it up to date.
    pub async fn sqlite(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Read models can be rebuilt from the log, so they need not fsync every commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                target: path.display().to_string(),
                source,
            })?;
        SQLITE.run(&pool).await?;
        Ok(Self::Sqlite(pool))
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((credentials, rest)) => match credentials.rsplit_once(':') {
            Some((user, _)) if user.contains("//") => format!("{user}:***@{rest}"),
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A stable 64-bit Postgres advisory-lock key for `name` (FNV-1a).
fn lock_key(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Tries to take the session advisory lock named `name`, which elects the one node running a
/// projection or a reactor: the connection holding it, or `None` when another session holds it.
/// The connection is detached from the pool, so the lock lives exactly as long as it: dropping it
/// closes the session, which releases the lock.
pub async fn try_lock(pool: &PgPool, name: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(name))
        .fetch_one(&mut *conn)
        .await?;
    Ok(locked.then(|| conn.detach()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/vigil"),
            "postgres://app:***@db:5432/vigil"
        );
        assert_eq!(super::redact("postgres://db/vigil"), "postgres://db/vigil");
    }
}
