//! Deployment-wide settings of the user service, in one stream (`settings-users`): the password
//! policy every new password must meet, how email addresses are verified, and which templates the
//! service's mails are to be made from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::StreamId;
use crate::password::PasswordPolicy;
use crate::permission::UPDATE_LOCKOUT_POLICY;
use crate::users::login::LockoutPolicy;
use crate::users::verification::Purpose;

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

/// Whether activation and password-reset codes may be mailed as pin codes, and whether the
/// limits on initiations apply to hashes (deprecated by Extra Horizon, kept for its clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationSettings {
    pub enable_pin_code_activation_requests: bool,
    pub enable_pin_code_forgot_password_requests: bool,
    pub limit_hash_activation_requests: bool,
    pub limit_hash_forgot_password_requests: bool,
}

impl Default for VerificationSettings {
    /// Hashes only, limited.
    fn default() -> Self {
        Self {
            enable_pin_code_activation_requests: false,
            enable_pin_code_forgot_password_requests: false,
            limit_hash_activation_requests: true,
            limit_hash_forgot_password_requests: true,
        }
    }
}

impl VerificationSettings {
    /// Whether pin codes may be mailed for `purpose`.
    pub fn pin_codes_enabled(&self, purpose: Purpose) -> bool {
        match purpose {
            Purpose::Activation => self.enable_pin_code_activation_requests,
            Purpose::PasswordReset => self.enable_pin_code_forgot_password_requests,
        }
    }

    /// Whether the limits on initiations apply to hashes for `purpose`.
    pub fn hashes_limited(&self, purpose: Purpose) -> bool {
        match purpose {
            Purpose::Activation => self.limit_hash_activation_requests,
            Purpose::PasswordReset => self.limit_hash_forgot_password_requests,
        }
    }
}

/// A partial update of the verification settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerificationChanges {
    pub enable_pin_code_activation_requests: Option<bool>,
    pub enable_pin_code_forgot_password_requests: Option<bool>,
    pub limit_hash_activation_requests: Option<bool>,
    pub limit_hash_forgot_password_requests: Option<bool>,
}

impl VerificationChanges {
    fn applied_to(self, current: VerificationSettings) -> VerificationSettings {
        VerificationSettings {
            enable_pin_code_activation_requests: self
                .enable_pin_code_activation_requests
                .unwrap_or(current.enable_pin_code_activation_requests),
            enable_pin_code_forgot_password_requests: self
                .enable_pin_code_forgot_password_requests
                .unwrap_or(current.enable_pin_code_forgot_password_requests),
            limit_hash_activation_requests: self
                .limit_hash_activation_requests
                .unwrap_or(current.limit_hash_activation_requests),
            limit_hash_forgot_password_requests: self
                .limit_hash_forgot_password_requests
                .unwrap_or(current.limit_hash_forgot_password_requests),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VerificationSettingsSet {
    pub settings: VerificationSettings,
}

/// A mail of the user service that may be made from a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum TemplateSlot {
    Activation,
    Reactivation,
    PasswordReset,
    OidcUnlink,
    ActivationPin,
    ReactivationPin,
    PasswordResetPin,
    OidcUnlinkPin,
}

impl TemplateSlot {
    pub const ALL: [Self; 8] = [
        Self::Activation,
        Self::Reactivation,
        Self::PasswordReset,
        Self::OidcUnlink,
        Self::ActivationPin,
        Self::ReactivationPin,
        Self::PasswordResetPin,
        Self::OidcUnlinkPin,
    ];

    /// The wire prefix of the slot's fields (`activation` in `activation_email_template_name`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::Reactivation => "reactivation",
            Self::PasswordReset => "password_reset",
            Self::OidcUnlink => "oidc_unlink",
            Self::ActivationPin => "activation_pin",
            Self::ReactivationPin => "reactivation_pin",
            Self::PasswordResetPin => "password_reset_pin",
            Self::OidcUnlinkPin => "oidc_unlink_pin",
        }
    }
}

