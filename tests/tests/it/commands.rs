//! The command flow on the real logs: retries, stale caches on several nodes, uniqueness.

use std::sync::Arc;

use vigil_commands::CommandBus;
use vigil_commands::CommandError;
use vigil_commands::ids::{self, IdGenerator};
use vigil_commands::unique::Unique;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Commit};
use vigil_domain::event::ReservationEvent;
use vigil_domain::id::StreamId;
use vigil_domain::reservation::{self, Claimed};
use vigil_domain::users::role::{Role, RoleCommand, RoleError};
use vigil_domain::users::user::{PasswordHash, Registration, User, UserCommand, UserError};
use vigil_domain::value::{Email, Timestamp};
use vigil_tests::{TestEnv, log_of};

use crate::in_both_deployments;

use vigil_tests::system_meta as meta;

fn create_role(name: &str) -> RoleCommand {
    RoleCommand::Create {
        name: name.into(),
        description: String::new(),
    }
}

fn grant(permission: &str) -> RoleCommand {
    RoleCommand::AddPermissions {
        permissions: vec![permission.into()],
    }
}

fn register(email: &str) -> UserCommand {
    UserCommand::Register(Registration {
        email: Email::parse(email).unwrap(),
        first_name: "Jane".into(),
        last_name: "Doe".into(),
        phone_number: None,
        language: "EN".into(),
        time_zone: "UTC".into(),
        password_hash: PasswordHash("$argon2id$unused".into()),
        activated: false,
        activation_request: None,
        oidc: None,
    })
}

in_both_deployments! {
    async fn a_retried_command_returns_its_original_outcome(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let bus = CommandBus::new(log_of(&env).await?);
        let role = StreamId::of(Role::KIND, IdGenerator::new().next());
        let meta = meta();
        let first = bus.execute::<Role>(&role, &create_role("nurse"), &meta).await?;
        let again = bus.execute::<Role>(&role, &create_role("nurse"), &meta).await?;
        assert_eq!(first, again);
        // A node that has never seen the stream recognises the retry too.
        let other_node = CommandBus::new(log_of(&env).await?);
        assert_eq!(other_node.execute::<Role>(&role, &create_role("nurse"), &meta).await?, first);
        assert_eq!(bus.log().read_stream(&role, 0).await?.len(), 1);
        Ok(())
    }
}

in_both_deployments! {
    async fn nodes_with_stale_caches_decide_on_the_latest_state(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let (a, b) = (CommandBus::new(log.clone()), CommandBus::new(log.clone()));
        let role = StreamId::of(Role::KIND, IdGenerator::new().next());
        a.execute::<Role>(&role, &create_role("nurse"), &meta()).await?;
        b.execute::<Role>(&role, &grant("VIEW_USER"), &meta()).await?;
        // `a` still caches the role without permissions: its append conflicts and it decides again.
        let outcome = a.execute::<Role>(&role, &grant("CREATE_ROLE"), &meta()).await?;
        assert_eq!(outcome.version, 3);
        // A no-op decided on a stale cache is confirmed against the log first.
        b.execute::<Role>(&role, &grant("DELETE_ROLE"), &meta()).await?;
        let nothing = a.execute::<Role>(&role, &grant("VIEW_USER"), &meta()).await?;
        assert!(!nothing.appended);
        assert_eq!(nothing.version, 4);
        let (state, _) = a.load::<Role>(&role).await?;
        assert_eq!(state.permissions.len(), 3);
        Ok(())
    }
}

in_both_deployments! {
    async fn concurrent_commands_on_one_stream_all_land(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let role = StreamId::of(Role::KIND, IdGenerator::new().next());
        CommandBus::new(log.clone()).execute::<Role>(&role, &create_role("nurse"), &meta()).await?;
        let mut tasks = Vec::new();
        for n in 0..8 {
            let bus = Arc::new(CommandBus::new(log.clone()));
            let role = role.clone();
            tasks.push(tokio::spawn(async move {
                bus.execute::<Role>(&role, &grant(&format!("VIEW_DOCUMENTS:p{n}")), &meta()).await
            }));
        }
        for task in tasks {
            task.await??;
        }
        let (state, head) = CommandBus::new(log).load::<Role>(&role).await?;
        assert_eq!(state.permissions.len(), 8);
        assert_eq!(head.map(|h| h.version), Some(9));
        Ok(())
    }
}

