//! Uniqueness reservations around a command (DESIGN.md §3).
//!
//! Before the owner's commit, each unique value is claimed on its reservation stream with the
//! owner's command id. If the owner's command then fails, the claims it made are released. A claim
//! is live once its owner's stream holds a commit of the claiming command. A claim whose command
//! never committed (the process died in between) is abandoned: its own owner may take it back at
//! once, anyone else after [`ABANDONED_AFTER_MILLIS`], with the reservation stream's head as the
//! expected position so two take-overs cannot both win.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::StreamId;
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
                Ok(Claim::Made) => claimed.push(value),
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

    async fn release_all(&self, owner: &StreamId, values: &[&Unique], meta: &CommandMeta) {
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
