//! Groups and their roles. Extra Horizon has no group object: a group is an id that staff and
//! patients are enlisted in (on the user's stream). What a group does own is its roles, which
//! give staff members permissions inside that group only. One stream per group (`group-<id>`),
//! so a group's roles change atomically, also in bulk.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::permission::NotGrantable;
use crate::users::role::{LONGEST_DESCRIPTION, grantable, permission_names, valid_description};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupRoleCreated {
    pub role_id: Id,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupRoleUpdated {
    pub role_id: Id,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupRolePermissionsAdded {
    pub role_id: Id,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupRolePermissionsRemoved {
    pub role_id: Id,
    pub permissions: Vec<String>,
}

/// The role is gone: it no longer grants anything to the staff members who held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupRoleDeleted {
    pub role_id: Id,
}

events! {
    pub enum GroupEvent {
        RoleCreated(GroupRoleCreated) = "group.role_created",
        RoleUpdated(GroupRoleUpdated) = "group.role_updated",
        RolePermissionsAdded(GroupRolePermissionsAdded) = "group.role_permissions_added",
        RolePermissionsRemoved(GroupRolePermissionsRemoved) = "group.role_permissions_removed",
        RoleDeleted(GroupRoleDeleted) = "group.role_deleted",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCommand {
    CreateRole {
        role_id: Id,
        name: String,
        description: String,
    },
    UpdateRole {
        role_id: Id,
        name: Option<String>,
        description: Option<String>,
    },
    /// Adds permissions to each of `role_ids` (the roles a query selected; unknown ones are
    /// skipped).
    AddPermissions {
        role_ids: Vec<Id>,
        permissions: Vec<String>,
    },
    RemovePermissions {
        role_ids: Vec<Id>,
        permissions: Vec<String>,
    },
    DeleteRoles {
        role_ids: Vec<Id>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("this group role already exists")]
    AlreadyExists,
    #[error("no role with this id in this group")]
    RoleNotFound,
    #[error("a group role needs a name of 1 to 100 characters, without control characters")]
    InvalidName,
    #[error(
        "a group role's description is at most {LONGEST_DESCRIPTION} characters, without control characters other than line breaks and tabs"
    )]
    InvalidDescription,
    #[error(transparent)]
    NotGrantable(#[from] NotGrantable),
    #[error("permission {0} is required, globally or for this group")]
    NoPermission(&'static str),
}

impl DomainError for GroupError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::RoleNotFound => ExhCode::ResourceUnknown,
            Self::InvalidName | Self::InvalidDescription | Self::NotGrantable(_) => {
                ExhCode::FieldFormat
            }
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRole {
    pub name: String,
    pub description: String,
    pub permissions: BTreeSet<String>,
}

/// A group's roles (deleted ones are forgotten; their ids are never reused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub roles: BTreeMap<Id, GroupRole>,
    pub deleted_roles: BTreeSet<Id>,
}

fn role_name(name: &str) -> Result<String, GroupError> {
    crate::users::role::valid_name(name).ok_or(GroupError::InvalidName)
}

fn role_description(description: &str) -> Result<String, GroupError> {
    valid_description(description)
        .then(|| description.to_owned())
        .ok_or(GroupError::InvalidDescription)
}

impl Group {
    fn role(&self, role_id: Id) -> Result<&GroupRole, GroupError> {
        self.roles.get(&role_id).ok_or(GroupError::RoleNotFound)
    }

    /// The existing roles among `role_ids`, each once, in id order.
    fn existing(&self, role_ids: &[Id]) -> impl Iterator<Item = (Id, &GroupRole)> {
        role_ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|id| self.roles.get(&id).map(|role| (id, role)))
    }
}

impl Aggregate for Group {
    const KIND: &'static str = "group";
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            GroupCommand::CreateRole { .. } => "CREATE_GROUP_ROLE",
            GroupCommand::UpdateRole { .. } => "UPDATE_GROUP_ROLE",
            GroupCommand::AddPermissions { .. } => "ADD_GROUP_ROLE_PERMISSION",
            GroupCommand::RemovePermissions { .. } => "REMOVE_GROUP_ROLE_PERMISSION",
            GroupCommand::DeleteRoles { .. } => "DELETE_GROUP_ROLE",
        };
        match ctx.stream.id() {
            Some(group) => ctx
                .actor
                .require_in(group, required, GroupError::NoPermission),
            None => ctx.actor.require(required, GroupError::NoPermission),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            GroupCommand::CreateRole {
                role_id,
                name,
                description,
            } => {
                if self.roles.contains_key(role_id) || self.deleted_roles.contains(role_id) {
                    return Err(GroupError::AlreadyExists);
                }
                Ok(vec![GroupEvent::RoleCreated(GroupRoleCreated {
                    role_id: *role_id,
                    name: role_name(name)?,
                    description: role_description(description)?,
                })])
            }
            GroupCommand::UpdateRole {
                role_id,
                name,
                description,
            } => {
                let role = self.role(*role_id)?;
                let name = name.as_deref().map(role_name).transpose()?;
                let name = name.filter(|n| *n != role.name);
                let description = description
                    .as_deref()
                    .map(role_description)
                    .transpose()?
                    .filter(|d| *d != role.description);
                if name.is_none() && description.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![GroupEvent::RoleUpdated(GroupRoleUpdated {
                    role_id: *role_id,
                    name,
                    description,
                })])
            }
            GroupCommand::AddPermissions {
                role_ids,
                permissions,
            } => {
                let wanted = grantable(permissions, true)?;
                Ok(self
                    .existing(role_ids)
                    .filter_map(|(role_id, role)| {
                        let new: Vec<String> =
                            wanted.difference(&role.permissions).cloned().collect();
                        (!new.is_empty()).then_some({
                            GroupEvent::RolePermissionsAdded(GroupRolePermissionsAdded {
                                role_id,
                                permissions: new,
                            })
                        })
                    })
                    .collect())
            }
            GroupCommand::RemovePermissions {
                role_ids,
                permissions,
            } => {
                let unwanted = permission_names(permissions);
                Ok(self
                    .existing(role_ids)
                    .filter_map(|(role_id, role)| {
                        let gone: Vec<String> =
                            unwanted.intersection(&role.permissions).cloned().collect();
                        (!gone.is_empty()).then_some({
                            GroupEvent::RolePermissionsRemoved(GroupRolePermissionsRemoved {
                                role_id,
                                permissions: gone,
                            })
                        })
                    })
                    .collect())
            }
            GroupCommand::DeleteRoles { role_ids } => Ok(self
                .existing(role_ids)
                .map(|(role_id, _)| GroupEvent::RoleDeleted(GroupRoleDeleted { role_id }))
                .collect()),
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            GroupEvent::RoleCreated(e) => {
                self.roles.insert(
                    e.role_id,
                    GroupRole {
                        name: e.name.clone(),
                        description: e.description.clone(),
                        permissions: BTreeSet::new(),
                    },
                );
            }
            GroupEvent::RoleUpdated(e) => {
                if let Some(role) = self.roles.get_mut(&e.role_id) {
                    if let Some(name) = &e.name {
                        role.name = name.clone();
                    }
                    if let Some(description) = &e.description {
                        role.description = description.clone();
                    }
                }
            }
            GroupEvent::RolePermissionsAdded(e) => {
                if let Some(role) = self.roles.get_mut(&e.role_id) {
                    role.permissions.extend(e.permissions.iter().cloned());
                }
            }
            GroupEvent::RolePermissionsRemoved(e) => {
                if let Some(role) = self.roles.get_mut(&e.role_id) {
                    for permission in &e.permissions {
                        role.permissions.remove(permission);
                    }
                }
            }
            GroupEvent::RoleDeleted(e) => {
                self.roles.remove(&e.role_id);
                self.deleted_roles.insert(e.role_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Rights, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;
    use proptest::prelude::*;

    fn created(n: u8) -> GroupEvent {
        GroupEvent::RoleCreated(GroupRoleCreated {
            role_id: id(n),
            name: format!("Role {n}"),
            description: String::new(),
        })
    }

    fn granted(n: u8, permissions: &[&str]) -> GroupEvent {
        GroupEvent::RolePermissionsAdded(GroupRolePermissionsAdded {
            role_id: id(n),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    /// A user who is staff of group `id(1)` with `permissions` there, and nothing globally.
    fn staff_of_group_1(permissions: &[&str]) -> Actor {
        let rights = Rights {
            staff: [(id(1), permissions.iter().map(|p| (*p).to_owned()).collect())].into(),
            ..Rights::default()
        };
        Actor::user(id(7), None, rights, Via::Http, None)
    }

    #[test]
    fn a_role_is_created_with_a_trimmed_name() {
        given::<Group>(&[])
            .when(GroupCommand::CreateRole {
                role_id: id(2),
                name: " Role 2 ".into(),
                description: String::new(),
            })
            .then(&[created(2)]);
    }

    #[test]
    fn a_deleted_role_id_is_never_reused() {
        given::<Group>(&[
            created(2),
            GroupEvent::RoleDeleted(GroupRoleDeleted { role_id: id(2) }),
        ])
        .when(GroupCommand::CreateRole {
            role_id: id(2),
            name: "Again".into(),
            description: String::new(),
        })
        .then_err(GroupError::AlreadyExists);
    }

    #[test]
    fn permissions_are_added_to_each_selected_role_that_lacks_them() {
        given::<Group>(&[created(2), created(3), granted(2, &["REMOVE_PATIENT"])])
            .when(GroupCommand::AddPermissions {
                role_ids: vec![id(3), id(2), id(9)],
                permissions: vec!["REMOVE_PATIENT".into(), " ".into()],
            })
            .then(&[granted(3, &["REMOVE_PATIENT"])]);
    }

    #[test]
    fn only_held_permissions_are_removed() {
        given::<Group>(&[created(2), granted(2, &["A", "B"])])
            .when(GroupCommand::RemovePermissions {
                role_ids: vec![id(2)],
                permissions: vec!["B".into(), "C".into()],
            })
            .then(&[GroupEvent::RolePermissionsRemoved(
                GroupRolePermissionsRemoved {
                    role_id: id(2),
                    permissions: vec!["B".into()],
                },
            )]);
    }

    #[test]
    fn deleting_skips_unknown_roles() {
        given::<Group>(&[created(2)])
            .when(GroupCommand::DeleteRoles {
                role_ids: vec![id(2), id(3)],
            })
            .then(&[GroupEvent::RoleDeleted(GroupRoleDeleted { role_id: id(2) })]);
    }

    #[test]
    fn an_update_of_a_missing_role_is_refused() {
        given::<Group>(&[])
            .when(GroupCommand::UpdateRole {
                role_id: id(2),
                name: Some("x".into()),
                description: None,
            })
            .then_err(GroupError::RoleNotFound);
    }

    #[test]
    fn staff_act_on_their_own_group_with_a_group_permission() {
        let staff = staff_of_group_1(&["CREATE_GROUP_ROLE"]);
        given::<Group>(&[])
            .by(staff.clone())
            .on(id(1))
            .when(GroupCommand::CreateRole {
                role_id: id(2),
                name: "Role 2".into(),
                description: String::new(),
            })
            .then(&[created(2)]);
        given::<Group>(&[])
            .by(staff)
            .on(id(5))
            .when(GroupCommand::CreateRole {
                role_id: id(2),
                name: "Role 2".into(),
                description: String::new(),
            })
            .then_err(GroupError::NoPermission("CREATE_GROUP_ROLE"));
    }

    #[test]
    fn a_global_permission_covers_every_group() {
        let admin = Actor::user(
            id(7),
            None,
            Permissions::from_iter(["DELETE_GROUP_ROLE".to_owned()]),
            Via::Http,
            None,
        );
        given::<Group>(&[created(2)])
            .by(admin)
            .on(id(5))
            .when(GroupCommand::DeleteRoles {
                role_ids: vec![id(2)],
            })
            .then(&[GroupEvent::RoleDeleted(GroupRoleDeleted { role_id: id(2) })]);
    }

    proptest! {
        /// A group role takes only known permissions that mean something in a group.
        #[test]
        fn a_group_role_refuses_unknown_and_global_only_permissions(name in "[A-Z_]{1,30}") {
            let add = |permission: &str| GroupCommand::AddPermissions {
                role_ids: vec![id(2)],
                permissions: vec![permission.to_owned()],
            };
            let known = crate::permission::CATALOGUE.iter().find(|(entry, _)| *entry == name);
            let decided = given::<Group>(&[created(2)]).when(add(&name)).events_or_error();
            match known {
                Some((_, true)) => prop_assert!(decided.is_ok()),
                Some((_, false)) => prop_assert_eq!(decided, Err(GroupError::NotGrantable(NotGrantable::GlobalOnly(name.clone())))),
                None => prop_assert_eq!(decided, Err(GroupError::NotGrantable(NotGrantable::Unknown(name.clone())))),
            }
        }

        /// Whatever is added and removed, a role holds exactly what its history says.
        #[test]
        fn permissions_follow_their_history(
            steps in proptest::collection::vec((any::<bool>(), prop::sample::select(&["ADD_STAFF", "REMOVE_STAFF", "VIEW_DOCUMENTS:notes"][..])), 0..20)
        ) {
            let mut history = vec![created(2)];
            let mut expected = BTreeSet::new();
            for (add, permission) in steps {
                let state = Group::fold(&history);
                let permission = permission.to_owned();
                let command = if add {
                    GroupCommand::AddPermissions { role_ids: vec![id(2)], permissions: vec![permission.clone()] }
                } else {
                    GroupCommand::RemovePermissions { role_ids: vec![id(2)], permissions: vec![permission.clone()] }
                };
                let ctx_actor = Actor::system(Via::Cli);
                let stream = crate::id::StreamId::of(Group::KIND, id(1));
                let ctx = Ctx { now: crate::aggregate::testing::NOW, actor: &ctx_actor, stream: &stream };
                history.extend(state.handle(&command, &ctx).unwrap());
                if add { expected.insert(permission); } else { expected.remove(&permission); }
            }
            prop_assert_eq!(&Group::fold(&history).roles[&id(2)].permissions, &expected);
        }
    }
}
