//! Multi-factor authentication: presence confirmation, the settings changes around the `Mfa`
//! aggregate, and the second login step. These resolve what the domain cannot: the password
//! check behind a presence token, new TOTP secrets and recovery codes (sealed or digested with the
//! deployment key before they reach the log), and what a presented code proves.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::mfa::{
    self, Method, MethodSecret, MethodType, Mfa, MfaChallengeIssued, MfaChange, MfaCommand,
    MfaError, MfaMethodAdded, Presented,
};
use vigil_domain::auth::presence::{self, Presence, PresenceCommand, PresenceConfirmed};
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::users::user::User;

use crate::auth::session::{self, LoginError, TokenLifetimes, Tokens};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
use crate::secrets::{self, Vault, VaultError};

/// Recovery codes made at once.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code, drawn from [`CODE_ALPHABET`]: 50 random bits each.
const CODE_LENGTH: usize = 10;
/// Digits and capitals without the easily confused 0, 1, I and O.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Bytes of a new TOTP secret (RFC 4226 recommends 160 bits).
const TOTP_SECRET_BYTES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MfaFailure {
    #[error(transparent)]
    Command(#[from] CommandError<MfaError>),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<vigil_domain::log::LogError> for MfaFailure {
    fn from(error: vigil_domain::log::LogError) -> Self {
        Self::Command(CommandError::Log(error))
    }
}

/// A new presence token, shown once.
#[derive(Debug, Clone)]
pub struct PresenceToken {
    pub token: String,
    pub confirmed: PresenceConfirmed,
}

/// `POST /auth/v2/confirmPresence`: checks the caller's password (throttled like a login) and
/// issues a presence token.
pub async fn confirm_presence(
    bus: &CommandBus,
    ids: &IdGenerator,
    user_id: Id,
    password: String,
    meta: &CommandMeta,
) -> Result<PresenceToken, LoginError> {
    let (user, _) = bus
        .load::<User>(&StreamId::of(User::KIND, user_id))
        .await
        .map_err(CommandError::<presence::PresenceError>::Log)?;
    let active = user.active();
    let email = user
        .email
        .filter(|_| active)
        .ok_or(LoginError::InvalidCredentials)?;
    let verified = session::verify_credentials(bus, email.as_str(), password, meta).await?;
    if verified != user_id {
        return Err(LoginError::InvalidCredentials);
    }
    let (token, digest) = secrets::new_token();
    let at = ids::now();
    let confirmed = PresenceConfirmed {
        token_id: ids.next(),
        digest,
        at,
        expires_at: at.plus_seconds(presence::PRESENCE_VALID_SECONDS),
    };
    bus.execute::<Presence>(
        &presence::stream(user_id),
        &PresenceCommand::Confirm(confirmed.clone()),
        meta,
    )
    .await?;
    Ok(PresenceToken { token, confirmed })
}

/// Whether `token` is a live presence token of `user_id`.
pub(crate) async fn present(
    bus: &CommandBus,
    user_id: Id,
    token: &str,
) -> Result<bool, vigil_domain::log::LogError> {
    let (presence, _) = bus.load::<Presence>(&presence::stream(user_id)).await?;
    Ok(presence.admits(&secrets::token_digest(token), ids::now()))
}

/// Who changes whose settings, proving presence with the caller's token.
#[derive(Debug, Clone)]
pub struct Change {
    pub user_id: Id,
    pub caller_id: Id,
    pub presence_token: String,
}

impl Change {
    async fn execute(
        &self,
        bus: &CommandBus,
        change: MfaChange,
        meta: &CommandMeta,
    ) -> Result<Outcome, MfaFailure> {
        let presence_confirmed = present(bus, self.caller_id, &self.presence_token).await?;
        let command = MfaCommand::Change {
            presence_confirmed,
            change,
        };
        Ok(bus
            .execute::<Mfa>(&mfa::stream(self.user_id), &command, meta)
            .await?)
    }
}

/// What a new method shows once: the TOTP secret (base32, for an authenticator app) or the
/// recovery codes.
#[derive(Debug, Clone)]
pub enum Shown {
    Secret(String),
    Codes(Vec<String>),
}

/// The authenticated-encryption context of a TOTP secret: its user and method.
fn totp_context(user_id: Id, method_id: Id) -> Vec<u8> {
    format!("vigil mfa totp {user_id} {method_id}").into_bytes()
}

/// A recovery code as typed, without separators or case.
fn normalized(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_recovery_code() -> String {
    let raw: String = (0..CODE_LENGTH)
        .map(|_| char::from(CODE_ALPHABET[usize::from(rand::random::<u8>() % 32)]))
        .collect();
    format!("{}-{}", &raw[..CODE_LENGTH / 2], &raw[CODE_LENGTH / 2..])
}

/// Adds a TOTP method or a set of recovery codes.
pub async fn add_method(
    bus: &CommandBus,
    vault: &Vault,
    ids: &IdGenerator,
    who: &Change,
    (method_type, name, tags): (MethodType, Option<String>, Vec<String>),
    meta: &CommandMeta,
) -> Result<(MfaMethodAdded, Shown), MfaFailure> {
    let method_id = ids.next();
    let (secret, shown, default_name) = match method_type {
        MethodType::Totp => {
            let secret: [u8; TOTP_SECRET_BYTES] = rand::random();
            let sealed = vault.seal(&secret, &totp_context(who.user_id, method_id))?;
            let base32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
            (MethodSecret::Totp(sealed), Shown::Secret(base32), "TOTP")
        }
        MethodType::RecoveryCodes => {
            let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
            let digests = codes
                .iter()
                .map(|code| vault.keyed_digest(normalized(code).as_bytes()))
                .collect();
            (
                MethodSecret::RecoveryCodes(digests),
                Shown::Codes(codes),
                "Recovery codes",
            )
        }
    };
    let added = MfaMethodAdded {
        method_id,
        name: name.unwrap_or_else(|| default_name.to_owned()),
        tags,
        secret,
        at: ids::now(),
    };
    who.execute(bus, MfaChange::AddMethod(added.clone()), meta)
        .await?;
    Ok((added, shown))
}

/// What `code` proves for `method` of `user_id` at this moment.
fn presented(
    vault: &Vault,
    user_id: Id,
    method: Option<&Method>,
    code: &str,
) -> Result<Presented, VaultError> {
    match method.map(|m| (m.id, &m.secret)) {
        Some((method_id, MethodSecret::Totp(sealed))) => {
            let secret = vault.open(sealed, &totp_context(user_id, method_id))?;
            let step = totp_rs::Builder::new()
                .with_secret(secret)
                .build()
                .ok()
                .and_then(|totp| {
                    let now = u64::try_from(ids::now().millis() / 1000).unwrap_or(0);
                    totp.check(code.trim(), now)
                });
            Ok(Presented::Totp { step })
        }
        Some((_, MethodSecret::RecoveryCodes(_))) => Ok(Presented::RecoveryCode {
            digest: vault.keyed_digest(normalized(code).as_bytes()),
        }),
        None => Ok(Presented::Totp { step: None }),
    }
}

/// Confirms that a TOTP method produces right codes.
pub async fn verify_method(
    bus: &CommandBus,
    vault: &Vault,
    who: &Change,
    method_id: Id,
    code: &str,
    meta: &CommandMeta,
) -> Result<Outcome, MfaFailure> {
    let (settings, _) = bus.load::<Mfa>(&mfa::stream(who.user_id)).await?;
    let presented = presented(vault, who.user_id, settings.method(method_id), code)?;
    let command = MfaCommand::Change {
        presence_confirmed: present(bus, who.caller_id, &who.presence_token).await?,
        change: MfaChange::VerifyMethod {
            method_id,
            presented,
        },
    };
    Ok(bus
        .execute::<Mfa>(&mfa::stream(who.user_id), &command, meta)
        .await?)
}

/// Removes a method, or enables or disables MFA.
pub async fn change(
    bus: &CommandBus,
    who: &Change,
    change: MfaChange,
    meta: &CommandMeta,
) -> Result<Outcome, MfaFailure> {
    who.execute(bus, change, meta).await
}

/// The second login step a password login asks for.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub token: String,
    pub expires_in_millis: i64,
    /// The methods that can answer it: id, type, name and tags.
    pub methods: Vec<(Id, MethodType, String, Vec<String>)>,
}

/// With MFA enabled for `user_id`, issues a challenge instead of tokens.
pub(crate) async fn challenge(
    bus: &CommandBus,
    ids: &IdGenerator,
    user_id: Id,
    application_id: Id,
    meta: &CommandMeta,
) -> Result<Option<Challenge>, CommandError<MfaError>> {
    let stream = mfa::stream(user_id);
    let (settings, _) = bus.load::<Mfa>(&stream).await?;
    if !settings.enabled {
        return Ok(None);
    }
    let meta = session::as_user(meta, user_id, application_id);
    let (token, digest) = secrets::new_token();
    let issued = MfaChallengeIssued {
        challenge_id: ids.next(),
        digest,
        application_id,
        expires_at: ids::now().plus_seconds(mfa::CHALLENGE_VALID_SECONDS),
    };
    bus.execute::<Mfa>(&stream, &MfaCommand::IssueChallenge(issued), &meta)
        .await?;
    let methods = settings
        .methods
        .iter()
        .filter(|method| method.usable())
        .map(|m| (m.id, m.method_type(), m.name.clone(), m.tags.clone()))
        .collect();
    Ok(Some(Challenge {
        token,
        expires_in_millis: mfa::CHALLENGE_VALID_SECONDS * 1000,
        methods,
    }))
}

/// The answer to a challenge, as the MFA grant or `/oauth1/tokens/mfa` presents it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub token: String,
    pub method_id: Id,
    pub code: String,
}

