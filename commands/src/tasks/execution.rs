//! A function's execution credentials, made by Vigil on request (`POST
//! /tasks/v1/functions/{name}/executionCredentials`) as the Extra Horizon CLI makes them for a
//! task: a role holding the permissions asked for, a user holding only that role, an OAuth1
//! application and a token of that user, handed to the function's code in the environment
//! variables Extra Horizon functions read (`API_HOST`, `API_OAUTH_CONSUMER_KEY`,
//! `API_OAUTH_CONSUMER_SECRET`, `API_OAUTH_TOKEN`, `API_OAUTH_TOKEN_SECRET`), sealed like every
//! other variable. The user is also the identity a `rhai` function's host calls act as.
//!
//! Asked again, the role's permissions become the ones asked for, and a new token replaces the
//! old one, which is revoked. The user's password is random and never shown: nobody logs in as it.

use std::collections::BTreeSet;

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::{
    Application, ApplicationCommand, ApplicationError, ApplicationKind,
};
use vigil_domain::auth::oauth1::{OAuth1Token, OAuth1TokenCommand, OAuth1TokenError};
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::tasks::function::{
    self, EnvironmentVariable, ExecutionIdentity, Function, FunctionCommand, FunctionError,
    FunctionExecutionSet,
};
use vigil_domain::users::role::{Role, RoleCommand, RoleError};
use vigil_domain::users::user::{Registration, User, UserCommand, UserError};
use vigil_domain::value::Email;

use crate::auth::oauth1::{consumer_context, issue};
use crate::auth::session::{LoginError, as_user};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::IdGenerator;
use crate::secrets::{self, SecretError, Vault, VaultError};
use crate::users::user::email_reservation;

