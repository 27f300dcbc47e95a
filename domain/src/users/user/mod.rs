//! Users: the people who log in. One stream per user (`user-<id>`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::users::verification::{
    CodeRequested, Mode, Proof, Purpose, Verification, VerificationCleared, VerificationCodeIssued,
    VerificationError, VerificationMailSent, VerificationPinFailed, VerificationRequested,
};
use crate::value::{Email, Personal, Timestamp};

mod aggregate;
mod commands;
mod decide;
mod error;
mod events;
mod fields;
#[cfg(test)]
mod tests;

pub use commands::*;
pub use error::*;
pub use events::*;
pub use fields::*;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub registered: bool,
    pub deleted: bool,
    pub email: Option<Email>,
    pub password_hash: Option<PasswordHash>,
    pub activated: bool,
    pub role_ids: BTreeSet<Id>,
    /// For mails: how to greet the user, and in which language.
    pub first_name: Option<Personal<String>>,
    pub last_name: Option<Personal<String>>,
    pub language: Option<String>,
    pub activation: Verification,
    pub reset: Verification,
    pub profile_image: Option<String>,
    /// Staff enlistments: group → the group roles held there.
    pub staff: BTreeMap<Id, BTreeSet<Id>>,
    /// Patient enlistments: group → when it expires, if it does.
    pub patient: BTreeMap<Id, Option<Timestamp>>,
    /// OIDC providers the user logs in through → the subject there.
    pub oidc_links: BTreeMap<Id, String>,
    /// The password-reset request made by unlinking the user from OIDC, if it is the current one.
    pub unlink_request: Option<Id>,
}

impl User {
    pub fn verification(&self, purpose: Purpose) -> &Verification {
        match purpose {
            Purpose::Activation => &self.activation,
            Purpose::PasswordReset => &self.reset,
        }
    }

    fn verification_mut(&mut self, purpose: Purpose) -> &mut Verification {
        match purpose {
            Purpose::Activation => &mut self.activation,
            Purpose::PasswordReset => &mut self.reset,
        }
    }
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
