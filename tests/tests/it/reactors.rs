//! The reactor runner: checkpoints, resumption after a crash, repeated reactions, takeover.
//!
//! The reactor under test mirrors role commits: for each, it adds a permission naming the
//! commit's position to one mirror role, through the command bus, with a command id keyed by the
//! causing commit. A repeated reaction adds nothing, so the mirror's history shows whether any
//! commit was reacted to twice in effect, and the positions each reactor was handed show where it
//! resumed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use vigil_commands::CommandBus;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::Filter;
use vigil_domain::users::role::{Role, RoleCommand};
use vigil_projections::store::ReadStore;
use vigil_scheduler::runner::{self, Reactor, Reactors, Retry};
use vigil_tests::{Deployment, TestEnv, system_meta};

use crate::in_both_deployments;

const NAME: &str = "mirror";

struct Mirror {
    bus: Arc<CommandBus>,
    mirror: StreamId,
    /// Every position this reactor was handed.
    handed: Arc<Mutex<Vec<u64>>>,
}

impl Reactor for Mirror {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Role::KIND])
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            self.handed
                .lock()
                .expect("not poisoned")
                .push(recorded.position);
            if recorded.commit.stream == self.mirror {
                return Ok(());
            }
            let cause = format!("{}@{}", recorded.commit.stream, recorded.commit.version);
            let meta = CommandMeta {
                command_id: format!("mirror/{cause}"),
                causation_id: Some(cause),
                ..system_meta()
            };
            let add = RoleCommand::AddPermissions {
                permissions: vec![format!("VIEW_DOCUMENTS:seen-{}", recorded.position)],
            };
            self.bus
                .execute::<Role>(&self.mirror, &add, &meta)
                .await
                .map_err(Retry::new)?;
            Ok(())
        })
    }
}

struct Setup {
    log: Arc<dyn vigil_domain::log::EventLog>,
    store: ReadStore,
    bus: Arc<CommandBus>,
    mirror: StreamId,
}

impl Setup {
    async fn new(env: &TestEnv) -> anyhow::Result<Self> {
        let storage = env.open().await?;
        let bus = Arc::new(CommandBus::new(storage.log.clone()));
        let mirror = StreamId::of(Role::KIND, Id::from_bytes(rand::random()));
        let create = RoleCommand::Create {
            name: "mirror".into(),
            description: String::new(),
        };
        bus.execute::<Role>(&mirror, &create, &system_meta())
            .await?;
        Ok(Self {
            log: storage.log,
            store: storage.store,
            bus,
            mirror,
        })
    }

    /// Starts a runner with the mirror reactor; the positions it is handed go to the result.
    fn start(&self, checkpoint_every: Duration) -> (Reactors, Arc<Mutex<Vec<u64>>>) {
        let handed = Arc::new(Mutex::new(Vec::new()));
        let reactor = Mirror {
            bus: self.bus.clone(),
            mirror: self.mirror.clone(),
            handed: handed.clone(),
        };
        let reactors = Reactors::start_with(
            self.log.clone(),
            self.store.clone(),
            vec![Box::new(reactor)],
            checkpoint_every,
        );
        (reactors, handed)
    }

    /// Creates a role; the position of its commit.
    async fn source(&self) -> anyhow::Result<u64> {
        let stream = StreamId::of(Role::KIND, Id::from_bytes(rand::random()));
        let create = RoleCommand::Create {
            name: "source".into(),
            description: String::new(),
        };
        Ok(self
            .bus
            .execute::<Role>(&stream, &create, &system_meta())
            .await?
            .position)
    }

