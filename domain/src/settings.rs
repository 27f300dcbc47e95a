//! Deployment-wide settings of the user service, in one stream (`settings-users`): the password
//! policy every new password must meet.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::StreamId;
use crate::password::PasswordPolicy;

/// The longest password a policy may ask for.
pub const LONGEST_PASSWORD: usize = 256;

/// The settings stream.
pub fn stream() -> StreamId {
    StreamId::from_trusted_parts(Settings::KIND, "users".into())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PasswordPolicySet {
    pub policy: PasswordPolicy,
}

events! {
    pub enum SettingsEvent {
        PasswordPolicySet(PasswordPolicySet) = "settings.password_policy_set",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsCommand {
    SetPasswordPolicy(PasswordPolicy),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("a password policy needs 1 <= minimum_length <= maximum_length <= {LONGEST_PASSWORD}")]
    InvalidPolicy,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for SettingsError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::InvalidPolicy => ExhCode::FieldFormat,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub password_policy: PasswordPolicy,
}

impl Aggregate for Settings {
    const KIND: &'static str = "settings";
    type Command = SettingsCommand;
    type Event = SettingsEvent;
    type Error = SettingsError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            SettingsCommand::SetPasswordPolicy(_) => "UPDATE_PASSWORD_POLICY",
        };
        ctx.actor.require(required, SettingsError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            SettingsCommand::SetPasswordPolicy(policy) => {
                let bounded = 1 <= policy.minimum_length
                    && policy.minimum_length <= policy.maximum_length
                    && policy.maximum_length <= LONGEST_PASSWORD;
                if !bounded {
                    return Err(SettingsError::InvalidPolicy);
                }
                if *policy == self.password_policy {
                    return Ok(vec![]);
                }
                Ok(vec![SettingsEvent::PasswordPolicySet(PasswordPolicySet {
                    policy: *policy,
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            SettingsEvent::PasswordPolicySet(e) => self.password_policy = e.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn stricter() -> PasswordPolicy {
        PasswordPolicy {
            minimum_length: 12,
            number_required: true,
            ..PasswordPolicy::default()
        }
    }

    #[test]
    fn a_policy_is_set_once_and_only_by_its_permission() {
        let set = SettingsEvent::PasswordPolicySet(PasswordPolicySet { policy: stricter() });
        given::<Settings>(&[])
            .when(SettingsCommand::SetPasswordPolicy(stricter()))
            .then(std::slice::from_ref(&set));
        given::<Settings>(&[set])
            .when(SettingsCommand::SetPasswordPolicy(stricter()))
            .then(&[]);
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Settings>(&[])
            .by(nobody)
            .when(SettingsCommand::SetPasswordPolicy(stricter()))
            .then_err(SettingsError::NoPermission("UPDATE_PASSWORD_POLICY"));
    }

    #[test]
    fn a_policy_must_be_satisfiable() {
        let impossible = PasswordPolicy {
            minimum_length: 20,
            maximum_length: 10,
            ..PasswordPolicy::default()
        };
        given::<Settings>(&[])
            .when(SettingsCommand::SetPasswordPolicy(impossible))
            .then_err(SettingsError::InvalidPolicy);
    }
}
