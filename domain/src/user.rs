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

/// A change to an optional field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Optional<T> {
    Set(T),
    Cleared,
}

/// Profile fields changed; absent fields are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserUpdated {
    pub first_name: Option<Personal<String>>,
    pub last_name: Option<Personal<String>>,
    pub phone_number: Option<Optional<Personal<String>>>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
}

/// The user changed their password (Extra Horizon's `password_update_completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PasswordChanged {
    pub password_hash: PasswordHash,
}

/// The account is gone (Extra Horizon's `user_deleted`): every login of it ends with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserDeleted {}

events! {
    pub enum UserEvent {
        Registered(UserRegistered) = "user.registered",
        RolesAdded(UserRolesAdded) = "user.roles_added",
        RolesRemoved(UserRolesRemoved) = "user.roles_removed",
        Updated(UserUpdated) = "user.updated",
        PasswordChanged(PasswordChanged) = "user.password_changed",
        Deleted(UserDeleted) = "user.deleted",
    }
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `Some(None)` removes the phone number.
    pub phone_number: Option<Option<String>>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
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
    AddRoles {
        role_ids: Vec<Id>,
    },
    RemoveRoles {
        role_ids: Vec<Id>,
    },
    Update(ProfileChanges),
    /// A new password, hashed, after the command layer verified the old one.
    ChangePassword {
        password_hash: PasswordHash,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("this user already exists")]
    AlreadyRegistered,
    #[error("user not found")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("{0}")]
    InvalidField(String),
    #[error("the password is incorrect")]
    WrongPassword,
    #[error("{0}")]
    WeakPassword(String),
}

impl DomainError for UserError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyRegistered => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::InvalidField(_) => ExhCode::FieldFormat,
            Self::WrongPassword | Self::WeakPassword(_) => ExhCode::Password,
        }
    }
}

/// A name: trimmed, 1 to 100 characters.
fn name(field: &str, value: &str) -> Result<Personal<String>, UserError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 {
        return Err(UserError::InvalidField(format!(
            "{field} must be 1 to 100 characters"
        )));
    }
    Ok(Personal(value.to_owned()))
}

/// An ISO 639-1 language code, upper-cased (`en` → `EN`).
pub fn language(value: &str) -> Result<String, UserError> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(UserError::InvalidField(
            "language must be a two-letter ISO 639-1 code".into(),
        ))
    }
}

