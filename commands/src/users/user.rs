//! Account procedures that resolve secrets before the `User` aggregate decides: registration
//! (password hashing, the unique email), password changes and checks, and deletion (which frees
//! the email address again).

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::password::PasswordPolicy;
use vigil_domain::users::address::{self, ResetRequestCommand, ResetRequestError, ResetRequests};
use vigil_domain::users::login::{self, Login, LoginAttemptError, LoginCommand};
use vigil_domain::users::settings::{self, Settings, TemplateRef, TemplateSlot};
use vigil_domain::users::user::{
    self, CodeRequest, KeptLogin, PasswordHash, Registration, User, UserCommand, UserError,
};
use vigil_domain::users::verification::{
    Mode, Proof, Purpose, VerificationError, VerificationRequested,
};
use vigil_domain::value::Email;

use crate::auth::session::{self, LoginError};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
use crate::secrets::{self, SecretError};
use crate::unique::Unique;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Command(#[from] CommandError<UserError>),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Login(#[from] CommandError<LoginAttemptError>),
    #[error(transparent)]
    ResetRequest(#[from] CommandError<ResetRequestError>),
    /// A password check refused as a login would be (too many failed attempts).
    #[error(transparent)]
    Attempt(#[from] LoginError),
}

impl From<LogError> for AccountError {
    fn from(error: LogError) -> Self {
        Self::Command(CommandError::Log(error))
    }
}

impl From<UserError> for AccountError {
    fn from(error: UserError) -> Self {
        Self::Command(CommandError::Domain(error))
    }
}

/// What a registration form carries.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub language: String,
    pub time_zone: Option<String>,
    /// Registered as already activated (by an administrator, or bootstrap).
    pub activated: bool,
    /// The mailed code the account is to be activated with, if any.
    pub activation: Option<Mode>,
}

/// The reservation that keeps an email address to one account.
pub(crate) fn email_reservation(email: &Email) -> Unique {
    Unique {
        namespace: "email",
        value: email.as_str().to_owned(),
    }
}

/// The password policy in force.
pub async fn password_policy(bus: &CommandBus) -> Result<PasswordPolicy, LogError> {
    let (settings, _) = bus.load::<Settings>(&settings::stream()).await?;
    Ok(settings.password_policy)
}

/// Which of the user service's mails a code goes out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mail {
    /// The first activation mail, on registration.
    Activation,
    /// Another activation mail, or one to a new address.
    Reactivation,
    PasswordReset,
}

/// Refuses a mail whose template the settings name: templates are not served by Vigil yet, so a
/// configured one is missing (Extra Horizon's `ILLEGAL_STATE` for a missing template) rather than
/// silently replaced by the built-in mail.
pub(crate) fn without_template(settings: &Settings, slot: TemplateSlot) -> Result<(), UserError> {
    match settings.email_templates.get(&slot) {
        None => Ok(()),
        Some(TemplateRef::Id(name) | TemplateRef::Name(name)) => {
            Err(UserError::TemplateUnavailable(format!(
                "The {} email template {name} is not available: this deployment serves no \
                 templates yet; clear the setting to send the built-in mail",
                slot.prefix()
            )))
        }
    }
}

/// A new request for a code mailed in `mode` in `mail`, as the settings allow.
async fn code_request(
    bus: &CommandBus,
    ids: &IdGenerator,
    mail: Mail,
    mode: Mode,
) -> Result<CodeRequest, AccountError> {
    let (settings, _) = bus.load::<Settings>(&settings::stream()).await?;
    let slot = match (mail, mode) {
        (Mail::Activation, Mode::Hash) => TemplateSlot::Activation,
        (Mail::Activation, Mode::PinCode) => TemplateSlot::ActivationPin,
        (Mail::Reactivation, Mode::Hash) => TemplateSlot::Reactivation,
        (Mail::Reactivation, Mode::PinCode) => TemplateSlot::ReactivationPin,
        (Mail::PasswordReset, Mode::Hash) => TemplateSlot::PasswordReset,
        (Mail::PasswordReset, Mode::PinCode) => TemplateSlot::PasswordResetPin,
    };
    let purpose = match mail {
        Mail::Activation | Mail::Reactivation => Purpose::Activation,
        Mail::PasswordReset => Purpose::PasswordReset,
    };
    let verification = settings.verification;
    if mode == Mode::PinCode && !verification.pin_codes_enabled(purpose) {
        return Err(UserError::PinCodesNotEnabled.into());
    }
    without_template(&settings, slot)?;
    Ok(CodeRequest {
        request_id: ids.next(),
        mode,
        limited: verification.hashes_limited(purpose),
    })
}

