//! Bootstrapping an empty deployment: an administrator holding every permission, and a
//! confidential OAuth2 application to log in with.
//!
//! The first commit on the deployment stream is the guard: it is appended only if the stream is
//! new, so two bootstraps racing on a fresh deployment cannot both proceed.

use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::{
    Application, ApplicationCommand, ApplicationError, ApplicationKind,
};
use vigil_domain::commit::CommandMeta;
use vigil_domain::deployment::{
    self, Bootstrapped, Deployment, DeploymentCommand, DeploymentError,
};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::permission::Permissions;
use vigil_domain::users::role::{Role, RoleCommand, RoleError};
use vigil_domain::users::user::{Registration, User, UserCommand, UserError};
use vigil_domain::value::Email;

use crate::flow::{CommandBus, CommandError};
use crate::ids::{self, IdGenerator};
use crate::secrets::{self, SecretError};

/// What the operator needs to log in; the secret is shown once and stored only as a digest.
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    pub user_id: Id,
    pub application_id: Id,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("this deployment is already bootstrapped")]
    AlreadyBootstrapped,
    #[error("the administrator email is not a valid email address")]
    InvalidEmail,
    #[error("the administrator password must be 8 to 128 characters")]
    WeakPassword,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("bootstrap failed: {0}")]
    Command(String),
    #[error("bootstrap failed: {0}")]
    Log(#[from] vigil_domain::log::LogError),
}

fn failed<E: std::fmt::Display>(error: CommandError<E>) -> BootstrapError {
    BootstrapError::Command(error.to_string())
}

/// Bootstraps an empty deployment, or finishes a bootstrap that was interrupted (the process
/// died after marking the deployment): the marker records every id, so each missing step is done
/// again under the same ids.
pub async fn bootstrap(
    bus: &CommandBus,
    ids: &IdGenerator,
    via: Via,
    email: &str,
    password: &str,
) -> Result<AdminCredentials, BootstrapError> {
    let email = Email::parse(email).map_err(|_| BootstrapError::InvalidEmail)?;
    if !(8..=128).contains(&password.chars().count()) {
        return Err(BootstrapError::WeakPassword);
    }
    let correlation_id = ids::command_id();
    let meta = || CommandMeta {
        command_id: ids::command_id(),
        correlation_id: correlation_id.clone(),
        causation_id: None,
        reason: Some("bootstrap".into()),
        actor: Actor::system(via),
    };
    let fresh = Bootstrapped {
        admin_user_id: ids.next(),
        admin_role_id: ids.next(),
        application_id: ids.next(),
    };
    let marked = bus
        .execute::<Deployment>(
            &deployment::stream(),
            &DeploymentCommand::Bootstrap(fresh.clone()),
            &meta(),
        )
        .await;
    let marker = match marked {
        Ok(_) => fresh,
        Err(CommandError::Domain(DeploymentError::AlreadyBootstrapped)) => {
            let (deployment, _) = bus.load::<Deployment>(&deployment::stream()).await?;
            let marker = deployment
                .bootstrapped
                .ok_or(BootstrapError::AlreadyBootstrapped)?;
            let (application, _) = bus
                .load::<Application>(&StreamId::of(Application::KIND, marker.application_id))
                .await?;
            // The application's credentials are the last step: with them, the bootstrap finished.
            if !application.versions.is_empty() {
                return Err(BootstrapError::AlreadyBootstrapped);
            }
            tracing::warn!("finishing a bootstrap that was interrupted");
            marker
        }
        Err(other) => return Err(failed(other)),
    };

    let role = StreamId::of(Role::KIND, marker.admin_role_id);
    let (role_state, _) = bus.load::<Role>(&role).await?;
    if !role_state.created {
        let create_role = RoleCommand::Create {
            name: "Administrator".into(),
            description: "Every permission, given to the bootstrapped administrator".into(),
        };
        bus.execute::<Role>(&role, &create_role, &meta())
            .await
            .map_err(failed::<RoleError>)?;
    }
    let grant = RoleCommand::AddPermissions {
        permissions: Permissions::all().iter().map(str::to_owned).collect(),
    };
    bus.execute::<Role>(&role, &grant, &meta())
        .await
        .map_err(failed::<RoleError>)?;

    let user = StreamId::of(User::KIND, marker.admin_user_id);
    let (user_state, _) = bus.load::<User>(&user).await?;
    if !user_state.registered {
        let password_hash = secrets::hash_password(password.to_owned()).await?;
        let register = UserCommand::Register(Registration {
            email: email.clone(),
            first_name: "Vigil".into(),
            last_name: "Administrator".into(),
            phone_number: None,
            language: "EN".into(),
            time_zone: "UTC".into(),
            password_hash,
            activated: true,
            activation_request: None,
            oidc: None,
        });
        let unique_email = crate::users::user::email_reservation(&email);
        bus.execute_unique::<User>(&user, &register, &[unique_email], &meta())
            .await
            .map_err(failed::<UserError>)?;
    }
    let add_role = UserCommand::AddRoles {
        role_ids: vec![marker.admin_role_id],
    };
    bus.execute::<User>(&user, &add_role, &meta())
        .await
        .map_err(failed::<UserError>)?;

    let application = StreamId::of(Application::KIND, marker.application_id);
    let (application_state, _) = bus.load::<Application>(&application).await?;
    if !application_state.created {
        let create_application = ApplicationCommand::Create {
            name: "Vigil administration".into(),
            description: "Confidential OAuth2 application created at bootstrap".into(),
            kind: ApplicationKind::OAuth2 {
                confidential: true,
                redirect_uris: vec![],
            },
        };
        bus.execute::<Application>(&application, &create_application, &meta())
            .await
            .map_err(failed::<ApplicationError>)?;
    }
    let (client_id, _) = secrets::new_token();
    let (client_secret, secret_digest) = secrets::new_token();
    let version = ApplicationCommand::CreateVersion {
        version_id: ids.next(),
        name: "1".into(),
        client_id: client_id.clone(),
        secret_digest,
        sealed_secret: None,
    };
    bus.execute::<Application>(&application, &version, &meta())
        .await
        .map_err(failed::<ApplicationError>)?;

    Ok(AdminCredentials {
        user_id: marker.admin_user_id,
        application_id: marker.application_id,
        client_id,
        client_secret,
    })
}