/// A template, by id (deprecated by Extra Horizon) or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum TemplateRef {
    Id(String),
    Name(String),
}

/// The templates configured for the user service's mails (all of them, after a change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EmailTemplatesSet {
    pub templates: Vec<(TemplateSlot, TemplateRef)>,
}

events! {
    pub enum SettingsEvent {
        PasswordPolicySet(PasswordPolicySet) = "settings.password_policy_set",
        VerificationSettingsSet(VerificationSettingsSet) = "settings.verification_set",
        EmailTemplatesSet(EmailTemplatesSet) = "settings.email_templates_set",
        LockoutPolicySet(LockoutPolicySet) = "settings.lockout_policy_set",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsCommand {
    SetPasswordPolicy(PasswordPolicy),
    ChangeVerification(VerificationChanges),
    /// Set (`Some`) or clear (`None`) the template of each slot given; others stay.
    ChangeEmailTemplates(Vec<(TemplateSlot, Option<TemplateRef>)>),
    SetLockoutPolicy(LockoutPolicy),
}

/// The deployment's lockout policy (see [`LockoutPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LockoutPolicySet {
    pub policy: LockoutPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("a password policy needs 1 <= minimum_length <= maximum_length <= {LONGEST_PASSWORD}")]
    InvalidPolicy,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("{0}")]
    InvalidTemplate(String),
    #[error(
        "a lockout policy locks after at least one failure, for 1 ms to a year or until a reset"
    )]
    InvalidLockout,
}

impl DomainError for SettingsError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::InvalidPolicy => ExhCode::FieldFormat,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::InvalidTemplate(_) | Self::InvalidLockout => ExhCode::FieldFormat,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub password_policy: PasswordPolicy,
    pub verification: VerificationSettings,
    pub email_templates: BTreeMap<TemplateSlot, TemplateRef>,
    pub lockout: LockoutPolicy,
}

