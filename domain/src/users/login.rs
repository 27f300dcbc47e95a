//! Password-login throttling, one stream per email address (`login-<sha256 of the address>`),
//! whether or not an account has that address: an unknown address is throttled exactly like a
//! known one, so the answers never tell which addresses have accounts. Every failed attempt is in
//! the log (Part 11 asks that attempts at unauthorized use be detected and reported).
//!
//! The rules are Extra Horizon's: at most one attempt per second after a failure
//! (`LOGIN_TIMEOUT`), a 60-second freeze after every 10th consecutive failure (`LOGIN_FREEZE`),
//! and a lock after 50 until an administrator resets it (`TOO_MANY_FAILED_ATTEMPTS`). A successful
//! login, a password change or reset, and an administrator's reset clear the count.
//!
//! Since anyone who knows an address can lock its account so, the lock is a [`LockoutPolicy`] a
//! deployment may change: after how many failures, and whether it lasts until a reset or ends by
//! itself. Each failure records the client's address, and the failure that locks records
//! `login.locked` with the addresses of the failures since the last success: a security event a
//! dispatcher can alert on.

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
/// The client addresses of failures a login stream remembers (the latest ones).
pub const ADDRESSES_KEPT: usize = 16;

/// When a run of failed logins locks an address's account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LockoutPolicy {
    /// Consecutive failures that lock.
    pub after: u32,
    /// How long a lock lasts after the latest failure; `None`: until an administrator resets
    /// the count (Extra Horizon's rule). Every failure after a lock has ended locks again.
    pub lasts_millis: Option<i64>,
}

impl LockoutPolicy {
    /// Whether the policy can be kept: it locks after at least one failure, for a while that is
    /// not empty and not beyond a year.
    pub fn is_sound(&self) -> bool {
        self.after >= 1
            && self
                .lasts_millis
                .is_none_or(|lasts| (1..=LONGEST_LOCK_MILLIS).contains(&lasts))
    }
}

/// The longest a lock that ends by itself may last: a year.
pub const LONGEST_LOCK_MILLIS: i64 = 366 * 24 * 3_600_000;

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            after: LOCK_AFTER,
            lasts_millis: None,
        }
    }
}

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

/// A failed attempt, with the client's address (what Vigil records since it keeps addresses;
/// [`LoginFailed`] is the earlier shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LoginFailedFrom {
    pub user_id: Option<Id>,
    /// Consecutive failures, this one included.
    pub failed_count: u32,
    pub at: Timestamp,
    /// The client's address, when known.
    pub address: Option<String>,
}

/// A failure locked the account of the address (a security event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LoginLocked {
    pub user_id: Option<Id>,
    pub failed_count: u32,
    /// When the lock ends by itself; none: when an administrator resets the count.
    pub until: Option<Timestamp>,
    /// The client addresses of the failures since the last success (the latest
    /// [`ADDRESSES_KEPT`], oldest first).
    pub addresses: Vec<String>,
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
        FailedFrom(LoginFailedFrom) = "login.failed_from",
        Locked(LoginLocked) = "login.locked",
    }
}

