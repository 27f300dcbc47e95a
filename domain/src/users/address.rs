//! Password-reset requests for email addresses without an account, one stream per address
//! (`resetrequest-<sha256 of the address>`). They are recorded and limited exactly like an
//! account's requests (5 minutes apart, at most 5), and cost the same one commit, so neither the
//! answer nor its timing tells whether an address has an account. No mail is sent.

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, StreamId};
use crate::users::verification::{
    Mode, Purpose, Verification, VerificationError, VerificationRequested,
};
use crate::value::Email;

/// The request stream of an address.
pub fn stream(email: &Email) -> StreamId {
    StreamId::from_trusted_parts(
        ResetRequests::KIND,
        Digest::of(email.as_str().as_bytes()).to_string(),
    )
}

events! {
    pub enum ResetRequestEvent {
        Requested(VerificationRequested) = "reset_request.requested",
        PinRequested(VerificationRequested) = "reset_request.pin_requested",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetRequestCommand {
    /// `limited`: whether the limits on initiations apply (always, for pins).
    Request {
        requested: VerificationRequested,
        mode: Mode,
        limited: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct ResetRequestError(pub VerificationError);

impl DomainError for ResetRequestError {
    fn exh(&self) -> ExhCode {
        match self.0 {
            VerificationError::TooSoon(_) => ExhCode::ForgotPasswordRequestTimeout,
            VerificationError::TooMany(_) => ExhCode::ForgotPasswordRequestLimit,
            _ => ExhCode::IllegalState,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetRequests {
    requests: Verification,
}

impl Aggregate for ResetRequests {
    const KIND: &'static str = "resetrequest";
    type Command = ResetRequestCommand;
    type Event = ResetRequestEvent;
    type Error = ResetRequestError;

    fn authorize(&self, _: &Self::Command, _: &Ctx<'_>) -> Result<(), Self::Error> {
        // Anyone may ask for a reset mail, as for an address with an account.
        Ok(())
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let ResetRequestCommand::Request {
            requested,
            mode,
            limited,
        } = command;
        if *limited || *mode == Mode::PinCode {
            self.requests
                .admits(Purpose::PasswordReset, *mode, ctx.now)
                .map_err(ResetRequestError)?;
        }
        let requested = requested.clone();
        Ok(vec![match mode {
            Mode::Hash => ResetRequestEvent::Requested(requested),
            Mode::PinCode => ResetRequestEvent::PinRequested(requested),
        }])
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            ResetRequestEvent::Requested(requested) => self.requests.requested(requested),
            ResetRequestEvent::PinRequested(e) => {
                let next = self
                    .requests
                    .next_request(e.request_id, e.purpose, Mode::PinCode, e.at);
                self.requests.code_requested(&next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::{NOW, given, id};
    use crate::value::Timestamp;

    fn request(n: u8, at: Timestamp) -> VerificationRequested {
        VerificationRequested {
            request_id: id(n),
            purpose: Purpose::PasswordReset,
            at,
        }
    }

    fn hash_request(requested: VerificationRequested) -> ResetRequestCommand {
        ResetRequestCommand::Request {
            requested,
            mode: Mode::Hash,
            limited: true,
        }
    }

    #[test]
    fn pin_requests_for_an_unknown_address_are_limited_to_three() {
        let three: Vec<_> = (0..3)
            .map(|n| {
                ResetRequestEvent::PinRequested(request(n, NOW.plus_seconds(i64::from(n) * 600)))
            })
            .collect();
        let later = NOW.plus_seconds(6000);
        given::<ResetRequests>(&three)
            .at(later)
            .when(ResetRequestCommand::Request {
                requested: request(9, later),
                mode: Mode::PinCode,
                limited: false,
            })
            .then_err(ResetRequestError(VerificationError::TooMany(
                Purpose::PasswordReset,
            )));
    }

    #[test]
    fn requests_for_an_unknown_address_are_limited_like_an_accounts() {
        let first = ResetRequestEvent::Requested(request(1, NOW));
        given::<ResetRequests>(std::slice::from_ref(&first))
            .at(NOW.plus_seconds(60))
            .when(hash_request(request(2, NOW.plus_seconds(60))))
            .then_err(ResetRequestError(VerificationError::TooSoon(
                Purpose::PasswordReset,
            )));
        let five: Vec<_> = (0..5)
            .map(|n| ResetRequestEvent::Requested(request(n, NOW.plus_seconds(i64::from(n) * 600))))
            .collect();
        let later = NOW.plus_seconds(6000);
        given::<ResetRequests>(&five)
            .at(later)
            .when(hash_request(request(9, later)))
            .then_err(ResetRequestError(VerificationError::TooMany(
                Purpose::PasswordReset,
            )));
        given::<ResetRequests>(&[first])
            .at(NOW.plus_seconds(300))
            .when(hash_request(request(2, NOW.plus_seconds(300))))
            .events();
    }
}
