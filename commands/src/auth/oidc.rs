//! OpenID Connect: provider management (unique names, sealed client secrets), the authentication
//! URL with a nonce only this deployment can have made, and the login: the authorization code is
//! redeemed at the provider (`client_secret_basic`), the ID token's signature is checked against
//! the provider's published keys (found through its discovery document), its issuer, audience,
//! expiry and nonce; the user info names the account, which is created on the first login.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::oidc::{
    OidcProvider, OidcProviderCommand, OidcProviderError, ProviderSettings,
};
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::LogError;
use vigil_domain::reservation::{self, Reservation};
use vigil_domain::users::user::{
    self as user, OidcLinked, PasswordHash, Registration, User, UserCommand, UserError,
};
use vigil_domain::value::{Email, Personal, Timestamp};

use crate::auth::session::{self, LoginError, TokenLifetimes, Tokens};
use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids::{self, IdGenerator};
use crate::secrets::{Vault, VaultError};
use crate::unique::Unique;

/// How long an authentication URL's nonce is accepted back in an ID token.
const NONCE_VALID_SECONDS: i64 = 30 * 60;
/// The longest answer read from a provider.
const LONGEST_ANSWER: usize = 64 * 1024;
/// How long a provider may take to answer.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

fn name_claim(name: &str) -> Unique {
    Unique {
        namespace: "oidc-provider",
        value: name.to_owned(),
    }
}

/// The reservation that makes a provider's subject one account's.
fn subject_claim(provider_id: Id, subject: &str) -> Unique {
    Unique {
        namespace: "oidc-subject",
        value: format!("{provider_id}/{subject}"),
    }
}

fn email_claim(email: &Email) -> Unique {
    Unique {
        namespace: "email",
        value: email.as_str().to_owned(),
    }
}

/// A provider's settings as given: the secret in the clear, not yet sealed.
#[derive(Debug, Clone, Default)]
pub struct ProviderForm {
    pub name: Option<String>,
    pub description: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub issuer_id: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub redirect_uri: Option<String>,
}

fn secret_context(provider_id: Id) -> Vec<u8> {
    format!("oidc provider {provider_id} client secret").into_bytes()
}

fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// The form applied to `current` (all of it required when there is none), the secret sealed.
fn settings(
    vault: &Vault,
    provider_id: Id,
    form: ProviderForm,
    current: Option<&ProviderSettings>,
) -> Result<ProviderSettings, OidcProviderError> {
    let pick = |given: Option<String>, old: Option<&String>, field: &str| {
        given
            .or_else(|| old.cloned())
            .ok_or_else(|| OidcProviderError::InvalidField(format!("{field} is required")))
    };
    let (client_secret, client_secret_hint) = match (form.client_secret, current) {
        (Some(secret), _) if secret.is_empty() || secret.len() > 2048 => {
            return Err(OidcProviderError::InvalidField(
                "clientSecret must be 1 to 2048 characters".into(),
            ));
        }
        (Some(secret), _) => (
            vault
                .seal(secret.as_bytes(), &secret_context(provider_id))
                .map_err(|e| OidcProviderError::InvalidField(e.to_string()))?,
            hint(&secret),
        ),
        (None, Some(current)) => (
            current.client_secret.clone(),
            current.client_secret_hint.clone(),
        ),
        (None, None) => {
            return Err(OidcProviderError::InvalidField(
                "clientSecret is required".into(),
            ));
        }
    };
    Ok(ProviderSettings {
        name: pick(form.name, current.map(|c| &c.name), "name")?,
        description: pick(
            form.description,
            current.map(|c| &c.description),
            "description",
        )
        .unwrap_or_default(),
        client_id: pick(form.client_id, current.map(|c| &c.client_id), "clientId")?,
        client_secret,
        client_secret_hint,
        issuer_id: pick(form.issuer_id, current.map(|c| &c.issuer_id), "issuerId")?,
        authorization_endpoint: pick(
            form.authorization_endpoint,
            current.map(|c| &c.authorization_endpoint),
            "authorizationEndpoint",
        )?,
        token_endpoint: pick(
            form.token_endpoint,
            current.map(|c| &c.token_endpoint),
            "tokenEndpoint",
        )?,
        userinfo_endpoint: pick(
            form.userinfo_endpoint,
            current.map(|c| &c.userinfo_endpoint),
            "userinfoEndpoint",
        )?,
        redirect_uri: pick(
            form.redirect_uri,
            current.map(|c| &c.redirect_uri),
            "redirectUri",
        )?,
    })
}

