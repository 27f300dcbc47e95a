//! Multi-factor authentication settings, one stream per user (`mfa-<userId>`): TOTP methods
//! (RFC 6238) whose secrets are sealed under the deployment key before they reach the log,
//! recovery codes kept as keyed digests, whether MFA is enabled, and the second step of a login.
//!
//! With MFA enabled, a correct password earns a short-lived MFA challenge instead of tokens; the
//! client answers it with a code from a verified TOTP method or an unused recovery code. A TOTP
//! time step is accepted once per method (RFC 6238 §5.2), a recovery code once. Wrong codes make
//! the next attempt wait 1 s, 2 s, 4 s, … (at most 15 minutes) until a right one is given.
//!
//! Checking a code needs the deployment key, so the command layer does it and tells the domain
//! what the code proved ([`Presented`]); the domain decides whether that is acceptable now, and a
//! wrong code is counted in the same commit that refuses it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id, StreamId};
use crate::value::{Sealed, Timestamp};

/// How long a client has to answer an MFA challenge.
pub const CHALLENGE_VALID_SECONDS: i64 = 600;
/// Open challenges kept per user; a new one beyond this closes the oldest.
const OPEN_CHALLENGES: usize = 16;
/// The longest wait after repeated wrong codes.
pub const MAX_DELAY_MILLIS: i64 = 15 * 60 * 1000;

/// The MFA stream of a user.
pub fn stream(user_id: Id) -> StreamId {
    StreamId::of(Mfa::KIND, user_id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum MethodType {
    Totp,
    RecoveryCodes,
}

impl MethodType {
    /// The Extra Horizon name: `totp` or `recoveryCodes`.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCodes => "recoveryCodes",
        }
    }
}

/// What a method keeps to check codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum MethodSecret {
    /// The TOTP shared secret, sealed.
    Totp(Sealed),
    /// Keyed digests of the recovery codes, in the order they were shown (rendered as
    /// [`crate::value::REDACTED`]).
    RecoveryCodes(
        #[serde(
            serialize_with = "crate::value::serialize_secret",
            deserialize_with = "crate::value::deserialize_secret"
        )]
        Vec<Digest>,
    ),
}