impl LoginEvent {
    /// The account the event concerns, if the address has one.
    pub fn user_id(&self) -> Option<Id> {
        match self {
            Self::Failed(e) => e.user_id,
            Self::FailedFrom(e) => e.user_id,
            Self::Locked(e) => e.user_id,
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
    /// frozen and locked alike, without it. `policy`: the deployment's lockout.
    Attempt {
        user_id: Option<Id>,
        verified: bool,
        paced: bool,
        policy: LockoutPolicy,
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
    #[error("too many failed logins: the account is locked for a while")]
    LockedForAWhile,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for LoginAttemptError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::WrongCredentials => ExhCode::Authentication,
            Self::Timeout => ExhCode::LoginTimeout,
            Self::Frozen => ExhCode::LoginFreeze,
            Self::Locked | Self::LockedForAWhile => ExhCode::TooManyFailedAttempts,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub failed_count: u32,
    pub last_failed_at: Option<Timestamp>,
    /// The client addresses of the failures since the last success, oldest first.
    pub addresses: Vec<String>,
}

impl Login {
    /// Whether a login attempt may be made at `now` under `policy`; `paced`: whether the pause
    /// after a failure applies.
    pub fn admits(
        &self,
        now: Timestamp,
        paced: bool,
        policy: LockoutPolicy,
    ) -> Result<(), LoginAttemptError> {
        let Some(last) = self.last_failed_at else {
            return Ok(());
        };
        let since = now.millis().saturating_sub(last.millis());
        let locked = self.failed_count >= policy.after;
        match policy.lasts_millis {
            None if locked => return Err(LoginAttemptError::Locked),
            Some(lasts) if locked && since < lasts => {
                return Err(LoginAttemptError::LockedForAWhile);
            }
            _ => {}
        }
        if self.failed_count.is_multiple_of(FREEZE_EVERY) && since < FREEZE_MILLIS {
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
                policy,
                ..
            } => {
                self.admits(ctx.now, *paced, *policy)?;
                Err(LoginAttemptError::WrongCredentials)
            }
            LoginCommand::Attempt {
                user_id,
                verified: true,
                paced,
                policy,
            } => {
                self.admits(ctx.now, *paced, *policy)?;
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
        let (
            LoginCommand::Attempt {
                user_id, policy, ..
            },
            LoginAttemptError::WrongCredentials,
        ) = (command, error)
        else {
            return Vec::new();
        };
        let failed = LoginFailedFrom {
            user_id: *user_id,
            failed_count: self.failed_count.saturating_add(1),
            at: ctx.now,
            address: ctx.actor.record().client_ip.clone(),
        };
        if failed.failed_count < policy.after {
            return vec![LoginEvent::FailedFrom(failed)];
        }
        let mut addresses = self.addresses.clone();
        remember(&mut addresses, failed.address.as_deref());
        let locked = LoginLocked {
            user_id: *user_id,
            failed_count: failed.failed_count,
            until: policy
                .lasts_millis
                .map(|lasts| Timestamp(ctx.now.millis().saturating_add(lasts))),
            addresses,
        };
        vec![LoginEvent::FailedFrom(failed), LoginEvent::Locked(locked)]
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            LoginEvent::Failed(e) => {
                self.failed_count = e.failed_count;
                self.last_failed_at = Some(e.at);
            }
            LoginEvent::FailedFrom(e) => {
                self.failed_count = e.failed_count;
                self.last_failed_at = Some(e.at);
                remember(&mut self.addresses, e.address.as_deref());
            }
            LoginEvent::Locked(_) => {}
            LoginEvent::Cleared(_) => *self = Self::default(),
        }
    }
}

/// Adds `address` to the latest distinct addresses (at most [`ADDRESSES_KEPT`]).
fn remember(addresses: &mut Vec<String>, address: Option<&str>) {
    let Some(address) = address else {
        return;
    };
    addresses.retain(|kept| kept != address);
    addresses.push(address.to_owned());
    if addresses.len() > ADDRESSES_KEPT {
        addresses.remove(0);
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

    /// A failure as recorded now (without an address: the system actor has none).
    fn failed_from(count: u32, at: Timestamp) -> LoginEvent {
        LoginEvent::FailedFrom(LoginFailedFrom {
            user_id: Some(id(1)),
            failed_count: count,
            at,
            address: None,
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
            policy: LockoutPolicy::default(),
        }
    }

    fn success() -> LoginCommand {
        LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified: true,
            paced: true,
            policy: LockoutPolicy::default(),
        }
    }

    #[test]
    fn an_unpaced_attempt_skips_the_pause_but_not_the_freeze() {
        let unpaced = LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified: true,
            paced: false,
            policy: LockoutPolicy::default(),
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
                &[failed_from(2, after(1_000))],
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
                &[failed_from(11, after(60_000))],
            );
    }

    #[test]
    fn fifty_failures_lock_until_an_administrator_resets() {
        let locked = Login::fold(&[failed(50, NOW)]);
        assert_eq!(
            locked.admits(after(86_400_000), true, LockoutPolicy::default()),
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
        assert_eq!(
            state.admits(after(1), true, LockoutPolicy::default()),
            Ok(())
        );
    }

    #[test]
    fn the_failure_that_locks_is_a_security_event_naming_the_addresses() {
        let from = |address: &str| {
            Actor::user(
                id(9),
                None,
                Permissions::default(),
                Via::Http,
                Some(address.into()),
            )
        };
        let mut history = vec![failed(47, NOW)];
        for (n, address) in ["10.0.0.1", "10.0.0.2"].into_iter().enumerate() {
            let at = after(2_000 * (n as i64 + 1));
            let recorded = given::<Login>(&history)
                .by(from(address))
                .at(at)
                .when(failure())
                .recorded();
            history.extend(recorded);
        }
        let at = after(10_000);
        given::<Login>(&history)
            .by(from("10.0.0.1"))
            .at(at)
            .when(failure())
            .then_refused(
                LoginAttemptError::WrongCredentials,
                &[
                    LoginEvent::FailedFrom(LoginFailedFrom {
                        user_id: Some(id(1)),
                        failed_count: LOCK_AFTER,
                        at,
                        address: Some("10.0.0.1".into()),
                    }),
                    LoginEvent::Locked(LoginLocked {
                        user_id: Some(id(1)),
                        failed_count: LOCK_AFTER,
                        until: None,
                        addresses: vec!["10.0.0.2".into(), "10.0.0.1".into()],
                    }),
                ],
            );
    }

    #[test]
    fn a_lock_of_a_policy_that_ends_it_ends_by_itself_and_the_next_failure_locks_again() {
        let policy = LockoutPolicy {
            after: 5,
            lasts_millis: Some(3_600_000),
        };
        let attempt = |verified| LoginCommand::Attempt {
            user_id: Some(id(1)),
            verified,
            paced: true,
            policy,
        };
        let locked = [failed(5, NOW)];
        given::<Login>(&locked)
            .at(after(3_599_999))
            .when(attempt(true))
            .then_err(LoginAttemptError::LockedForAWhile);
        let relocked = given::<Login>(&locked)
            .at(after(3_600_000))
            .when(attempt(false))
            .recorded();
        assert!(matches!(
            relocked.as_slice(),
            [LoginEvent::FailedFrom(f), LoginEvent::Locked(l)]
                if f.failed_count == 6 && l.until == Some(after(7_200_000))
        ));
        given::<Login>(&locked)
            .at(after(3_600_000))
            .when(attempt(true))
            .then(&[LoginEvent::Cleared(FailuresCleared {
                user_id: Some(id(1)),
            })]);
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
            let admitted = state.admits(after(gap), true, LockoutPolicy::default()).is_ok();
            prop_assert_eq!(admitted, !count.is_multiple_of(FREEZE_EVERY));
        }
    }
}
