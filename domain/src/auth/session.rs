//! Login sessions: one stream per successful login (`session-<id>`), holding the current OAuth2
//! access and refresh token. Refreshing rotates both, and because it is decided on this stream, two
//! concurrent refreshes with the same refresh token cannot both succeed.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::Timestamp;

/// A token as the log knows it: its id, the SHA-256 of its value, and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct IssuedToken {
    pub id: Id,
    pub digest: Digest,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionStarted {
    pub user_id: Id,
    pub application_id: Id,
    pub access: IssuedToken,
    pub refresh: IssuedToken,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionRefreshed {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
}

/// The login is over: its tokens were revoked (by the user or an administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SessionEnded {}

/// A refresh token the session had already rotated was presented again: someone holds a copy,
/// so the session ends, its current tokens with it (OAuth 2.0 Security Best Current Practice,
/// refresh token rotation; RFC 6819 §5.2.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RefreshTokenReused {}

/// How many of a session's rotated refresh tokens are remembered, to recognise their reuse.
pub const RETIRED_KEPT: usize = 16;

events! {
    pub enum SessionEvent {
        Started(SessionStarted) = "session.started",
        Refreshed(SessionRefreshed) = "session.refreshed",
        Ended(SessionEnded) = "session.ended",
        RefreshTokenReused(RefreshTokenReused) = "session.refresh_token_reused",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Start a session for a user whose credentials the command layer has verified.
    Start(SessionStarted),
    /// Rotate both tokens, given the current refresh token's digest.
    Refresh {
        application_id: Id,
        presented: Digest,
        access: IssuedToken,
        refresh: IssuedToken,
    },
    /// Revoke the session's tokens: its user may; others need `DELETE_AUTHORIZATIONS` (or, when
    /// they revoke it through its refresh token, `DELETE_OAUTH2_REFRESH_TOKEN`).
    End { through_refresh_token: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this session already exists")]
    AlreadyStarted,
    #[error("a session is started only for the user who logged in")]
    NotThisUser,
    #[error("unknown refresh token")]
    RefreshTokenUnknown,
    /// An already rotated refresh token: the session is ended (and the answer is the one for an
    /// unknown token).
    #[error("unknown refresh token")]
    RefreshTokenReused,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error("no such token")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for SessionError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyStarted => ExhCode::ResourceAlreadyExists,
            Self::NotThisUser => ExhCode::NoPermission,
            Self::RefreshTokenUnknown | Self::RefreshTokenReused => ExhCode::RefreshTokenUnknown,
            Self::RefreshTokenExpired => ExhCode::RefreshTokenExpired,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub ended: bool,
    /// The digests of the last [`RETIRED_KEPT`] refresh tokens it rotated, oldest first.
    pub retired: Vec<Digest>,
    pub user_id: Option<Id>,
    pub application_id: Option<Id>,
    pub access: Option<IssuedToken>,
    pub refresh: Option<IssuedToken>,
}

impl Aggregate for Session {
    const KIND: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            SessionCommand::Start(start)
                if !ctx.actor.is_system() && !ctx.actor.is_user(start.user_id) =>
            {
                Err(SessionError::NotThisUser)
            }
            SessionCommand::End { .. }
                if self.user_id.is_some_and(|user| ctx.actor.is_user(user)) =>
            {
                Ok(())
            }
            SessionCommand::End {
                through_refresh_token,
            } => {
                let legacy = ctx.actor.allows("DELETE_AUTHORIZATIONS");
                let refresh =
                    *through_refresh_token && ctx.actor.allows("DELETE_OAUTH2_REFRESH_TOKEN");
                if legacy || refresh || ctx.actor.is_system() {
                    Ok(())
                } else {
                    Err(SessionError::NoPermission("DELETE_AUTHORIZATIONS"))
                }
            }
            // Presenting the current refresh token is what authorizes a refresh; `handle` checks it.
            _ => Ok(()),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            SessionCommand::Start(start) => match self.user_id {
                Some(_) => Err(SessionError::AlreadyStarted),
                None => Ok(vec![SessionEvent::Started(start.clone())]),
            },
            SessionCommand::Refresh {
                application_id,
                presented,
                access,
                refresh,
            } => {
                let current = self
                    .refresh
                    .filter(|_| !self.ended)
                    .ok_or(SessionError::RefreshTokenUnknown)?;
                if self.retired.iter().any(|retired| retired.ct_eq(presented)) {
                    return Err(SessionError::RefreshTokenReused);
                }
                if !current.digest.ct_eq(presented) || self.application_id != Some(*application_id)
                {
                    return Err(SessionError::RefreshTokenUnknown);
                }
                if ctx.now >= current.expires_at {
                    return Err(SessionError::RefreshTokenExpired);
                }
                Ok(vec![SessionEvent::Refreshed(SessionRefreshed {
                    access: *access,
                    refresh: *refresh,
                })])
            }
            SessionCommand::End { .. } if self.user_id.is_none() || self.ended => {
                Err(SessionError::NotFound)
            }
            SessionCommand::End { .. } => Ok(vec![SessionEvent::Ended(SessionEnded {})]),
        }
    }

    fn recorded_refusal(
        &self,
        command: &Self::Command,
        error: &Self::Error,
        _ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        match (command, error) {
            (SessionCommand::Refresh { .. }, SessionError::RefreshTokenReused) => {
                vec![SessionEvent::RefreshTokenReused(RefreshTokenReused {})]
            }
            _ => Vec::new(),
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            SessionEvent::Started(e) => {
                self.user_id = Some(e.user_id);
                self.application_id = Some(e.application_id);
                self.access = Some(e.access);
                self.refresh = Some(e.refresh);
            }
            SessionEvent::Refreshed(e) => {
                self.access = Some(e.access);
                if let Some(previous) = self.refresh.replace(e.refresh) {
                    self.retired.push(previous.digest);
                    let excess = self.retired.len().saturating_sub(RETIRED_KEPT);
                    self.retired.drain(..excess);
                }
            }
            SessionEvent::Ended(_) | SessionEvent::RefreshTokenReused(_) => self.ended = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;

    fn token(n: u8, expires_at: Timestamp) -> IssuedToken {
        IssuedToken {
            id: id(n),
            digest: Digest::of(&[n]),
            expires_at,
        }
    }

    fn started() -> SessionStarted {
        SessionStarted {
            user_id: id(1),
            application_id: id(2),
            access: token(10, NOW.plus_seconds(3600)),
            refresh: token(11, NOW.plus_seconds(86_400)),
        }
    }

    fn refresh(presented: u8, application: u8) -> SessionCommand {
        SessionCommand::Refresh {
            application_id: id(application),
            presented: Digest::of(&[presented]),
            access: token(20, NOW.plus_seconds(7200)),
            refresh: token(21, NOW.plus_seconds(90_000)),
        }
    }

    #[test]
    fn the_user_who_logged_in_starts_their_session() {
        let user = Actor::user(id(1), Some(id(2)), Permissions::default(), Via::Http, None);
        given::<Session>(&[])
            .by(user)
            .when(SessionCommand::Start(started()))
            .then(&[SessionEvent::Started(started())]);
    }

    #[test]
    fn nobody_starts_a_session_for_someone_else() {
        let other = Actor::user(id(9), Some(id(2)), Permissions::all(), Via::Http, None);
        given::<Session>(&[])
            .by(other)
            .when(SessionCommand::Start(started()))
            .then_err(SessionError::NotThisUser);
    }

    #[test]
    fn the_current_refresh_token_rotates_both_tokens() {
        let events = given::<Session>(&[SessionEvent::Started(started())])
            .when(refresh(11, 2))
            .events();
        let rotated = Session::fold(
            &[SessionEvent::Started(started())]
                .into_iter()
                .chain(events)
                .collect::<Vec<_>>(),
        );
        assert_eq!(rotated.refresh.map(|t| t.id), Some(id(21)));
    }

    #[test]
    fn a_spent_refresh_token_presented_again_ends_the_session() {
        let rotated = SessionEvent::Refreshed(SessionRefreshed {
            access: token(20, NOW.plus_seconds(7200)),
            refresh: token(21, NOW.plus_seconds(90_000)),
        });
        let history = [SessionEvent::Started(started()), rotated];
        given::<Session>(&history)
            .when(refresh(11, 2))
            .then_refused(
                SessionError::RefreshTokenReused,
                &[SessionEvent::RefreshTokenReused(RefreshTokenReused {})],
            );
        // Then even the current refresh token is refused.
        let mut ended = history.to_vec();
        ended.push(SessionEvent::RefreshTokenReused(RefreshTokenReused {}));
        given::<Session>(&ended)
            .when(refresh(21, 2))
            .then_err(SessionError::RefreshTokenUnknown);
        // A token never issued to the session is only unknown.
        given::<Session>(&history)
            .when(refresh(99, 2))
            .then_err(SessionError::RefreshTokenUnknown);
    }

    #[test]
    fn only_the_last_rotated_refresh_tokens_are_remembered() {
        let mut history = vec![SessionEvent::Started(started())];
        for n in 0..40u8 {
            history.push(SessionEvent::Refreshed(SessionRefreshed {
                access: token(100 + n, NOW.plus_seconds(7200)),
                refresh: token(150 + n, NOW.plus_seconds(90_000)),
            }));
        }
        let session = Session::fold(&history);
        assert_eq!(session.retired.len(), RETIRED_KEPT);
        assert_eq!(session.retired.last(), Some(&Digest::of(&[150 + 38])));
    }

    #[test]
    fn another_application_cannot_use_the_refresh_token() {
        given::<Session>(&[SessionEvent::Started(started())])
            .when(refresh(11, 3))
            .then_err(SessionError::RefreshTokenUnknown);
    }

    #[test]
    fn a_user_ends_their_own_session_and_others_need_a_permission() {
        let owner = Actor::user(id(1), Some(id(2)), Permissions::default(), Via::Http, None);
        let end = SessionCommand::End {
            through_refresh_token: false,
        };
        given::<Session>(&[SessionEvent::Started(started())])
            .by(owner)
            .when(end.clone())
            .then(&[SessionEvent::Ended(SessionEnded {})]);
        let other = Actor::user(id(9), Some(id(2)), Permissions::default(), Via::Http, None);
        given::<Session>(&[SessionEvent::Started(started())])
            .by(other)
            .when(end)
            .then_err(SessionError::NoPermission("DELETE_AUTHORIZATIONS"));
    }

    #[test]
    fn an_ended_session_cannot_be_refreshed() {
        given::<Session>(&[
            SessionEvent::Started(started()),
            SessionEvent::Ended(SessionEnded {}),
        ])
        .when(refresh(11, 2))
        .then_err(SessionError::RefreshTokenUnknown);
    }

    #[test]
    fn an_expired_refresh_token_is_refused() {
        given::<Session>(&[SessionEvent::Started(started())])
            .at(NOW.plus_seconds(86_400))
            .when(refresh(11, 2))
            .then_err(SessionError::RefreshTokenExpired);
    }
}