/// Creates a provider (disabled) under a new id; its name must be free.
pub async fn create(
    bus: &CommandBus,
    ids: &IdGenerator,
    vault: &Vault,
    form: ProviderForm,
    meta: &CommandMeta,
) -> Result<(Id, Outcome), CommandError<OidcProviderError>> {
    let id = ids.next();
    let settings = settings(vault, id, form, None).map_err(CommandError::Domain)?;
    let unique = [name_claim(&settings.name)];
    let outcome = bus
        .execute_unique::<OidcProvider>(
            &StreamId::of(OidcProvider::KIND, id),
            &OidcProviderCommand::Create(settings),
            &unique,
            meta,
        )
        .await?;
    Ok((id, outcome))
}

/// Changes the given settings of a provider; a new name must be free, and frees the old one.
pub async fn update(
    bus: &CommandBus,
    vault: &Vault,
    provider_id: Id,
    form: ProviderForm,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<OidcProviderError>> {
    let stream = StreamId::of(OidcProvider::KIND, provider_id);
    let (provider, _) = bus.load::<OidcProvider>(&stream).await?;
    let current = provider
        .settings
        .as_ref()
        .filter(|_| !provider.deleted)
        .ok_or(CommandError::Domain(OidcProviderError::NotFound))?;
    let settings =
        settings(vault, provider_id, form, Some(current)).map_err(CommandError::Domain)?;
    let old_name = current.name.clone();
    let new_name = settings.name.clone();
    let outcome = bus
        .execute_unique::<OidcProvider>(
            &stream,
            &OidcProviderCommand::Update(settings),
            &[name_claim(&new_name)],
            meta,
        )
        .await?;
    if old_name != new_name && outcome.appended {
        let meta = meta.step("release-name");
        bus.release::<OidcProviderError>(&stream, &name_claim(&old_name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// Deletes a disabled provider nobody logs in through, and frees its name.
pub async fn delete(
    bus: &CommandBus,
    provider_id: Id,
    linked_users: u64,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<OidcProviderError>> {
    let stream = StreamId::of(OidcProvider::KIND, provider_id);
    let (provider, _) = bus.load::<OidcProvider>(&stream).await?;
    let outcome = bus
        .execute::<OidcProvider>(&stream, &OidcProviderCommand::Delete { linked_users }, meta)
        .await?;
    if let Some(settings) = provider.settings {
        let meta = meta.step("release-name");
        bus.release::<OidcProviderError>(&stream, &name_claim(&settings.name), &meta)
            .await?;
    }
    Ok(outcome)
}

/// The provider named `name`, if there is one.
pub async fn by_name(bus: &CommandBus, name: &str) -> Result<Option<(Id, OidcProvider)>, LogError> {
    let (claim, _) = bus
        .load::<Reservation>(&reservation::stream("oidc-provider", name))
        .await?;
    let Some(owner) = claim.holder.map(|h| h.owner) else {
        return Ok(None);
    };
    let Some(id) = owner.id() else {
        return Ok(None);
    };
    let (provider, _) = bus.load::<OidcProvider>(&owner).await?;
    Ok((!provider.deleted).then_some((id, provider)))
}

/// A nonce for an authentication URL: random, with its expiry, authenticated by the deployment
/// key, so any node can check one it gets back without remembering it.
pub fn nonce(vault: &Vault, provider_id: Id, now: Timestamp) -> String {
    let random = hex::encode(rand::random::<[u8; 16]>());
    let expires = now.plus_seconds(NONCE_VALID_SECONDS).millis();
    let mac = nonce_mac(vault, provider_id, &random, expires);
    format!("{random}.{expires}.{mac}")
}

fn nonce_mac(vault: &Vault, provider_id: Id, random: &str, expires: i64) -> String {
    vault
        .keyed_digest(format!("oidc nonce {provider_id} {random} {expires}").as_bytes())
        .to_string()
}

/// Whether `nonce` was made by [`nonce`] for `provider_id` and has not expired.
fn nonce_valid(vault: &Vault, provider_id: Id, nonce: &str, now: Timestamp) -> bool {
    let mut parts = nonce.splitn(3, '.');
    let (Some(random), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    let expected = nonce_mac(vault, provider_id, random, expires);
    let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into();
    same && now.millis() < expires
}

/// The URL to send the user to at the provider.
pub fn authentication_url(settings: &ProviderSettings, nonce: &str, state: Option<&str>) -> String {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", settings.client_id.as_str()),
        ("scope", "openid email profile"),
        ("redirect_uri", settings.redirect_uri.as_str()),
        ("nonce", nonce),
    ];
    if let Some(state) = state {
        query.push(("state", state));
    }
    let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
    let separator = if settings.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{encoded}", settings.authorization_endpoint)
}

/// Why a login through a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    Provider(#[from] CommandError<OidcProviderError>),
    #[error("the provider refused the authorization code: {0}")]
    InvalidAuthorizationCode(String),
    #[error("the provider answered unexpectedly: {0}")]
    ProviderResponse(String),
    #[error("the ID token could not be verified: {0}")]
    IdToken(String),
    #[error("the ID token's nonce was not issued here or has expired")]
    Nonce,
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<LogError> for OidcError {
    fn from(error: LogError) -> Self {
        Self::Provider(CommandError::Log(error))
    }
}

/// Who the provider says the user is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    email: Option<String>,
    email_verified: Option<bool>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// Talks to OIDC providers over HTTP.
#[derive(Clone)]
pub struct OidcClient {
    http: reqwest::Client,
}

impl Default for OidcClient {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(PROVIDER_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

impl OidcClient {
    async fn json<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, OidcError> {
        if !response.status().is_success() {
            return Err(OidcError::ProviderResponse(format!(
                "{what} answered {}",
                response.status()
            )));
        }
        let body = Self::bounded(response, what).await?;
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::ProviderResponse(format!("{what}: {e}")))
    }

    /// A provider's answer, read up to [`LONGEST_ANSWER`] bytes.
    async fn bounded(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, OidcError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| OidcError::ProviderResponse(format!("{what}: {e}")))?
        {
            if body.len() + chunk.len() > LONGEST_ANSWER {
                return Err(OidcError::ProviderResponse(format!(
                    "{what} answered more than {LONGEST_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Redeems `code` at the provider and verifies who it names.
    pub async fn identify(
        &self,
        vault: &Vault,
        provider_id: Id,
        settings: &ProviderSettings,
        code: &str,
    ) -> Result<Identity, OidcError> {
        let secret = vault.open(&settings.client_secret, &secret_context(provider_id))?;
        let secret = String::from_utf8_lossy(&secret).into_owned();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&settings.client_id),
            form_encode(&secret)
        ));
        let response = self
            .http
            .post(&settings.token_endpoint)
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", settings.redirect_uri.as_str()),
                ])
                .unwrap_or_default(),
            )
            .send()
            .await
            .map_err(|e| OidcError::ProviderResponse(format!("token endpoint: {e}")))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let body = Self::bounded(response, "the token endpoint").await?;
            let why: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(OidcError::InvalidAuthorizationCode(why));
        }
        let answer: TokenAnswer = Self::json(response, "the token endpoint").await?;
        let (Some(id_token), Some(access_token)) = (answer.id_token, answer.access_token) else {
            return Err(OidcError::ProviderResponse(
                "the token endpoint gave no id_token or access_token".into(),
            ));
        };
        let subject = self
            .verify_id_token(vault, provider_id, settings, &id_token)
            .await?;
        let response = self
            .http
            .get(&settings.userinfo_endpoint)
            .bearer_auth(&access_token)
            .send()
            .await
            .map_err(|e| OidcError::ProviderResponse(format!("userinfo endpoint: {e}")))?;
        let info: UserInfo = Self::json(response, "the userinfo endpoint").await?;
        if info.sub != subject {
            return Err(OidcError::ProviderResponse(
                "the user info is of another subject than the ID token".into(),
            ));
        }
        let email = info.email.ok_or_else(|| {
            OidcError::ProviderResponse("the user info has no email address".into())
        })?;
        Ok(Identity {
            subject,
            email,
            email_verified: info.email_verified.unwrap_or(false),
            first_name: info.given_name.unwrap_or_default(),
            last_name: info.family_name.unwrap_or_default(),
        })
    }

    /// The subject of a valid ID token: signed by a key the issuer publishes, for this client,
    /// unexpired, with a nonce of this deployment's.
    async fn verify_id_token(
        &self,
        vault: &Vault,
        provider_id: Id,
        settings: &ProviderSettings,
        id_token: &str,
    ) -> Result<String, OidcError> {
        let issuer = settings.issuer_id.trim_end_matches('/');
        let response = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .map_err(|e| OidcError::ProviderResponse(format!("discovery: {e}")))?;
        let discovery: Discovery = Self::json(response, "the discovery document").await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(OidcError::ProviderResponse(format!(
                "the discovery document names issuer {}",
                discovery.issuer
            )));
        }
        let response = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .map_err(|e| OidcError::ProviderResponse(format!("keys: {e}")))?;
        let keys: JwkSet = Self::json(response, "the key set").await?;
        let header =
            jsonwebtoken::decode_header(id_token).map_err(|e| OidcError::IdToken(e.to_string()))?;
        let asymmetric = matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        );
        if !asymmetric {
            return Err(OidcError::IdToken(format!(
                "{:?} is not a signature algorithm",
                header.alg
            )));
        }
        // The key the header names, or (without a name) each published signing key in turn.
        let candidates: Vec<&jsonwebtoken::jwk::Jwk> = match &header.kid {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys
                .keys
                .iter()
                .filter(|jwk| {
                    !matches!(
                        jwk.common.public_key_use,
                        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                    )
                })
                .collect(),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&settings.client_id]);
        validation.set_issuer(&[issuer, settings.issuer_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut refusal = OidcError::IdToken("no published key signed it".into());
        let mut verified = None;
        for jwk in candidates {
            let decoded = DecodingKey::from_jwk(jwk)
                .and_then(|key| jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation));
            match decoded {
                Ok(token) => {
                    verified = Some(token.claims);
                    break;
                }
                Err(error) => refusal = OidcError::IdToken(error.to_string()),
            }
        }
        let claims = verified.ok_or(refusal)?;
        let nonce_ok = claims
            .nonce
            .is_some_and(|nonce| nonce_valid(vault, provider_id, &nonce, ids::now()));
        if !nonce_ok {
            return Err(OidcError::Nonce);
        }
        Ok(claims.sub)
    }
}

/// `application/x-www-form-urlencoded` of a client id or secret in Basic credentials (RFC 6749
/// §2.3.1).
fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_owned()
}

/// The user who logs in as `identity` through `provider_id`: found by the link, or registered on
/// the first login (the email address must be free).
async fn linked_user(
    bus: &CommandBus,
    ids: &IdGenerator,
    provider_id: Id,
    identity: &Identity,
    meta: &CommandMeta,
) -> Result<Id, OidcError> {
    let subject = subject_claim(provider_id, &identity.subject);
    let (claim, _) = bus
        .load::<Reservation>(&reservation::stream(subject.namespace, &subject.value))
        .await?;
    // The holder's account, if it exists (a claim whose registration never committed, or whose
    // account was deleted, names no account, and is taken over below).
    if let Some(owner) = claim.holder.map(|h| h.owner) {
        let (user, _) = bus.load::<User>(&owner).await?;
        if let Some(user_id) = owner.id().filter(|_| user.active()) {
            return Ok(user_id);
        }
    }
    if !identity.email_verified {
        return Err(OidcError::ProviderResponse(
            "the provider has not verified the user's email address".into(),
        ));
    }
    let email = Email::parse(&identity.email).map_err(|_| {
        OidcError::ProviderResponse("the user info's email address is not valid".into())
    })?;
    let registration = Registration {
        first_name: user::fitted_name(&identity.first_name),
        last_name: user::fitted_name(&identity.last_name),
        phone_number: None,
        language: "EN".into(),
        time_zone: "UTC".into(),
        // Never a valid Argon2 hash; the link removes it in the same commit.
        password_hash: PasswordHash(String::new()),
        activated: true,
        activation_request: None,
        oidc: Some(OidcLinked {
            provider_id,
            subject_id: Personal(identity.subject.clone()),
        }),
        email: email.clone(),
    };
    let user_id = ids.next();
    bus.execute_unique::<User>(
        &StreamId::of(User::KIND, user_id),
        &UserCommand::Register(registration),
        &[email_claim(&email), subject],
        meta,
    )
    .await?;
    Ok(user_id)
}

/// What an OIDC login needs: where, for which application, with which code.
pub struct OidcLogin<'a> {
    pub provider_id: Id,
    pub provider: &'a OidcProvider,
    pub application_id: Id,
    pub authorization_code: &'a str,
}

/// Logs in through a provider: the user it names (created on the first login) gets a session
/// of `application_id`. Answers the subject too, for the record of the attempt.
pub async fn login(
    bus: &CommandBus,
    (ids, vault, lifetimes): (&IdGenerator, &Vault, TokenLifetimes),
    client: &OidcClient,
    login: OidcLogin<'_>,
    subject: &mut Option<String>,
    meta: CommandMeta,
) -> Result<Tokens, OidcError> {
    let settings = login.provider.usable().map_err(CommandError::Domain)?;
    let identity = client
        .identify(vault, login.provider_id, settings, login.authorization_code)
        .await?;
    *subject = Some(identity.subject.clone());
    let user_id = linked_user(bus, ids, login.provider_id, &identity, &meta).await?;
    let session_id = ids.next();
    Ok(session::start_session(
        bus,
        ids,
        lifetimes,
        (session_id, user_id, login.application_id),
        meta,
    )
    .await?)
}

/// Frees the provider subjects `user` (of `stream`) logged in as.
pub(crate) async fn release_subjects(
    bus: &CommandBus,
    stream: &StreamId,
    user: &User,
    meta: &CommandMeta,
) -> Result<(), CommandError<UserError>> {
    for (provider_id, subject) in &user.oidc_links {
        let meta = meta.step(&format!("release-subject-{provider_id}"));
        bus.release::<UserError>(stream, &subject_claim(*provider_id, subject), &meta)
            .await?;
    }
    Ok(())
}

/// Links the caller's account to the provider's subject that `authorization_code` names, once
/// they proved presence: their password is removed and every login of theirs ends. The subject
/// must not be another account's.
pub async fn link(
    bus: &CommandBus,
    (vault, client): (&Vault, &OidcClient),
    user_id: Id,
    (provider_id, provider, authorization_code): (Id, &OidcProvider, &str),
    presence_token: &str,
    meta: &CommandMeta,
) -> Result<Outcome, OidcError> {
    let settings = provider.usable().map_err(CommandError::Domain)?;
    if !crate::auth::mfa::present(bus, user_id, presence_token).await? {
        return Err(CommandError::Domain(UserError::InvalidPresence).into());
    }
    let identity = client
        .identify(vault, provider_id, settings, authorization_code)
        .await?;
    let link = OidcLinked {
        provider_id,
        subject_id: Personal(identity.subject.clone()),
    };
    let command = UserCommand::LinkOidc {
        link,
        presence_confirmed: true,
    };
    Ok(bus
        .execute_unique::<User>(
            &StreamId::of(User::KIND, user_id),
            &command,
            &[subject_claim(provider_id, &identity.subject)],
            meta,
        )
        .await?)
}

/// Unlinks a user from every OIDC provider (freeing the subjects) and mails them a code to
/// choose a password with; every login of theirs ends.
pub async fn unlink(
    bus: &CommandBus,
    ids: &IdGenerator,
    user_id: Id,
    meta: &CommandMeta,
) -> Result<Outcome, CommandError<UserError>> {
    let (settings, _) = bus
        .load::<vigil_domain::users::settings::Settings>(&vigil_domain::users::settings::stream())
        .await?;
    crate::users::user::without_template(
        &settings,
        vigil_domain::users::settings::TemplateSlot::OidcUnlink,
    )
    .map_err(CommandError::Domain)?;
    let stream = StreamId::of(User::KIND, user_id);
    let (user, _) = bus.load::<User>(&stream).await?;
    let command = UserCommand::UnlinkOidc {
        reset_request: ids.next(),
    };
    let outcome = bus.execute::<User>(&stream, &command, meta).await?;
    release_subjects(bus, &stream, &user, meta).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_for_its_provider_until_it_expires() {
        let vault = Vault::new([7; 32]);
        let provider = Id::from_bytes([1; 12]);
        let now = Timestamp(1_700_000_000_000);
        let nonce = nonce(&vault, provider, now);
        assert!(nonce_valid(&vault, provider, &nonce, now));
        assert!(!nonce_valid(&vault, Id::from_bytes([2; 12]), &nonce, now));
        assert!(!nonce_valid(&Vault::new([8; 32]), provider, &nonce, now));
        let later = now.plus_seconds(NONCE_VALID_SECONDS);
        assert!(!nonce_valid(&vault, provider, &nonce, later));
        let forged = nonce.replace('.', ".9");
        assert!(!nonce_valid(&vault, provider, &forged, now));
    }

    #[test]
    fn the_secret_hint_is_its_last_four_characters() {
        assert_eq!(hint("abcdefYF3X"), "YF3X");
        assert_eq!(hint("ab"), "ab");
    }
}
