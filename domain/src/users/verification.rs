//! Email verification of a user: activation of the account and password resets, each proven with a
//! code sent by mail: a 40-hex hash, or (when the verification settings enable them) an 8-digit pin
//! code.
//!
//! The code never enters the log. A request is recorded first; the mailer then draws a random code,
//! records only its digest (`verification.code_issued`: SHA-256 of a hash; of a pin, an HMAC under
//! the deployment's secrets key, so the small pin space cannot be searched from the log), sends
//! the mail, and records that it was sent. A mailer that dies between the two draws a new code
//! later, which replaces the first.
//!
//! Extra Horizon's limits: initiations are at least 5 minutes apart. A hash is valid 60 minutes,
//! with at most 5 initiations without a success; a pin is valid 15 minutes, with at most 3
//! initiations and 3 wrong pins per initiation (each wrong pin is recorded).

use serde::{Deserialize, Serialize};

use crate::id::{Digest, Id};
use crate::value::Timestamp;

/// How long a mailed hash is valid.
pub const CODE_VALID_SECONDS: i64 = 60 * 60;
/// How long a mailed pin code is valid.
pub const PIN_VALID_SECONDS: i64 = 15 * 60;
/// The least time between two initiations.
pub const INITIATION_GAP_MILLIS: i64 = 5 * 60 * 1000;
/// Hash initiations allowed without a success.
pub const MAX_INITIATIONS: u32 = 5;
/// Pin initiations allowed without a success.
pub const MAX_PIN_INITIATIONS: u32 = 3;
/// Wrong pins allowed per initiation.
pub const MAX_PIN_ATTEMPTS: u32 = 3;
/// How long a mailer's claim on a request (an issued code not yet sent) holds off other mailers.
pub const CLAIM_MILLIS: i64 = 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Purpose {
    Activation,
    PasswordReset,
}

/// How the mailed code is presented: the hash by itself, or the pin with the email address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Mode {
    #[default]
    Hash,
    PinCode,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::PinCode => "pin_code",
        }
    }

    /// How long a code of this mode is valid.
    pub fn valid_seconds(self) -> i64 {
        match self {
            Self::Hash => CODE_VALID_SECONDS,
            Self::PinCode => PIN_VALID_SECONDS,
        }
    }

    fn max_initiations(self) -> u32 {
        match self {
            Self::Hash => MAX_INITIATIONS,
            Self::PinCode => MAX_PIN_INITIATIONS,
        }
    }
}

/// A presented code, by its digest, in the mode it was presented in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    pub mode: Mode,
    pub digest: Digest,
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

/// A code is to be mailed (superseding `VerificationRequested`): with its mode, and where it
/// stands in its run of initiations, so read models need no history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CodeRequested {
    pub request_id: Id,
    pub purpose: Purpose,
    pub mode: Mode,
    pub at: Timestamp,
    /// Initiations since the last success, this one included.
    pub initiations: u32,
    /// The first request of the run, and when it was made.
    pub first_request_id: Id,
    pub first_requested_at: Timestamp,
}

/// A wrong pin was presented for the request; `failed_attempts` counts them, this one included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationPinFailed {
    pub request_id: Id,
    pub purpose: Purpose,
    pub at: Timestamp,
    pub failed_attempts: u32,
}

/// An administrator cleared the request: the count of initiations starts over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationCleared {
    pub request_id: Id,
    pub purpose: Purpose,
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
    #[error("no pin code was requested for this address, or it has expired")]
    UnknownPinRequest(Purpose),
    #[error("the pin code is incorrect")]
    WrongPin,
    #[error("too many wrong pin codes; request a new one")]
    PinAttemptsExhausted,
    #[error("another mailer is sending this mail")]
    Claimed,
    #[error("this request is no longer pending")]
    NotPending,
}

