//! Global roles: named sets of permissions given to users. One stream per role (`role-<id>`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RoleCreated {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RolePermissionsAdded {
    pub permissions: Vec<String>,
}

events! {
    pub enum RoleEvent {
        Created(RoleCreated) = "role.created",
        PermissionsAdded(RolePermissionsAdded) = "role.permissions_added",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleCommand {
    Create { name: String, description: String },
    AddPermissions { permissions: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("this role already exists")]
    AlreadyExists,
    #[error("role not found")]
    NotFound,
    #[error("a role needs a name of 1 to 100 characters")]
    InvalidName,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for RoleError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::InvalidName => ExhCode::FieldFormat,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    pub created: bool,
    pub permissions: BTreeSet<String>,
}

impl Aggregate for Role {
    const KIND: &'static str = "role";
    type Command = RoleCommand;
    type Event = RoleEvent;
    type Error = RoleError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            RoleCommand::Create { .. } => "CREATE_ROLE",
            RoleCommand::AddPermissions { .. } => "ADD_ROLE_PERMISSION",
        };
        ctx.actor.require(required, RoleError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            RoleCommand::Create { name, description } => {
                if self.created {
                    return Err(RoleError::AlreadyExists);
                }
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(RoleError::InvalidName);
                }
                Ok(vec![RoleEvent::Created(RoleCreated {
                    name: name.to_owned(),
                    description: description.clone(),
                })])
            }
            RoleCommand::AddPermissions { permissions } => {
                if !self.created {
                    return Err(RoleError::NotFound);
                }
                let new: BTreeSet<String> = permissions
                    .iter()
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty() && !self.permissions.contains(p))
                    .collect();
                if new.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![RoleEvent::PermissionsAdded(RolePermissionsAdded {
                    permissions: new.into_iter().collect(),
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            RoleEvent::Created(_) => self.created = true,
            RoleEvent::PermissionsAdded(e) => {
                self.permissions.extend(e.permissions.iter().cloned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn created() -> RoleEvent {
        RoleEvent::Created(RoleCreated {
            name: "Administrator".into(),
            description: "Everything".into(),
        })
    }

    #[test]
    fn a_role_is_created_with_a_trimmed_name() {
        given::<Role>(&[])
            .when(RoleCommand::Create {
                name: " Administrator ".into(),
                description: "Everything".into(),
            })
            .then(&[created()]);
    }

    #[test]
    fn a_role_needs_a_name() {
        given::<Role>(&[])
            .when(RoleCommand::Create {
                name: "  ".into(),
                description: String::new(),
            })
            .then_err(RoleError::InvalidName);
    }

    #[test]
    fn only_permissions_the_role_lacks_are_added() {
        let first = RoleEvent::PermissionsAdded(RolePermissionsAdded {
            permissions: vec!["VIEW_USER".into()],
        });
        given::<Role>(&[created(), first])
            .when(RoleCommand::AddPermissions {
                permissions: vec!["VIEW_USER".into(), "CREATE_ROLE".into(), " ".into()],
            })
            .then(&[RoleEvent::PermissionsAdded(RolePermissionsAdded {
                permissions: vec!["CREATE_ROLE".into()],
            })]);
    }

    #[test]
    fn permissions_cannot_be_added_to_a_missing_role() {
        given::<Role>(&[])
            .when(RoleCommand::AddPermissions {
                permissions: vec!["VIEW_USER".into()],
            })
            .then_err(RoleError::NotFound);
    }
}
