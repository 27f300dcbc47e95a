//! Users: the people who log in. One stream per user (`user-<id>`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::value::{Email, Personal};

/// An Argon2id hash in PHC string form. Passwords never enter the log, only this.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserRegistered {
    /// Normalised (trimmed, lower-case).
    pub email: Personal<String>,
    pub first_name: Personal<String>,
    pub last_name: Personal<String>,
    pub phone_number: Option<Personal<String>>,
    /// ISO 639-1 upper-case, e.g. `EN`.
    pub language: String,
    /// A tz database zone, e.g. `Europe/Brussels`.
    pub time_zone: String,
    pub password_hash: PasswordHash,
    pub activated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserRolesAdded {
    pub role_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserRolesRemoved {
    pub role_ids: Vec<Id>,
}

events! {
    pub enum UserEvent {
        Registered(UserRegistered) = "user.registered",
        RolesAdded(UserRolesAdded) = "user.roles_added",
        RolesRemoved(UserRolesRemoved) = "user.roles_removed",
    }
}

/// What a registration carries once the command layer has validated it and hashed the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub language: String,
    pub time_zone: String,
    pub password_hash: PasswordHash,
    /// Registered as already activated (bootstrap, manual activation by an administrator).
    pub activated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    Register(Registration),
    AddRoles { role_ids: Vec<Id> },
    RemoveRoles { role_ids: Vec<Id> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("this user already exists")]
    AlreadyRegistered,
    #[error("user not found")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for UserError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyRegistered => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub registered: bool,
    pub email: Option<Email>,
    pub password_hash: Option<PasswordHash>,
    pub activated: bool,
    pub role_ids: BTreeSet<Id>,
}

impl Aggregate for User {
    const KIND: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            // Registration is public; registering someone as already activated is not.
            UserCommand::Register(registration) if !registration.activated => return Ok(()),
            UserCommand::Register(_) => "UPDATE_USER",
            UserCommand::AddRoles { .. } => "ADD_ROLE_TO_USER",
            UserCommand::RemoveRoles { .. } => "REMOVE_ROLE_FROM_USER",
        };
        ctx.actor.require(required, UserError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            UserCommand::Register(r) => {
                if self.registered {
                    return Err(UserError::AlreadyRegistered);
                }
                Ok(vec![UserEvent::Registered(UserRegistered {
                    email: Personal(r.email.as_str().to_owned()),
                    first_name: Personal(r.first_name.clone()),
                    last_name: Personal(r.last_name.clone()),
                    phone_number: r.phone_number.clone().map(Personal),
                    language: r.language.clone(),
                    time_zone: r.time_zone.clone(),
                    password_hash: r.password_hash.clone(),
                    activated: r.activated,
                })])
            }
            UserCommand::AddRoles { role_ids } => {
                if !self.registered {
                    return Err(UserError::NotFound);
                }
                let new: Vec<Id> = role_ids
                    .iter()
                    .filter(|id| !self.role_ids.contains(id))
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if new.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::RolesAdded(UserRolesAdded {
                    role_ids: new,
                })])
            }
            UserCommand::RemoveRoles { role_ids } => {
                if !self.registered {
                    return Err(UserError::NotFound);
                }
                let held: BTreeSet<Id> = role_ids
                    .iter()
                    .filter(|id| self.role_ids.contains(id))
                    .copied()
                    .collect();
                if held.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::RolesRemoved(UserRolesRemoved {
                    role_ids: held.into_iter().collect(),
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            UserEvent::Registered(e) => {
                self.registered = true;
                self.email = Email::parse(e.email.get()).ok();
                self.password_hash = Some(e.password_hash.clone());
                self.activated = e.activated;
            }
            UserEvent::RolesAdded(e) => self.role_ids.extend(e.role_ids.iter().copied()),
            UserEvent::RolesRemoved(e) => {
                for role in &e.role_ids {
                    self.role_ids.remove(role);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;
    use proptest::prelude::*;

    fn registration(activated: bool) -> Registration {
        Registration {
            email: Email::parse("jane@example.com").unwrap(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone_number: None,
            language: "EN".into(),
            time_zone: "Europe/Brussels".into(),
            password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            activated,
        }
    }

    fn registered() -> UserEvent {
        match given::<User>(&[])
            .when(UserCommand::Register(registration(false)))
            .events()
            .pop()
        {
            Some(event) => event,
            None => panic!("registration decided nothing"),
        }
    }

    fn nobody() -> Actor {
        Actor::anonymous(None, Via::Http, None)
    }

    #[test]
    fn anyone_may_register_an_inactive_account() {
        given::<User>(&[])
            .by(nobody())
            .when(UserCommand::Register(registration(false)))
            .then(&[registered()]);
    }

    #[test]
    fn registering_an_activated_account_needs_a_permission() {
        given::<User>(&[])
            .by(nobody())
            .when(UserCommand::Register(registration(true)))
            .then_err(UserError::NoPermission("UPDATE_USER"));
    }

    #[test]
    fn a_user_is_registered_once() {
        given::<User>(&[registered()])
            .when(UserCommand::Register(registration(false)))
            .then_err(UserError::AlreadyRegistered);
    }

    #[test]
    fn roles_are_added_once_each() {
        let added = UserEvent::RolesAdded(UserRolesAdded {
            role_ids: vec![id(1)],
        });
        given::<User>(&[registered(), added])
            .when(UserCommand::AddRoles {
                role_ids: vec![id(2), id(1), id(2)],
            })
            .then(&[UserEvent::RolesAdded(UserRolesAdded {
                role_ids: vec![id(2)],
            })]);
    }

    #[test]
    fn adding_roles_needs_the_permission() {
        let caller = Actor::user(id(7), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered()])
            .by(caller)
            .when(UserCommand::AddRoles {
                role_ids: vec![id(1)],
            })
            .then_err(UserError::NoPermission("ADD_ROLE_TO_USER"));
    }

    #[test]
    fn roles_cannot_be_added_to_a_user_that_does_not_exist() {
        given::<User>(&[])
            .when(UserCommand::AddRoles {
                role_ids: vec![id(1)],
            })
            .then_err(UserError::NotFound);
    }

    #[test]
    fn only_held_roles_are_removed() {
        let added = UserEvent::RolesAdded(UserRolesAdded {
            role_ids: vec![id(1), id(2)],
        });
        given::<User>(&[registered(), added])
            .when(UserCommand::RemoveRoles {
                role_ids: vec![id(3), id(2)],
            })
            .then(&[UserEvent::RolesRemoved(UserRolesRemoved {
                role_ids: vec![id(2)],
            })]);
    }

    proptest! {
        #[test]
        fn roles_held_are_those_added_and_not_removed_since(events: Vec<UserEvent>) {
            let state = User::fold(&events);
            let mut expected = BTreeSet::new();
            for event in &events {
                match event {
                    UserEvent::RolesAdded(r) => expected.extend(r.role_ids.iter().copied()),
                    UserEvent::RolesRemoved(r) => {
                        for role in &r.role_ids {
                            expected.remove(role);
                        }
                    }
                    UserEvent::Registered(_) => {}
                }
            }
            prop_assert_eq!(state.role_ids, expected);
        }
    }
}