/// The second login step: spends the challenge with a right code; answers the id the login that
/// follows (a session, or an OAuth1 token) is to have.
pub(crate) async fn pass(
    bus: &CommandBus,
    (vault, ids): (&Vault, &IdGenerator),
    (user_id, application_id): (Id, Id),
    answer: Answer,
    meta: &CommandMeta,
) -> Result<Id, LoginError> {
    let (user, _) = bus
        .load::<User>(&StreamId::of(User::KIND, user_id))
        .await
        .map_err(CommandError::<MfaError>::Log)?;
    if !user.active() {
        return Err(CommandError::Domain(MfaError::InvalidToken).into());
    }
    let (settings, _) = bus
        .load::<Mfa>(&mfa::stream(user_id))
        .await
        .map_err(CommandError::<MfaError>::Log)?;
    let presented = presented(
        vault,
        user_id,
        settings.method(answer.method_id),
        &answer.code,
    )?;
    let login_id = ids.next();
    let command = MfaCommand::PassChallenge {
        digest: secrets::token_digest(&answer.token),
        application_id,
        method_id: answer.method_id,
        presented,
        session_id: login_id,
    };
    bus.execute::<Mfa>(&mfa::stream(user_id), &command, meta)
        .await?;
    Ok(login_id)
}

/// The MFA grant: passes the challenge and starts the session.
pub async fn login(
    bus: &CommandBus,
    (vault, ids, lifetimes): (&Vault, &IdGenerator, TokenLifetimes),
    (user_id, application_id): (Id, Id),
    answer: Answer,
    meta: CommandMeta,
) -> Result<Tokens, LoginError> {
    let session_id = pass(bus, (vault, ids), (user_id, application_id), answer, &meta).await?;
    session::start_session(
        bus,
        ids,
        lifetimes,
        (session_id, user_id, application_id),
        meta,
    )
    .await
}