/// The verification of one purpose, as folded from the user's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// The current request.
    pub request_id: Option<Id>,
    /// The first request since the last success: the run an administrator may clear.
    pub first_request_id: Option<Id>,
    pub first_requested_at: Option<Timestamp>,
    pub mode: Mode,
    pub requested_at: Option<Timestamp>,
    /// Initiations since the last success.
    pub initiations: u32,
    pub code: Option<(Digest, Timestamp)>,
    pub code_issued_at: Option<Timestamp>,
    pub sent: bool,
    /// Wrong pins presented for the current request.
    pub failed_attempts: u32,
}

impl Verification {
    /// Whether a new request in `mode` may be made at `now`.
    pub fn admits(
        &self,
        purpose: Purpose,
        mode: Mode,
        now: Timestamp,
    ) -> Result<(), VerificationError> {
        if self.initiations >= mode.max_initiations() {
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

    /// Whether `proof` is the current, unexpired code, presented in the mode it was mailed in.
    /// A wrong pin is refused with [`VerificationError::WrongPin`] (and should be recorded); once
    /// [`MAX_PIN_ATTEMPTS`] were wrong, the pin is spent.
    pub fn accepts(
        &self,
        purpose: Purpose,
        proof: &Proof,
        now: Timestamp,
    ) -> Result<Id, VerificationError> {
        let unknown = match proof.mode {
            Mode::Hash => VerificationError::UnknownCode(purpose),
            Mode::PinCode => VerificationError::UnknownPinRequest(purpose),
        };
        let (Some(request_id), Some((code, expires_at))) = (self.request_id, self.code) else {
            return Err(unknown);
        };
        if self.mode != proof.mode || now >= expires_at {
            return Err(unknown);
        }
        match proof.mode {
            Mode::Hash if code.ct_eq(&proof.digest) => Ok(request_id),
            Mode::Hash => Err(unknown),
            Mode::PinCode if self.failed_attempts >= MAX_PIN_ATTEMPTS => {
                Err(VerificationError::PinAttemptsExhausted)
            }
            Mode::PinCode if code.ct_eq(&proof.digest) => Ok(request_id),
            Mode::PinCode => Err(VerificationError::WrongPin),
        }
    }

    /// The event of a new request in `mode` at `at`.
    pub fn next_request(
        &self,
        request_id: Id,
        purpose: Purpose,
        mode: Mode,
        at: Timestamp,
    ) -> CodeRequested {
        CodeRequested {
            request_id,
            purpose,
            mode,
            at,
            initiations: self.initiations.saturating_add(1),
            first_request_id: self.first_request_id.unwrap_or(request_id),
            first_requested_at: self.first_requested_at.unwrap_or(at),
        }
    }

    /// A request recorded before codes had modes (`VerificationRequested`): a hash.
    pub fn requested(&mut self, event: &VerificationRequested) {
        let next = self.next_request(event.request_id, event.purpose, Mode::Hash, event.at);
        self.code_requested(&next);
    }

    pub fn code_requested(&mut self, event: &CodeRequested) {
        *self = Self {
            request_id: Some(event.request_id),
            first_request_id: Some(event.first_request_id),
            first_requested_at: Some(event.first_requested_at),
            mode: event.mode,
            requested_at: Some(event.at),
            initiations: event.initiations,
            ..Self::default()
        };
    }

    pub fn pin_failed(&mut self, event: &VerificationPinFailed) {
        if self.request_id == Some(event.request_id) {
            self.failed_attempts = event.failed_attempts;
        }
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

    /// The code was used (or an administrator cleared the request): nothing is pending, and the
    /// count of initiations starts over.
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

    fn request(state: &mut Verification, n: u8, at: Timestamp, mode: Mode) {
        let event = state.next_request(id(n), Purpose::Activation, mode, at);
        state.code_requested(&event);
    }

    #[test]
    fn initiations_are_five_minutes_apart_and_at_most_five() {
        let mut state = Verification::default();
        request(&mut state, 1, NOW, Mode::Hash);
        let purpose = Purpose::Activation;
        assert_eq!(
            state.admits(
                purpose,
                Mode::Hash,
                Timestamp(NOW.millis() + INITIATION_GAP_MILLIS - 1)
            ),
            Err(VerificationError::TooSoon(purpose))
        );
        let mut at = NOW;
        for n in 2..=5 {
            at = Timestamp(at.millis() + INITIATION_GAP_MILLIS);
            assert_eq!(state.admits(purpose, Mode::Hash, at), Ok(()));
            if n == 4 {
                assert_eq!(
                    state.admits(purpose, Mode::PinCode, at),
                    Err(VerificationError::TooMany(purpose)),
                    "at most 3 pin initiations"
                );
            }
            request(&mut state, n, at, Mode::Hash);
        }
        let later = Timestamp(at.millis() + INITIATION_GAP_MILLIS);
        assert_eq!(
            state.admits(purpose, Mode::Hash, later),
            Err(VerificationError::TooMany(purpose))
        );
        state.completed();
        assert_eq!(state.admits(purpose, Mode::Hash, later), Ok(()));
    }

    #[test]
    fn a_code_is_accepted_until_it_expires_and_only_the_latest() {
        let mut state = Verification::default();
        request(&mut state, 1, NOW, Mode::Hash);
        let issue = |n: u8| VerificationCodeIssued {
            request_id: id(1),
            digest: Digest::of(&[n]),
            expires_at: NOW.plus_seconds(CODE_VALID_SECONDS),
            at: NOW,
        };
        state.code_issued(&issue(1));
        state.code_issued(&issue(2));
        let purpose = Purpose::Activation;
        let hash = |n: u8| Proof {
            mode: Mode::Hash,
            digest: Digest::of(&[n]),
        };
        assert_eq!(state.accepts(purpose, &hash(2), NOW), Ok(id(1)));
        assert!(state.accepts(purpose, &hash(1), NOW).is_err());
        let as_pin = Proof {
            mode: Mode::PinCode,
            ..hash(2)
        };
        assert_eq!(
            state.accepts(purpose, &as_pin, NOW),
            Err(VerificationError::UnknownPinRequest(purpose)),
            "a hash is not a pin"
        );
        let expired = NOW.plus_seconds(CODE_VALID_SECONDS);
        assert!(state.accepts(purpose, &hash(2), expired).is_err());
    }

    #[test]
    fn a_pin_allows_three_wrong_attempts() {
        let mut state = Verification::default();
        request(&mut state, 1, NOW, Mode::PinCode);
        state.code_issued(&VerificationCodeIssued {
            request_id: id(1),
            digest: Digest::of(b"12345678"),
            expires_at: NOW.plus_seconds(PIN_VALID_SECONDS),
            at: NOW,
        });
        let pin = |text: &[u8]| Proof {
            mode: Mode::PinCode,
            digest: Digest::of(text),
        };
        let purpose = Purpose::PasswordReset;
        for _ in 0..MAX_PIN_ATTEMPTS {
            assert_eq!(
                state.accepts(purpose, &pin(b"00000000"), NOW),
                Err(VerificationError::WrongPin)
            );
            let failed = state.failed_attempts + 1;
            state.pin_failed(&VerificationPinFailed {
                request_id: id(1),
                purpose,
                at: NOW,
                failed_attempts: failed,
            });
        }
        assert_eq!(
            state.accepts(purpose, &pin(b"12345678"), NOW),
            Err(VerificationError::PinAttemptsExhausted)
        );
        request(&mut state, 2, NOW, Mode::PinCode);
        assert_eq!(state.failed_attempts, 0, "a new pin has its own attempts");
    }

    #[test]
    fn a_claim_holds_other_mailers_off_for_a_minute() {
        let mut state = Verification::default();
        request(&mut state, 1, NOW, Mode::Hash);
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
