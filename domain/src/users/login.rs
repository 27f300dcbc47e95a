//! Password-login throttling, one stream per email address (`login-<sha256 of the address>`),
//! whether or not an account has that address: an unknown address is throttled exactly like a
//! known one, so the answers never tell which addresses have accounts. Every failed attempt is in
//! the log (Part 11 asks that attempts at unauthorized use be detected and reported).
//!
//! The rules are Extra Horizon's: at most one attempt per second after a failure
//! (`LOGIN_TIMEOUT`), a 60-second freeze after every 10th consecutive failure (`LOGIN_FREEZE`),
//! and a lock after 50 until an administrator resets it (`TOO_MANY_FAILED_ATTEMPTS`). A successful
//! login, a password change or reset, and an administrator's reset clear the count.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id, StreamId};
use crate::value::{Email, Timestamp};

/// Failures after which an account is locked until an administrator resets it.
pub const LOCK_AFTER: u32 = 50;
/// Every this many failures, logins freeze for [`FREEZE_MILLIS`].
pub const FREEZE_EVERY: u32 = 10;
pub const FREEZE_MILLIS: i64 = 60_000;
/// The least time between a failure and the next attempt.
pub const PAUSE_MILLIS: i64 = 1_000;

/// The login stream of an email address.
pub fn stream(email: &Email) -> StreamId {
    StreamId::from_trusted_parts(
        Login::KIND,
        Digest::of(email.as_str().as_bytes()).to_string(),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LoginFailed {
    /// The account with this address, if there is one.
    pub user_id: Option<Id>,
    /// Consecutive failures, this one included.
    pub failed_count: u32,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FailuresCleared {
    pub user_id: Option<Id>,
}

events! {
    pub enum LoginEvent {
        Failed(LoginFailed) = "login.failed",
        Cleared(FailuresCleared) = "login.cleared",
    }
}

impl LoginEvent {
    /// The account the event concerns, if the address has one.
    pub fn user_id(&self) -> Option<Id> {
        match self {
            Self::Failed(e) => e.user_id,
            Self::Cleared(e) => e.user_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCommand {
    /// A login attempt at `ctx.now`, whose password the command layer has checked: admitted only
    /// within the limits, a wrong one (or an address without an account) counted in the same
    /// commit that refuses it, a right one clearing earlier failures. Attempts made in parallel
    /// are thereby decided one after the other, so they cannot outrun the limits. `paced`: the
    /// pause after a failure applies (logins); a signed-in user's own password checks are counted,
    /// frozen and locked alike, without it.
    Attempt {
        user_id: Option<Id>,
        verified: bool,
        paced: bool,
    },
    /// Clear the count: a successful login, a new password, or an administrator.
    Clear {
        user_id: Option<Id>,
        by_administrator: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginAttemptError {
    #[error("the email or password is incorrect")]
    WrongCredentials,
    #[error("only one login attempt per second is allowed; wait a moment")]
    Timeout,
    #[error("logins to this account are frozen for a minute after repeated failures")]
    Frozen,
    #[error("too many failed logins: the account is locked until an administrator resets it")]
    Locked,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for LoginAttemptError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::WrongCredentials => ExhCode::Authentication,
            Self::Timeout => ExhCode::LoginTimeout,
            Self::Frozen => ExhCode::LoginFreeze,
            Self::Locked => ExhCode::TooManyFailedAttempts,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Login {
    pub failed_count: u32,
    pub last_failed_at: Option<Timestamp>,
}

impl Login {
    /// Whether a login attempt may be made at `now`; `paced`: whether the pause after a failure
    /// applies.
    pub fn admits(&self, now: Timestamp, paced: bool) -> Result<(), LoginAttemptError> {
        let Some(last) = self.last_failed_at else {
            return Ok(());
        };
        let since = now.millis().saturating_sub(last.millis());
        if self.failed_count >= LOCK_AFTER {
            Err(LoginAttemptError::Locked)
        } else if self.failed_count.is_multiple_of(FREEZE_EVERY) && since < FREEZE_MILLIS {
            Err(LoginAttemptError::Frozen)
        } else if paced && since < PAUSE_MILLIS {
            Err(LoginAttemptError::Timeout)
        } else {
            Ok(())
        }
    }
}

impl Aggregate for Login {
    const KIND: &'static str = "login";
    type Command = LoginCommand;
    type Event = LoginEvent;
    type Error = LoginAttemptError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            LoginCommand::Clear {
                by_administrator: true,
                ..
            } => ctx.actor.require(
                "RESET_FAILED_LOGIN_ATTEMPTS",
                LoginAttemptError::NoPermission,
            ),
            // Attempts are recorded, and cleared after a success, by the login procedure itself.
            _ => Ok(()),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            LoginCommand::Attempt {
                verified: false,
                paced,
                ..
            } => {
                self.admits(ctx.now, *paced)?;
                Err(LoginAttemptError::WrongCredentials)
            }
            LoginCommand::Attempt {
                user_id,
                verified: true,
                paced,
            } => {
                self.admits(ctx.now, *paced)?;
                Ok(self.clear(*user_id))
            }
            LoginCommand::Clear { user_id, .. } => Ok(self.clear(*user_id)),
        }
    }

    fn recorded_refusal(
        &self,
        command: &Self::Command,
        error: &Self::Error,
        ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        match (command, error) {
            (LoginCommand::Attempt { user_id, .. }, LoginAttemptError::WrongCredentials) => {
                vec![LoginEvent::Failed(LoginFailed {
                    user_id: *user_id,
                    failed_count: self.failed_count.saturating_add(1),
                    at: ctx.now,
                })]
            }
            _ => Vec::new(),
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            LoginEvent::Failed(e) => {
                self.failed_count = e.failed_count;
                self.last_failed_at = Some(e.at);
            }
            LoginEvent::Cleared(_) => *self = Self::default(),
        }
    }
}

impl Login {
    /// Forgets earlier failures, if there are any.
    fn clear(&self, user_id: Option<Id>) -> Vec<LoginEvent> {
        if self.failed_count > 0 {
            vec![LoginEvent::Cleared(FailuresCleared { user_id })]
        } else {
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;
    use proptest::prelude::*;

    fn failed(count: u32, at: Timestamp) -> LoginEvent {
        LoginEvent::Failed(LoginFailed {
            user_id: Some(id(1)),
            failed_count: count,
            at,
        })
    }

    fn after(millis: i64) -> Timestamp {
        Timestamp(NOW.millis() + millis)
    }

    fn failure() -> LoginCommand {
        LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified: false,
            paced: true,
        }
    }

    fn success() -> LoginCommand {
        LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified: true,
            paced: true,
        }
    }

    #[test]
    fn an_unpaced_attempt_skips_the_pause_but_not_the_freeze() {
        let unpaced = LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified: true,
            paced: false,
        };
        given::<Login>(&[failed(1, NOW)])
            .at(after(1))
            .when(unpaced.clone())
            .then(&[LoginEvent::Cleared(FailuresCleared {
                user_id: Some(id(1)),
            })]);
        given::<Login>(&[failed(FREEZE_EVERY, NOW)])
            .at(after(1))
            .when(unpaced)
            .then_err(LoginAttemptError::Frozen);
    }

    #[test]
    fn a_failure_is_counted_as_it_is_refused() {
        given::<Login>(&[failed(1, NOW)])
            .at(after(1_000))
            .when(failure())
            .then_refused(
                LoginAttemptError::WrongCredentials,
                &[failed(2, after(1_000))],
            );
    }

    #[test]
    fn a_right_password_clears_the_failures_but_waits_its_turn_too() {
        given::<Login>(&[failed(3, NOW)])
            .at(after(1_000))
            .when(success())
            .then(&[LoginEvent::Cleared(FailuresCleared {
                user_id: Some(id(1)),
            })]);
        given::<Login>(&[failed(3, NOW)])
            .at(after(10))
            .when(success())
            .then_err(LoginAttemptError::Timeout);
        given::<Login>(&[]).when(success()).then(&[]);
        given::<Login>(&[failed(50, NOW)])
            .at(after(86_400_000))
            .when(success())
            .then_err(LoginAttemptError::Locked);
    }

    #[test]
    fn one_attempt_per_second() {
        given::<Login>(&[failed(1, NOW)])
            .at(after(999))
            .when(failure())
            .then_err(LoginAttemptError::Timeout);
    }

    #[test]
    fn every_tenth_failure_freezes_for_a_minute() {
        given::<Login>(&[failed(10, NOW)])
            .at(after(59_999))
            .when(failure())
            .then_err(LoginAttemptError::Frozen);
        given::<Login>(&[failed(10, NOW)])
            .at(after(60_000))
            .when(failure())
            .then_refused(
                LoginAttemptError::WrongCredentials,
                &[failed(11, after(60_000))],
            );
    }

    #[test]
    fn fifty_failures_lock_until_an_administrator_resets() {
        let locked = Login::fold(&[failed(50, NOW)]);
        assert_eq!(
            locked.admits(after(86_400_000), true),
            Err(LoginAttemptError::Locked)
        );
        let reset = LoginCommand::Clear {
            user_id: Some(id(1)),
            by_administrator: true,
        };
        let nobody = Actor::user(id(2), None, Permissions::default(), Via::Http, None);
        given::<Login>(&[failed(50, NOW)])
            .by(nobody)
            .when(reset.clone())
            .then_err(LoginAttemptError::NoPermission(
                "RESET_FAILED_LOGIN_ATTEMPTS",
            ));
        let cleared = given::<Login>(&[failed(50, NOW)]).when(reset).events();
        let state = Login::fold(&[vec![failed(50, NOW)], cleared].concat());
        assert_eq!(state.admits(after(1), true), Ok(()));
    }

    #[test]
    fn clearing_nothing_records_nothing() {
        given::<Login>(&[])
            .when(LoginCommand::Clear {
                user_id: None,
                by_administrator: false,
            })
            .then(&[]);
    }

    proptest! {
        #[test]
        fn attempts_a_second_apart_between_freezes_are_admitted(count in 1u32..49, gap in 1_000i64..59_999) {
            let state = Login::fold(&[failed(count, NOW)]);
            let admitted = state.admits(after(gap), true).is_ok();
            prop_assert_eq!(admitted, !count.is_multiple_of(FREEZE_EVERY));
        }
    }
}