in_both_deployments! {
    async fn an_email_is_registered_once_under_concurrency(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let ids = IdGenerator::new();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let bus = CommandBus::new(log.clone());
            let user = StreamId::of(User::KIND, ids.next());
            tasks.push(tokio::spawn(async move {
                let email = Unique { namespace: "email", value: "jane@example.com".into() };
                bus.execute_unique::<User>(&user, &register("jane@example.com"), &[email], &meta()).await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await? {
                Ok(_) => won += 1,
                Err(CommandError::Taken("email")) => {}
                Err(other) => anyhow::bail!("unexpected: {other}"),
            }
        }
        assert_eq!(won, 1);
        Ok(())
    }
}

in_both_deployments! {
    async fn a_claim_whose_owner_never_committed_is_taken_over(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let ids = IdGenerator::new();
        // A process claimed the email a minute ago and died before registering its user.
        let dead_owner = StreamId::of(User::KIND, ids.next());
        let claim = ReservationEvent::Claimed(Claimed {
            owner: dead_owner,
            command_id: "died".into(),
            claimed_at: Timestamp(ids::now().millis() - 60_000),
        });
        let stream = reservation::stream("email", "jane@example.com");
        log.append(&Commit::next(stream, None, &meta(), ids::now(), vec![claim.into()]), 0).await?;
        let bus = CommandBus::new(log);
        let user = StreamId::of(User::KIND, ids.next());
        let email = Unique { namespace: "email", value: "jane@example.com".into() };
        bus.execute_unique::<User>(&user, &register("jane@example.com"), std::slice::from_ref(&email), &meta()).await?;
        // Now held by a committed owner: refused.
        let late = StreamId::of(User::KIND, ids.next());
        let refused = bus.execute_unique::<User>(&late, &register("jane@example.com"), &[email], &meta()).await;
        assert!(matches!(refused, Err(CommandError::Taken("email"))));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_failed_command_releases_its_claims(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let bus = CommandBus::new(log_of(&env).await?);
        let ids = IdGenerator::new();
        let user = StreamId::of(User::KIND, ids.next());
        // Adding roles to a user that does not exist fails after the claim was made.
        let email = Unique { namespace: "email", value: "jane@example.com".into() };
        let failed = bus
            .execute_unique::<User>(&user, &UserCommand::AddRoles { role_ids: vec![ids.next()] }, std::slice::from_ref(&email), &meta())
            .await;
        assert!(matches!(failed, Err(CommandError::Domain(UserError::NotFound))));
        let other = StreamId::of(User::KIND, ids.next());
        bus.execute_unique::<User>(&other, &register("jane@example.com"), &[email], &meta()).await?;
        Ok(())
    }
}

in_both_deployments! {
    async fn unauthorized_commands_never_reach_the_log(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let bus = CommandBus::new(log_of(&env).await?);
        let role = StreamId::of(Role::KIND, IdGenerator::new().next());
        let nobody = CommandMeta {
            actor: Actor::anonymous(None, Via::Http, None),
            ..meta()
        };
        let refused = bus.execute::<Role>(&role, &create_role("nurse"), &nobody).await;
        assert!(matches!(refused, Err(CommandError::Domain(RoleError::NoPermission("CREATE_ROLE")))));
        assert_eq!(bus.log().head().await?, 0);
        Ok(())
    }
}

in_both_deployments! {
    async fn an_interrupted_bootstrap_is_finished_by_the_next_one(deployment: Deployment) {
        use vigil_commands::bootstrap::{self, BootstrapError};
        use vigil_domain::deployment::{self, Bootstrapped, Deployment, DeploymentCommand};
        let env = TestEnv::new(deployment).await?;
        let bus = CommandBus::new(log_of(&env).await?);
        let ids = IdGenerator::new();
        // A bootstrap that died right after marking the deployment and creating the role.
        let marker = Bootstrapped {
            admin_user_id: ids.next(),
            admin_role_id: ids.next(),
            application_id: ids.next(),
        };
        bus.execute::<Deployment>(&deployment::stream(), &DeploymentCommand::Bootstrap(marker.clone()), &meta()).await?;
        bus.execute::<Role>(&StreamId::of(Role::KIND, marker.admin_role_id), &create_role("Administrator"), &meta()).await?;

        let finished = bootstrap::bootstrap(&bus, &ids, Via::Cli, "admin@example.com", "correct horse battery").await?;
        assert_eq!((finished.user_id, finished.application_id), (marker.admin_user_id, marker.application_id));
        let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, marker.admin_user_id)).await?;
        assert!(user.registered && user.role_ids.contains(&marker.admin_role_id));
        let (role, _) = bus.load::<Role>(&StreamId::of(Role::KIND, marker.admin_role_id)).await?;
        assert!(role.permissions.contains("VIEW_USER"));

        let again = bootstrap::bootstrap(&bus, &ids, Via::Cli, "other@example.com", "another password").await;
        assert!(matches!(again, Err(BootstrapError::AlreadyBootstrapped)));
        Ok(())
    }
}