impl MethodSecret {
    pub fn method_type(&self) -> MethodType {
        match self {
            Self::Totp(_) => MethodType::Totp,
            Self::RecoveryCodes(_) => MethodType::RecoveryCodes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaMethodAdded {
    pub method_id: Id,
    pub name: String,
    pub tags: Vec<String>,
    pub secret: MethodSecret,
    pub at: Timestamp,
}

/// A TOTP method produced a right code at time step `step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaMethodVerified {
    pub method_id: Id,
    pub step: u64,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaMethodRemoved {
    pub method_id: Id,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaSwitched {
    pub at: Timestamp,
}

/// A correct password was given for a user with MFA enabled: the second step may follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaChallengeIssued {
    pub challenge_id: Id,
    pub digest: Digest,
    pub application_id: Id,
    pub expires_at: Timestamp,
}

/// What a right code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Proof {
    /// A TOTP code of this time step.
    Totp { step: u64 },
    /// The recovery code at this position.
    RecoveryCode { index: u32 },
}

/// The second step succeeded: the challenge is spent and the login goes on as `session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaChallengePassed {
    pub challenge_id: Id,
    pub method_id: Id,
    pub proof: Proof,
    pub session_id: Id,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MfaAttemptFailed {
    pub method_id: Option<Id>,
    /// Consecutive wrong codes, this one included.
    pub failed_attempts: u32,
    pub at: Timestamp,
}

events! {
    pub enum MfaEvent {
        MethodAdded(MfaMethodAdded) = "mfa.method_added",
        MethodVerified(MfaMethodVerified) = "mfa.method_verified",
        MethodRemoved(MfaMethodRemoved) = "mfa.method_removed",
        Enabled(MfaSwitched) = "mfa.enabled",
        Disabled(MfaSwitched) = "mfa.disabled",
        ChallengeIssued(MfaChallengeIssued) = "mfa.challenge_issued",
        ChallengePassed(MfaChallengePassed) = "mfa.challenge_passed",
        AttemptFailed(MfaAttemptFailed) = "mfa.attempt_failed",
    }
}

/// What the command layer found a presented code to be, for the method it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A TOTP code, and the time step it matched within the allowed skew, if any.
    Totp { step: Option<u64> },
    /// The keyed digest of a recovery code.
    RecoveryCode { digest: Digest },
}

/// A change to the settings, which needs the caller's fresh presence token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaChange {
    AddMethod(MfaMethodAdded),
    /// Confirm a TOTP method works.
    VerifyMethod {
        method_id: Id,
        presented: Presented,
    },
    RemoveMethod {
        method_id: Id,
    },
    Enable,
    Disable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaCommand {
    /// A settings change; `presence_confirmed` says whether the caller's presence token is valid.
    Change {
        presence_confirmed: bool,
        change: MfaChange,
    },
    /// Begin the second login step for a user whose password the command layer has verified.
    IssueChallenge(MfaChallengeIssued),
    /// Answer a challenge (by its token's digest) with a code of `method_id`.
    PassChallenge {
        digest: Digest,
        application_id: Id,
        method_id: Id,
        presented: Presented,
        session_id: Id,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    #[error("the MFA code is not valid")]
    InvalidCode,
    #[error("the MFA token is unknown or has expired")]
    InvalidToken,
    #[error("the presence token is missing, unknown or has expired")]
    InvalidPresence,
    #[error("MFA needs at least one verified TOTP method")]
    NotEnoughMethods,
    #[error("too many wrong MFA codes: wait {remaining_millis} ms before trying again")]
    TooSoon { remaining_millis: i64 },
    #[error("no MFA method with this id")]
    MethodUnknown,
    #[error("only TOTP methods can be verified")]
    NotVerifiable,
    #[error("MFA is not enabled for this user")]
    NotEnabled,
    #[error("this MFA method already exists")]
    AlreadyExists,
    #[error("a login step is only started for the user who gave their password")]
    NotThisUser,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for MfaError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::InvalidCode => ExhCode::InvalidMfaCode,
            Self::InvalidToken => ExhCode::InvalidMfaToken,
            Self::InvalidPresence => ExhCode::InvalidPresenceToken,
            Self::NotEnoughMethods => ExhCode::NotEnoughMfaMethods,
            Self::TooSoon { .. } => ExhCode::MfaReattemptDelay,
            Self::MethodUnknown => ExhCode::ResourceUnknown,
            Self::NotVerifiable => ExhCode::IllegalArgument,
            Self::NotEnabled => ExhCode::IllegalState,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotThisUser | Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub id: Id,
    pub name: String,
    pub tags: Vec<String>,
    pub secret: MethodSecret,
    pub verified: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last TOTP time step accepted: only later ones are accepted again.
    last_step: Option<u64>,
    /// Recovery codes already used, by position.
    used_codes: BTreeSet<u32>,
}

impl Method {
    pub fn method_type(&self) -> MethodType {
        self.secret.method_type()
    }

    /// Whether the method can answer a login challenge.
    pub fn usable(&self) -> bool {
        match &self.secret {
            MethodSecret::Totp(_) => self.verified,
            MethodSecret::RecoveryCodes(codes) => self.used_codes.len() < codes.len(),
        }
    }

    /// What `presented` proves for this method, if it is acceptable now.
    fn proof(&self, presented: &Presented) -> Option<Proof> {
        match (&self.secret, presented) {
            (MethodSecret::Totp(_), Presented::Totp { step: Some(step) })
                if self.last_step.is_none_or(|last| *step > last) =>
            {
                Some(Proof::Totp { step: *step })
            }
            (MethodSecret::RecoveryCodes(codes), Presented::RecoveryCode { digest }) => {
                // Every code is compared, in constant time, whichever matches.
                let mut found = None;
                for (index, code) in (0u32..).zip(codes) {
                    if code.ct_eq(digest) && !self.used_codes.contains(&index) {
                        found = Some(index);
                    }
                }
                found.map(|index| Proof::RecoveryCode { index })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mfa {
    pub enabled: bool,
    pub methods: Vec<Method>,
    pub failed_attempts: u32,
    pub last_failed_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    challenges: Vec<MfaChallengeIssued>,
}

impl Mfa {
    pub fn method(&self, id: Id) -> Option<&Method> {
        self.methods.iter().find(|method| method.id == id)
    }

    /// How long, in milliseconds, the next code must still wait after repeated wrong ones.
    pub fn remaining_delay(&self, now: Timestamp) -> i64 {
        let Some(last) = self.last_failed_at.filter(|_| self.failed_attempts > 0) else {
            return 0;
        };
        let doublings = self.failed_attempts.saturating_sub(1).min(20);
        let delay = (1_000i64 << doublings).min(MAX_DELAY_MILLIS);
        (last.millis() + delay - now.millis()).max(0)
    }

    fn admits_attempt(&self, now: Timestamp) -> Result<(), MfaError> {
        match self.remaining_delay(now) {
            0 => Ok(()),
            remaining_millis => Err(MfaError::TooSoon { remaining_millis }),
        }
    }

    fn has_verified_totp(&self, except: Option<Id>) -> bool {
        self.methods.iter().any(|method| {
            method.method_type() == MethodType::Totp && method.verified && Some(method.id) != except
        })
    }

    fn decide_change(&self, change: &MfaChange, now: Timestamp) -> Result<MfaEvent, MfaError> {
        let at = now;
        match change {
            MfaChange::AddMethod(added) => {
                if self.method(added.method_id).is_some() {
                    return Err(MfaError::AlreadyExists);
                }
                Ok(MfaEvent::MethodAdded(added.clone()))
            }
            MfaChange::VerifyMethod {
                method_id,
                presented,
            } => {
                let method = self.method(*method_id).ok_or(MfaError::MethodUnknown)?;
                if method.method_type() != MethodType::Totp {
                    return Err(MfaError::NotVerifiable);
                }
                self.admits_attempt(now)?;
                match method.proof(presented) {
                    Some(Proof::Totp { step }) => Ok(MfaEvent::MethodVerified(MfaMethodVerified {
                        method_id: *method_id,
                        step,
                        at,
                    })),
                    _ => Err(MfaError::InvalidCode),
                }
            }
            MfaChange::RemoveMethod { method_id } => {
                self.method(*method_id).ok_or(MfaError::MethodUnknown)?;
                if self.enabled && !self.has_verified_totp(Some(*method_id)) {
                    return Err(MfaError::NotEnoughMethods);
                }
                Ok(MfaEvent::MethodRemoved(MfaMethodRemoved {
                    method_id: *method_id,
                    at,
                }))
            }
            MfaChange::Enable if !self.has_verified_totp(None) => Err(MfaError::NotEnoughMethods),
            MfaChange::Enable => Ok(MfaEvent::Enabled(MfaSwitched { at })),
            MfaChange::Disable => Ok(MfaEvent::Disabled(MfaSwitched { at })),
        }
    }
}

impl Aggregate for Mfa {
    const KIND: &'static str = "mfa";
    type Command = MfaCommand;
    type Event = MfaEvent;
    type Error = MfaError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let own = ctx.stream.id().is_some_and(|user| ctx.actor.is_user(user));
        match command {
            MfaCommand::Change { .. } if own => Ok(()),
            MfaCommand::Change { .. } => ctx
                .actor
                .require("UPDATE_USER_MFA_SETTINGS", MfaError::NoPermission),
            MfaCommand::IssueChallenge(_) if own || ctx.actor.is_system() => Ok(()),
            MfaCommand::IssueChallenge(_) => Err(MfaError::NotThisUser),
            // The challenge token and the code are the proof.
            MfaCommand::PassChallenge { .. } => Ok(()),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            MfaCommand::Change {
                presence_confirmed: false,
                ..
            } => Err(MfaError::InvalidPresence),
            MfaCommand::Change {
                change: MfaChange::Enable,
                ..
            } if self.enabled => Ok(vec![]),
            MfaCommand::Change {
                change: MfaChange::Disable,
                ..
            } if !self.enabled => Ok(vec![]),
            MfaCommand::Change { change, .. } => Ok(vec![self.decide_change(change, ctx.now)?]),
            MfaCommand::IssueChallenge(issued) => {
                if !self.enabled {
                    return Err(MfaError::NotEnabled);
                }
                Ok(vec![MfaEvent::ChallengeIssued(issued.clone())])
            }
            MfaCommand::PassChallenge {
                digest,
                application_id,
                method_id,
                presented,
                session_id,
            } => {
                let challenge = self
                    .challenges
                    .iter()
                    .find(|c| c.digest.ct_eq(digest) && c.application_id == *application_id)
                    .filter(|c| c.expires_at > ctx.now && self.enabled)
                    .ok_or(MfaError::InvalidToken)?;
                self.admits_attempt(ctx.now)?;
                let proof = self
                    .method(*method_id)
                    .filter(|method| method.usable())
                    .and_then(|method| method.proof(presented))
                    .ok_or(MfaError::InvalidCode)?;
                Ok(vec![MfaEvent::ChallengePassed(MfaChallengePassed {
                    challenge_id: challenge.challenge_id,
                    method_id: *method_id,
                    proof,
                    session_id: *session_id,
                    at: ctx.now,
                })])
            }
        }
    }

    /// A wrong code is counted in the same decision that refuses it, so codes guessed in
    /// parallel cannot all be checked before the first failure is recorded.
    fn recorded_refusal(
        &self,
        command: &Self::Command,
        error: &Self::Error,
        ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        let method_id = match command {
            MfaCommand::PassChallenge { method_id, .. }
            | MfaCommand::Change {
                change: MfaChange::VerifyMethod { method_id, .. },
                ..
            } => *method_id,
            _ => return Vec::new(),
        };
        match error {
            MfaError::InvalidCode => vec![MfaEvent::AttemptFailed(MfaAttemptFailed {
                method_id: Some(method_id),
                failed_attempts: self.failed_attempts.saturating_add(1),
                at: ctx.now,
            })],
            _ => Vec::new(),
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            MfaEvent::MethodAdded(e) => {
                self.methods.push(Method {
                    id: e.method_id,
                    name: e.name.clone(),
                    tags: e.tags.clone(),
                    secret: e.secret.clone(),
                    verified: false,
                    created_at: e.at,
                    updated_at: e.at,
                    last_step: None,
                    used_codes: BTreeSet::new(),
                });
                self.updated_at = Some(e.at);
            }
            MfaEvent::MethodVerified(e) => {
                if let Some(method) = self.methods.iter_mut().find(|m| m.id == e.method_id) {
                    method.verified = true;
                    method.last_step = Some(e.step);
                    method.updated_at = e.at;
                }
                self.failed_attempts = 0;
                self.updated_at = Some(e.at);
            }
            MfaEvent::MethodRemoved(e) => {
                self.methods.retain(|method| method.id != e.method_id);
                self.updated_at = Some(e.at);
            }
            MfaEvent::Enabled(e) => {
                self.enabled = true;
                self.updated_at = Some(e.at);
            }
            MfaEvent::Disabled(e) => {
                self.enabled = false;
                self.challenges.clear();
                self.updated_at = Some(e.at);
            }
            MfaEvent::ChallengeIssued(e) => {
                let issued_at = e.expires_at.plus_seconds(-CHALLENGE_VALID_SECONDS);
                self.challenges.retain(|c| c.expires_at > issued_at);
                self.challenges.push(e.clone());
                let excess = self.challenges.len().saturating_sub(OPEN_CHALLENGES);
                self.challenges.drain(..excess);
            }
            MfaEvent::ChallengePassed(e) => {
                self.challenges.retain(|c| c.challenge_id != e.challenge_id);
                if let Some(method) = self.methods.iter_mut().find(|m| m.id == e.method_id) {
                    match e.proof {
                        Proof::Totp { step } => method.last_step = Some(step),
                        Proof::RecoveryCode { index } => {
                            method.used_codes.insert(index);
                        }
                    }
                }
                self.failed_attempts = 0;
            }
            MfaEvent::AttemptFailed(e) => {
                self.failed_attempts = e.failed_attempts;
                self.last_failed_at = Some(e.at);
                self.updated_at = Some(e.at);
            }
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

    const USER: u8 = 1;
    const TOTP: u8 = 2;
    const CODES: u8 = 3;

    fn owner() -> Actor {
        Actor::user(id(USER), None, Permissions::default(), Via::Http, None)
    }

    fn change(change: MfaChange) -> MfaCommand {
        MfaCommand::Change {
            presence_confirmed: true,
            change,
        }
    }

    fn totp_added() -> MfaEvent {
        MfaEvent::MethodAdded(MfaMethodAdded {
            method_id: id(TOTP),
            name: "phone".into(),
            tags: vec![],
            secret: MethodSecret::Totp(Sealed(vec![1, 2, 3])),
            at: NOW,
        })
    }

    fn codes_added() -> MfaEvent {
        MfaEvent::MethodAdded(MfaMethodAdded {
            method_id: id(CODES),
            name: "Recovery codes".into(),
            tags: vec![],
            secret: MethodSecret::RecoveryCodes(vec![
                Digest::from_bytes([10; 32]),
                Digest::from_bytes([11; 32]),
            ]),
            at: NOW,
        })
    }

    fn verified(step: u64) -> MfaEvent {
        MfaEvent::MethodVerified(MfaMethodVerified {
            method_id: id(TOTP),
            step,
            at: NOW,
        })
    }

    fn enabled() -> MfaEvent {
        MfaEvent::Enabled(MfaSwitched { at: NOW })
    }

    fn challenge() -> MfaEvent {
        MfaEvent::ChallengeIssued(MfaChallengeIssued {
            challenge_id: id(7),
            digest: Digest::from_bytes([7; 32]),
            application_id: id(8),
            expires_at: NOW.plus_seconds(CHALLENGE_VALID_SECONDS),
        })
    }

    fn answer(method: u8, presented: Presented) -> MfaCommand {
        MfaCommand::PassChallenge {
            digest: Digest::from_bytes([7; 32]),
            application_id: id(8),
            method_id: id(method),
            presented,
            session_id: id(9),
        }
    }

    fn failed(n: u32, at: Timestamp) -> MfaEvent {
        failed_on(TOTP, n, at)
    }

    fn failed_on(method: u8, n: u32, at: Timestamp) -> MfaEvent {
        MfaEvent::AttemptFailed(MfaAttemptFailed {
            method_id: Some(id(method)),
            failed_attempts: n,
            at,
        })
    }

    fn ready() -> Vec<MfaEvent> {
        vec![
            totp_added(),
            codes_added(),
            verified(100),
            enabled(),
            challenge(),
        ]
    }

    #[test]
    fn every_change_needs_a_fresh_presence_token() {
        given::<Mfa>(&[totp_added(), verified(1)])
            .on(id(USER))
            .by(owner())
            .when(MfaCommand::Change {
                presence_confirmed: false,
                change: MfaChange::Enable,
            })
            .then_err(MfaError::InvalidPresence);
    }

    #[test]
    fn another_user_needs_the_update_permission() {
        let other = Actor::user(id(5), None, Permissions::default(), Via::Http, None);
        given::<Mfa>(&[])
            .on(id(USER))
            .by(other)
            .when(change(MfaChange::Disable))
            .then_err(MfaError::NoPermission("UPDATE_USER_MFA_SETTINGS"));
        let admin = Actor::user(
            id(5),
            None,
            Permissions::from_iter(["UPDATE_USER_MFA_SETTINGS".to_owned()]),
            Via::Http,
            None,
        );
        given::<Mfa>(&[totp_added(), verified(1)])
            .on(id(USER))
            .by(admin)
            .when(change(MfaChange::Enable))
            .then(&[enabled()]);
    }

    #[test]
    fn enabling_needs_a_verified_totp_method() {
        for history in [vec![], vec![totp_added()], vec![codes_added()]] {
            given::<Mfa>(&history)
                .on(id(USER))
                .by(owner())
                .when(change(MfaChange::Enable))
                .then_err(MfaError::NotEnoughMethods);
        }
        given::<Mfa>(&[totp_added(), verified(1)])
            .on(id(USER))
            .by(owner())
            .when(change(MfaChange::Enable))
            .then(&[enabled()]);
        given::<Mfa>(&[totp_added(), verified(1), enabled()])
            .on(id(USER))
            .by(owner())
            .when(change(MfaChange::Enable))
            .then(&[]);
    }

    #[test]
    fn only_totp_methods_are_verified_with_a_fresh_code() {
        let verify = |method: u8, step: Option<u64>| {
            change(MfaChange::VerifyMethod {
                method_id: id(method),
                presented: Presented::Totp { step },
            })
        };
        given::<Mfa>(&[totp_added(), codes_added()])
            .on(id(USER))
            .by(owner())
            .when(verify(CODES, Some(5)))
            .then_err(MfaError::NotVerifiable);
        given::<Mfa>(&[totp_added()])
            .on(id(USER))
            .by(owner())
            .when(verify(4, Some(5)))
            .then_err(MfaError::MethodUnknown);
        given::<Mfa>(&[totp_added()])
            .on(id(USER))
            .by(owner())
            .when(verify(TOTP, None))
            .then_refused(MfaError::InvalidCode, &[failed(1, NOW)]);
        given::<Mfa>(&[totp_added()])
            .on(id(USER))
            .by(owner())
            .when(verify(TOTP, Some(5)))
            .then(&[verified(5)]);
        // The same time step is not accepted twice.
        given::<Mfa>(&[totp_added(), verified(5)])
            .on(id(USER))
            .by(owner())
            .when(verify(TOTP, Some(5)))
            .then_refused(MfaError::InvalidCode, &[failed(1, NOW)]);
    }

    #[test]
    fn the_last_verified_totp_method_stays_while_mfa_is_enabled() {
        let remove = |method: u8| {
            change(MfaChange::RemoveMethod {
                method_id: id(method),
            })
        };
        given::<Mfa>(&ready())
            .on(id(USER))
            .by(owner())
            .when(remove(TOTP))
            .then_err(MfaError::NotEnoughMethods);
        given::<Mfa>(&ready())
            .on(id(USER))
            .by(owner())
            .when(remove(CODES))
            .then(&[MfaEvent::MethodRemoved(MfaMethodRemoved {
                method_id: id(CODES),
                at: NOW,
            })]);
        given::<Mfa>(&[totp_added(), verified(1)])
            .on(id(USER))
            .by(owner())
            .when(remove(TOTP))
            .events();
    }

    #[test]
    fn a_challenge_is_issued_only_to_the_user_with_mfa_enabled() {
        let MfaEvent::ChallengeIssued(issued) = challenge() else {
            unreachable!()
        };
        given::<Mfa>(&[totp_added(), verified(1)])
            .on(id(USER))
            .by(owner())
            .when(MfaCommand::IssueChallenge(issued.clone()))
            .then_err(MfaError::NotEnabled);
        let stranger = Actor::anonymous(Some(id(8)), Via::Http, None);
        given::<Mfa>(&ready())
            .on(id(USER))
            .by(stranger)
            .when(MfaCommand::IssueChallenge(issued))
            .then_err(MfaError::NotThisUser);
    }

    #[test]
    fn a_challenge_passes_once_with_a_fresh_totp_step() {
        let passed = given::<Mfa>(&ready())
            .on(id(USER))
            .when(answer(TOTP, Presented::Totp { step: Some(101) }))
            .events();
        assert_eq!(
            passed,
            vec![MfaEvent::ChallengePassed(MfaChallengePassed {
                challenge_id: id(7),
                method_id: id(TOTP),
                proof: Proof::Totp { step: 101 },
                session_id: id(9),
                at: NOW,
            })]
        );
        let mut history = ready();
        history.extend(passed);
        given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(TOTP, Presented::Totp { step: Some(102) }))
            .then_err(MfaError::InvalidToken);
        // The step used to verify the method is spent too.
        given::<Mfa>(&ready())
            .on(id(USER))
            .when(answer(TOTP, Presented::Totp { step: Some(100) }))
            .then_refused(MfaError::InvalidCode, &[failed(1, NOW)]);
    }

    #[test]
    fn a_challenge_expires_and_belongs_to_its_application() {
        given::<Mfa>(&ready())
            .on(id(USER))
            .at(NOW.plus_seconds(CHALLENGE_VALID_SECONDS))
            .when(answer(TOTP, Presented::Totp { step: Some(101) }))
            .then_err(MfaError::InvalidToken);
        given::<Mfa>(&ready())
            .on(id(USER))
            .when(MfaCommand::PassChallenge {
                digest: Digest::from_bytes([7; 32]),
                application_id: id(9),
                method_id: id(TOTP),
                presented: Presented::Totp { step: Some(101) },
                session_id: id(9),
            })
            .then_err(MfaError::InvalidToken);
    }

    #[test]
    fn each_recovery_code_works_once() {
        let code = |n: u8| Presented::RecoveryCode {
            digest: Digest::from_bytes([n; 32]),
        };
        let mut history = ready();
        let passed = given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(CODES, code(11)))
            .events();
        assert!(matches!(
            passed.as_slice(),
            [MfaEvent::ChallengePassed(MfaChallengePassed {
                proof: Proof::RecoveryCode { index: 1 },
                ..
            })]
        ));
        history.extend(passed);
        history.push(challenge());
        given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(CODES, code(11)))
            .then_refused(MfaError::InvalidCode, &[failed_on(CODES, 1, NOW)]);
        given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(CODES, code(12)))
            .then_refused(MfaError::InvalidCode, &[failed_on(CODES, 1, NOW)]);
        given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(CODES, code(10)))
            .events();
    }

    #[test]
    fn wrong_codes_make_the_next_attempt_wait_longer_each_time() {
        let mut history = ready();
        history.push(failed(1, NOW));
        given::<Mfa>(&history)
            .on(id(USER))
            .at(Timestamp(NOW.millis() + 400))
            .when(answer(TOTP, Presented::Totp { step: Some(101) }))
            .then_err(MfaError::TooSoon {
                remaining_millis: 600,
            });
        history.push(failed(4, NOW));
        let state = Mfa::fold(&history);
        assert_eq!(state.remaining_delay(NOW), 8_000);
        let earlier = NOW.plus_seconds(-MAX_DELAY_MILLIS / 1000);
        history.push(failed(40, earlier));
        assert_eq!(
            Mfa::fold(&history).remaining_delay(earlier),
            MAX_DELAY_MILLIS
        );
        // After the wait, a right code clears the count.
        let passed = given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(TOTP, Presented::Totp { step: Some(101) }))
            .events();
        history.extend(passed);
        assert_eq!(Mfa::fold(&history).failed_attempts, 0);
    }

    #[test]
    fn a_wrong_code_is_counted_in_the_refusal_itself() {
        let mut history = ready();
        history.push(failed(2, NOW));
        let later = NOW.plus_seconds(10);
        given::<Mfa>(&history)
            .on(id(USER))
            .at(later)
            .when(answer(TOTP, Presented::Totp { step: None }))
            .then_refused(MfaError::InvalidCode, &[failed(3, later)]);
        // Refusals for other reasons record nothing.
        given::<Mfa>(&history)
            .on(id(USER))
            .when(answer(TOTP, Presented::Totp { step: None }))
            .then_err(MfaError::TooSoon {
                remaining_millis: 2_000,
            });
    }

    proptest! {
        #[test]
        fn the_delay_never_exceeds_the_maximum_nor_goes_negative(
            failures in 0u32..100_000,
            elapsed in 0i64..10_000_000,
        ) {
            let state = Mfa::fold(&[failed(failures, NOW)]);
            let remaining = state.remaining_delay(Timestamp(NOW.millis() + elapsed));
            prop_assert!((0..=MAX_DELAY_MILLIS).contains(&remaining));
        }
    }
}
