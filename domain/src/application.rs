//! Applications: the client programs every token is bound to. One stream per application
//! (`application-<id>`). Credentials are issued per version; only their digests are kept.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum ApplicationKind {
    OAuth1,
    OAuth2 {
        /// A confidential client must present its secret at the token endpoint.
        confidential: bool,
        redirect_uris: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationCreated {
    pub name: String,
    pub description: String,
    pub kind: ApplicationKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationVersionCreated {
    pub version_id: Id,
    pub name: String,
    /// The OAuth2 client id or OAuth1 consumer key (public).
    pub client_id: String,
    /// SHA-256 of the client secret, which is shown once and never stored.
    pub secret_digest: Digest,
}

events! {
    pub enum ApplicationEvent {
        Created(ApplicationCreated) = "application.created",
        VersionCreated(ApplicationVersionCreated) = "application.version_created",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationCommand {
    Create {
        name: String,
        description: String,
        kind: ApplicationKind,
    },
    /// Id, client id and secret digest come from the command layer (randomness).
    CreateVersion {
        version_id: Id,
        name: String,
        client_id: String,
        secret_digest: Digest,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    #[error("this application already exists")]
    AlreadyExists,
    #[error("application not found")]
    NotFound,
    #[error("the {0} must be 1 to {1} characters")]
    InvalidLength(&'static str, usize),
    #[error("this application already has a version with that name")]
    VersionNameUsed,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for ApplicationError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists | Self::VersionNameUsed => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::InvalidLength(..) => ExhCode::FieldFormat,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Application {
    pub created: bool,
    pub version_names: Vec<String>,
}

fn check_length(field: &'static str, text: &str, max: usize) -> Result<(), ApplicationError> {
    let len = text.chars().count();
    if (1..=max).contains(&len) {
        Ok(())
    } else {
        Err(ApplicationError::InvalidLength(field, max))
    }
}

impl Aggregate for Application {
    const KIND: &'static str = "application";
    type Command = ApplicationCommand;
    type Event = ApplicationEvent;
    type Error = ApplicationError;

    fn authorize(&self, _: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        // Extra Horizon guards versions with the same permission as applications.
        const REQUIRED: &str = "CREATE_APPLICATIONS";
        ctx.actor.require(REQUIRED, ApplicationError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            ApplicationCommand::Create {
                name,
                description,
                kind,
            } => {
                if self.created {
                    return Err(ApplicationError::AlreadyExists);
                }
                check_length("name", name, 100)?;
                check_length("description", description, 250)?;
                Ok(vec![ApplicationEvent::Created(ApplicationCreated {
                    name: name.clone(),
                    description: description.clone(),
                    kind: kind.clone(),
                })])
            }
            ApplicationCommand::CreateVersion {
                version_id,
                name,
                client_id,
                secret_digest,
            } => {
                if !self.created {
                    return Err(ApplicationError::NotFound);
                }
                check_length("version name", name, 100)?;
                if self.version_names.contains(name) {
                    return Err(ApplicationError::VersionNameUsed);
                }
                Ok(vec![ApplicationEvent::VersionCreated(
                    ApplicationVersionCreated {
                        version_id: *version_id,
                        name: name.clone(),
                        client_id: client_id.clone(),
                        secret_digest: *secret_digest,
                    },
                )])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            ApplicationEvent::Created(_) => self.created = true,
            ApplicationEvent::VersionCreated(e) => self.version_names.push(e.name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn create() -> ApplicationCommand {
        ApplicationCommand::Create {
            name: "Vigil".into(),
            description: "The administrator's application".into(),
            kind: ApplicationKind::OAuth2 {
                confidential: true,
                redirect_uris: vec![],
            },
        }
    }

    fn version(name: &str) -> ApplicationCommand {
        ApplicationCommand::CreateVersion {
            version_id: id(5),
            name: name.into(),
            client_id: "c".repeat(40),
            secret_digest: Digest::of(b"secret"),
        }
    }

    #[test]
    fn an_application_gets_versions_with_distinct_names() {
        let created = given::<Application>(&[]).when(create()).events();
        let first = given::<Application>(&created).when(version("v1")).events();
        let history: Vec<_> = created.into_iter().chain(first).collect();
        given::<Application>(&history)
            .when(version("v1"))
            .then_err(ApplicationError::VersionNameUsed);
    }

    #[test]
    fn a_version_needs_an_application() {
        given::<Application>(&[])
            .when(version("v1"))
            .then_err(ApplicationError::NotFound);
    }

    #[test]
    fn creating_applications_needs_the_permission() {
        let caller = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Application>(&[])
            .by(caller)
            .when(create())
            .then_err(ApplicationError::NoPermission("CREATE_APPLICATIONS"));
    }

    #[test]
    fn names_are_bounded() {
        let command = ApplicationCommand::Create {
            name: "x".repeat(101),
            description: "d".into(),
            kind: ApplicationKind::OAuth1,
        };
        given::<Application>(&[])
            .when(command)
            .then_err(ApplicationError::InvalidLength("name", 100));
    }
}
