//! The deployment: a single stream (`deployment-main`) that marks the deployment as bootstrapped,
//! so a second bootstrap is refused by the log's own concurrency check, and registers the
//! fingerprint of the secrets key on first start, so a node started with another key (or a key
//! file lost and made anew) is refused before it cannot open what the log holds sealed.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id, StreamId};

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

/// A keyed digest of a fixed text under the secrets key: it tells keys apart without revealing
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SecretsKeyRegistered {
    pub fingerprint: Digest,
}

events! {
    pub enum DeploymentEvent {
        Bootstrapped(Bootstrapped) = "deployment.bootstrapped",
        SecretsKeyRegistered(SecretsKeyRegistered) = "deployment.secrets_key_registered",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentCommand {
    Bootstrap(Bootstrapped),
    /// Register the secrets key on first start; later starts must present the same one.
    UseSecretsKey {
        fingerprint: Digest,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    #[error("this deployment is already bootstrapped")]
    AlreadyBootstrapped,
    #[error("only Vigil itself may bootstrap a deployment")]
    NotSystem,
    #[error(
        "the secrets key is not the one this deployment registered at its first start; \
         start every node with the deployment's key"
    )]
    OtherSecretsKey,
}

impl DomainError for DeploymentError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyBootstrapped => ExhCode::IllegalState,
            Self::NotSystem => ExhCode::NoPermission,
            Self::OtherSecretsKey => ExhCode::IllegalState,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub bootstrapped: Option<Bootstrapped>,
    pub secrets_key: Option<Digest>,
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
            DeploymentCommand::UseSecretsKey { fingerprint } => match &self.secrets_key {
                None => Ok(vec![DeploymentEvent::SecretsKeyRegistered(
                    SecretsKeyRegistered {
                        fingerprint: *fingerprint,
                    },
                )]),
                Some(registered) if registered.ct_eq(fingerprint) => Ok(vec![]),
                Some(_) => Err(DeploymentError::OtherSecretsKey),
            },
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            DeploymentEvent::Bootstrapped(ids) => self.bootstrapped = Some(ids.clone()),
            DeploymentEvent::SecretsKeyRegistered(e) => self.secrets_key = Some(e.fingerprint),
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

    #[test]
    fn the_first_secrets_key_is_registered_and_others_are_refused() {
        let key = |n: u8| DeploymentCommand::UseSecretsKey {
            fingerprint: Digest::from_bytes([n; 32]),
        };
        let registered = DeploymentEvent::SecretsKeyRegistered(SecretsKeyRegistered {
            fingerprint: Digest::from_bytes([1; 32]),
        });
        given::<Deployment>(&[DeploymentEvent::Bootstrapped(ids())])
            .when(key(1))
            .then(std::slice::from_ref(&registered));
        given::<Deployment>(std::slice::from_ref(&registered))
            .when(key(1))
            .then(&[]);
        given::<Deployment>(&[registered])
            .when(key(2))
            .then_err(DeploymentError::OtherSecretsKey);
    }
}
