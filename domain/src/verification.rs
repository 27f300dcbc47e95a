//! Email verification of a user: activation of the account and password resets, each proven with a
//! code (a 40-hex hash) sent by mail.
//!
//! The code never enters the log. A request is recorded first; the mailer then draws a random code,
//! records only its SHA-256 digest (`verification.code_issued`), sends the mail, and records that
//! it was sent. A mailer that dies between the two draws a new code later, which replaces the first.
//!
//! Extra Horizon's limits for the hash mode: a code is valid 60 minutes, initiations are at least 5
//! minutes apart, and at most 5 initiations are allowed without a success.

use serde::{Deserialize, Serialize};

use crate::id::{Digest, Id};
use crate::value::Timestamp;

/// How long a mailed code is valid.
pub const CODE_VALID_SECONDS: i64 = 60 * 60;
/// The least time between two initiations.
pub const INITIATION_GAP_MILLIS: i64 = 5 * 60 * 1000;
/// Initiations allowed without a success.
pub const MAX_INITIATIONS: u32 = 5;
/// How long a mailer's claim on a request (an issued code not yet sent) holds off other mailers.
pub const CLAIM_MILLIS: i64 = 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Purpose {
    Activation,
    PasswordReset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationRequested {
    pub request_id: Id,
    pub purpose: Purpose,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationCodeIssued {
    pub request_id: Id,
    pub digest: Digest,
    pub expires_at: Timestamp,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationMailSent {
    pub request_id: Id,
}

/// Why a verification step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    #[error("a new mail can be requested 5 minutes after the previous one")]
    TooSoon(Purpose),
    #[error("too many mails were requested without success; ask an administrator")]
    TooMany(Purpose),
    #[error("the code is unknown or has expired")]
    UnknownCode(Purpose),
    #[error("another mailer is sending this mail")]
    Claimed,
    #[error("this request is no longer pending")]
    NotPending,
}

/// The verification of one purpose, as folded from the user's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub request_id: Option<Id>,
    pub requested_at: Option<Timestamp>,
    /// Initiations since the last success.
    pub initiations: u32,
    pub code: Option<(Digest, Timestamp)>,
    pub code_issued_at: Option<Timestamp>,
    pub sent: bool,
}

impl Verification {
    /// Whether a new request may be made at `now`.
    pub fn admits(&self, purpose: Purpose, now: Timestamp) -> Result<(), VerificationError> {
        if self.initiations >= MAX_INITIATIONS {
            return Err(VerificationError::TooMany(purpose));
        }
        match self.requested_at {
            Some(at) if now.millis() - at.millis() < INITIATION_GAP_MILLIS => {
                Err(VerificationError::TooSoon(purpose))
            }
            _ => Ok(()),
        }
    }

    /// Whether a mailer may issue a code for `request_id` at `now`: the request is the current
    /// one, its mail is not sent, and no other mailer claimed it within [`CLAIM_MILLIS`].
    pub fn claimable(&self, request_id: Id, now: Timestamp) -> Result<(), VerificationError> {
        if self.request_id != Some(request_id) || self.sent {
            return Err(VerificationError::NotPending);
        }
        match self.code_issued_at {
            Some(at) if now.millis() - at.millis() < CLAIM_MILLIS => {
                Err(VerificationError::Claimed)
            }
            _ => Ok(()),
        }
    }

    /// Whether `digest` is the current, unexpired code.
    pub fn accepts(
        &self,
        purpose: Purpose,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<Id, VerificationError> {
        match (self.request_id, self.code) {
            (Some(request_id), Some((code, expires_at)))
                if code.ct_eq(digest) && now < expires_at =>
            {
                Ok(request_id)
            }
            _ => Err(VerificationError::UnknownCode(purpose)),
        }
    }

    pub fn requested(&mut self, event: &VerificationRequested) {
        *self = Self {
            request_id: Some(event.request_id),
            requested_at: Some(event.at),
            initiations: self.initiations.saturating_add(1),
            ..Self::default()
        };
    }

    pub fn code_issued(&mut self, event: &VerificationCodeIssued) {
        if self.request_id == Some(event.request_id) {
            self.code = Some((event.digest, event.expires_at));
            self.code_issued_at = Some(event.at);
        }
    }

    pub fn mail_sent(&mut self, event: &VerificationMailSent) {
        if self.request_id == Some(event.request_id) {
            self.sent = true;
        }
    }

    /// The code was used: nothing is pending, and the count of initiations starts over.
    pub fn completed(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 12])
    }

    fn requested(n: u8, at: Timestamp) -> VerificationRequested {
        VerificationRequested {
            request_id: id(n),
            purpose: Purpose::Activation,
            at,
        }
    }

    #[test]
    fn initiations_are_five_minutes_apart_and_at_most_five() {
        let mut state = Verification::default();
        state.requested(&requested(1, NOW));
        let purpose = Purpose::Activation;
        assert_eq!(
            state.admits(purpose, Timestamp(NOW.millis() + INITIATION_GAP_MILLIS - 1)),
            Err(VerificationError::TooSoon(purpose))
        );
        let mut at = NOW;
        for n in 2..=5 {
            at = Timestamp(at.millis() + INITIATION_GAP_MILLIS);
            assert_eq!(state.admits(purpose, at), Ok(()));
            state.requested(&requested(n, at));
        }
        let later = Timestamp(at.millis() + INITIATION_GAP_MILLIS);
        assert_eq!(
            state.admits(purpose, later),
            Err(VerificationError::TooMany(purpose))
        );
        state.completed();
        assert_eq!(state.admits(purpose, later), Ok(()));
    }

    #[test]
    fn a_code_is_accepted_until_it_expires_and_only_the_latest() {
        let mut state = Verification::default();
        state.requested(&requested(1, NOW));
        let issue = |n: u8| VerificationCodeIssued {
            request_id: id(1),
            digest: Digest::of(&[n]),
            expires_at: NOW.plus_seconds(CODE_VALID_SECONDS),
            at: NOW,
        };
        state.code_issued(&issue(1));
        state.code_issued(&issue(2));
        let purpose = Purpose::Activation;
        assert_eq!(state.accepts(purpose, &Digest::of(&[2]), NOW), Ok(id(1)));
        assert!(state.accepts(purpose, &Digest::of(&[1]), NOW).is_err());
        let expired = NOW.plus_seconds(CODE_VALID_SECONDS);
        assert!(state.accepts(purpose, &Digest::of(&[2]), expired).is_err());
    }

    #[test]
    fn a_claim_holds_other_mailers_off_for_a_minute() {
        let mut state = Verification::default();
        state.requested(&requested(1, NOW));
        assert_eq!(state.claimable(id(1), NOW), Ok(()));
        state.code_issued(&VerificationCodeIssued {
            request_id: id(1),
            digest: Digest::of(&[1]),
            expires_at: NOW.plus_seconds(CODE_VALID_SECONDS),
            at: NOW,
        });
        assert_eq!(state.claimable(id(1), NOW), Err(VerificationError::Claimed));
        assert_eq!(state.claimable(id(1), NOW.plus_seconds(60)), Ok(()));
        state.mail_sent(&VerificationMailSent { request_id: id(1) });
        assert_eq!(
            state.claimable(id(1), NOW.plus_seconds(60)),
            Err(VerificationError::NotPending)
        );
        assert_eq!(
            state.claimable(id(2), NOW),
            Err(VerificationError::NotPending)
        );
    }
}
