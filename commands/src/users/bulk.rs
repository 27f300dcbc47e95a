//! Changes to many users at once, as jobs that cannot stop half done (see
//! [`vigil_domain::users::bulk`]): recorded with their users first, carried out one user at a
//! time under ids made of the job's and the user's, then finished. Carrying out a job again, after
//! a crash or by another node, changes nothing twice.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::CommandMeta;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::users::bulk::{BulkChange, BulkCommand, BulkError, BulkJob};
use vigil_domain::users::user::{User, UserCommand, UserError};

use crate::flow::{CommandBus, CommandError};
use crate::users::user::{self, AccountError};

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BulkJobError {
    #[error(transparent)]
    Job(#[from] CommandError<BulkError>),
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// What a finished job did: how many users it changed, and the log position of its last commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub affected: u64,
    pub position: u64,
}

/// Records job `job_id` (`change` for each of `user_ids`), carries it out as `meta`'s actor and
/// finishes it.
pub async fn run(
    bus: &CommandBus,
    job_id: Id,
    change: BulkChange,
    user_ids: Vec<Id>,
    meta: &CommandMeta,
) -> Result<Done, BulkJobError> {
    let start = BulkCommand::Start { change, user_ids };
    bus.execute::<BulkJob>(&stream(job_id), &start, &meta.step("start"))
        .await?;
    carry_out(bus, job_id, meta).await
}

/// Carries out job `job_id` for every one of its users (again, for those already changed) and
/// finishes it, as `meta`'s actor; a finished job is left as it is.
pub async fn carry_out(
    bus: &CommandBus,
    job_id: Id,
    meta: &CommandMeta,
) -> Result<Done, BulkJobError> {
    let stream = stream(job_id);
    let (job, head) = bus
        .load::<BulkJob>(&stream)
        .await
        .map_err(CommandError::Log)?;
    if let Some(affected) = job.affected {
        let position = head.map_or(0, |head| head.position);
        return Ok(Done { affected, position });
    }
    let started = job
        .started
        .ok_or(CommandError::Domain(BulkError::NotStarted))?;
    let caused = CommandMeta {
        causation_id: Some(stream.to_string()),
        ..meta.clone()
    };
    let mut done = Done {
        affected: 0,
        position: 0,
    };
    for user_id in &started.user_ids {
        let meta = CommandMeta {
            command_id: format!("{stream}/{user_id}"),
            ..caused.clone()
        };
        if let Some(position) = change_one(bus, &started.change, *user_id, &meta).await? {
            done.affected += 1;
            done.position = done.position.max(position);
        }
    }
    let finish = BulkCommand::Finish {
        affected: done.affected,
    };
    let meta = CommandMeta {
        command_id: format!("{stream}/finish"),
        ..caused
    };
    let outcome = bus.execute::<BulkJob>(&stream, &finish, &meta).await?;
    done.position = done.position.max(outcome.position);
    Ok(done)
}

fn stream(job_id: Id) -> StreamId {
    StreamId::of(BulkJob::KIND, job_id)
}

/// Makes `change` to `user_id`; its position, or none when the user is gone.
async fn change_one(
    bus: &CommandBus,
    change: &BulkChange,
    user_id: Id,
    meta: &CommandMeta,
) -> Result<Option<u64>, AccountError> {
    let command = match change {
        BulkChange::DeleteUsers => {
            return match user::delete(bus, user_id, meta).await {
                Ok(outcome) => Ok(Some(outcome.position)),
                Err(AccountError::Command(CommandError::Domain(UserError::NotFound))) => Ok(None),
                Err(other) => Err(other),
            };
        }
        BulkChange::AddRoles { role_ids } => UserCommand::AddRoles {
            role_ids: role_ids.clone(),
        },
        BulkChange::RemoveRoles { role_ids } => UserCommand::RemoveRoles {
            role_ids: role_ids.clone(),
        },
    };
    match bus
        .execute::<User>(&StreamId::of(User::KIND, user_id), &command, meta)
        .await
    {
        Ok(outcome) => Ok(Some(outcome.position)),
        Err(CommandError::Domain(UserError::NotFound)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}