    /// The mirror's commits after its creation, once it has `count` permissions.
    async fn mirrored(&self, count: usize) -> anyhow::Result<usize> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (role, _) = self.bus.load::<Role>(&self.mirror).await?;
            if role.permissions.len() >= count {
                assert_eq!(
                    role.permissions.len(),
                    count,
                    "more than mirrored: {role:?}"
                );
                let commits = self.log.read_stream(&self.mirror, 0).await?;
                return Ok(commits.len() - 1);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the mirror has {} of {count} permissions",
                role.permissions.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the stored checkpoint reaches `position`.
    async fn checkpointed(&self, position: u64) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stored = runner::checkpoint(&self.store, NAME).await?;
            if stored >= position {
                return Ok(stored);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the checkpoint stays at {stored}, short of {position}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn handed(positions: &Mutex<Vec<u64>>) -> Vec<u64> {
    positions.lock().expect("not poisoned").clone()
}

in_both_deployments! {
    async fn a_reactor_killed_resumes_after_its_checkpoint(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let setup = Setup::new(&env).await?;
        let (first, _) = setup.start(runner::CHECKPOINT_EVERY);
        let mut before = Vec::new();
        for _ in 0..3 {
            before.push(setup.source().await?);
        }
        assert_eq!(setup.mirrored(3).await?, 3);
        let last = setup.mirror_head().await?;
        let killed_at = setup.checkpointed(last).await?;
        first.abort();
        let mut after = Vec::new();
        for _ in 0..2 {
            after.push(setup.source().await?);
        }
        let (second, handed_second) = setup.start(runner::CHECKPOINT_EVERY);
        assert_eq!(setup.mirrored(5).await?, 5, "one commit per source commit");
        let handed = handed(&handed_second);
        assert!(
            handed.iter().all(|&p| p > killed_at),
            "the second run was handed commits at or before the checkpoint {killed_at}: {handed:?}"
        );
        for position in after {
            assert!(handed.contains(&position), "{position} was not handed: {handed:?}");
        }
        second.shutdown().await;
        Ok(())
    }
}

in_both_deployments! {
    async fn reactions_repeated_after_a_crash_change_nothing_twice(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let setup = Setup::new(&env).await?;
        // The checkpoint is never stored before the crash.
        let (first, _) = setup.start(Duration::from_secs(3600));
        let mut sources = Vec::new();
        for _ in 0..3 {
            sources.push(setup.source().await?);
        }
        assert_eq!(setup.mirrored(3).await?, 3);
        first.abort();
        assert_eq!(runner::checkpoint(&setup.store, NAME).await?, 0);
        let (second, handed_second) = setup.start(runner::CHECKPOINT_EVERY);
        let last = setup.mirror_head().await?;
        setup.checkpointed(last).await?;
        let handed = handed(&handed_second);
        for position in &sources {
            assert!(handed.contains(position), "{position} was not handed again: {handed:?}");
        }
        assert_eq!(setup.mirrored(3).await?, 3, "a repeated reaction appended a commit");
        second.shutdown().await;
        Ok(())
    }
}

impl Setup {
    /// The position of the mirror's last commit.
    async fn mirror_head(&self) -> anyhow::Result<u64> {
        let commits = self.log.read_stream(&self.mirror, 0).await?;
        commits
            .last()
            .map(|recorded| recorded.position)
            .ok_or_else(|| anyhow::anyhow!("the mirror has no commits"))
    }
}

/// On Postgres, one node runs a reactor at a time; when it stops (here: as if it crashed), another
/// takes over from its checkpoint. (The embedded deployment is one node.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_takes_over_when_the_first_stops() -> anyhow::Result<()> {
    let env = TestEnv::new(Deployment::Production).await?;
    let setup = Setup::new(&env).await?;
    let (one, handed_one) = setup.start(runner::CHECKPOINT_EVERY);
    let (two, handed_two) = setup.start(runner::CHECKPOINT_EVERY);
    for _ in 0..2 {
        setup.source().await?;
    }
    assert_eq!(setup.mirrored(2).await?, 2);
    let last = setup.mirror_head().await?;
    let stopped_at = setup.checkpointed(last).await?;
    let (leader, follower, handed_follower) = match (
        handed(&handed_one).is_empty(),
        handed(&handed_two).is_empty(),
    ) {
        (false, true) => (one, two, handed_two),
        (true, false) => (two, one, handed_one),
        other => anyhow::bail!("one node and only one should react: {other:?}"),
    };
    leader.abort();
    let later = setup.source().await?;
    assert_eq!(setup.mirrored(3).await?, 3);
    let handed = handed(&handed_follower);
    assert!(
        handed.contains(&later),
        "the follower did not take over: {handed:?}"
    );
    assert!(
        handed.iter().all(|&p| p > stopped_at),
        "the follower re-read commits before the checkpoint {stopped_at}: {handed:?}"
    );
    follower.shutdown().await;
    Ok(())
}

/// Follows a kind nothing is written to.
struct Idle;

impl Reactor for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&["group"])
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            Err(Retry(format!(
                "handed a commit of {}",
                recorded.commit.stream
            )))
        })
    }
}