/// Registers an account under a new id; the email address must not be in use.
pub async fn register(
    bus: &CommandBus,
    ids: &IdGenerator,
    account: NewAccount,
    meta: &CommandMeta,
) -> Result<(Id, Outcome), AccountError> {
    let email = Email::parse(&account.email)
        .map_err(|_| UserError::InvalidField("email is not a valid email address".into()))?;
    password_policy(bus)
        .await?
        .check(&account.password)
        .map_err(UserError::WeakPassword)?;
    // Checked before the cost of hashing the password; the aggregate decides with the same checks.
    let registration = Registration {
        first_name: user::name("first_name", &account.first_name)?.0,
        last_name: user::name("last_name", &account.last_name)?.0,
        phone_number: account
            .phone_number
            .as_deref()
            .map(user::phone_number)
            .transpose()?
            .flatten(),
        language: user::language(&account.language)?,
        time_zone: user::time_zone(account.time_zone.as_deref().unwrap_or("UTC"))?,
        password_hash: secrets::hash_password(account.password).await?,
        activated: account.activated,
        activation_request: match account.activation {
            Some(mode) => Some(code_request(bus, ids, Mail::Activation, mode).await?),
            None => None,
        },
        oidc: None,
        email,
    };
    let id = ids.next();
    let unique = [email_reservation(&registration.email)];
    let outcome = bus
        .execute_unique::<User>(
            &StreamId::of(User::KIND, id),
            &UserCommand::Register(registration),
            &unique,
            meta,
        )
        .await?;
    Ok((id, outcome))
}

/// Whether `password` is the current password of `user_id` (constant-time, Argon2id).
pub async fn confirm_password(
    bus: &CommandBus,
    user_id: Id,
    password: String,
    meta: &CommandMeta,
) -> Result<bool, AccountError> {
    let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, user_id)).await?;
    if !user.active() {
        return Err(UserError::NotFound.into());
    }
    Ok(session::check_own_password(bus, user_id, &user, password, meta).await?)
}

/// Changes the caller's password after checking the old one (throttled like a login) and the
/// policy. Every other login of the user ends with it; `kept`, the one the change is made with,
/// stays.
pub async fn change_password(
    bus: &CommandBus,
    user_id: Id,
    old_password: String,
    new_password: String,
    kept: KeptLogin,
    meta: &CommandMeta,
) -> Result<Outcome, AccountError> {
    let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, user_id)).await?;
    if !user.oidc_links.is_empty() {
        return Err(UserError::DisabledForOidcUsers.into());
    }
    if !confirm_password(bus, user_id, old_password, &meta.step("old-password")).await? {
        return Err(UserError::WrongPassword.into());
    }
    password_policy(bus)
        .await?
        .check(&new_password)
        .map_err(UserError::WeakPassword)?;
    let password_hash = secrets::hash_password(new_password).await?;
    let outcome = bus
        .execute::<User>(
            &StreamId::of(User::KIND, user_id),
            &UserCommand::ChangePassword {
                password_hash,
                kept,
            },
            meta,
        )
        .await?;
    // A new password ends any run of failed logins.
    clear_failed_logins(bus, user_id, false, meta)
        .await
        .map(|cleared| cleared.unwrap_or(outcome))
}

/// Clears the failed-login count of `user_id`'s address (after a new password, or by an
/// administrator); the outcome of the clearing, if there was anything to clear.
pub async fn clear_failed_logins(
    bus: &CommandBus,
    user_id: Id,
    by_administrator: bool,
    meta: &CommandMeta,
) -> Result<Option<Outcome>, AccountError> {
    let (user, _) = bus.load::<User>(&StreamId::of(User::KIND, user_id)).await?;
    let active = user.active();
    let Some(email) = user.email.filter(|_| active) else {
        return Err(UserError::NotFound.into());
    };
    let clear = LoginCommand::Clear {
        user_id: Some(user_id),
        by_administrator,
    };
    let meta = meta.step("clear-failures");
    let outcome = bus
        .execute::<Login>(&login::stream(&email), &clear, &meta)
        .await?;
    Ok(outcome.appended.then_some(outcome))
}

/// Deletes an account and frees its email address (and OIDC subjects) for a new registration.
pub async fn delete(
    bus: &CommandBus,
    user_id: Id,
    meta: &CommandMeta,
) -> Result<Outcome, AccountError> {
    let stream = StreamId::of(User::KIND, user_id);
    let (user, _) = bus.load::<User>(&stream).await?;
    let outcome = bus
        .execute::<User>(&stream, &UserCommand::Delete, meta)
        .await?;
    if let Some(email) = &user.email {
        let meta = meta.step("release-email");
        bus.release::<UserError>(&stream, &email_reservation(email), &meta)
            .await?;
    }
    crate::auth::oidc::release_subjects(bus, &stream, &user, meta).await?;
    Ok(outcome)
}

