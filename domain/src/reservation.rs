//! Uniqueness reservations (DESIGN.md §3): a value that must be unique across aggregates (a user's
//! email, a schema name) is claimed on its own stream `unique-<kind>-<sha256(value)>` before the
//! owner's commit, so two concurrent claims are decided by the log's concurrency check.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, StreamId};
use crate::value::Timestamp;

/// The reservation stream for `value` in the namespace `kind` (`email`, `schema`, ...). The value
/// itself never enters the stream name, only its digest.
pub fn stream(namespace: &'static str, value: &str) -> StreamId {
    StreamId::from_trusted_parts(
        Reservation::KIND,
        format!("{namespace}-{}", Digest::of(value.as_bytes())),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Claimed {
    pub owner: StreamId,
    /// The command that claims it: the owner's commit carries the same command id, which is how a
    /// claim whose owner never committed is recognised.
    pub command_id: String,
    /// When the claim was made; a claim whose owner never committed is abandoned after a while.
    pub claimed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Released {
    pub owner: StreamId,
}

events! {
    pub enum ReservationEvent {
        Claimed(Claimed) = "reservation.claimed",
        Released(Released) = "reservation.released",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationCommand {
    /// Claim for `owner`; when the value is held by `take_over_from` (a claim the command layer
    /// found abandoned), take it over.
    Claim {
        owner: StreamId,
        command_id: String,
        take_over_from: Option<StreamId>,
    },
    Release {
        owner: StreamId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("the value is already taken")]
    Taken { holder: Holder },
}

impl DomainError for ReservationError {
    fn exh(&self) -> ExhCode {
        ExhCode::ResourceAlreadyExists
    }
}

/// The current claim on a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: StreamId,
    pub command_id: String,
    pub claimed_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    pub holder: Option<Holder>,
}

impl Aggregate for Reservation {
    const KIND: &'static str = "unique";
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;

    /// Reservations are claimed on behalf of a command that was authorized for its own aggregate.
    fn authorize(&self, _: &Self::Command, _: &Ctx<'_>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            ReservationCommand::Claim {
                owner,
                command_id,
                take_over_from,
            } => match &self.holder {
                Some(holder) if holder.owner == *owner && holder.command_id == *command_id => {
                    Ok(vec![])
                }
                Some(holder) if take_over_from.as_ref() != Some(&holder.owner) => {
                    Err(ReservationError::Taken {
                        holder: holder.clone(),
                    })
                }
                _ => Ok(vec![ReservationEvent::Claimed(Claimed {
                    owner: owner.clone(),
                    command_id: command_id.clone(),
                    claimed_at: ctx.now,
                })]),
            },
            ReservationCommand::Release { owner } => match &self.holder {
                Some(holder) if holder.owner == *owner => {
                    Ok(vec![ReservationEvent::Released(Released {
                        owner: owner.clone(),
                    })])
                }
                _ => Ok(vec![]),
            },
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            ReservationEvent::Claimed(claim) => {
                self.holder = Some(Holder {
                    owner: claim.owner.clone(),
                    command_id: claim.command_id.clone(),
                    claimed_at: claim.claimed_at,
                })
            }
            ReservationEvent::Released(_) => self.holder = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::{NOW, given, id};

    fn owner(n: u8) -> StreamId {
        StreamId::of("user", id(n))
    }

    fn claimed(n: u8, command: &str) -> ReservationEvent {
        ReservationEvent::Claimed(Claimed {
            owner: owner(n),
            command_id: command.into(),
            claimed_at: NOW,
        })
    }

    fn claim(n: u8, command: &str, take_over_from: Option<StreamId>) -> ReservationCommand {
        ReservationCommand::Claim {
            owner: owner(n),
            command_id: command.into(),
            take_over_from,
        }
    }

    #[test]
    fn a_free_value_is_claimed() {
        given::<Reservation>(&[])
            .when(claim(1, "c1", None))
            .then(&[claimed(1, "c1")]);
    }

    #[test]
    fn a_held_value_is_refused_to_another_owner() {
        let error = given::<Reservation>(&[claimed(1, "c1")]).when(claim(2, "c2", None));
        error.then_err(ReservationError::Taken {
            holder: Holder {
                owner: owner(1),
                command_id: "c1".into(),
                claimed_at: NOW,
            },
        });
    }

    #[test]
    fn the_same_claim_again_is_a_no_op() {
        given::<Reservation>(&[claimed(1, "c1")])
            .when(claim(1, "c1", None))
            .then(&[]);
    }

    #[test]
    fn an_abandoned_claim_is_taken_over_only_from_the_named_holder() {
        given::<Reservation>(&[claimed(1, "c1")])
            .when(claim(2, "c2", Some(owner(1))))
            .then(&[claimed(2, "c2")]);
        let refused =
            given::<Reservation>(&[claimed(1, "c1")]).when(claim(2, "c2", Some(owner(3))));
        refused.then_err(ReservationError::Taken {
            holder: Holder {
                owner: owner(1),
                command_id: "c1".into(),
                claimed_at: NOW,
            },
        });
    }

    #[test]
    fn a_released_value_can_be_claimed_again() {
        let released = ReservationEvent::Released(Released { owner: owner(1) });
        given::<Reservation>(&[claimed(1, "c1"), released])
            .when(claim(2, "c2", None))
            .then(&[claimed(2, "c2")]);
    }

    #[test]
    fn only_the_holder_releases() {
        given::<Reservation>(&[claimed(1, "c1")])
            .when(ReservationCommand::Release { owner: owner(2) })
            .then(&[]);
    }

    #[test]
    fn the_stream_name_hides_the_value() {
        let stream = stream("email", "jane@example.com");
        assert_eq!(stream.kind(), "unique");
        assert!(stream.key().starts_with("email-"));
        assert!(!stream.to_string().contains("jane"));
    }
}
