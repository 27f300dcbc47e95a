//! Changes made to many users at once by RQL (`DELETE /users/v1/?<rql>`,
//! `POST /users/v1/add_roles?<rql>`, `remove_roles`), as a job that cannot stop half done: it is
//! recorded first with the users the RQL selected (`bulk.started`), then carried out one user at a
//! time, each change caused by the job under an id made of the job's and the user's (so carrying
//! it out twice changes nothing twice), then recorded as finished with how many users it changed
//! (`bulk.finished`). A job whose node stopped before finishing it is finished by the scheduler.
//! Its progress is in the log: the job's stream, and the commits it caused.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::value::Timestamp;

/// What a job does to each of its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum BulkChange {
    DeleteUsers,
    AddRoles { role_ids: Vec<Id> },
    RemoveRoles { role_ids: Vec<Id> },
}

impl BulkChange {
    /// The permission the change needs (deleting oneself needs none).
    pub fn permission(&self) -> &'static str {
        match self {
            Self::DeleteUsers => "DELETE_USER",
            Self::AddRoles { .. } => "ADD_ROLE_TO_USER",
            Self::RemoveRoles { .. } => "REMOVE_ROLE_FROM_USER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct BulkStarted {
    pub change: BulkChange,
    pub user_ids: Vec<Id>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct BulkFinished {
    /// The users the job changed (those gone meanwhile are not counted).
    pub affected: u64,
}

events! {
    pub enum BulkEvent {
        Started(BulkStarted) = "bulk.started",
        Finished(BulkFinished) = "bulk.finished",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkCommand {
    Start {
        change: BulkChange,
        user_ids: Vec<Id>,
    },
    Finish {
        affected: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    #[error("this job has started already")]
    AlreadyStarted,
    #[error("no such job")]
    NotStarted,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for BulkError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyStarted => ExhCode::ResourceAlreadyExists,
            Self::NotStarted => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

/// A job: what it changes and for whom, and how many it changed once finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkJob {
    pub started: Option<BulkStarted>,
    pub affected: Option<u64>,
}

impl Aggregate for BulkJob {
    const KIND: &'static str = "bulk";
    type Command = BulkCommand;
    type Event = BulkEvent;
    type Error = BulkError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let (change, user_ids) = match (command, &self.started) {
            (BulkCommand::Start { change, user_ids }, _) => (change, user_ids),
            (BulkCommand::Finish { .. }, Some(started)) => (&started.change, &started.user_ids),
            (BulkCommand::Finish { .. }, None) => return Err(BulkError::NotStarted),
        };
        let only_oneself = *change == BulkChange::DeleteUsers
            && ctx
                .actor
                .record()
                .user_id
                .is_some_and(|me| user_ids.iter().all(|id| *id == me));
        if only_oneself {
            return Ok(());
        }
        ctx.actor
            .require(change.permission(), BulkError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            BulkCommand::Start { change, user_ids } => {
                if self.started.is_some() {
                    return Err(BulkError::AlreadyStarted);
                }
                Ok(vec![BulkEvent::Started(BulkStarted {
                    change: change.clone(),
                    user_ids: user_ids.clone(),
                    at: ctx.now,
                })])
            }
            BulkCommand::Finish { affected } => {
                if self.started.is_none() {
                    return Err(BulkError::NotStarted);
                }
                if self.affected.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![BulkEvent::Finished(BulkFinished {
                    affected: *affected,
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            BulkEvent::Started(e) => self.started = Some(e.clone()),
            BulkEvent::Finished(e) => self.affected = Some(e.affected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;

    fn start(change: BulkChange, user_ids: Vec<Id>) -> BulkCommand {
        BulkCommand::Start { change, user_ids }
    }

    fn started(change: BulkChange, user_ids: Vec<Id>) -> BulkEvent {
        BulkEvent::Started(BulkStarted {
            change,
            user_ids,
            at: NOW,
        })
    }

    #[test]
    fn a_job_is_started_once_with_its_users_and_finished_once() {
        let roles = BulkChange::AddRoles {
            role_ids: vec![id(9)],
        };
        given::<BulkJob>(&[])
            .when(start(roles.clone(), vec![id(1), id(2)]))
            .then(&[started(roles.clone(), vec![id(1), id(2)])]);
        given::<BulkJob>(&[started(roles.clone(), vec![id(1)])])
            .when(start(roles.clone(), vec![id(1)]))
            .then_err(BulkError::AlreadyStarted);
        let finished = BulkEvent::Finished(BulkFinished { affected: 1 });
        given::<BulkJob>(&[started(roles.clone(), vec![id(1)])])
            .when(BulkCommand::Finish { affected: 1 })
            .then(std::slice::from_ref(&finished));
        given::<BulkJob>(&[started(roles, vec![id(1)]), finished])
            .when(BulkCommand::Finish { affected: 1 })
            .then(&[]);
        given::<BulkJob>(&[])
            .when(BulkCommand::Finish { affected: 0 })
            .then_err(BulkError::NotStarted);
    }

    #[test]
    fn a_job_needs_its_changes_permission_but_deleting_oneself() {
        let me = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<BulkJob>(&[])
            .by(me.clone())
            .when(start(BulkChange::DeleteUsers, vec![id(1)]))
            .then(&[started(BulkChange::DeleteUsers, vec![id(1)])]);
        given::<BulkJob>(&[])
            .by(me.clone())
            .when(start(BulkChange::DeleteUsers, vec![id(1), id(2)]))
            .then_err(BulkError::NoPermission("DELETE_USER"));
        given::<BulkJob>(&[])
            .by(me)
            .when(start(
                BulkChange::RemoveRoles { role_ids: vec![] },
                vec![id(1)],
            ))
            .then_err(BulkError::NoPermission("REMOVE_ROLE_FROM_USER"));
    }
}
