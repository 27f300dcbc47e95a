//! The projection runner on both read stores: catching up, rebuilding to the same rows, halting on
//! a commit it cannot apply, and several projectors sharing one Postgres database.

use std::sync::Arc;
use std::time::Duration;

use vigil_commands::auth::session;
use vigil_commands::ids::IdGenerator;
use vigil_commands::{CommandBus, bootstrap};
use vigil_domain::actor::Via;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::Event;
use vigil_domain::id::StreamId;
use vigil_domain::log::Filter;
use vigil_domain::users::role::{Role, RoleCommand};
use vigil_projections::runner::{
    self, Progress, Projection, ProjectionError, Projector, WaitError,
};
use vigil_projections::store::ReadStore;
use vigil_projections::table::{Changes, Table};
use vigil_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Deployment, TestEnv, system_meta};

use crate::in_both_deployments;

/// Every row of every read model, as text, in key order.
async fn dump(store: &ReadStore) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for projection in vigil_projections::all() {
        for table in projection.tables() {
            let columns: Vec<String> = table
                .columns
                .iter()
                .map(|(name, _)| format!("COALESCE(CAST({name} AS TEXT), '-')"))
                .collect();
            let keys: Vec<&str> = table.columns[..table.key_len]
                .iter()
                .map(|(name, _)| *name)
                .collect();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                columns.join(" || '|' || "),
                table.name,
                keys.join(", ")
            );
            let found: Vec<Option<String>> = vigil_projections::with_pool!(store, pool => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
            });
            rows.extend(
                found
                    .into_iter()
                    .map(|row| format!("{}: {}", table.name, row.unwrap_or_default())),
            );
        }
    }
    Ok(rows)
}

/// The names of the read store's indexes, sorted.
async fn index_names(store: &ReadStore) -> anyhow::Result<Vec<String>> {
    let sql = match store {
        ReadStore::Postgres(_) => {
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
        }
        ReadStore::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY 1",
    };
    Ok(vigil_projections::with_pool!(store, pool => sqlx::query_scalar(sql).fetch_all(pool).await?))
}

/// A deployment with some history: a bootstrap and a refreshed login.
async fn history(env: &TestEnv) -> anyhow::Result<(CommandBus, u64)> {
    let storage = env.open().await?;
    let bus = CommandBus::new(storage.log.clone());
    let ids = IdGenerator::new();
    let admin = bootstrap::bootstrap(&bus, &ids, Via::Cli, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let login = session::password_login(
        &bus,
        &ids,
        Default::default(),
        admin.application_id,
        ADMIN_EMAIL,
        ADMIN_PASSWORD.into(),
        system_meta(),
    )
    .await?;
    let refreshed = session::refresh(
        &bus,
        &ids,
        Default::default(),
        login.session_id,
        admin.application_id,
        &login.refresh_token,
        &system_meta(),
    )
    .await?;
    let head = bus.log().head().await?;
    anyhow::ensure!(head == refreshed.outcome.position);
    Ok((bus, head))
}

in_both_deployments! {
    async fn read_models_catch_up_and_rebuild_to_the_same_rows(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let (bus, head) = history(&env).await?;
        let store = env.open().await?.store;
        let projector = Projector::start(store.clone(), bus.log().clone(), vigil_projections::all()).await?;
        projector.wait_for(head, Duration::from_secs(20)).await?;
        let before = dump(&store).await?;
        assert!(before.iter().any(|row| row.starts_with("users_v1: ") && row.contains("admin@example.com")));
        assert!(before.iter().any(|row| row.starts_with("oauth2_access_tokens_v1: ")));
        projector.shutdown().await;
        let indexes = index_names(&store).await?;
        assert!(indexes.iter().any(|name| name == "users_v1_email"), "{indexes:?}");
        let rebuilt_to = runner::rebuild(&store, bus.log().clone(), vigil_projections::all()).await?;
        assert_eq!(rebuilt_to, head);
        assert_eq!(dump(&store).await?, before);
        // The secondary indexes dropped for the bulk load are back.
        assert_eq!(index_names(&store).await?, indexes);
        Ok(())
    }
}

in_both_deployments! {
    async fn indexes_a_rebuild_left_dropped_are_recreated_at_start(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let storage = env.open().await?;
        let indexes = index_names(&storage.store).await?;
        // What an interrupted rebuild leaves behind: the index gone, its definition recorded.
        let definition = "CREATE UNIQUE INDEX users_v1_email ON users_v1 (email)";
        vigil_projections::with_pool!(&storage.store, pool => {
            sqlx::query("DROP INDEX users_v1_email").execute(pool).await?;
            sqlx::query("INSERT INTO projection_deferred_indexes VALUES ('users_v1_email', 'users_v1', $1)")
                .bind(definition)
                .execute(pool)
                .await?;
        });
        assert_ne!(index_names(&storage.store).await?, indexes);
        let projector = Projector::start(storage.store.clone(), storage.log.clone(), vigil_projections::all()).await?;
        assert_eq!(index_names(&storage.store).await?, indexes);
        projector.shutdown().await;
        Ok(())
    }
}

/// A read model that cannot apply role commits.
struct Refuses;

static NOTHING: [&Table; 0] = [];

impl Projection for Refuses {
    fn name(&self) -> &'static str {
        "refuses_roles_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Role::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &NOTHING
    }

    fn apply(&self, recorded: &Recorded, _: &mut Changes) -> Result<(), ProjectionError> {
        if recorded
            .commit
            .events
            .iter()
            .any(|e| matches!(e, Event::Role(_)))
        {
            return Err(ProjectionError::Refused(
                "roles are not understood here".into(),
            ));
        }
        Ok(())
    }
}

