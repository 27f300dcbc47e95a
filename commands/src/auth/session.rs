//! Logins and token refreshes: the procedures around the `Session` aggregate that need secrets
//! (password verification, new random tokens) resolved before the domain decides.

use vigil_domain::actor::Actor;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::authorization::{
    Authorization, AuthorizationCommand, AuthorizationError, Verifier,
};
use vigil_domain::auth::session::{
    IssuedToken, Session, SessionCommand, SessionError, SessionStarted,
};
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::permission::Permissions;
use vigil_domain::reservation::{self, Reservation};
use vigil_domain::users::login::{self, LockoutPolicy, Login, LoginCommand};
use vigil_domain::users::settings::{self, Settings};
use vigil_domain::users::user::{PasswordHash, User};
use vigil_domain::value::{Email, Timestamp};

use crate::auth::mfa::{self, Challenge};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
use crate::secrets::{self, SecretError, VaultError};
use vigil_domain::auth::mfa::MfaError;

/// How long tokens live.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access_seconds: i64,
    pub refresh_seconds: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access_seconds: 3600,
            refresh_seconds: 60 * 24 * 3600,
        }
    }
}

/// The tokens handed to a client once: only their digests are kept.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub session_id: Id,
    pub user_id: Id,
    pub application_id: Id,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown email or wrong password: deliberately indistinguishable.
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Command(#[from] CommandError<SessionError>),
    /// Too many failed attempts on this address: wait, or have an administrator reset it.
    #[error(transparent)]
    Throttled(login::LoginAttemptError),
    #[error(transparent)]
    Guard(CommandError<login::LoginAttemptError>),
    #[error(transparent)]
    Authorization(#[from] CommandError<AuthorizationError>),
    /// The password was right and MFA is enabled: the challenge must be answered.
    #[error("a second factor is required")]
    MfaRequired(Challenge),
    #[error(transparent)]
    Mfa(#[from] CommandError<MfaError>),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Presence(#[from] CommandError<vigil_domain::auth::presence::PresenceError>),
    #[error(transparent)]
    OAuth1(#[from] CommandError<vigil_domain::auth::oauth1::OAuth1TokenError>),
    #[error(transparent)]
    Sso(#[from] CommandError<vigil_domain::auth::sso::SsoTokenError>),
}

impl From<CommandError<login::LoginAttemptError>> for LoginError {
    fn from(error: CommandError<login::LoginAttemptError>) -> Self {
        match error {
            CommandError::Domain(login::LoginAttemptError::WrongCredentials) => {
                Self::InvalidCredentials
            }
            CommandError::Domain(throttled) => Self::Throttled(throttled),
            other => Self::Guard(other),
        }
    }
}

/// The user id registered under `email`, if any, read from the email's reservation.
pub async fn user_by_email(
    bus: &CommandBus,
    email: &Email,
) -> Result<Option<(Id, User)>, LogError> {
    let (claim, _) = bus
        .load::<Reservation>(&reservation::stream("email", email.as_str()))
        .await?;
    let Some(owner) = claim.holder.map(|h| h.owner) else {
        return Ok(None);
    };
    let Some(user_id) = owner.id() else {
        return Ok(None);
    };
    let (user, _) = bus.load::<User>(&owner).await?;
    Ok(user.active().then_some((user_id, user)))
}

fn issue(ids: &IdGenerator, now: Timestamp, lifetime_seconds: i64) -> (String, IssuedToken) {
    let (token, digest) = secrets::new_token();
    let issued = IssuedToken {
        id: ids.next(),
        digest,
        expires_at: now.plus_seconds(lifetime_seconds),
    };
    (token, issued)
}

/// Checks an email and password, throttled per address (known or not, alike, so answers never
/// reveal accounts); records a failure, or clears earlier failures after a success.
pub async fn verify_credentials(
    bus: &CommandBus,
    email: &str,
    password: String,
    meta: &CommandMeta,
) -> Result<Id, LoginError> {
    let email = Email::parse(email).ok();
    let user = match &email {
        Some(email) => user_by_email(bus, email)
            .await
            .map_err(CommandError::<SessionError>::Log)?,
        None => None,
    };
    let guard = match &email {
        Some(email) => Some(Throttle::of(bus, email, true).await?),
        None => None,
    };
    let user_id = user.as_ref().map(|(id, _)| *id);
    let hash = user
        .as_ref()
        .and_then(|(_, user)| user.password_hash.clone());
    let verified = attempt(bus, guard.as_ref(), user_id, password, hash, meta).await?;
    user_id
        .filter(|_| verified)
        .ok_or(LoginError::InvalidCredentials)
}

/// The login stream of an address, with the deployment's lockout policy and whether the pause
/// after a failure applies (`paced`: see [`LoginCommand::Attempt`]).
struct Throttle {
    stream: StreamId,
    policy: LockoutPolicy,
    paced: bool,
}

impl Throttle {
    /// The throttle of `email`'s logins, refusing at once (before the cost of Argon2) while they
    /// are throttled; the attempt is decided again when it is recorded.
    async fn of(bus: &CommandBus, email: &Email, paced: bool) -> Result<Self, LoginError> {
        let stream = login::stream(email);
        let (state, _) = bus
            .load::<Login>(&stream)
            .await
            .map_err(CommandError::<SessionError>::Log)?;
        let policy = lockout_policy(bus)
            .await
            .map_err(CommandError::<SessionError>::Log)?;
        state
            .admits(ids::now(), paced, policy)
            .map_err(LoginError::Throttled)?;
        Ok(Self {
            stream,
            policy,
            paced,
        })
    }
}

/// The deployment's lockout policy (Extra Horizon's unless `vigil lockout` changed it).
pub async fn lockout_policy(bus: &CommandBus) -> Result<LockoutPolicy, LogError> {
    let (settings, _) = bus.load::<Settings>(&settings::stream()).await?;
    Ok(settings.lockout)
}

/// Whether `password` matches `hash` (none: no account, which never matches), checked as an
/// attempt on the address's login stream (`guard`): counted if wrong, clearing failures if
/// right, and refused either way if a concurrent attempt got there first within the limits.
async fn attempt(
    bus: &CommandBus,
    guard: Option<&Throttle>,
    user_id: Option<Id>,
    password: String,
    hash: Option<PasswordHash>,
    meta: &CommandMeta,
) -> Result<bool, LoginError> {
    let verified = secrets::verify_password(password, hash).await? && user_id.is_some();
    if let Some(throttle) = guard {
        let attempt = LoginCommand::Attempt {
            user_id,
            verified,
            paced: throttle.paced,
            policy: throttle.policy,
        };
        match bus.execute::<Login>(&throttle.stream, &attempt, meta).await {
            // The failure is recorded, and refused as a wrong password.
            Ok(_) | Err(CommandError::Domain(login::LoginAttemptError::WrongCredentials)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(verified)
}

/// Whether `password` is the password of the signed-in user `user_id` (confirming it, or
/// changing it), checked with the logins of the user's address: a wrong one counts as a failed
/// login, and every check is refused while the address is frozen or locked. The pause after a
/// failed login does not apply: the user is signed in already, and their client may well ask
/// again at once.
pub async fn check_own_password(
    bus: &CommandBus,
    user_id: Id,
    user: &User,
    password: String,
    meta: &CommandMeta,
) -> Result<bool, LoginError> {
    let guard = match &user.email {
        Some(email) => Some(Throttle::of(bus, email, false).await?),
        None => None,
    };
    let hash = user.password_hash.clone();
    attempt(bus, guard.as_ref(), Some(user_id), password, hash, meta).await
}

/// The OAuth2 password grant: verifies the credentials and starts a session, or, with MFA
/// enabled, answers the challenge that must be passed first.
pub async fn password_login(
    bus: &CommandBus,
    ids: &IdGenerator,
    lifetimes: TokenLifetimes,
    application_id: Id,
    email: &str,
    password: String,
    meta: CommandMeta,
) -> Result<Tokens, LoginError> {
    let user_id = verify_credentials(bus, email, password, &meta).await?;
    if let Some(challenge) = mfa::challenge(bus, ids, user_id, application_id, &meta).await? {
        return Err(LoginError::MfaRequired(challenge));
    }
    let session_id = ids.next();
    start_session(
        bus,
        ids,
        lifetimes,
        (session_id, user_id, application_id),
        meta,
    )
    .await
}

/// What a client presents at the token endpoint to redeem an authorization code.
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    pub authorization_id: Id,
    pub client_id: String,
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// A PKCE code verifier in both forms a challenge may name: as given, and
/// BASE64URL(SHA-256(verifier)) without padding (RFC 7636 §4.6).
pub fn pkce_verifier(verifier: &str) -> Verifier {
    use base64::Engine as _;
    use sha2::{Digest as _, Sha256};
    Verifier {
        plain: verifier.to_owned(),
        s256: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
    }
}

/// The OAuth2 authorization-code grant: spends the code (once, by its client, with the PKCE
/// verifier if it has a challenge) and starts a session for the user who authorized the client.
pub async fn code_login(
    bus: &CommandBus,
    ids: &IdGenerator,
    lifetimes: TokenLifetimes,
    application_id: Id,
    redemption: CodeRedemption,
    meta: CommandMeta,
) -> Result<Tokens, LoginError> {
    let stream = StreamId::of(Authorization::KIND, redemption.authorization_id);
    let session_id = ids.next();
    let redeem = AuthorizationCommand::Redeem {
        client_id: redemption.client_id,
        code_digest: secrets::token_digest(&redemption.code),
        redirect_uri: redemption.redirect_uri,
        verifier: redemption.code_verifier.as_deref().map(pkce_verifier),
        session_id,
    };
    match bus.execute::<Authorization>(&stream, &redeem, &meta).await {
        Ok(_) => {}
        Err(CommandError::Domain(AuthorizationError::Replayed { session_id })) => {
            end_replayed_session(bus, session_id, &meta).await?;
            return Err(CommandError::Domain(AuthorizationError::Unknown).into());
        }
        Err(other) => return Err(other.into()),
    }
    let (authorization, _) = bus
        .load::<Authorization>(&stream)
        .await
        .map_err(CommandError::<AuthorizationError>::Log)?;
    let user_id = authorization
        .created
        .map(|created| created.user_id)
        .ok_or(CommandError::Domain(AuthorizationError::Unknown))?;
    start_session(
        bus,
        ids,
        lifetimes,
        (session_id, user_id, application_id),
        meta,
    )
    .await
}

/// Ends the session the first redemption of a replayed code started, as Vigil itself; a session
/// ended already is left so.
async fn end_replayed_session(
    bus: &CommandBus,
    session_id: Id,
    meta: &CommandMeta,
) -> Result<(), LoginError> {
    let meta = CommandMeta {
        reason: Some("authorization code replayed".into()),
        actor: Actor::system(meta.actor.record().via),
        ..meta.step("end-replayed-session")
    };
    let end = SessionCommand::End {
        through_refresh_token: false,
    };
    match bus
        .execute::<Session>(&StreamId::of(Session::KIND, session_id), &end, &meta)
        .await
    {
        Ok(_) | Err(CommandError::Domain(SessionError::NotFound)) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// `meta` acting as `user_id` through `application_id`, once their credentials are verified.
pub(crate) fn as_user(meta: &CommandMeta, user_id: Id, application_id: Id) -> CommandMeta {
    let record = meta.actor.record().clone();
    CommandMeta {
        actor: Actor::user(
            user_id,
            Some(application_id),
            Permissions::default(),
            record.via,
            record.client_ip,
        ),
        ..meta.clone()
    }
}

/// Issues a new pair of tokens for `user_id` through `application_id`.
pub(crate) async fn start_session(
    bus: &CommandBus,
    ids: &IdGenerator,
    lifetimes: TokenLifetimes,
    (session_id, user_id, application_id): (Id, Id, Id),
    meta: CommandMeta,
) -> Result<Tokens, LoginError> {
    let meta = as_user(&meta, user_id, application_id);
    let now = ids::now();
    let (access_token, access) = issue(ids, now, lifetimes.access_seconds);
    let (refresh_token, refresh) = issue(ids, now, lifetimes.refresh_seconds);
    let start = SessionCommand::Start(SessionStarted {
        user_id,
        application_id,
        access,
        refresh,
    });
    let outcome = bus
        .execute::<Session>(&StreamId::of(Session::KIND, session_id), &start, &meta)
        .await?;
    Ok(Tokens {
        session_id,
        user_id,
        application_id,
        access_token,
        refresh_token,
        expires_in: lifetimes.access_seconds,
        outcome,
    })
}

/// The OAuth2 refresh grant: rotates the session's tokens if `refresh_token` is its current one.
pub async fn refresh(
    bus: &CommandBus,
    ids: &IdGenerator,
    lifetimes: TokenLifetimes,
    session_id: Id,
    application_id: Id,
    refresh_token: &str,
    meta: &CommandMeta,
) -> Result<Tokens, CommandError<SessionError>> {
    let now = ids::now();
    let (access_token, access) = issue(ids, now, lifetimes.access_seconds);
    let (new_refresh_token, refresh) = issue(ids, now, lifetimes.refresh_seconds);
    let stream = StreamId::of(Session::KIND, session_id);
    let command = SessionCommand::Refresh {
        application_id,
        presented: secrets::token_digest(refresh_token),
        access,
        refresh,
    };
    let outcome = bus.execute::<Session>(&stream, &command, meta).await?;
    let (session, _) = bus.load::<Session>(&stream).await?;
    let user_id = session
        .user_id
        .ok_or(CommandError::Domain(SessionError::RefreshTokenUnknown))?;
    Ok(Tokens {
        session_id,
        user_id,
        application_id,
        access_token,
        refresh_token: new_refresh_token,
        expires_in: lifetimes.access_seconds,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_the_rfc_7636_one() {
        // RFC 7636, Appendix B.
        let verifier = pkce_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(verifier.s256, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(
            verifier.plain,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }
}
