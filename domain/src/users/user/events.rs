//! A user's events: each carries the new values of what it changed.

use super::*;

/// An Argon2id hash in PHC string form. Passwords never enter the log, only this; renderings of
/// the log show it as [`crate::value::REDACTED`] (a hash can be attacked offline).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PasswordHash(pub String);

impl Serialize for PasswordHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::value::serialize_secret(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::value::deserialize_secret(deserializer).map(Self)
    }
}

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

/// Every login of the user ended but the one the change was made with (after a password
/// change): OAuth2 sessions with their access and refresh tokens, OAuth1 tokens, SSO tokens and
/// open MFA challenges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LoggedOutElsewhere {
    pub kept: KeptLogin,
}

/// The login a change was made with, which it leaves alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum KeptLogin {
    /// An OAuth2 session (its stream key).
    Session(Id),
    /// An OAuth1 token (its id).
    OAuth1Token(Id),
    /// None (the change was not made with a login of the user).
    None,
}

/// The account is gone (Extra Horizon's `user_deleted`): every login of it ends with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserDeleted {}

/// The account's email address is verified (`user_activation_completed`); `request_id` is the
/// mailed request it completes, none when an administrator activated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserActivated {
    pub request_id: Option<Id>,
}

/// A new password set with a mailed code (`password_reset_completed`): every login ends with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PasswordReset {
    pub request_id: Id,
    pub password_hash: PasswordHash,
}

/// A new email address, to be verified again (the account is no longer activated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EmailChanged {
    /// Normalised (trimmed, lower-case).
    pub email: Personal<String>,
}

/// The profile image (a file token or hash) was set, or removed (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProfileImageSet {
    pub hash: Option<String>,
}

/// The user joined a group's staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StaffEnlisted {
    pub group_id: Id,
}

/// The user left a group's staff, and with it the group roles they held there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StaffRemoved {
    pub group_id: Id,
}

/// Group roles given to the user inside a group they are staff of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StaffRolesAdded {
    pub group_id: Id,
    pub role_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StaffRolesRemoved {
    pub group_id: Id,
    pub role_ids: Vec<Id>,
}

/// The user became a patient of a group (`patient_enlistment_added`), until `expires_at` if
/// given (an expired enlistment stays, shown as expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PatientEnlisted {
    pub group_id: Id,
    pub expires_at: Option<Timestamp>,
}

/// The user is no longer a patient of a group (`patient_enlistment_removed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PatientRemoved {
    pub group_id: Id,
}

/// The user logs in through an OIDC provider, as `subject_id` there; the password is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OidcLinked {
    pub provider_id: Id,
    pub subject_id: Personal<String>,
}

/// The user no longer logs in through `provider_id`; `reset_request` mails them a code to choose
/// a password with (the OIDC-unlink mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OidcUnlinked {
    pub provider_id: Id,
    pub reset_request: Option<Id>,
}

events! {
    pub enum UserEvent {
        Registered(UserRegistered) = "user.registered",
        RolesAdded(UserRolesAdded) = "user.roles_added",
        RolesRemoved(UserRolesRemoved) = "user.roles_removed",
        Updated(UserUpdated) = "user.updated",
        PasswordChanged(PasswordChanged) = "user.password_changed",
        Deleted(UserDeleted) = "user.deleted",
        VerificationRequested(VerificationRequested) = "user.verification_requested",
        VerificationCodeIssued(VerificationCodeIssued) = "user.verification_code_issued",
        VerificationMailSent(VerificationMailSent) = "user.verification_mail_sent",
        Activated(UserActivated) = "user.activated",
        PasswordReset(PasswordReset) = "user.password_reset",
        EmailChanged(EmailChanged) = "user.email_changed",
        ProfileImageSet(ProfileImageSet) = "user.profile_image_set",
        StaffEnlisted(StaffEnlisted) = "user.staff_enlisted",
        StaffRemoved(StaffRemoved) = "user.staff_removed",
        StaffRolesAdded(StaffRolesAdded) = "user.staff_roles_added",
        StaffRolesRemoved(StaffRolesRemoved) = "user.staff_roles_removed",
        PatientEnlisted(PatientEnlisted) = "user.patient_enlistment_added",
        PatientRemoved(PatientRemoved) = "user.patient_enlistment_removed",
        CodeRequested(CodeRequested) = "user.code_requested",
        PinFailed(VerificationPinFailed) = "user.verification_pin_failed",
        VerificationCleared(VerificationCleared) = "user.verification_cleared",
        OidcLinked(OidcLinked) = "user.oidc_linked",
        OidcUnlinked(OidcUnlinked) = "user.oidc_unlinked",
        LoggedOutElsewhere(LoggedOutElsewhere) = "user.logged_out_elsewhere",
    }
}
