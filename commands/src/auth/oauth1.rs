//! OAuth1 logins: an email and password (and, with MFA enabled, the second step), or an SSO token
//! from another application, for a token and token secret. The token is kept as a digest; the
//! secret, which signs requests, sealed under the deployment key.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::oauth1::{
    OAuth1Token, OAuth1TokenCommand, OAuth1TokenCreated, OAuth1TokenError,
};
use vigil_domain::auth::sso::{self, SsoToken, SsoTokenCommand, SsoTokenCreated, SsoTokenError};
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::users::user::User;
use vigil_domain::value::Timestamp;

use crate::auth::mfa::{self, Answer};
use crate::auth::session::{self, LoginError};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
use crate::secrets::{self, Vault};

/// The authenticated-encryption context of a token secret.
pub fn token_context(token_id: Id) -> Vec<u8> {
    format!("vigil oauth1 token {token_id}").into_bytes()
}

/// The authenticated-encryption context of a consumer secret.
pub fn consumer_context(version_id: Id) -> Vec<u8> {
    format!("vigil oauth1 consumer {version_id}").into_bytes()
}

/// A new token, shown once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token_id: Id,
    pub user_id: Id,
    pub application_id: Id,
    pub token: String,
    pub token_secret: String,
    pub at: Timestamp,
    pub outcome: Outcome,
}

/// `POST /auth/v2/oauth1/tokens`: the credentials for a token, or, with MFA enabled, the
/// challenge to pass first.
pub async fn password_login(
    bus: &CommandBus,
    (vault, ids): (&Vault, &IdGenerator),
    application_id: Id,
    (email, password): (&str, String),
    meta: CommandMeta,
) -> Result<Issued, LoginError> {
    let user_id = session::verify_credentials(bus, email, password, &meta).await?;
    if let Some(challenge) = mfa::challenge(bus, ids, user_id, application_id, &meta).await? {
        return Err(LoginError::MfaRequired(challenge));
    }
    issue(bus, vault, (ids.next(), user_id, application_id), meta).await
}

/// `POST /auth/v2/oauth1/tokens/mfa`: the second step for a token.
pub async fn mfa_login(
    bus: &CommandBus,
    (vault, ids): (&Vault, &IdGenerator),
    (user_id, application_id): (Id, Id),
    answer: Answer,
    meta: CommandMeta,
) -> Result<Issued, LoginError> {
    let token_id = mfa::pass(bus, (vault, ids), (user_id, application_id), answer, &meta).await?;
    issue(bus, vault, (token_id, user_id, application_id), meta).await
}

/// A new SSO token, shown once.
#[derive(Debug, Clone)]
pub struct NewSsoToken {
    pub id: Id,
    pub token: String,
    pub created: SsoTokenCreated,
    pub at: Timestamp,
    pub outcome: Outcome,
}

/// `POST /auth/v2/oauth1/ssoTokens/generate`: a one-time token handing the caller to another
/// application.
pub async fn generate_sso(
    bus: &CommandBus,
    ids: &IdGenerator,
    (user_id, application_id): (Id, Id),
    meta: &CommandMeta,
) -> Result<NewSsoToken, CommandError<SsoTokenError>> {
    let id = ids.next();
    let (token, digest) = secrets::new_token();
    let at = ids::now();
    let created = SsoTokenCreated {
        user_id,
        application_id,
        digest,
        expires_at: at.plus_seconds(sso::SSO_VALID_SECONDS),
    };
    let outcome = bus
        .execute::<SsoToken>(
            &StreamId::of(SsoToken::KIND, id),
            &SsoTokenCommand::Create(created.clone()),
            meta,
        )
        .await?;
    Ok(NewSsoToken {
        id,
        token,
        created,
        at,
        outcome,
    })
}

/// `POST /auth/v2/oauth1/ssoTokens/consume`: the SSO token `sso_id` (presented as `token`),
/// spent once, for an OAuth1 token of the consuming application.
pub async fn consume_sso(
    bus: &CommandBus,
    (vault, ids): (&Vault, &IdGenerator),
    (sso_id, token): (Id, &str),
    application_id: Id,
    meta: CommandMeta,
) -> Result<Issued, LoginError> {
    let stream = StreamId::of(SsoToken::KIND, sso_id);
    let token_id = ids.next();
    let consume = SsoTokenCommand::Consume {
        digest: secrets::token_digest(token),
        application_id,
        oauth1_token_id: token_id,
    };
    bus.execute::<SsoToken>(&stream, &consume, &meta).await?;
    let (sso, _) = bus
        .load::<SsoToken>(&stream)
        .await
        .map_err(CommandError::<SsoTokenError>::Log)?;
    let user_id = sso
        .created
        .map(|created| created.user_id)
        .ok_or(CommandError::Domain(SsoTokenError::Unknown))?;
    issue(bus, vault, (token_id, user_id, application_id), meta).await
}

/// Issues token `token_id` of `user_id` for `application_id`, if the account is active.
pub(crate) async fn issue(
    bus: &CommandBus,
    vault: &Vault,
    (token_id, user_id, application_id): (Id, Id, Id),
    meta: CommandMeta,
) -> Result<Issued, LoginError> {
    let (user, _) = bus
        .load::<User>(&StreamId::of(User::KIND, user_id))
        .await
        .map_err(CommandError::<OAuth1TokenError>::Log)?;
    if !user.active() {
        return Err(LoginError::InvalidCredentials);
    }
    let meta = session::as_user(&meta, user_id, application_id);
    let (token, token_digest) = secrets::new_token();
    let (token_secret, _) = secrets::new_token();
    let secret = vault.seal(token_secret.as_bytes(), &token_context(token_id))?;
    let create = OAuth1TokenCommand::Create(OAuth1TokenCreated {
        user_id,
        application_id,
        token_digest,
        secret,
    });
    let outcome = bus
        .execute::<OAuth1Token>(&StreamId::of(OAuth1Token::KIND, token_id), &create, &meta)
        .await?;
    Ok(Issued {
        token_id,
        user_id,
        application_id,
        token,
        token_secret,
        at: ids::now(),
        outcome,
    })
}
