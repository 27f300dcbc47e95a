//! Uniqueness reservations around a command (DESIGN.md §3).
//!
//! Before the owner's commit, each unique value is claimed on its reservation stream with the
//! owner's command id. If the owner's command then fails, the claims it made are released. A claim
//! is live once its owner's stream holds a commit of the claiming command. A claim whose command
//! never committed (the process died in between) is abandoned: its own owner may take it back at
//! once, anyone else after [`ABANDONED_AFTER_MILLIS`], with the reservation stream's head as the
//! expected position so two take-overs cannot both win.

use futures::future::BoxFuture;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::StreamId;
use vigil_domain::log::LogError;
use vigil_domain::reservation::{self, Holder, Reservation, ReservationCommand, ReservationError};

use crate::flow::{CommandBus, CommandError, Outcome};
use crate::ids;

/// How long a claim without its owner's commit is considered in flight.
pub const ABANDONED_AFTER_MILLIS: i64 = 30_000;

/// A value that must be unique within `namespace` (`"email"`, `"schema"`, ...).
#[derive(Debug, Clone)]
pub struct Unique {
    pub namespace: &'static str,
    pub value: String,
}

impl CommandBus {
    /// Claims every value in `unique` for `stream`, then runs `command`; releases the claims if the
    /// command fails.
    pub async fn execute_unique<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        unique: &[Unique],
        meta: &CommandMeta,
    ) -> Result<Outcome, CommandError<A::Error>> {
        let mut claimed = Vec::with_capacity(unique.len());
        for value in unique {
            match self.claim(stream, value, meta).await {
                Ok(Claim::Made) => claimed.push(value.clone()),
                // Held by a committed command of the same owner: not this command's to release.
                Ok(Claim::AlreadyHeld) => {}
                Err(error) => {
                    self.release_all(stream, &claimed, meta).await;
                    return Err(error);
                }
            }
        }
        let result = self.execute::<A>(stream, command, meta).await;
        if result.is_err() {
            self.release_all(stream, &claimed, meta).await;
        }
        result
    }

    /// Releases `value` held by `owner` (after a rename or a deletion).
    pub async fn release<E>(
        &self,
        owner: &StreamId,
        value: &Unique,
        meta: &CommandMeta,
    ) -> Result<(), CommandError<E>> {
        let command = ReservationCommand::Release {
            owner: owner.clone(),
        };
        let stream = reservation::stream(value.namespace, &value.value);
        self.execute::<Reservation>(&stream, &command, meta)
            .await
            .map(|_| ())
            .map_err(|e| taken_in(e, value.namespace))
    }

    pub(crate) async fn release_all(
        &self,
        owner: &StreamId,
        values: &[Unique],
        meta: &CommandMeta,
    ) {
        // A command of its own: under the claim's command id it would count as a retry of the claim.
        let meta = meta.step("release");
        for value in values {
            if let Err(error) = self.release::<ReservationError>(owner, value, &meta).await {
                // The claim stays until it counts as abandoned; nothing is lost.
                tracing::warn!(%error, namespace = value.namespace, "could not release a reservation");
            }
        }
    }

    async fn claim<E>(
        &self,
        owner: &StreamId,
        value: &Unique,
        meta: &CommandMeta,
    ) -> Result<Claim, CommandError<E>> {
        let stream = reservation::stream(value.namespace, &value.value);
        let mut take_over_from = None;
        loop {
            let command = ReservationCommand::Claim {
                owner: owner.clone(),
                command_id: meta.command_id.clone(),
                take_over_from: take_over_from.take(),
            };
            let holder = match self.execute::<Reservation>(&stream, &command, meta).await {
                Ok(_) => return Ok(Claim::Made),
                Err(CommandError::Domain(ReservationError::Taken { holder })) => holder,
                Err(other) => return Err(taken_in(other, value.namespace)),
            };
            let live = self.committed(&holder).await.map_err(CommandError::Log)?;
            if holder.owner == *owner {
                if live {
                    return Ok(Claim::AlreadyHeld);
                }
                // Our own claim from a command that never committed (a crash, a retry).
            } else if live
                || ids::now().millis() - holder.claimed_at.millis() < ABANDONED_AFTER_MILLIS
            {
                return Err(CommandError::Taken(value.namespace));
            } else {
                tracing::warn!(owner = %holder.owner, "taking over an abandoned reservation");
            }
            take_over_from = Some(holder.owner);
        }
    }

    /// Whether the command that made `holder`'s claim committed on the owner's stream.
    async fn committed(&self, holder: &Holder) -> Result<bool, vigil_domain::log::LogError> {
        let commits = self.log().read_stream(&holder.owner, 0).await?;
        Ok(commits
            .iter()
            .any(|c| c.commit.command_id == holder.command_id))
    }
}

/// Values the aggregate of a stream must hold alone (the values of a document under the unique
/// indexes of its schema), kept so by [`CommandBus::execute_holding`].
pub trait Exclusive<A>: Send + Sync {
    /// The values `state` holds.
    fn values(&self, state: &A) -> Vec<Unique>;

    /// Whether another stream holds `value` without having claimed it (it held it before the
    /// value had to be unique), `state` being the one about to hold it.
    fn held_elsewhere<'a>(
        &'a self,
        state: &'a A,
        value: &'a Unique,
    ) -> BoxFuture<'a, Result<bool, LogError>>;
}

impl CommandBus {
    /// Claims for `owner` the values `events` make `state` hold that it did not, adding them to
    /// `claimed`; answers the values it stops holding, to release once the events are committed.
    pub(crate) async fn claim_held<A: Aggregate>(
        &self,
        owner: &StreamId,
        exclusive: &dyn Exclusive<A>,
        state: &A,
        events: &[A::Event],
        meta: &CommandMeta,
        claimed: &mut Vec<Unique>,
    ) -> Result<Vec<Unique>, CommandError<A::Error>> {
        let mut after = state.clone();
        for event in events {
            after.apply(event);
        }
        let before = exclusive.values(state);
        let now = exclusive.values(&after);
        let held = |values: &[Unique], value: &Unique| {
            values
                .iter()
                .any(|v| v.namespace == value.namespace && v.value == value.value)
        };
        for value in now.iter().filter(|value| !held(&before, value)) {
            let made = matches!(self.claim(owner, value, meta).await?, Claim::Made);
            if made && !held(claimed, value) {
                claimed.push(value.clone());
            }
            if exclusive.held_elsewhere(&after, value).await? {
                return Err(CommandError::Taken(value.namespace));
            }
        }
        Ok(before
            .into_iter()
            .filter(|value| !held(&now, value))
            .collect())
    }
}

/// How a claim turned out.
enum Claim {
    /// This command holds the value now.
    Made,
    /// The owner already held it through an earlier, committed command.
    AlreadyHeld,
}

/// A reservation refusal is reported as the namespace being taken, whatever the owner's error type.
fn taken_in<E>(error: CommandError<ReservationError>, namespace: &'static str) -> CommandError<E> {
    match error {
        CommandError::Domain(ReservationError::Taken { .. }) | CommandError::Taken(_) => {
            CommandError::Taken(namespace)
        }
        CommandError::Conflict(stream) => CommandError::Conflict(stream),
        CommandError::Log(error) => CommandError::Log(error),
    }
}