/// Asks for a code mailed in `mode` for the account registered under `email`; false when there
/// is none. A password reset for an address without an account is recorded and limited the same
/// way (on the address's own stream), so the answer and the time it takes do not tell whether the
/// account exists.
pub async fn request_verification(
    bus: &CommandBus,
    ids: &IdGenerator,
    email: &str,
    purpose: Purpose,
    mode: Mode,
    meta: &CommandMeta,
) -> Result<bool, AccountError> {
    let mail = match purpose {
        Purpose::Activation => Mail::Reactivation,
        Purpose::PasswordReset => Mail::PasswordReset,
    };
    let request = code_request(bus, ids, mail, mode).await?;
    let Ok(email) = Email::parse(email) else {
        return Ok(false);
    };
    let found = crate::auth::session::user_by_email(bus, &email).await?;
    let Some((user_id, _)) = found else {
        if purpose == Purpose::PasswordReset {
            let command = ResetRequestCommand::Request {
                requested: VerificationRequested {
                    request_id: request.request_id,
                    purpose,
                    at: ids::now(),
                },
                mode,
                limited: request.limited,
            };
            bus.execute::<ResetRequests>(&address::stream(&email), &command, meta)
                .await?;
        }
        return Ok(false);
    };
    let command = UserCommand::RequestVerification { purpose, request };
    bus.execute::<User>(&StreamId::of(User::KIND, user_id), &command, meta)
        .await?;
    Ok(true)
}

/// Activates `user_id` with the code mailed to them.
pub async fn activate(
    bus: &CommandBus,
    user_id: Id,
    proof: Proof,
    meta: &CommandMeta,
) -> Result<Outcome, AccountError> {
    let command = UserCommand::Activate { proof };
    Ok(bus
        .execute::<User>(&StreamId::of(User::KIND, user_id), &command, meta)
        .await?)
}

/// Sets a new password for `user_id` with the code mailed to them; every login of the user ends,
/// and failed logins are forgotten. The code is checked first: an unknown or spent one is refused
/// before the new password is looked at (so the answer for an address without a pending request
/// is the same, and as quick, whether or not it has an account), and a wrong pin is recorded.
pub async fn reset_password(
    bus: &CommandBus,
    user_id: Id,
    proof: Proof,
    new_password: String,
    meta: &CommandMeta,
) -> Result<Outcome, AccountError> {
    let stream = StreamId::of(User::KIND, user_id);
    let (user, _) = bus.load::<User>(&stream).await?;
    match user
        .reset
        .accepts(Purpose::PasswordReset, &proof, ids::now())
    {
        Ok(_) => {}
        Err(VerificationError::WrongPin) => {
            // Refused (and counted) by the aggregate, which never sets this hash.
            let command = UserCommand::ResetPassword {
                proof,
                password_hash: PasswordHash(String::new()),
            };
            return Ok(bus.execute::<User>(&stream, &command, meta).await?);
        }
        Err(other) => return Err(UserError::Verification(other).into()),
    }
    password_policy(bus)
        .await?
        .check(&new_password)
        .map_err(UserError::WeakPassword)?;
    let password_hash = secrets::hash_password(new_password).await?;
    let command = UserCommand::ResetPassword {
        proof,
        password_hash,
    };
    let outcome = bus
        .execute::<User>(&StreamId::of(User::KIND, user_id), &command, meta)
        .await?;
    clear_failed_logins(bus, user_id, false, meta)
        .await
        .map(|cleared| cleared.unwrap_or(outcome))
}

/// Gives `user_id` a new email address (which must be free) and frees the old one; the account
/// must be verified again, by a code mailed in `activation` if any.
pub async fn change_email(
    bus: &CommandBus,
    ids: &IdGenerator,
    user_id: Id,
    email: &str,
    activation: Option<Mode>,
    meta: &CommandMeta,
) -> Result<Outcome, AccountError> {
    let email = Email::parse(email)
        .map_err(|_| UserError::InvalidField("email is not a valid email address".into()))?;
    let stream = StreamId::of(User::KIND, user_id);
    let (user, _) = bus.load::<User>(&stream).await?;
    let command = UserCommand::ChangeEmail {
        email: email.clone(),
        activation_request: match activation {
            Some(mode) => Some(code_request(bus, ids, Mail::Reactivation, mode).await?),
            None => None,
        },
    };
    let outcome = bus
        .execute_unique::<User>(&stream, &command, &[email_reservation(&email)], meta)
        .await?;
    if let Some(old) = user.email.filter(|old| *old != email && outcome.appended) {
        let meta = meta.step("release-email");
        bus.release::<UserError>(&stream, &email_reservation(&old), &meta)
            .await?;
    }
    Ok(outcome)
}
