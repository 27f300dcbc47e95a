//! The deployment: a single stream (`deployment-main`) whose first commit marks the deployment as
//! bootstrapped, so a second bootstrap is refused by the log's own concurrency check.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Id, StreamId};

/// The one deployment stream, `deployment-main`.
pub fn stream() -> StreamId {
    StreamId::from_trusted_parts(Deployment::KIND, "main".to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Bootstrapped {
    pub admin_user_id: Id,
    pub admin_role_id: Id,
    pub application_id: Id,
}

events! {
    pub enum DeploymentEvent {
        Bootstrapped(Bootstrapped) = "deployment.bootstrapped",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentCommand {
    Bootstrap(Bootstrapped),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    #[error("this deployment is already bootstrapped")]
    AlreadyBootstrapped,
    #[error("only Vigil itself may bootstrap a deployment")]
    NotSystem,
}

impl DomainError for DeploymentError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyBootstrapped => ExhCode::IllegalState,
            Self::NotSystem => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub bootstrapped: Option<Bootstrapped>,
}

impl Aggregate for Deployment {
    const KIND: &'static str = "deployment";
    type Command = DeploymentCommand;
    type Event = DeploymentEvent;
    type Error = DeploymentError;

    fn authorize(&self, _: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        if ctx.actor.is_system() {
            Ok(())
        } else {
            Err(DeploymentError::NotSystem)
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            DeploymentCommand::Bootstrap(ids) => match self.bootstrapped {
                Some(_) => Err(DeploymentError::AlreadyBootstrapped),
                None => Ok(vec![DeploymentEvent::Bootstrapped(ids.clone())]),
            },
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            DeploymentEvent::Bootstrapped(ids) => self.bootstrapped = Some(ids.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn ids() -> Bootstrapped {
        Bootstrapped {
            admin_user_id: id(1),
            admin_role_id: id(2),
            application_id: id(3),
        }
    }

    #[test]
    fn a_new_deployment_is_bootstrapped_once() {
        given::<Deployment>(&[])
            .when(DeploymentCommand::Bootstrap(ids()))
            .then(&[DeploymentEvent::Bootstrapped(ids())]);
    }

    #[test]
    fn a_second_bootstrap_is_refused() {
        given::<Deployment>(&[DeploymentEvent::Bootstrapped(ids())])
            .when(DeploymentCommand::Bootstrap(ids()))
            .then_err(DeploymentError::AlreadyBootstrapped);
    }

    #[test]
    fn only_vigil_itself_bootstraps() {
        let user = Actor::user(id(9), None, Permissions::all(), Via::Http, None);
        given::<Deployment>(&[])
            .by(user)
            .when(DeploymentCommand::Bootstrap(ids()))
            .then_err(DeploymentError::NotSystem);
    }
}
