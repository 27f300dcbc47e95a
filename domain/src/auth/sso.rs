//! Single sign-on tokens: a logged-in client hands its user to another OAuth1 application, which
//! trades the token once, within minutes, for OAuth1 credentials of its own. One stream per token
//! (`ssotoken-<id>`); the token itself is shown once and only its digest is kept.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::Timestamp;

/// How long an SSO token may be consumed.
pub const SSO_VALID_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SsoTokenCreated {
    pub user_id: Id,
    /// The application the user was logged in through.
    pub application_id: Id,
    pub digest: Digest,
    pub expires_at: Timestamp,
}

/// The token was traded for the OAuth1 token `oauth1_token_id` of `application_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SsoTokenConsumed {
    pub application_id: Id,
    pub oauth1_token_id: Id,
}

events! {
    pub enum SsoTokenEvent {
        Created(SsoTokenCreated) = "sso_token.created",
        Consumed(SsoTokenConsumed) = "sso_token.consumed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoTokenCommand {
    Create(SsoTokenCreated),
    /// Trade the token (by digest) for a new OAuth1 token of `application_id`.
    Consume {
        digest: Digest,
        application_id: Id,
        oauth1_token_id: Id,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoTokenError {
    #[error("this SSO token already exists")]
    AlreadyExists,
    #[error("an SSO token is made only for the caller themselves")]
    NotThisUser,
    #[error("the SSO token is unknown, used or expired")]
    Unknown,
}

impl DomainError for SsoTokenError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotThisUser => ExhCode::NoPermission,
            Self::Unknown => ExhCode::ResourceUnknown,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsoToken {
    pub created: Option<SsoTokenCreated>,
    pub consumed: bool,
}

impl Aggregate for SsoToken {
    const KIND: &'static str = "ssotoken";
    type Command = SsoTokenCommand;
    type Event = SsoTokenEvent;
    type Error = SsoTokenError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            SsoTokenCommand::Create(created) if !ctx.actor.is_user(created.user_id) => {
                Err(SsoTokenError::NotThisUser)
            }
            // Presenting the token is what authorizes consuming it; `handle` checks it.
            _ => Ok(()),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            SsoTokenCommand::Create(_) if self.created.is_some() => {
                Err(SsoTokenError::AlreadyExists)
            }
            SsoTokenCommand::Create(created) => Ok(vec![SsoTokenEvent::Created(created.clone())]),
            SsoTokenCommand::Consume {
                digest,
                application_id,
                oauth1_token_id,
            } => {
                self.created
                    .as_ref()
                    .filter(|c| !self.consumed && c.expires_at > ctx.now && c.digest.ct_eq(digest))
                    .ok_or(SsoTokenError::Unknown)?;
                Ok(vec![SsoTokenEvent::Consumed(SsoTokenConsumed {
                    application_id: *application_id,
                    oauth1_token_id: *oauth1_token_id,
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            SsoTokenEvent::Created(e) => self.created = Some(e.clone()),
            SsoTokenEvent::Consumed(_) => self.consumed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;

    fn created() -> SsoTokenCreated {
        SsoTokenCreated {
            user_id: id(1),
            application_id: id(2),
            digest: Digest::of(b"sso"),
            expires_at: NOW.plus_seconds(SSO_VALID_SECONDS),
        }
    }

    fn consume(token: &[u8]) -> SsoTokenCommand {
        SsoTokenCommand::Consume {
            digest: Digest::of(token),
            application_id: id(3),
            oauth1_token_id: id(4),
        }
    }

    #[test]
    fn a_user_makes_sso_tokens_for_themselves_only() {
        let other = Actor::user(id(9), Some(id(2)), Permissions::default(), Via::Http, None);
        given::<SsoToken>(&[])
            .by(other)
            .when(SsoTokenCommand::Create(created()))
            .then_err(SsoTokenError::NotThisUser);
        let user = Actor::user(id(1), Some(id(2)), Permissions::default(), Via::Http, None);
        given::<SsoToken>(&[])
            .by(user)
            .when(SsoTokenCommand::Create(created()))
            .then(&[SsoTokenEvent::Created(created())]);
    }

    #[test]
    fn a_token_is_consumed_once_before_it_expires() {
        let history = [SsoTokenEvent::Created(created())];
        let consumed = given::<SsoToken>(&history).when(consume(b"sso")).events();
        given::<SsoToken>(&history)
            .when(consume(b"other"))
            .then_err(SsoTokenError::Unknown);
        given::<SsoToken>(&history)
            .at(NOW.plus_seconds(SSO_VALID_SECONDS))
            .when(consume(b"sso"))
            .then_err(SsoTokenError::Unknown);
        let spent = [history[0].clone(), consumed[0].clone()];
        given::<SsoToken>(&spent)
            .when(consume(b"sso"))
            .then_err(SsoTokenError::Unknown);
    }
}