/// A time zone name (`Europe/Brussels`, `UTC`): letters, digits and `/_+-`, at most 64 characters.
pub fn time_zone(value: &str) -> Result<String, UserError> {
    let value = value.trim();
    let plausible = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if plausible {
        Ok(value.to_owned())
    } else {
        Err(UserError::InvalidField(
            "time_zone must be a time zone name such as Europe/Brussels".into(),
        ))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub registered: bool,
    pub deleted: bool,
    pub email: Option<Email>,
    pub password_hash: Option<PasswordHash>,
    pub activated: bool,
    pub role_ids: BTreeSet<Id>,
}

/// Whether the actor is the user whose stream this is.
fn self_service(ctx: &Ctx<'_>) -> bool {
    ctx.stream.id().is_some_and(|id| ctx.actor.is_user(id))
}

impl User {
    /// Whether the account exists and may log in.
    pub fn active(&self) -> bool {
        self.registered && !self.deleted
    }
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
            // Users change their own profile and password, and may delete their own account.
            UserCommand::ChangePassword { .. } if self_service(ctx) => return Ok(()),
            UserCommand::ChangePassword { .. } => {
                return Err(UserError::NoPermission("UPDATE_USER"));
            }
            UserCommand::Update(_) if self_service(ctx) => return Ok(()),
            UserCommand::Update(_) => "UPDATE_USER",
            UserCommand::Delete if self_service(ctx) => return Ok(()),
            UserCommand::Delete => "DELETE_USER",
        };
        ctx.actor.require(required, UserError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if !matches!(command, UserCommand::Register(_)) && (!self.registered || self.deleted) {
            return Err(UserError::NotFound);
        }
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
            UserCommand::Update(changes) => {
                let update = UserUpdated {
                    first_name: changes
                        .first_name
                        .as_deref()
                        .map(|v| name("first_name", v))
                        .transpose()?,
                    last_name: changes
                        .last_name
                        .as_deref()
                        .map(|v| name("last_name", v))
                        .transpose()?,
                    phone_number: changes.phone_number.clone().map(|phone| {
                        match phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
                            Some(phone) => Optional::Set(Personal(phone)),
                            None => Optional::Cleared,
                        }
                    }),
                    language: changes.language.as_deref().map(language).transpose()?,
                    time_zone: changes.time_zone.as_deref().map(time_zone).transpose()?,
                };
                let nothing = update.first_name.is_none()
                    && update.last_name.is_none()
                    && update.phone_number.is_none()
                    && update.language.is_none()
                    && update.time_zone.is_none();
                if nothing {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::Updated(update)])
            }
            UserCommand::ChangePassword { password_hash } => {
                Ok(vec![UserEvent::PasswordChanged(PasswordChanged {
                    password_hash: password_hash.clone(),
                })])
            }
            UserCommand::Delete => Ok(vec![UserEvent::Deleted(UserDeleted {})]),
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
            UserEvent::Updated(_) => {}
            UserEvent::PasswordChanged(e) => self.password_hash = Some(e.password_hash.clone()),
            UserEvent::Deleted(_) => {
                self.deleted = true;
                self.password_hash = None;
                self.role_ids.clear();
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
    fn users_change_their_own_profile_and_others_need_a_permission() {
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        let changes = ProfileChanges {
            first_name: Some(" Janet ".into()),
            phone_number: Some(None),
            language: Some("fr".into()),
            ..ProfileChanges::default()
        };
        given::<User>(&[registered()])
            .by(me)
            .when(UserCommand::Update(changes.clone()))
            .then(&[UserEvent::Updated(UserUpdated {
                first_name: Some(Personal("Janet".into())),
                last_name: None,
                phone_number: Some(Optional::Cleared),
                language: Some("FR".into()),
                time_zone: None,
            })]);
        let other = Actor::user(id(9), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered()])
            .by(other)
            .when(UserCommand::Update(changes))
            .then_err(UserError::NoPermission("UPDATE_USER"));
    }

    #[test]
    fn profile_fields_are_validated() {
        let bad = ProfileChanges {
            language: Some("english".into()),
            ..ProfileChanges::default()
        };
        given::<User>(&[registered()])
            .when(UserCommand::Update(bad))
            .then_err(UserError::InvalidField(
                "language must be a two-letter ISO 639-1 code".into(),
            ));
    }

    #[test]
    fn only_the_user_changes_their_password() {
        let hash = PasswordHash("new".into());
        let admin = Actor::user(id(9), None, Permissions::all(), Via::Http, None);
        given::<User>(&[registered()])
            .by(admin)
            .when(UserCommand::ChangePassword {
                password_hash: hash.clone(),
            })
            .then_err(UserError::NoPermission("UPDATE_USER"));
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered()])
            .by(me)
            .when(UserCommand::ChangePassword {
                password_hash: hash.clone(),
            })
            .then(&[UserEvent::PasswordChanged(PasswordChanged {
                password_hash: hash,
            })]);
    }

    #[test]
    fn a_deleted_user_is_gone_for_every_command() {
        let deleted = UserEvent::Deleted(UserDeleted {});
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered()])
            .by(me)
            .when(UserCommand::Delete)
            .then(std::slice::from_ref(&deleted));
        let state = User::fold(&[registered(), deleted.clone()]);
        assert!(!state.active() && state.password_hash.is_none());
        given::<User>(&[registered(), deleted])
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
                    UserEvent::Deleted(_) => expected.clear(),
                    UserEvent::Registered(_)
                    | UserEvent::Updated(_)
                    | UserEvent::PasswordChanged(_) => {}
                }
            }
            prop_assert_eq!(state.role_ids, expected);
        }
    }
}
