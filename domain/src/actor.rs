//! Who issues a command: the authenticated actor, and the part of it recorded in every commit.

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

/// An authenticated actor with the rights it holds at the moment of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    record: ActorRecord,
    permissions: Arc<Permissions>,
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
            permissions: Arc::default(),
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
            permissions: Arc::default(),
            system: false,
        }
    }

    /// A user, acting through an application, with their global permissions.
    pub fn user(
        user_id: Id,
        application_id: Option<Id>,
        permissions: impl Into<Arc<Permissions>>,
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
            permissions: permissions.into(),
            system: false,
        }
    }

    pub fn record(&self) -> &ActorRecord {
        &self.record
    }

    pub fn is_system(&self) -> bool {
        self.system
    }

    /// Whether the actor holds `permission` (Vigil itself holds every one).
    pub fn allows(&self, permission: &str) -> bool {
        self.system || self.permissions.allows(permission)
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