impl Aggregate for Settings {
    const KIND: &'static str = "settings";
    type Command = SettingsCommand;
    type Event = SettingsEvent;
    type Error = SettingsError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            SettingsCommand::SetPasswordPolicy(_) => "UPDATE_PASSWORD_POLICY",
            SettingsCommand::ChangeVerification(_) => "UPDATE_USER_VERIFICATION_SETTINGS",
            SettingsCommand::ChangeEmailTemplates(_) => "UPDATE_USER_SERVICE_EMAIL_TEMPLATES",
            SettingsCommand::SetLockoutPolicy(_) => UPDATE_LOCKOUT_POLICY,
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
            SettingsCommand::ChangeVerification(changes) => {
                let settings = changes.applied_to(self.verification);
                if settings == self.verification {
                    return Ok(vec![]);
                }
                Ok(vec![SettingsEvent::VerificationSettingsSet(
                    VerificationSettingsSet { settings },
                )])
            }
            SettingsCommand::ChangeEmailTemplates(changes) => {
                let mut templates = self.email_templates.clone();
                for (slot, template) in changes {
                    match template {
                        Some(template) => {
                            let (TemplateRef::Id(text) | TemplateRef::Name(text)) = template;
                            if text.trim().is_empty() || text.len() > 256 {
                                return Err(SettingsError::InvalidTemplate(format!(
                                    "the {} email template must be named by 1 to 256 characters",
                                    slot.prefix()
                                )));
                            }
                            templates.insert(*slot, template.clone());
                        }
                        None => {
                            templates.remove(slot);
                        }
                    }
                }
                if templates == self.email_templates {
                    return Ok(vec![]);
                }
                Ok(vec![SettingsEvent::EmailTemplatesSet(EmailTemplatesSet {
                    templates: templates.into_iter().collect(),
                })])
            }
            SettingsCommand::SetLockoutPolicy(policy) => {
                if !policy.is_sound() {
                    return Err(SettingsError::InvalidLockout);
                }
                if *policy == self.lockout {
                    return Ok(vec![]);
                }
                Ok(vec![SettingsEvent::LockoutPolicySet(LockoutPolicySet {
                    policy: *policy,
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            SettingsEvent::PasswordPolicySet(e) => self.password_policy = e.policy,
            SettingsEvent::VerificationSettingsSet(e) => self.verification = e.settings,
            SettingsEvent::EmailTemplatesSet(e) => {
                self.email_templates = e.templates.iter().cloned().collect();
            }
            SettingsEvent::LockoutPolicySet(e) => self.lockout = e.policy,
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
    fn a_lockout_policy_is_sound_and_set_by_its_permission_only() {
        let freeze = LockoutPolicy {
            after: 20,
            lasts_millis: Some(1_800_000),
        };
        let set = SettingsEvent::LockoutPolicySet(LockoutPolicySet { policy: freeze });
        given::<Settings>(&[])
            .when(SettingsCommand::SetLockoutPolicy(freeze))
            .then(std::slice::from_ref(&set));
        given::<Settings>(&[set])
            .when(SettingsCommand::SetLockoutPolicy(freeze))
            .then(&[]);
        for unsound in [
            LockoutPolicy {
                after: 0,
                lasts_millis: None,
            },
            LockoutPolicy {
                after: 5,
                lasts_millis: Some(0),
            },
            LockoutPolicy {
                after: 5,
                lasts_millis: Some(crate::users::login::LONGEST_LOCK_MILLIS + 1),
            },
        ] {
            given::<Settings>(&[])
                .when(SettingsCommand::SetLockoutPolicy(unsound))
                .then_err(SettingsError::InvalidLockout);
        }
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Settings>(&[])
            .by(nobody)
            .when(SettingsCommand::SetLockoutPolicy(freeze))
            .then_err(SettingsError::NoPermission(UPDATE_LOCKOUT_POLICY));
    }

    #[test]
    fn verification_settings_are_changed_by_their_permission_only() {
        let pins = VerificationSettings {
            enable_pin_code_forgot_password_requests: true,
            ..VerificationSettings::default()
        };
        let change = SettingsCommand::ChangeVerification(VerificationChanges {
            enable_pin_code_forgot_password_requests: Some(true),
            ..VerificationChanges::default()
        });
        let set =
            SettingsEvent::VerificationSettingsSet(VerificationSettingsSet { settings: pins });
        given::<Settings>(&[])
            .when(change.clone())
            .then(std::slice::from_ref(&set));
        given::<Settings>(&[set]).when(change.clone()).then(&[]);
        given::<Settings>(&[])
            .when(SettingsCommand::ChangeVerification(
                VerificationChanges::default(),
            ))
            .then(&[]);
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Settings>(&[])
            .by(nobody)
            .when(change)
            .then_err(SettingsError::NoPermission(
                "UPDATE_USER_VERIFICATION_SETTINGS",
            ));
        assert!(pins.pin_codes_enabled(Purpose::PasswordReset));
        assert!(!pins.pin_codes_enabled(Purpose::Activation));
    }

    #[test]
    fn email_templates_are_set_and_cleared_by_slot() {
        let by_name = |name: &str| TemplateRef::Name(name.into());
        let set = given::<Settings>(&[])
            .when(SettingsCommand::ChangeEmailTemplates(vec![
                (TemplateSlot::Activation, Some(by_name("welcome"))),
                (TemplateSlot::PasswordReset, Some(by_name("reset"))),
            ]))
            .events();
        let cleared = given::<Settings>(&set)
            .when(SettingsCommand::ChangeEmailTemplates(vec![(
                TemplateSlot::PasswordReset,
                None,
            )]))
            .events();
        let state = Settings::fold(&[set, cleared].concat());
        assert_eq!(
            state.email_templates,
            BTreeMap::from([(TemplateSlot::Activation, by_name("welcome"))])
        );
        given::<Settings>(&[])
            .when(SettingsCommand::ChangeEmailTemplates(vec![(
                TemplateSlot::OidcUnlink,
                Some(by_name(" ")),
            )]))
            .then_err(SettingsError::InvalidTemplate(
                "the oidc_unlink email template must be named by 1 to 256 characters".into(),
            ));
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
