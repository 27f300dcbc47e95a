//! OAuth2 authorization codes: a logged-in user lets a client application obtain tokens for them
//! (RFC 6749 §4.1, with PKCE, RFC 7636). One stream per authorization (`authorization-<id>`); the
//! code itself is shown once and only its digest is kept. A code is redeemed at most once, and
//! only by the client it was made for, before it expires.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::Timestamp;

/// How long an authorization code may be redeemed.
pub const CODE_VALID_SECONDS: i64 = 600;

/// The PKCE challenge a client registered with the authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum CodeChallenge {
    /// The verifier itself.
    Plain(String),
    /// BASE64URL(SHA-256(verifier)), unpadded.
    S256(String),
}

/// A code verifier as presented, in both forms a challenge may compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub plain: String,
    pub s256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuthorizationCreated {
    pub user_id: Id,
    pub application_id: Id,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub challenge: Option<CodeChallenge>,
    pub code_digest: Digest,
    pub expires_at: Timestamp,
}

/// The code was exchanged for the tokens of `session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuthorizationRedeemed {
    pub session_id: Id,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuthorizationRevoked {}

/// The code of a redeemed authorization was presented again: someone holds a copy, so the
/// session its first redemption started is to end (RFC 6749 §4.1.2). That session is named here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CodeReplayed {
    pub session_id: Id,
}

events! {
    pub enum AuthorizationEvent {
        Created(AuthorizationCreated) = "authorization.created",
        Redeemed(AuthorizationRedeemed) = "authorization.redeemed",
        Revoked(AuthorizationRevoked) = "authorization.revoked",
        CodeReplayed(CodeReplayed) = "authorization.code_replayed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationCommand {
    Create(AuthorizationCreated),
    /// Exchange the code (by digest) for a new session, as the client `client_id`.
    Redeem {
        client_id: String,
        code_digest: Digest,
        redirect_uri: Option<String>,
        verifier: Option<Verifier>,
        session_id: Id,
    },
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("the authorization is unknown or already used")]
    Unknown,
    /// The code of a redeemed authorization, presented again: refused like an unknown one, and
    /// the session its redemption started must end.
    #[error("the authorization is unknown or already used")]
    Replayed { session_id: Id },
    #[error("the authorization code has expired")]
    Expired,
    #[error("the redirect_uri does not match the authorization's")]
    Callback,
    #[error("the authorization needs a PKCE code_verifier")]
    MissingVerifier,
    #[error("the code_verifier does not match the code challenge")]
    InvalidVerifier,
    #[error("this authorization already exists")]
    AlreadyExists,
    #[error("no authorization with this id that can still be revoked")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for AuthorizationError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::Unknown | Self::Replayed { .. } => ExhCode::AuthorizationUnknown,
            Self::Expired => ExhCode::AuthorizationCodeExpired,
            Self::Callback => ExhCode::CallbackNotValid,
            Self::MissingVerifier => ExhCode::MissingPkceVerifier,
            Self::InvalidVerifier => ExhCode::InvalidPkce,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    pub created: Option<AuthorizationCreated>,
    /// Redeemed or revoked: the code is spent.
    pub spent: bool,
    /// The session the code's redemption started.
    pub redeemed_into: Option<Id>,
}

