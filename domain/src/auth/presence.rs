//! Presence tokens: short-lived proof that a logged-in user has just typed their password again,
//! which sensitive self-service changes (MFA settings, OIDC links) ask for. One stream per user
//! (`presence-<userId>`); a token is shown once and only its digest is kept.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id, StreamId};
use crate::value::Timestamp;

/// How long a presence token proves presence.
pub const PRESENCE_VALID_SECONDS: i64 = 600;
/// Live tokens kept per user; confirming presence again drops the oldest beyond this.
const KEPT: usize = 16;

/// The presence stream of a user.
pub fn stream(user_id: Id) -> StreamId {
    StreamId::of(Presence::KIND, user_id)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PresenceConfirmed {
    pub token_id: Id,
    pub digest: Digest,
    pub at: Timestamp,
    pub expires_at: Timestamp,
}

events! {
    pub enum PresenceEvent {
        Confirmed(PresenceConfirmed) = "presence.confirmed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceCommand {
    /// Record a presence token for a user whose password the command layer has just verified.
    Confirm(PresenceConfirmed),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("presence is confirmed only by the user themselves")]
    NotThisUser,
}

impl DomainError for PresenceError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NotThisUser => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    tokens: Vec<PresenceConfirmed>,
}

impl Presence {
    /// Whether `digest` is the digest of a token of this user that is still valid at `now`.
    pub fn admits(&self, digest: &Digest, now: Timestamp) -> bool {
        self.tokens
            .iter()
            .filter(|token| token.expires_at > now)
            .fold(false, |found, token| token.digest.ct_eq(digest) | found)
    }
}

impl Aggregate for Presence {
    const KIND: &'static str = "presence";
    type Command = PresenceCommand;
    type Event = PresenceEvent;
    type Error = PresenceError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let PresenceCommand::Confirm(_) = command;
        let own = ctx.stream.id().is_some_and(|user| ctx.actor.is_user(user));
        if own || ctx.actor.is_system() {
            Ok(())
        } else {
            Err(PresenceError::NotThisUser)
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        _ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let PresenceCommand::Confirm(confirmed) = command;
        Ok(vec![PresenceEvent::Confirmed(confirmed.clone())])
    }

    fn apply(&mut self, event: &Self::Event) {
        let PresenceEvent::Confirmed(confirmed) = event;
        self.tokens.retain(|token| token.expires_at > confirmed.at);
        self.tokens.push(confirmed.clone());
        let excess = self.tokens.len().saturating_sub(KEPT);
        self.tokens.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;

    fn confirmed(n: u8, at: Timestamp) -> PresenceConfirmed {
        PresenceConfirmed {
            token_id: id(n),
            digest: Digest::from_bytes([n; 32]),
            at,
            expires_at: at.plus_seconds(PRESENCE_VALID_SECONDS),
        }
    }

    fn user(n: u8) -> Actor {
        Actor::user(id(n), None, Permissions::default(), Via::Http, None)
    }

    #[test]
    fn only_the_user_confirms_their_own_presence() {
        let confirm = PresenceCommand::Confirm(confirmed(1, NOW));
        given::<Presence>(&[])
            .on(id(5))
            .by(user(5))
            .when(confirm.clone())
            .then(&[PresenceEvent::Confirmed(confirmed(1, NOW))]);
        given::<Presence>(&[])
            .on(id(5))
            .by(user(6))
            .when(confirm)
            .then_err(PresenceError::NotThisUser);
    }

    #[test]
    fn a_token_proves_presence_until_it_expires() {
        let presence = Presence::fold(&[PresenceEvent::Confirmed(confirmed(1, NOW))]);
        let digest = Digest::from_bytes([1; 32]);
        assert!(presence.admits(&digest, NOW.plus_seconds(PRESENCE_VALID_SECONDS - 1)));
        assert!(!presence.admits(&digest, NOW.plus_seconds(PRESENCE_VALID_SECONDS)));
        assert!(!presence.admits(&Digest::from_bytes([2; 32]), NOW));
    }

    #[test]
    fn expired_tokens_are_forgotten_and_at_most_sixteen_are_kept() {
        let later = NOW.plus_seconds(PRESENCE_VALID_SECONDS);
        let mut events = vec![PresenceEvent::Confirmed(confirmed(0, NOW))];
        events.extend((1..=20).map(|n| PresenceEvent::Confirmed(confirmed(n, later))));
        let presence = Presence::fold(&events);
        assert_eq!(presence.tokens.len(), KEPT);
        assert!(!presence.admits(&Digest::from_bytes([4; 32]), later));
        assert!(presence.admits(&Digest::from_bytes([5; 32]), later));
    }
}