in_both_deployments! {
    async fn a_reactor_of_a_kind_never_written_keeps_its_checkpoint_at_the_head(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let setup = Setup::new(&env).await?;
        let reactors = Reactors::start(setup.log.clone(), setup.store.clone(), vec![Box::new(Idle)]);
        let mut last = 0;
        for _ in 0..3 {
            last = setup.source().await?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while runner::checkpoint(&setup.store, "idle").await? < last {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the checkpoint did not reach {last}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reactors.shutdown().await;
        Ok(())
    }
}

in_both_deployments! {
    async fn a_bulk_job_left_half_done_is_finished_by_the_scheduler(deployment: Deployment) {
        use vigil_domain::users::bulk::{BulkChange, BulkCommand, BulkJob};
        use vigil_domain::users::user::{PasswordHash, User, UserCommand};
        let env = TestEnv::new(deployment).await?;
        let setup = Setup::new(&env).await?;
        let bus = &setup.bus;
        let mut users = Vec::new();
        for n in 0..3 {
            let email = format!("user{n}@example.com");
            // No password: none is needed here.
            let (id, _) = crate::http::registered(bus, &email, PasswordHash(String::new())).await?;
            users.push(id);
        }
        let role = Id::from_bytes(rand::random());
        let change = BulkChange::AddRoles { role_ids: vec![role] };

        // A node recorded the job and changed the first user, then stopped.
        let job = Id::from_bytes(rand::random());
        let job_stream = StreamId::of(BulkJob::KIND, job);
        bus.execute::<BulkJob>(&job_stream, &BulkCommand::Start { change, user_ids: users.clone() }, &system_meta()).await?;
        let first = CommandMeta { command_id: format!("{job_stream}/{}", users[0]), ..system_meta() };
        bus.execute::<User>(&StreamId::of(User::KIND, users[0]), &UserCommand::AddRoles { role_ids: vec![role] }, &first).await?;

        let bulk = vigil_scheduler::bulk::BulkJobs::with_grace(bus.clone(), Duration::from_millis(100));
        let reactors = Reactors::start(setup.log.clone(), setup.store.clone(), vec![Box::new(bulk)]);
        let mut finished = None;
        for _ in 0..200 {
            let (state, _) = bus.load::<BulkJob>(&job_stream).await?;
            if let Some(affected) = state.affected {
                finished = Some(affected);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reactors.shutdown().await;
        assert_eq!(finished, Some(3), "the job was not finished");
        for user in &users {
            let (state, _) = bus.load::<User>(&StreamId::of(User::KIND, *user)).await?;
            assert!(state.role_ids.contains(&role), "{user}");
        }
        // The first user's change was not made twice, and the rest were caused by the job.
        let first_history = setup.log.read_stream(&StreamId::of(User::KIND, users[0]), 0).await?;
        assert_eq!(first_history.iter().filter(|c| c.commit.command_id.starts_with(&job_stream.to_string())).count(), 1);
        let last = setup.log.read_stream(&StreamId::of(User::KIND, users[2]), 0).await?;
        let caused = last.last().and_then(|c| c.commit.causation_id.clone());
        assert_eq!(caused, Some(job_stream.to_string()));
        Ok(())
    }
}
