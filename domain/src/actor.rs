//! Who issues a command: the authenticated actor, and the part of it recorded in every commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::permission::Permissions;

/// The channel a command arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Http,
    Grpc,
    Scheduler,
    /// The `vigil` command line (bootstrap, maintenance).
    Cli,
}

/// The actor as recorded in the audit trail (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ActorRecord {
    pub user_id: Option<Id>,
    pub application_id: Option<Id>,
    pub via: Via,
    pub client_ip: Option<String>,
}

/// What a user may do: their global permissions, and their place in groups.
///
/// Extra Horizon has no group object: a group is an id that staff and patients are enlisted in.
/// A staff member holds, inside that group only, the permissions of the group roles they were
/// given ("staff enlistment" scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    pub global: Permissions,
    /// Every group the user is staff of, with the permissions their group roles give there.
    pub staff: BTreeMap<Id, Permissions>,
    /// Every group the user is a patient of.
    pub patient: BTreeSet<Id>,
}

impl From<Permissions> for Rights {
    fn from(global: Permissions) -> Self {
        Self {
            global,
            ..Self::default()
        }
    }
}

impl From<Permissions> for Arc<Rights> {
    fn from(global: Permissions) -> Self {
        Arc::new(global.into())
    }
}

/// An authenticated actor with the rights it holds at the moment of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    record: ActorRecord,
    rights: Arc<Rights>,
    system: bool,
}

impl Actor {
    /// Vigil itself (bootstrap, reactions): every right, no user.
    pub fn system(via: Via) -> Self {
        Self {
            record: ActorRecord {
                user_id: None,
                application_id: None,
                via,
                client_ip: None,
            },
            rights: Arc::default(),
            system: true,
        }
    }

    /// A caller that has not proven to be a user (public endpoints, logins in progress).
    pub fn anonymous(application_id: Option<Id>, via: Via, client_ip: Option<String>) -> Self {
        Self {
            record: ActorRecord {
                user_id: None,
                application_id,
                via,
                client_ip,
            },
            rights: Arc::default(),
            system: false,
        }
    }

    /// A user, acting through an application, with their rights.
    pub fn user(
        user_id: Id,
        application_id: Option<Id>,
        rights: impl Into<Arc<Rights>>,
        via: Via,
        client_ip: Option<String>,
    ) -> Self {
        Self {
            record: ActorRecord {
                user_id: Some(user_id),
                application_id,
                via,
                client_ip,
            },
            rights: rights.into(),
            system: false,
        }
    }

    pub fn record(&self) -> &ActorRecord {
        &self.record
    }

    pub fn is_system(&self) -> bool {
        self.system
    }

    /// Whether the actor holds `permission` globally (Vigil itself holds every one).
    pub fn allows(&self, permission: &str) -> bool {
        self.system || self.rights.global.allows(permission)
    }

    /// Whether the actor holds `permission` for `group`: globally, or through the group roles of
    /// their staff enlistment there.
    pub fn allows_in(&self, group: Id, permission: &str) -> bool {
        self.allows(permission)
            || self
                .rights
                .staff
                .get(&group)
                .is_some_and(|granted| granted.allows(permission))
    }

    /// `Ok` if the actor holds `permission` for `group`, else the error `missing` makes of it.
    pub fn require_in<E>(
        &self,
        group: Id,
        permission: &'static str,
        missing: impl FnOnce(&'static str) -> E,
    ) -> Result<(), E> {
        if self.allows_in(group, permission) {
            Ok(())
        } else {
            Err(missing(permission))
        }
    }

    /// Whether the actor is enlisted as staff in `group`.
    pub fn is_staff_of(&self, group: Id) -> bool {
        self.rights.staff.contains_key(&group)
    }

    /// The groups the actor is staff of.
    pub fn staff_groups(&self) -> impl Iterator<Item = Id> + '_ {
        self.rights.staff.keys().copied()
    }

    /// The groups the actor is a patient of.
    pub fn patient_groups(&self) -> impl Iterator<Item = Id> + '_ {
        self.rights.patient.iter().copied()
    }

    /// `Ok` if the actor holds `permission`, else the error `missing` makes of its name.
    pub fn require<E>(
        &self,
        permission: &'static str,
        missing: impl FnOnce(&'static str) -> E,
    ) -> Result<(), E> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(missing(permission))
        }
    }

    /// Whether the actor is the user `id`.
    pub fn is_user(&self, id: Id) -> bool {
        self.record.user_id == Some(id)
    }
}