/// Compares two strings in constant time (for a given length).
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Aggregate for Authorization {
    const KIND: &'static str = "authorization";
    type Command = AuthorizationCommand;
    type Event = AuthorizationEvent;
    type Error = AuthorizationError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            // A user authorizes clients for themselves only.
            AuthorizationCommand::Create(created) if ctx.actor.is_user(created.user_id) => Ok(()),
            AuthorizationCommand::Create(_) => {
                Err(AuthorizationError::NoPermission("CREATE_AUTHORIZATIONS"))
            }
            // The code is the proof; the client was authenticated by the token endpoint.
            AuthorizationCommand::Redeem { .. } => Ok(()),
            AuthorizationCommand::Revoke => {
                let own = self
                    .created
                    .as_ref()
                    .is_some_and(|c| ctx.actor.is_user(c.user_id));
                if own {
                    Ok(())
                } else {
                    ctx.actor
                        .require("DELETE_AUTHORIZATIONS", AuthorizationError::NoPermission)
                }
            }
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            AuthorizationCommand::Create(created) => {
                if self.created.is_some() {
                    return Err(AuthorizationError::AlreadyExists);
                }
                Ok(vec![AuthorizationEvent::Created(created.clone())])
            }
            AuthorizationCommand::Redeem {
                client_id,
                code_digest,
                redirect_uri,
                verifier,
                session_id,
            } => {
                let created = self.created.as_ref().ok_or(AuthorizationError::Unknown)?;
                if !created.code_digest.ct_eq(code_digest) || created.client_id != *client_id {
                    return Err(AuthorizationError::Unknown);
                }
                match (self.spent, self.redeemed_into) {
                    (true, Some(session_id)) => {
                        return Err(AuthorizationError::Replayed { session_id });
                    }
                    (true, None) => return Err(AuthorizationError::Unknown),
                    (false, _) => {}
                }
                if created.expires_at <= ctx.now {
                    return Err(AuthorizationError::Expired);
                }
                if redirect_uri
                    .as_ref()
                    .is_some_and(|uri| *uri != created.redirect_uri)
                {
                    return Err(AuthorizationError::Callback);
                }
                if let Some(challenge) = &created.challenge {
                    let verifier = verifier
                        .as_ref()
                        .ok_or(AuthorizationError::MissingVerifier)?;
                    let matches = match challenge {
                        CodeChallenge::Plain(expected) => same(&verifier.plain, expected),
                        CodeChallenge::S256(expected) => same(&verifier.s256, expected),
                    };
                    if !matches {
                        return Err(AuthorizationError::InvalidVerifier);
                    }
                }
                Ok(vec![AuthorizationEvent::Redeemed(AuthorizationRedeemed {
                    session_id: *session_id,
                })])
            }
            AuthorizationCommand::Revoke => {
                if self.created.is_none() || self.spent {
                    return Err(AuthorizationError::NotFound);
                }
                Ok(vec![AuthorizationEvent::Revoked(AuthorizationRevoked {})])
            }
        }
    }

    fn recorded_refusal(
        &self,
        command: &Self::Command,
        error: &Self::Error,
        _ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        match (command, error) {
            (AuthorizationCommand::Redeem { .. }, AuthorizationError::Replayed { session_id }) => {
                vec![AuthorizationEvent::CodeReplayed(CodeReplayed {
                    session_id: *session_id,
                })]
            }
            _ => Vec::new(),
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            AuthorizationEvent::Created(e) => self.created = Some(e.clone()),
            AuthorizationEvent::Redeemed(e) => {
                self.spent = true;
                self.redeemed_into = Some(e.session_id);
            }
            AuthorizationEvent::Revoked(_) => self.spent = true,
            AuthorizationEvent::CodeReplayed(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;

    fn created(challenge: Option<CodeChallenge>) -> AuthorizationCreated {
        AuthorizationCreated {
            user_id: id(1),
            application_id: id(2),
            client_id: "client".into(),
            redirect_uri: "https://app.example.com/callback".into(),
            state: Some("xyz".into()),
            challenge,
            code_digest: Digest::of(b"code"),
            expires_at: NOW.plus_seconds(CODE_VALID_SECONDS),
        }
    }

    fn redeem(verifier: Option<Verifier>) -> AuthorizationCommand {
        redeem_as("client", b"code", None, verifier)
    }

    fn redeem_as(
        client_id: &str,
        code: &[u8],
        redirect_uri: Option<&str>,
        verifier: Option<Verifier>,
    ) -> AuthorizationCommand {
        AuthorizationCommand::Redeem {
            client_id: client_id.into(),
            code_digest: Digest::of(code),
            redirect_uri: redirect_uri.map(str::to_owned),
            verifier,
            session_id: id(9),
        }
    }

    fn verifier(plain: &str, s256: &str) -> Option<Verifier> {
        Some(Verifier {
            plain: plain.into(),
            s256: s256.into(),
        })
    }

    #[test]
    fn a_user_authorizes_clients_for_themselves_only() {
        let me = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        let other = Actor::user(id(5), None, Permissions::all(), Via::Http, None);
        given::<Authorization>(&[])
            .by(me)
            .when(AuthorizationCommand::Create(created(None)))
            .then(&[AuthorizationEvent::Created(created(None))]);
        given::<Authorization>(&[])
            .by(other)
            .when(AuthorizationCommand::Create(created(None)))
            .then_err(AuthorizationError::NoPermission("CREATE_AUTHORIZATIONS"));
    }

    #[test]
    fn a_code_is_redeemed_once() {
        let redeemed = AuthorizationEvent::Redeemed(AuthorizationRedeemed { session_id: id(9) });
        let history = [AuthorizationEvent::Created(created(None))];
        given::<Authorization>(&history)
            .when(redeem(None))
            .then(std::slice::from_ref(&redeemed));
        // Presented again, it is taken for a copy: refused, and recorded with the session its
        // redemption started, which is to end.
        given::<Authorization>(&[history[0].clone(), redeemed.clone()])
            .when(redeem(None))
            .then_refused(
                AuthorizationError::Replayed { session_id: id(9) },
                &[AuthorizationEvent::CodeReplayed(CodeReplayed {
                    session_id: id(9),
                })],
            );
        // A wrong code for a redeemed authorization is only unknown.
        given::<Authorization>(&[history[0].clone(), redeemed])
            .when(redeem_as("client", b"guess", None, None))
            .then_err(AuthorizationError::Unknown);
    }

    #[test]
    fn only_its_client_redeems_a_code_with_the_right_code_before_it_expires() {
        let history = [AuthorizationEvent::Created(created(None))];
        given::<Authorization>(&history)
            .when(redeem_as("other", b"code", None, None))
            .then_err(AuthorizationError::Unknown);
        given::<Authorization>(&history)
            .when(redeem_as("client", b"guess", None, None))
            .then_err(AuthorizationError::Unknown);
        given::<Authorization>(&history)
            .at(NOW.plus_seconds(CODE_VALID_SECONDS))
            .when(redeem(None))
            .then_err(AuthorizationError::Expired);
    }

    #[test]
    fn a_redirect_uri_given_at_the_token_endpoint_must_be_the_authorizations() {
        let history = [AuthorizationEvent::Created(created(None))];
        given::<Authorization>(&history)
            .when(redeem_as(
                "client",
                b"code",
                Some("https://evil.example.com/"),
                None,
            ))
            .then_err(AuthorizationError::Callback);
        given::<Authorization>(&history)
            .when(redeem_as(
                "client",
                b"code",
                Some("https://app.example.com/callback"),
                None,
            ))
            .then(&[AuthorizationEvent::Redeemed(AuthorizationRedeemed {
                session_id: id(9),
            })]);
    }

    #[test]
    fn pkce_verifiers_are_required_and_checked() {
        for challenge in [
            CodeChallenge::Plain("plain-verifier".into()),
            CodeChallenge::S256("hashed".into()),
        ] {
            let history = [AuthorizationEvent::Created(created(Some(
                challenge.clone(),
            )))];
            given::<Authorization>(&history)
                .when(redeem(None))
                .then_err(AuthorizationError::MissingVerifier);
            given::<Authorization>(&history)
                .when(redeem(verifier("wrong", "wrong")))
                .then_err(AuthorizationError::InvalidVerifier);
            let good = match challenge {
                CodeChallenge::Plain(_) => verifier("plain-verifier", "x"),
                CodeChallenge::S256(_) => verifier("x", "hashed"),
            };
            assert_eq!(
                given::<Authorization>(&history)
                    .when(redeem(good))
                    .events()
                    .len(),
                1
            );
        }
    }

    #[test]
    fn the_owner_or_a_permission_revokes() {
        let history = [AuthorizationEvent::Created(created(None))];
        let stranger = Actor::user(id(5), None, Permissions::default(), Via::Http, None);
        given::<Authorization>(&history)
            .by(stranger)
            .when(AuthorizationCommand::Revoke)
            .then_err(AuthorizationError::NoPermission("DELETE_AUTHORIZATIONS"));
        let owner = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Authorization>(&history)
            .by(owner)
            .when(AuthorizationCommand::Revoke)
            .then(&[AuthorizationEvent::Revoked(AuthorizationRevoked {})]);
    }
}