in_both_deployments! {
    async fn a_commit_a_read_model_cannot_apply_halts_it_and_nothing_is_skipped(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let (bus, head) = history(&env).await?;
        let store = env.open().await?.store;
        let mut projections = vigil_projections::all();
        projections.push(Arc::new(Refuses));
        let projector = Projector::start(store.clone(), bus.log().clone(), projections).await?;
        let waited = projector.wait_for(head, Duration::from_secs(20)).await;
        assert!(matches!(waited, Err(WaitError::Halted { name: "refuses_roles_v1", .. })), "{waited:?}");
        let status = projector.status();
        let halted = status.iter().find(|(name, _)| *name == "refuses_roles_v1").map(|(_, p)| p.clone());
        let Some(Progress::Halted { position, .. }) = halted else {
            anyhow::bail!("not halted: {status:?}");
        };
        assert!(position < head, "it must stop before the role commits");
        let recorded: Option<(String, i64)> = vigil_projections::with_pool!(&store, pool => {
            sqlx::query_as("SELECT status, position FROM projection_checkpoints WHERE name = 'refuses_roles_v1'")
                .fetch_optional(pool)
                .await?
        });
        assert_eq!(recorded.map(|(status, _)| status), Some("halted".into()));
        // The other read models are unaffected.
        for (name, progress) in status {
            if name != "refuses_roles_v1" {
                assert_eq!(progress, Progress::Running(head), "{name}");
            }
        }
        projector.shutdown().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_share_one_postgres_read_store() -> anyhow::Result<()> {
    let env = TestEnv::new(Deployment::Production).await?;
    let (bus, head) = history(&env).await?;
    let first = env.open().await?;
    let second = env.open().await?;
    let a = Projector::start(
        first.store.clone(),
        first.log.clone(),
        vigil_projections::all(),
    )
    .await?;
    let b = Projector::start(
        second.store.clone(),
        second.log.clone(),
        vigil_projections::all(),
    )
    .await?;
    // Both nodes see every read model reach the head, whichever node projects it.
    a.wait_for(head, Duration::from_secs(20)).await?;
    b.wait_for(head, Duration::from_secs(20)).await?;
    let rows = dump(&first.store).await?;
    // When the projecting node stops, the other takes over.
    a.shutdown().await;
    let more = history_more(&bus).await?;
    b.wait_for(more, Duration::from_secs(20)).await?;
    assert!(dump(&second.store).await?.len() > rows.len());
    b.shutdown().await;
    Ok(())
}

/// One more role on an existing deployment; returns the new head.
async fn history_more(bus: &CommandBus) -> anyhow::Result<u64> {
    let role = StreamId::of(Role::KIND, IdGenerator::new().next());
    let create = RoleCommand::Create {
        name: "nurse".into(),
        description: String::new(),
    };
    bus.execute::<Role>(&role, &create, &system_meta()).await?;
    Ok(bus.log().head().await?)
}

/// Upserts `count` roles named after `name`, with ids from `first`, at `position`, in one batch.
async fn write_roles(
    store: &ReadStore,
    first: u32,
    count: u32,
    name: &str,
    position: u64,
) -> anyhow::Result<()> {
    use vigil_projections::users::role::ROLES;
    let mut changes = Changes::default();
    for n in first..first + count {
        let cells = [
            ("id", format!("{n:024x}").into()),
            ("name", format!("{name} {n}").into()),
            (
                "description",
                "tab\there, newline\nhere, backslash\\here".into(),
            ),
            ("creation_timestamp", 1i64.into()),
            ("update_timestamp", 1i64.into()),
        ];
        changes.upsert(&ROLES, position, cells)?;
    }
    match store {
        ReadStore::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            changes.flush_postgres(&mut tx).await?;
            tx.commit().await?;
        }
        ReadStore::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            changes.flush_sqlite(&mut tx).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

in_both_deployments! {
    /// Large batches reach Postgres as one COPY; a batch with a key that exists already falls back
    /// to upserts, and both paths keep text exactly.
    async fn large_batches_keep_every_row_and_every_character(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let store = env.open().await?.store;
        write_roles(&store, 0, 100, "first", 1).await?;
        // Overlaps the first batch by one key.
        write_roles(&store, 99, 100, "second", 2).await?;
        let rows: Vec<(String, String, String)> = vigil_projections::with_pool!(&store, pool => {
            sqlx::query_as("SELECT id, name, description FROM roles_v1 ORDER BY id").fetch_all(pool).await?
        });
        assert_eq!(rows.len(), 199);
        assert_eq!(rows[0].1, "first 0");
        assert_eq!(rows[99].1, "second 99");
        assert!(rows.iter().all(|(_, _, d)| d == "tab\there, newline\nhere, backslash\\here"));
        Ok(())
    }
}
