//! OAuth1 tokens: what an OAuth1 client signs its requests with after a login (RFC 5849 token
//! credentials). One stream per token (`oauthtoken-<id>`). The token is found by its digest; its
//! secret signs requests and so is kept sealed under the deployment key. A token does not expire:
//! it lives until it is revoked, or until its user is logged out everywhere.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::Sealed;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OAuth1TokenCreated {
    pub user_id: Id,
    pub application_id: Id,
    pub token_digest: Digest,
    pub secret: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OAuth1TokenRevoked {}

events! {
    pub enum OAuth1TokenEvent {
        Created(OAuth1TokenCreated) = "oauth1_token.created",
        Revoked(OAuth1TokenRevoked) = "oauth1_token.revoked",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuth1TokenCommand {
    /// Issue a token to a user whose credentials the command layer has verified.
    Create(OAuth1TokenCreated),
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuth1TokenError {
    #[error("this token already exists")]
    AlreadyExists,
    #[error("a token is issued only to the user who logged in")]
    NotThisUser,
    #[error("no such token")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for OAuth1TokenError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotThisUser | Self::NoPermission(_) => ExhCode::NoPermission,
            Self::NotFound => ExhCode::ResourceUnknown,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuth1Token {
    pub created: Option<OAuth1TokenCreated>,
    pub revoked: bool,
}

impl Aggregate for OAuth1Token {
    const KIND: &'static str = "oauthtoken";
    type Command = OAuth1TokenCommand;
    type Event = OAuth1TokenEvent;
    type Error = OAuth1TokenError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            OAuth1TokenCommand::Create(created)
                if ctx.actor.is_user(created.user_id) || ctx.actor.is_system() =>
            {
                Ok(())
            }
            OAuth1TokenCommand::Create(_) => Err(OAuth1TokenError::NotThisUser),
            OAuth1TokenCommand::Revoke
                if self
                    .created
                    .as_ref()
                    .is_some_and(|c| ctx.actor.is_user(c.user_id)) =>
            {
                Ok(())
            }
            OAuth1TokenCommand::Revoke => ctx
                .actor
                .require("DELETE_AUTHORIZATIONS", OAuth1TokenError::NoPermission),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        _ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            OAuth1TokenCommand::Create(_) if self.created.is_some() => {
                Err(OAuth1TokenError::AlreadyExists)
            }
            OAuth1TokenCommand::Create(created) => {
                Ok(vec![OAuth1TokenEvent::Created(created.clone())])
            }
            OAuth1TokenCommand::Revoke if self.created.is_none() || self.revoked => {
                Err(OAuth1TokenError::NotFound)
            }
            OAuth1TokenCommand::Revoke => {
                Ok(vec![OAuth1TokenEvent::Revoked(OAuth1TokenRevoked {})])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            OAuth1TokenEvent::Created(e) => self.created = Some(e.clone()),
            OAuth1TokenEvent::Revoked(_) => self.revoked = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn created() -> OAuth1TokenCreated {
        OAuth1TokenCreated {
            user_id: id(1),
            application_id: id(2),
            token_digest: Digest::of(b"token"),
            secret: Sealed(vec![9]),
        }
    }

    fn user(n: u8) -> Actor {
        Actor::user(id(n), Some(id(2)), Permissions::default(), Via::Http, None)
    }

    #[test]
    fn a_token_is_issued_to_the_user_who_logged_in_once() {
        let create = OAuth1TokenCommand::Create(created());
        given::<OAuth1Token>(&[])
            .by(user(1))
            .when(create.clone())
            .then(&[OAuth1TokenEvent::Created(created())]);
        given::<OAuth1Token>(&[])
            .by(user(3))
            .when(create.clone())
            .then_err(OAuth1TokenError::NotThisUser);
        given::<OAuth1Token>(&[OAuth1TokenEvent::Created(created())])
            .by(user(1))
            .when(create)
            .then_err(OAuth1TokenError::AlreadyExists);
    }

    #[test]
    fn its_user_or_an_administrator_revokes_it_once() {
        let history = [OAuth1TokenEvent::Created(created())];
        let revoked = OAuth1TokenEvent::Revoked(OAuth1TokenRevoked {});
        given::<OAuth1Token>(&history)
            .by(user(1))
            .when(OAuth1TokenCommand::Revoke)
            .then(std::slice::from_ref(&revoked));
        given::<OAuth1Token>(&history)
            .by(user(3))
            .when(OAuth1TokenCommand::Revoke)
            .then_err(OAuth1TokenError::NoPermission("DELETE_AUTHORIZATIONS"));
        given::<OAuth1Token>(&[history[0].clone(), revoked])
            .by(user(1))
            .when(OAuth1TokenCommand::Revoke)
            .then_err(OAuth1TokenError::NotFound);
    }
}
