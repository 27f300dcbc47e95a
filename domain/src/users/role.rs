//! Global roles: named sets of permissions given to users. One stream per role (`role-<id>`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::permission::{NotGrantable, check_grantable};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RoleUpdated {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RolePermissionsRemoved {
    pub permissions: Vec<String>,
}

/// The role is gone: it no longer grants anything to the users who held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RoleDeleted {}

events! {
    pub enum RoleEvent {
        Created(RoleCreated) = "role.created",
        PermissionsAdded(RolePermissionsAdded) = "role.permissions_added",
        Updated(RoleUpdated) = "role.updated",
        PermissionsRemoved(RolePermissionsRemoved) = "role.permissions_removed",
        Deleted(RoleDeleted) = "role.deleted",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleCommand {
    Create {
        name: String,
        description: String,
    },
    AddPermissions {
        permissions: Vec<String>,
    },
    Update {
        name: Option<String>,
        description: Option<String>,
    },
    RemovePermissions {
        permissions: Vec<String>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("this role already exists")]
    AlreadyExists,
    #[error("role not found")]
    NotFound,
    #[error("a role needs a name of 1 to 100 characters, without control characters")]
    InvalidName,
    #[error(
        "a role's description is at most {LONGEST_DESCRIPTION} characters, without control characters other than line breaks and tabs"
    )]
    InvalidDescription,
    #[error(transparent)]
    NotGrantable(#[from] NotGrantable),
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for RoleError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::InvalidName | Self::InvalidDescription | Self::NotGrantable(_) => {
                ExhCode::FieldFormat
            }
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    pub created: bool,
    pub deleted: bool,
    pub name: String,
    pub description: String,
    pub permissions: BTreeSet<String>,
}

impl Role {
    fn exists(&self) -> Result<(), RoleError> {
        if self.created && !self.deleted {
            Ok(())
        } else {
            Err(RoleError::NotFound)
        }
    }
}

/// A role name (of a global or a group role): trimmed, 1 to 100 characters, none a control
/// character.
pub(crate) fn valid_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && name.chars().count() <= 100 && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

/// The longest description of a role (global or group).
pub const LONGEST_DESCRIPTION: usize = 1000;

/// Whether `description` fits a role: at most [`LONGEST_DESCRIPTION`] characters, no control
/// characters but line breaks and tabs.
pub(crate) fn valid_description(description: &str) -> bool {
    description.chars().count() <= LONGEST_DESCRIPTION
        && !description
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn role_description(description: &str) -> Result<String, RoleError> {
    valid_description(description)
        .then(|| description.to_owned())
        .ok_or(RoleError::InvalidDescription)
}

/// The permission names of `permissions` that may be added to a role (`in_group`: a group
/// role), or the first that may not.
pub(crate) fn grantable(
    permissions: &[String],
    in_group: bool,
) -> Result<BTreeSet<String>, NotGrantable> {
    let names = permission_names(permissions);
    for name in &names {
        check_grantable(name, in_group)?;
    }
    Ok(names)
}

fn role_name(name: &str) -> Result<String, RoleError> {
    valid_name(name).ok_or(RoleError::InvalidName)
}

/// Permission names as given: trimmed, blanks dropped, each once, in order.
pub(crate) fn permission_names(permissions: &[String]) -> BTreeSet<String> {
    permissions
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
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
            RoleCommand::Update { .. } => "UPDATE_ROLE",
            RoleCommand::RemovePermissions { .. } => "REMOVE_ROLE_PERMISSION",
            RoleCommand::Delete => "DELETE_ROLE",
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
                Ok(vec![RoleEvent::Created(RoleCreated {
                    name: role_name(name)?,
                    description: role_description(description)?,
                })])
            }
            RoleCommand::AddPermissions { permissions } => {
                self.exists()?;
                let new: Vec<String> = grantable(permissions, false)?
                    .into_iter()
                    .filter(|p| !self.permissions.contains(p))
                    .collect();
                if new.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![RoleEvent::PermissionsAdded(RolePermissionsAdded {
                    permissions: new,
                })])
            }
            RoleCommand::RemovePermissions { permissions } => {
                self.exists()?;
                let gone: Vec<String> = permission_names(permissions)
                    .into_iter()
                    .filter(|p| self.permissions.contains(p))
                    .collect();
                if gone.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![RoleEvent::PermissionsRemoved(
                    RolePermissionsRemoved { permissions: gone },
                )])
            }
            RoleCommand::Update { name, description } => {
                self.exists()?;
                let name = name.as_deref().map(role_name).transpose()?;
                let name = name.filter(|n| *n != self.name);
                let description = description
                    .as_deref()
                    .map(role_description)
                    .transpose()?
                    .filter(|d| *d != self.description);
                if name.is_none() && description.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![RoleEvent::Updated(RoleUpdated { name, description })])
            }
            RoleCommand::Delete => {
                self.exists()?;
                Ok(vec![RoleEvent::Deleted(RoleDeleted {})])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            RoleEvent::Created(e) => {
                self.created = true;
                self.name = e.name.clone();
                self.description = e.description.clone();
            }
            RoleEvent::PermissionsAdded(e) => {
                self.permissions.extend(e.permissions.iter().cloned())
            }
            RoleEvent::Updated(e) => {
                if let Some(name) = &e.name {
                    self.name = name.clone();
                }
                if let Some(description) = &e.description {
                    self.description = description.clone();
                }
            }
            RoleEvent::PermissionsRemoved(e) => {
                for permission in &e.permissions {
                    self.permissions.remove(permission);
                }
            }
            RoleEvent::Deleted(_) => {
                self.deleted = true;
                self.permissions.clear();
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
    fn names_and_descriptions_are_bounded_and_free_of_control_characters() {
        let create = |name: &str, description: &str| RoleCommand::Create {
            name: name.into(),
            description: description.into(),
        };
        given::<Role>(&[])
            .when(create("Nurse\u{0}", ""))
            .then_err(RoleError::InvalidName);
        given::<Role>(&[])
            .when(create("Nurse", &"x".repeat(LONGEST_DESCRIPTION + 1)))
            .then_err(RoleError::InvalidDescription);
        given::<Role>(&[])
            .when(create("Nurse", "bell\u{7}"))
            .then_err(RoleError::InvalidDescription);
        given::<Role>(&[])
            .when(create("Nurse", "Two\nlines\tand a tab"))
            .then(&[RoleEvent::Created(RoleCreated {
                name: "Nurse".into(),
                description: "Two\nlines\tand a tab".into(),
            })]);
    }

    #[test]
    fn only_known_permissions_are_added_scoped_or_not() {
        let add = |permission: &str| RoleCommand::AddPermissions {
            permissions: vec![permission.into()],
        };
        for known in [
            "VIEW_DOCUMENTS",
            "VIEW_DOCUMENTS:blood-pressure",
            "TRANSITION_DOCUMENTS:blood-pressure:review",
            "EXECUTE_API_FUNCTION:my_function",
        ] {
            given::<Role>(&[created()])
                .when(add(known))
                .then(&[RoleEvent::PermissionsAdded(RolePermissionsAdded {
                    permissions: vec![known.into()],
                })]);
        }
        for unknown in [
            "VIEW_DOCUMENT",
            "view_user",
            "VIEW_DOCUMENTS:",
            "VIEW_USER:a b",
            "$where",
        ] {
            given::<Role>(&[created()])
                .when(add(unknown))
                .then_err(RoleError::NotGrantable(NotGrantable::Unknown(
                    unknown.into(),
                )));
        }
        // Unknown names a role holds from before can still be removed.
        let held = RoleEvent::PermissionsAdded(RolePermissionsAdded {
            permissions: vec!["LEGACY".into()],
        });
        given::<Role>(&[created(), held])
            .when(RoleCommand::RemovePermissions {
                permissions: vec!["LEGACY".into()],
            })
            .then(&[RoleEvent::PermissionsRemoved(RolePermissionsRemoved {
                permissions: vec!["LEGACY".into()],
            })]);
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
    fn only_permissions_the_role_holds_are_removed() {
        let granted = RoleEvent::PermissionsAdded(RolePermissionsAdded {
            permissions: vec!["VIEW_USER".into(), "CREATE_ROLE".into()],
        });
        given::<Role>(&[created(), granted])
            .when(RoleCommand::RemovePermissions {
                permissions: vec!["VIEW_USER".into(), "DELETE_USER".into()],
            })
            .then(&[RoleEvent::PermissionsRemoved(RolePermissionsRemoved {
                permissions: vec!["VIEW_USER".into()],
            })]);
    }

    #[test]
    fn an_update_records_only_what_changes() {
        given::<Role>(&[created()])
            .when(RoleCommand::Update {
                name: Some(" Administrator ".into()),
                description: Some("All of it".into()),
            })
            .then(&[RoleEvent::Updated(RoleUpdated {
                name: None,
                description: Some("All of it".into()),
            })]);
        given::<Role>(&[created()])
            .when(RoleCommand::Update {
                name: Some("Administrator".into()),
                description: None,
            })
            .then(&[]);
    }

    #[test]
    fn a_deleted_role_is_gone() {
        let deleted = RoleEvent::Deleted(RoleDeleted {});
        given::<Role>(&[created()])
            .when(RoleCommand::Delete)
            .then(std::slice::from_ref(&deleted));
        given::<Role>(&[created(), deleted.clone()])
            .when(RoleCommand::Delete)
            .then_err(RoleError::NotFound);
        given::<Role>(&[created(), deleted])
            .when(RoleCommand::AddPermissions {
                permissions: vec!["VIEW_USER".into()],
            })
            .then_err(RoleError::NotFound);
    }

    #[test]
    fn changing_a_role_needs_the_matching_permission() {
        use crate::actor::{Actor, Via};
        use crate::aggregate::testing::id;
        let caller = Actor::user(
            id(7),
            None,
            crate::permission::Permissions::default(),
            Via::Http,
            None,
        );
        given::<Role>(&[created()])
            .by(caller)
            .when(RoleCommand::Delete)
            .then_err(RoleError::NoPermission("DELETE_ROLE"));
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