/// What the credentials are asked for with.
#[derive(Debug, Clone)]
pub struct Request {
    /// The permissions the function's role holds (each one the caller holds too).
    pub permissions: Vec<String>,
    /// The address the function's code reaches the API at (`API_HOST`).
    pub api_host: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    #[error("permission {0} is required to give a function execution credentials")]
    NoPermission(&'static str),
    /// A permission asked for that the caller does not hold: nobody hands out more than they have.
    #[error("permission {0} cannot be given by a caller who does not hold it")]
    NotHeld(String),
    #[error(transparent)]
    Function(#[from] CommandError<FunctionError>),
    #[error(transparent)]
    Role(#[from] CommandError<RoleError>),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    #[error(transparent)]
    Application(#[from] CommandError<ApplicationError>),
    #[error(transparent)]
    Token(#[from] CommandError<OAuth1TokenError>),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What it takes to make execution credentials: the rights to make each part of them.
const REQUIRED: [&str; 6] = [
    "UPDATE_TASK_FUNCTION",
    "CREATE_ROLE",
    "ADD_ROLE_PERMISSION",
    "REMOVE_ROLE_PERMISSION",
    "ADD_ROLE_TO_USER",
    "CREATE_APPLICATIONS",
];

/// Gives function `name` execution credentials holding `request.permissions`, as `meta`'s actor:
/// the identity, and the outcome of the function's commit.
pub async fn grant(
    bus: &CommandBus,
    (vault, ids): (&Vault, &IdGenerator),
    name: &str,
    request: Request,
    meta: &CommandMeta,
) -> Result<(ExecutionIdentity, Outcome), ExecutionError> {
    for permission in REQUIRED {
        meta.actor
            .require(permission, ExecutionError::NoPermission)?;
    }
    if let Some(missing) = request
        .permissions
        .iter()
        .find(|permission| !meta.actor.allows(permission))
    {
        return Err(ExecutionError::NotHeld(missing.clone()));
    }
    let stream = function::stream(name).map_err(CommandError::Domain)?;
    let (function, _) = bus.load::<Function>(&stream).await?;
    if !function.exists() {
        return Err(CommandError::Domain(FunctionError::Unknown).into());
    }
    let previous = function.execution;
    let role_id = previous.map_or_else(|| ids.next(), |p| p.role_id);
    let user_id = previous.map_or_else(|| ids.next(), |p| p.user_id);
    let application_id = previous.map_or_else(|| ids.next(), |p| p.application_id);

    permit(bus, role_id, name, &request.permissions, meta).await?;
    enrol(bus, user_id, role_id, name, meta).await?;
    let (consumer_key, consumer_secret) =
        consumer(bus, vault, ids, application_id, name, meta).await?;
    let token = issue(
        bus,
        vault,
        (ids.next(), user_id, application_id),
        meta.step("token"),
    )
    .await?;
    let identity = ExecutionIdentity {
        user_id,
        role_id,
        application_id,
        token_id: token.token_id,
    };
    let mut variables = Vec::with_capacity(5);
    for (variable, value) in [
        ("API_HOST", request.api_host.as_str()),
        ("API_OAUTH_CONSUMER_KEY", consumer_key.as_str()),
        ("API_OAUTH_CONSUMER_SECRET", consumer_secret.as_str()),
        ("API_OAUTH_TOKEN", token.token.as_str()),
        ("API_OAUTH_TOKEN_SECRET", token.token_secret.as_str()),
    ] {
        variables.push(EnvironmentVariable {
            name: variable.to_owned(),
            value: vault.seal(
                value.as_bytes(),
                &function::environment_context(name, variable),
            )?,
        });
    }
    let set = FunctionCommand::SetExecution(FunctionExecutionSet {
        identity,
        variables,
    });
    let outcome = bus
        .execute::<Function>(&stream, &set, &meta.step("function"))
        .await?;
    if let Some(previous) = previous {
        bus.execute::<OAuth1Token>(
            &StreamId::of(OAuth1Token::KIND, previous.token_id),
            &OAuth1TokenCommand::Revoke,
            &as_user(&meta.step("revoke"), user_id, application_id),
        )
        .await?;
    }
    Ok((identity, outcome))
}

/// Makes role `role_id` (if new) hold exactly `permissions`.
async fn permit(
    bus: &CommandBus,
    role_id: Id,
    name: &str,
    permissions: &[String],
    meta: &CommandMeta,
) -> Result<(), ExecutionError> {
    let stream = StreamId::of(Role::KIND, role_id);
    let (role, _) = bus.load::<Role>(&stream).await?;
    if !role.created {
        let create = RoleCommand::Create {
            name: format!("vigil.function.{name}"),
            description: format!("The permissions of the function {name}"),
        };
        bus.execute::<Role>(&stream, &create, &meta.step("role"))
            .await?;
    }
    let wanted: BTreeSet<String> = permissions.iter().cloned().collect();
    let removed: Vec<String> = role.permissions.difference(&wanted).cloned().collect();
    if !removed.is_empty() {
        let remove = RoleCommand::RemovePermissions {
            permissions: removed,
        };
        bus.execute::<Role>(&stream, &remove, &meta.step("role-removed"))
            .await?;
    }
    let added: Vec<String> = wanted.difference(&role.permissions).cloned().collect();
    if !added.is_empty() {
        let add = RoleCommand::AddPermissions { permissions: added };
        bus.execute::<Role>(&stream, &add, &meta.step("role-added"))
            .await?;
    }
    Ok(())
}

/// Registers the function's user `user_id` (if new), active, with a random password, holding
/// role `role_id`.
async fn enrol(
    bus: &CommandBus,
    user_id: Id,
    role_id: Id,
    name: &str,
    meta: &CommandMeta,
) -> Result<(), ExecutionError> {
    let stream = StreamId::of(User::KIND, user_id);
    let (user, _) = bus.load::<User>(&stream).await?;
    if !user.registered {
        let email = Email::parse(&format!("function-{user_id}@functions.vigil.invalid"))
            .map_err(|_| CommandError::Domain(UserError::InvalidField("email".into())))?;
        let (password, _) = secrets::new_token();
        let register = UserCommand::Register(Registration {
            email: email.clone(),
            first_name: name.to_owned(),
            last_name: "(function)".into(),
            phone_number: None,
            language: "EN".into(),
            time_zone: "UTC".into(),
            password_hash: secrets::hash_password(password).await?,
            activated: true,
            activation_request: None,
            oidc: None,
        });
        bus.execute_unique::<User>(
            &stream,
            &register,
            &[email_reservation(&email)],
            &meta.step("user"),
        )
        .await?;
    }
    let add_role = UserCommand::AddRoles {
        role_ids: vec![role_id],
    };
    bus.execute::<User>(&stream, &add_role, &meta.step("user-role"))
        .await?;
    Ok(())
}

/// Creates OAuth1 application `application_id` (if new) and a new version of it: the consumer
/// key and secret.
async fn consumer(
    bus: &CommandBus,
    vault: &Vault,
    ids: &IdGenerator,
    application_id: Id,
    name: &str,
    meta: &CommandMeta,
) -> Result<(String, String), ExecutionError> {
    let stream = StreamId::of(Application::KIND, application_id);
    let (application, _) = bus.load::<Application>(&stream).await?;
    if !application.created {
        let create = ApplicationCommand::Create {
            name: format!("vigil.function.{name}"),
            description: format!("The execution credentials of the function {name}"),
            kind: ApplicationKind::OAuth1,
        };
        bus.execute::<Application>(&stream, &create, &meta.step("application"))
            .await?;
    }
    let version_id = ids.next();
    let (consumer_key, _) = secrets::new_token();
    let (consumer_secret, secret_digest) = secrets::new_token();
    let version = ApplicationCommand::CreateVersion {
        version_id,
        name: version_id.to_string(),
        client_id: consumer_key.clone(),
        secret_digest,
        sealed_secret: Some(vault.seal(consumer_secret.as_bytes(), &consumer_context(version_id))?),
    };
    bus.execute::<Application>(&stream, &version, &meta.step("application-version"))
        .await?;
    Ok((consumer_key, consumer_secret))
}
