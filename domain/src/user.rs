//! Users: the people who log in. One stream per user (`user-<id>`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::{Email, Personal, Timestamp};
use crate::verification::{
    CodeRequested, Mode, Proof, Purpose, Verification, VerificationCleared, VerificationCodeIssued,
    VerificationError, VerificationMailSent, VerificationPinFailed, VerificationRequested,
};

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
    /// The activation request to mail, if the account is to be verified by mail.
    pub activation_request: Option<CodeRequest>,
    /// The OIDC provider (and subject there) the account logs in through, if any: it then has
    /// no password.
    pub oidc: Option<OidcLinked>,
}

/// A request for a mailed code: its id, whether a hash or a pin is to be mailed, and whether
/// the limits on initiations apply (the deprecated `limit_hash_*` verification settings may lift
/// them for hashes; pins are always limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRequest {
    pub request_id: Id,
    pub mode: Mode,
    pub limited: bool,
}

impl CodeRequest {
    /// A limited request for a hash.
    pub fn hash(request_id: Id) -> Self {
        Self {
            request_id,
            mode: Mode::Hash,
            limited: true,
        }
    }
}

impl CodeRequest {
    /// The event of this request, following `before` (the verification's state).
    fn event(self, before: &Verification, purpose: Purpose, at: Timestamp) -> UserEvent {
        UserEvent::CodeRequested(before.next_request(self.request_id, purpose, self.mode, at))
    }
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
    /// Ask for a mailed code (a new activation mail, or a password reset).
    RequestVerification {
        purpose: Purpose,
        request: CodeRequest,
    },
    /// The mailer drew a code for the request; only its digest is recorded.
    IssueCode {
        purpose: Purpose,
        request_id: Id,
        digest: Digest,
    },
    /// The mailer sent the mail of the request.
    MarkMailSent {
        purpose: Purpose,
        request_id: Id,
    },
    /// Activate the account with the mailed code.
    Activate {
        proof: Proof,
    },
    /// Set a new password with the mailed code.
    ResetPassword {
        proof: Proof,
        password_hash: PasswordHash,
    },
    /// Clear the pending request (`request_id`, the first of its run) for `purpose`, so that new
    /// ones may be made (an administrator unblocking the user).
    ClearVerification {
        purpose: Purpose,
        request_id: Id,
    },
    /// A new email address (already reserved by the command layer), with the activation request
    /// to mail to it, if any.
    ChangeEmail {
        email: Email,
        activation_request: Option<CodeRequest>,
    },
    /// Set (or with `None` remove) the profile image.
    SetProfileImage {
        hash: Option<String>,
    },
    /// Enlist as staff in each of `groups` not yet enlisted in.
    AddToStaff {
        groups: Vec<Id>,
    },
    RemoveFromStaff {
        groups: Vec<Id>,
    },
    /// Give group roles (of `group_id`, checked by the command layer) to a staff member there.
    AddStaffRoles {
        group_id: Id,
        role_ids: Vec<Id>,
    },
    RemoveStaffRoles {
        group_id: Id,
        role_ids: Vec<Id>,
    },
    EnlistPatient {
        group_id: Id,
        expires_at: Option<Timestamp>,
    },
    RemovePatient {
        group_id: Id,
    },
    /// Log in through an OIDC provider from now on, as verified by the command layer; the
    /// user proved presence (their password, which goes) with a presence token.
    LinkOidc {
        link: OidcLinked,
        presence_confirmed: bool,
    },
    /// Stop logging in through OIDC providers; a reset code is mailed for a new password.
    UnlinkOidc {
        reset_request: Id,
    },
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
    #[error(transparent)]
    Verification(#[from] VerificationError),
    #[error("the account is already activated")]
    AlreadyActivated,
    #[error("the account's email address is not verified yet")]
    NotActivated,
    #[error("the user is already a patient of this group")]
    AlreadyPatient,
    #[error("the user is not a patient of this group")]
    NotPatient,
    #[error("pin codes are not enabled in the verification settings")]
    PinCodesNotEnabled,
    #[error("this account logs in through an OIDC provider and has no password")]
    DisabledForOidcUsers,
    #[error("the presence token is unknown or has expired")]
    InvalidPresence,
    #[error("this account is linked to no OIDC provider")]
    NotLinked,
    #[error("{0}")]
    TemplateUnavailable(String),
}

impl DomainError for UserError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyRegistered => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::InvalidField(_) => ExhCode::FieldFormat,
            Self::WrongPassword | Self::WeakPassword(_) => ExhCode::Password,
            Self::AlreadyActivated => ExhCode::AlreadyActivated,
            Self::NotActivated => ExhCode::NotActivated,
            Self::AlreadyPatient => ExhCode::ResourceAlreadyExists,
            Self::NotPatient => ExhCode::ResourceUnknown,
            Self::PinCodesNotEnabled => ExhCode::PinCodesNotEnabled,
            Self::DisabledForOidcUsers => ExhCode::DisabledForOidcUsers,
            Self::InvalidPresence => ExhCode::InvalidPresenceToken,
            Self::NotLinked | Self::TemplateUnavailable(_) => ExhCode::IllegalState,
            Self::Verification(error) => match error {
                VerificationError::TooSoon(Purpose::Activation) => {
                    ExhCode::ActivationRequestTimeout
                }
                VerificationError::TooMany(Purpose::Activation) => ExhCode::ActivationRequestLimit,
                VerificationError::TooSoon(Purpose::PasswordReset) => {
                    ExhCode::ForgotPasswordRequestTimeout
                }
                VerificationError::TooMany(Purpose::PasswordReset) => {
                    ExhCode::ForgotPasswordRequestLimit
                }
                VerificationError::UnknownCode(Purpose::Activation) => ExhCode::ActivationUnknown,
                VerificationError::UnknownCode(Purpose::PasswordReset) => {
                    ExhCode::NewPasswordHashUnknown
                }
                VerificationError::UnknownPinRequest(Purpose::Activation) => {
                    ExhCode::ActivationUnknown
                }
                VerificationError::UnknownPinRequest(Purpose::PasswordReset) => {
                    ExhCode::PinCodeRequestUnknown
                }
                VerificationError::WrongPin => ExhCode::IncorrectPinCode,
                VerificationError::PinAttemptsExhausted => ExhCode::TooManyFailedAttempts,
                VerificationError::Claimed | VerificationError::NotPending => ExhCode::IllegalState,
            },
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

impl Aggregate for User {
    const KIND: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            // Registration is public; registering someone as already activated is not, unless
            // the command layer verified the account's OIDC provider's ID token.
            UserCommand::Register(registration)
                if !registration.activated || registration.oidc.is_some() =>
            {
                return Ok(());
            }
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
            UserCommand::SetProfileImage { .. } if self_service(ctx) => return Ok(()),
            UserCommand::SetProfileImage { .. } => "UPDATE_PROFILE_IMAGE",
            UserCommand::ChangeEmail { .. } if self_service(ctx) => return Ok(()),
            UserCommand::ChangeEmail { .. } => "UPDATE_USER_EMAIL",
            // Staff permissions act inside their own group; global ones everywhere.
            UserCommand::AddToStaff { groups } => {
                return groups.iter().try_for_each(|group| {
                    ctx.actor
                        .require_in(*group, "ADD_STAFF", UserError::NoPermission)
                });
            }
            UserCommand::RemoveFromStaff { groups } => {
                return groups.iter().try_for_each(|group| {
                    ctx.actor
                        .require_in(*group, "REMOVE_STAFF", UserError::NoPermission)
                });
            }
            UserCommand::AddStaffRoles { group_id, .. } => {
                return ctx.actor.require_in(
                    *group_id,
                    "ADD_GROUP_ROLE_TO_STAFF",
                    UserError::NoPermission,
                );
            }
            UserCommand::RemoveStaffRoles { group_id, .. } => {
                return ctx.actor.require_in(
                    *group_id,
                    "REMOVE_GROUP_ROLE_FROM_STAFF",
                    UserError::NoPermission,
                );
            }
            UserCommand::EnlistPatient { .. } => "ADD_PATIENT",
            // Only the user links their own account.
            UserCommand::LinkOidc { .. } if self_service(ctx) => return Ok(()),
            UserCommand::LinkOidc { .. } => {
                return Err(UserError::NoPermission("UPDATE_USER"));
            }
            UserCommand::UnlinkOidc { .. } => "UNLINK_USER_FROM_OIDC",
            UserCommand::ClearVerification {
                purpose: Purpose::Activation,
                ..
            } => "DELETE_ACTIVATION_REQUEST",
            UserCommand::ClearVerification {
                purpose: Purpose::PasswordReset,
                ..
            } => "DELETE_FORGOT_PASSWORD_REQUEST",
            UserCommand::RemovePatient { .. } if self_service(ctx) => return Ok(()),
            UserCommand::RemovePatient { group_id } => {
                return ctx
                    .actor
                    .require_in(*group_id, "REMOVE_PATIENT", UserError::NoPermission);
            }
            // Anyone may ask for a mail or present a mailed code: the code is the proof.
            UserCommand::RequestVerification { .. }
            | UserCommand::Activate { .. }
            | UserCommand::ResetPassword { .. } => return Ok(()),
            // Only Vigil's own mailer records codes and sent mails.
            UserCommand::IssueCode { .. } | UserCommand::MarkMailSent { .. } => {
                return if ctx.actor.is_system() {
                    Ok(())
                } else {
                    Err(UserError::NoPermission("SEND_MAILS"))
                };
            }
        };
        ctx.actor.require(required, UserError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if !matches!(command, UserCommand::Register(_)) && (!self.registered || self.deleted) {
            return Err(UserError::NotFound);
        }
        match command {
            UserCommand::Register(r) => {
                if self.registered {
                    return Err(UserError::AlreadyRegistered);
                }
                let registered = UserEvent::Registered(UserRegistered {
                    email: Personal(r.email.as_str().to_owned()),
                    first_name: Personal(r.first_name.clone()),
                    last_name: Personal(r.last_name.clone()),
                    phone_number: r.phone_number.clone().map(Personal),
                    language: r.language.clone(),
                    time_zone: r.time_zone.clone(),
                    password_hash: r.password_hash.clone(),
                    activated: r.activated,
                });
                let request = r
                    .activation_request
                    .filter(|_| !r.activated)
                    .map(|request| {
                        request.event(&Verification::default(), Purpose::Activation, ctx.now)
                    });
                let link = r.oidc.clone().map(UserEvent::OidcLinked);
                Ok([registered]
                    .into_iter()
                    .chain(request)
                    .chain(link)
                    .collect())
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
            UserCommand::ChangePassword { .. } | UserCommand::ResetPassword { .. }
                if !self.oidc_links.is_empty() =>
            {
                Err(UserError::DisabledForOidcUsers)
            }
            UserCommand::RequestVerification {
                purpose: Purpose::PasswordReset,
                ..
            } if !self.oidc_links.is_empty() => Err(UserError::DisabledForOidcUsers),
            UserCommand::ChangePassword { password_hash } => {
                Ok(vec![UserEvent::PasswordChanged(PasswordChanged {
                    password_hash: password_hash.clone(),
                })])
            }
            UserCommand::Delete => Ok(vec![UserEvent::Deleted(UserDeleted {})]),
            UserCommand::RequestVerification { purpose, request } => {
                match purpose {
                    Purpose::Activation if self.activated => {
                        return Err(UserError::AlreadyActivated);
                    }
                    Purpose::PasswordReset if !self.activated => {
                        return Err(UserError::NotActivated);
                    }
                    _ => {}
                }
                if request.limited || request.mode == Mode::PinCode {
                    self.verification(*purpose)
                        .admits(*purpose, request.mode, ctx.now)?;
                }
                Ok(vec![request.event(
                    self.verification(*purpose),
                    *purpose,
                    ctx.now,
                )])
            }
            UserCommand::IssueCode {
                purpose,
                request_id,
                digest,
            } => {
                let verification = self.verification(*purpose);
                verification.claimable(*request_id, ctx.now)?;
                Ok(vec![UserEvent::VerificationCodeIssued(
                    VerificationCodeIssued {
                        request_id: *request_id,
                        digest: *digest,
                        expires_at: ctx.now.plus_seconds(verification.mode.valid_seconds()),
                        at: ctx.now,
                    },
                )])
            }
            UserCommand::MarkMailSent {
                purpose,
                request_id,
            } => {
                let verification = self.verification(*purpose);
                if verification.request_id != Some(*request_id) || verification.sent {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::VerificationMailSent(
                    VerificationMailSent {
                        request_id: *request_id,
                    },
                )])
            }
            UserCommand::Activate { proof } => {
                let request_id = self
                    .activation
                    .accepts(Purpose::Activation, proof, ctx.now)?;
                Ok(vec![UserEvent::Activated(UserActivated {
                    request_id: Some(request_id),
                })])
            }
            UserCommand::SetProfileImage { hash } => {
                let hash = hash.as_deref().map(str::trim);
                if hash.is_some_and(|h| h.is_empty() || h.len() > 200) {
                    return Err(UserError::InvalidField(
                        "hash must be 1 to 200 characters".into(),
                    ));
                }
                if hash == self.profile_image.as_deref() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::ProfileImageSet(ProfileImageSet {
                    hash: hash.map(str::to_owned),
                })])
            }
            UserCommand::ChangeEmail {
                email,
                activation_request,
            } => {
                if self.email.as_ref() == Some(email) {
                    return Ok(vec![]);
                }
                let changed = UserEvent::EmailChanged(EmailChanged {
                    email: Personal(email.as_str().to_owned()),
                });
                // The new address starts a new run of requests.
                let request = activation_request.map(|request| {
                    request.event(&Verification::default(), Purpose::Activation, ctx.now)
                });
                Ok([changed].into_iter().chain(request).collect())
            }
            UserCommand::ResetPassword {
                proof,
                password_hash,
            } => {
                let request_id = self.reset.accepts(Purpose::PasswordReset, proof, ctx.now)?;
                // The command layer presents a wrong pin without a new password, to have it counted.
                if password_hash.0.is_empty() {
                    return Err(UserError::InvalidField("a new password is required".into()));
                }
                Ok(vec![UserEvent::PasswordReset(PasswordReset {
                    request_id,
                    password_hash: password_hash.clone(),
                })])
            }
            UserCommand::AddToStaff { groups } => Ok(groups
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|group| !self.staff.contains_key(group))
                .map(|group_id| UserEvent::StaffEnlisted(StaffEnlisted { group_id }))
                .collect()),
            UserCommand::RemoveFromStaff { groups } => Ok(groups
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|group| self.staff.contains_key(group))
                .map(|group_id| UserEvent::StaffRemoved(StaffRemoved { group_id }))
                .collect()),
            UserCommand::AddStaffRoles { group_id, role_ids } => {
                let Some(held) = self.staff.get(group_id) else {
                    return Ok(vec![]);
                };
                let new: Vec<Id> = role_ids
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .difference(held)
                    .copied()
                    .collect();
                if new.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::StaffRolesAdded(StaffRolesAdded {
                    group_id: *group_id,
                    role_ids: new,
                })])
            }
            UserCommand::RemoveStaffRoles { group_id, role_ids } => {
                let Some(held) = self.staff.get(group_id) else {
                    return Ok(vec![]);
                };
                let gone: Vec<Id> = role_ids
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .intersection(held)
                    .copied()
                    .collect();
                if gone.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::StaffRolesRemoved(StaffRolesRemoved {
                    group_id: *group_id,
                    role_ids: gone,
                })])
            }
            UserCommand::EnlistPatient {
                group_id,
                expires_at,
            } => {
                if self.patient.contains_key(group_id) {
                    return Err(UserError::AlreadyPatient);
                }
                Ok(vec![UserEvent::PatientEnlisted(PatientEnlisted {
                    group_id: *group_id,
                    expires_at: *expires_at,
                })])
            }
            UserCommand::RemovePatient { group_id } => {
                if !self.patient.contains_key(group_id) {
                    return Err(UserError::NotPatient);
                }
                Ok(vec![UserEvent::PatientRemoved(PatientRemoved {
                    group_id: *group_id,
                })])
            }
            UserCommand::LinkOidc {
                link,
                presence_confirmed,
            } => {
                if !presence_confirmed {
                    return Err(UserError::InvalidPresence);
                }
                if self.oidc_links.get(&link.provider_id) == Some(link.subject_id.get()) {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::OidcLinked(link.clone())])
            }
            UserCommand::UnlinkOidc { reset_request } => {
                if self.oidc_links.is_empty() {
                    return Err(UserError::NotLinked);
                }
                let last = self.oidc_links.len() - 1;
                let unlinked = self.oidc_links.keys().enumerate().map(|(n, provider_id)| {
                    UserEvent::OidcUnlinked(OidcUnlinked {
                        provider_id: *provider_id,
                        reset_request: (n == last).then_some(*reset_request),
                    })
                });
                // An administrator's doing: the limits on reset requests do not apply.
                let reset = CodeRequest {
                    request_id: *reset_request,
                    mode: Mode::Hash,
                    limited: false,
                }
                .event(
                    self.verification(Purpose::PasswordReset),
                    Purpose::PasswordReset,
                    ctx.now,
                );
                Ok(unlinked.chain([reset]).collect())
            }
            UserCommand::ClearVerification {
                purpose,
                request_id,
            } => {
                // A run started before codes had modes is named by its latest request.
                let verification = self.verification(*purpose);
                let current = [verification.first_request_id, verification.request_id];
                if !current.contains(&Some(*request_id)) {
                    return Err(UserError::Verification(VerificationError::NotPending));
                }
                Ok(vec![UserEvent::VerificationCleared(VerificationCleared {
                    request_id: *request_id,
                    purpose: *purpose,
                })])
            }
        }
    }

    fn recorded_refusal(
        &self,
        command: &Self::Command,
        error: &Self::Error,
        ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        let purpose = match command {
            UserCommand::Activate { .. } => Purpose::Activation,
            UserCommand::ResetPassword { .. } => Purpose::PasswordReset,
            _ => return vec![],
        };
        let verification = self.verification(purpose);
        match (error, verification.request_id) {
            (UserError::Verification(VerificationError::WrongPin), Some(request_id)) => {
                vec![UserEvent::PinFailed(VerificationPinFailed {
                    request_id,
                    purpose,
                    at: ctx.now,
                    failed_attempts: verification.failed_attempts.saturating_add(1),
                })]
            }
            _ => vec![],
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            UserEvent::Registered(e) => {
                self.registered = true;
                self.email = Email::parse(e.email.get()).ok();
                self.password_hash = Some(e.password_hash.clone());
                self.activated = e.activated;
                self.first_name = Some(e.first_name.clone());
                self.last_name = Some(e.last_name.clone());
                self.language = Some(e.language.clone());
            }
            UserEvent::RolesAdded(e) => self.role_ids.extend(e.role_ids.iter().copied()),
            UserEvent::RolesRemoved(e) => {
                for role in &e.role_ids {
                    self.role_ids.remove(role);
                }
            }
            UserEvent::Updated(e) => {
                if let Some(first_name) = &e.first_name {
                    self.first_name = Some(first_name.clone());
                }
                if let Some(last_name) = &e.last_name {
                    self.last_name = Some(last_name.clone());
                }
                if let Some(language) = &e.language {
                    self.language = Some(language.clone());
                }
            }
            UserEvent::PasswordChanged(e) => self.password_hash = Some(e.password_hash.clone()),
            UserEvent::Deleted(_) => {
                self.deleted = true;
                self.password_hash = None;
                self.role_ids.clear();
                self.staff.clear();
                self.patient.clear();
                self.activation = Verification::default();
                self.reset = Verification::default();
            }
            UserEvent::VerificationRequested(e) => self.verification_mut(e.purpose).requested(e),
            UserEvent::CodeRequested(e) => self.verification_mut(e.purpose).code_requested(e),
            UserEvent::PinFailed(e) => self.verification_mut(e.purpose).pin_failed(e),
            UserEvent::VerificationCleared(e) => self.verification_mut(e.purpose).completed(),
            UserEvent::OidcLinked(e) => {
                self.oidc_links
                    .insert(e.provider_id, e.subject_id.get().clone());
                self.password_hash = None;
            }
            UserEvent::OidcUnlinked(e) => {
                self.oidc_links.remove(&e.provider_id);
                if e.reset_request.is_some() {
                    self.unlink_request = e.reset_request;
                }
            }
            UserEvent::VerificationCodeIssued(e) => {
                for purpose in [Purpose::Activation, Purpose::PasswordReset] {
                    self.verification_mut(purpose).code_issued(e);
                }
            }
            UserEvent::VerificationMailSent(e) => {
                for purpose in [Purpose::Activation, Purpose::PasswordReset] {
                    self.verification_mut(purpose).mail_sent(e);
                }
            }
            UserEvent::Activated(_) => {
                self.activated = true;
                self.activation.completed();
            }
            UserEvent::PasswordReset(e) => {
                self.password_hash = Some(e.password_hash.clone());
                self.reset.completed();
            }
            UserEvent::ProfileImageSet(e) => self.profile_image = e.hash.clone(),
            UserEvent::EmailChanged(e) => {
                self.email = Email::parse(e.email.get()).ok();
                self.activated = false;
                self.activation = Verification::default();
                self.reset = Verification::default();
            }
            UserEvent::StaffEnlisted(e) => {
                self.staff.entry(e.group_id).or_default();
            }
            UserEvent::StaffRemoved(e) => {
                self.staff.remove(&e.group_id);
            }
            UserEvent::StaffRolesAdded(e) => {
                if let Some(held) = self.staff.get_mut(&e.group_id) {
                    held.extend(e.role_ids.iter().copied());
                }
            }
            UserEvent::StaffRolesRemoved(e) => {
                if let Some(held) = self.staff.get_mut(&e.group_id) {
                    for role in &e.role_ids {
                        held.remove(role);
                    }
                }
            }
            UserEvent::PatientEnlisted(e) => {
                self.patient.insert(e.group_id, e.expires_at);
            }
            UserEvent::PatientRemoved(e) => {
                self.patient.remove(&e.group_id);
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
            activation_request: None,
            oidc: None,
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

    fn with_activation_request() -> Vec<UserEvent> {
        let registration = Registration {
            activation_request: Some(CodeRequest::hash(id(5))),
            ..registration(false)
        };
        given::<User>(&[])
            .by(nobody())
            .when(UserCommand::Register(registration))
            .events()
    }

    #[test]
    fn registering_for_a_mailed_activation_records_the_request() {
        let events = with_activation_request();
        assert!(matches!(
            events.as_slice(),
            [UserEvent::Registered(_), UserEvent::CodeRequested(r)]
                if r.request_id == id(5) && r.purpose == Purpose::Activation
                    && r.mode == Mode::Hash && r.initiations == 1 && r.first_request_id == id(5)
        ));
    }

    fn hash(code: &[u8]) -> Proof {
        Proof {
            mode: Mode::Hash,
            digest: Digest::of(code),
        }
    }

    #[test]
    fn the_mailed_code_activates_the_account_once() {
        let mut history = with_activation_request();
        let issue = UserCommand::IssueCode {
            purpose: Purpose::Activation,
            request_id: id(5),
            digest: Digest::of(b"code"),
        };
        given::<User>(&history)
            .by(nobody())
            .when(issue.clone())
            .then_err(UserError::NoPermission("SEND_MAILS"));
        history.extend(given::<User>(&history).when(issue).events());
        given::<User>(&history)
            .by(nobody())
            .when(UserCommand::Activate {
                proof: hash(b"wrong"),
            })
            .then_err(UserError::Verification(VerificationError::UnknownCode(
                Purpose::Activation,
            )));
        let activated = given::<User>(&history)
            .by(nobody())
            .when(UserCommand::Activate {
                proof: hash(b"code"),
            })
            .events();
        assert_eq!(
            activated,
            [UserEvent::Activated(UserActivated {
                request_id: Some(id(5))
            })]
        );
        history.extend(activated);
        given::<User>(&history)
            .by(nobody())
            .when(UserCommand::Activate {
                proof: hash(b"code"),
            })
            .then_err(UserError::Verification(VerificationError::UnknownCode(
                Purpose::Activation,
            )));
        given::<User>(&history)
            .when(UserCommand::RequestVerification {
                purpose: Purpose::Activation,
                request: CodeRequest::hash(id(6)),
            })
            .then_err(UserError::AlreadyActivated);
    }

    fn with_pin_reset_request() -> Vec<UserEvent> {
        let mut history = vec![
            registered(),
            UserEvent::Activated(UserActivated { request_id: None }),
        ];
        let request = UserCommand::RequestVerification {
            purpose: Purpose::PasswordReset,
            request: CodeRequest {
                request_id: id(7),
                mode: Mode::PinCode,
                limited: true,
            },
        };
        history.extend(given::<User>(&history).by(nobody()).when(request).events());
        let issue = UserCommand::IssueCode {
            purpose: Purpose::PasswordReset,
            request_id: id(7),
            digest: Digest::of(b"12345678"),
        };
        history.extend(given::<User>(&history).when(issue).events());
        history
    }

    fn reset_with_pin(pin: &[u8]) -> UserCommand {
        UserCommand::ResetPassword {
            proof: Proof {
                mode: Mode::PinCode,
                digest: Digest::of(pin),
            },
            password_hash: PasswordHash("new".into()),
        }
    }

    #[test]
    fn a_mailed_pin_expires_after_fifteen_minutes() {
        let history = with_pin_reset_request();
        given::<User>(&history)
            .by(nobody())
            .at(crate::aggregate::testing::NOW.plus_seconds(15 * 60))
            .when(reset_with_pin(b"12345678"))
            .then_err(UserError::Verification(
                VerificationError::UnknownPinRequest(Purpose::PasswordReset),
            ));
        given::<User>(&history)
            .by(nobody())
            .when(UserCommand::ResetPassword {
                proof: hash(b"12345678"),
                password_hash: PasswordHash("new".into()),
            })
            .then_err(UserError::Verification(VerificationError::UnknownCode(
                Purpose::PasswordReset,
            )));
    }

    #[test]
    fn every_wrong_pin_is_recorded_and_the_fourth_attempt_is_refused() {
        let mut history = with_pin_reset_request();
        for failed_attempts in 1..=3 {
            let failed = UserEvent::PinFailed(VerificationPinFailed {
                request_id: id(7),
                purpose: Purpose::PasswordReset,
                at: crate::aggregate::testing::NOW,
                failed_attempts,
            });
            given::<User>(&history)
                .by(nobody())
                .when(reset_with_pin(b"00000000"))
                .then_refused(
                    UserError::Verification(VerificationError::WrongPin),
                    std::slice::from_ref(&failed),
                );
            history.push(failed);
        }
        given::<User>(&history)
            .by(nobody())
            .when(reset_with_pin(b"12345678"))
            .then_err(UserError::Verification(
                VerificationError::PinAttemptsExhausted,
            ));
        let fresh = with_pin_reset_request();
        let reset = given::<User>(&fresh)
            .by(nobody())
            .when(reset_with_pin(b"12345678"))
            .events();
        assert!(matches!(reset.as_slice(), [UserEvent::PasswordReset(r)] if r.request_id == id(7)));
    }

    #[test]
    fn an_administrator_clears_a_run_of_requests_by_its_first_id() {
        let history = with_pin_reset_request();
        let clear = |request_id| UserCommand::ClearVerification {
            purpose: Purpose::PasswordReset,
            request_id,
        };
        given::<User>(&history)
            .by(nobody())
            .when(clear(id(7)))
            .then_err(UserError::NoPermission("DELETE_FORGOT_PASSWORD_REQUEST"));
        given::<User>(&history)
            .when(clear(id(8)))
            .then_err(UserError::Verification(VerificationError::NotPending));
        let cleared = given::<User>(&history).when(clear(id(7))).events();
        let state = User::fold(&[history.clone(), cleared].concat());
        assert_eq!(state.reset, Verification::default());
        // A run of two requests is named by its first.
        let later = crate::aggregate::testing::NOW.plus_seconds(600);
        let mut history = history;
        history.extend(
            given::<User>(&history)
                .by(nobody())
                .at(later)
                .when(UserCommand::RequestVerification {
                    purpose: Purpose::PasswordReset,
                    request: CodeRequest {
                        request_id: id(9),
                        mode: Mode::PinCode,
                        limited: true,
                    },
                })
                .events(),
        );
        let state = User::fold(&history);
        assert_eq!(
            (
                state.reset.first_request_id,
                state.reset.request_id,
                state.reset.initiations
            ),
            (Some(id(7)), Some(id(9)), 2)
        );
        given::<User>(&history).when(clear(id(7))).events();
    }

    #[test]
    fn an_account_of_an_oidc_provider_has_no_password() {
        let registration = Registration {
            activated: true,
            oidc: Some(OidcLinked {
                provider_id: id(4),
                subject_id: Personal("subject".into()),
            }),
            ..registration(false)
        };
        let history = given::<User>(&[])
            .by(nobody())
            .when(UserCommand::Register(registration))
            .events();
        let state = User::fold(&history);
        assert_eq!(state.password_hash, None);
        given::<User>(&history)
            .by(nobody())
            .when(UserCommand::RequestVerification {
                purpose: Purpose::PasswordReset,
                request: CodeRequest::hash(id(6)),
            })
            .then_err(UserError::DisabledForOidcUsers);
        given::<User>(&history)
            .by(nobody())
            .when(UserCommand::UnlinkOidc {
                reset_request: id(7),
            })
            .then_err(UserError::NoPermission("UNLINK_USER_FROM_OIDC"));
        let unlinked = given::<User>(&history)
            .when(UserCommand::UnlinkOidc {
                reset_request: id(7),
            })
            .events();
        assert!(matches!(unlinked.as_slice(), [
            UserEvent::OidcUnlinked(u),
            UserEvent::CodeRequested(r),
        ] if u.provider_id == id(4) && u.reset_request == Some(id(7))
            && r.request_id == id(7) && r.purpose == Purpose::PasswordReset));
        let state = User::fold(&[history.clone(), unlinked].concat());
        assert!(state.oidc_links.is_empty());
        assert_eq!(state.unlink_request, Some(id(7)));
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        let link = OidcLinked {
            provider_id: id(5),
            subject_id: Personal("another".into()),
        };
        given::<User>(&[registered()])
            .by(me.clone())
            .when(UserCommand::LinkOidc {
                link: link.clone(),
                presence_confirmed: false,
            })
            .then_err(UserError::InvalidPresence);
        given::<User>(&[registered()])
            .by(me)
            .when(UserCommand::LinkOidc {
                link: link.clone(),
                presence_confirmed: true,
            })
            .then(&[UserEvent::OidcLinked(link)]);
    }

    #[test]
    fn a_new_email_address_must_be_verified_again() {
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        let email = Email::parse("jane@new.example").unwrap();
        let events = given::<User>(&[registered()])
            .by(me)
            .when(UserCommand::ChangeEmail {
                email: email.clone(),
                activation_request: Some(CodeRequest::hash(id(3))),
            })
            .events();
        let state = User::fold(&[vec![registered()], events].concat());
        assert_eq!(state.email, Some(email));
        assert!(!state.activated);
        assert_eq!(state.activation.request_id, Some(id(3)));
        let other = Actor::user(id(9), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered()])
            .by(other)
            .when(UserCommand::ChangeEmail {
                email: Email::parse("x@example.com").unwrap(),
                activation_request: None,
            })
            .then_err(UserError::NoPermission("UPDATE_USER_EMAIL"));
    }

    #[test]
    fn a_profile_image_is_set_and_removed_by_its_user() {
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        let set = UserEvent::ProfileImageSet(ProfileImageSet {
            hash: Some("abc".into()),
        });
        given::<User>(&[registered()])
            .by(me.clone())
            .when(UserCommand::SetProfileImage {
                hash: Some(" abc ".into()),
            })
            .then(std::slice::from_ref(&set));
        given::<User>(&[registered(), set])
            .by(me)
            .when(UserCommand::SetProfileImage { hash: None })
            .then(&[UserEvent::ProfileImageSet(ProfileImageSet { hash: None })]);
    }

    #[test]
    fn a_password_reset_needs_an_activated_account() {
        given::<User>(&[registered()])
            .by(nobody())
            .when(UserCommand::RequestVerification {
                purpose: Purpose::PasswordReset,
                request: CodeRequest::hash(id(6)),
            })
            .then_err(UserError::NotActivated);
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

    fn staff_of(group: Id, permissions: &[&str]) -> Actor {
        let rights = crate::actor::Rights {
            staff: [(group, permissions.iter().map(|p| (*p).to_owned()).collect())].into(),
            ..Default::default()
        };
        Actor::user(id(7), None, rights, Via::Http, None)
    }

    #[test]
    fn staff_enlistments_are_added_once_per_group() {
        let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) });
        given::<User>(&[registered(), enlisted.clone()])
            .when(UserCommand::AddToStaff {
                groups: vec![id(2), id(1), id(2)],
            })
            .then(&[UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(2) })]);
    }

    #[test]
    fn a_staff_permission_reaches_only_its_own_group() {
        let staff = staff_of(id(1), &["ADD_STAFF"]);
        given::<User>(&[registered()])
            .by(staff.clone())
            .when(UserCommand::AddToStaff {
                groups: vec![id(1)],
            })
            .then(&[UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) })]);
        given::<User>(&[registered()])
            .by(staff)
            .when(UserCommand::AddToStaff {
                groups: vec![id(1), id(2)],
            })
            .then_err(UserError::NoPermission("ADD_STAFF"));
    }

    #[test]
    fn group_roles_go_only_to_staff_of_the_group_and_leave_with_the_enlistment() {
        let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) });
        let added = UserEvent::StaffRolesAdded(StaffRolesAdded {
            group_id: id(1),
            role_ids: vec![id(5)],
        });
        given::<User>(&[registered()])
            .when(UserCommand::AddStaffRoles {
                group_id: id(1),
                role_ids: vec![id(5)],
            })
            .then(&[]);
        given::<User>(&[registered(), enlisted.clone()])
            .when(UserCommand::AddStaffRoles {
                group_id: id(1),
                role_ids: vec![id(5), id(5)],
            })
            .then(std::slice::from_ref(&added));
        let state = User::fold(&[
            registered(),
            enlisted.clone(),
            added,
            UserEvent::StaffRemoved(StaffRemoved { group_id: id(1) }),
            enlisted,
        ]);
        assert_eq!(state.staff.get(&id(1)), Some(&BTreeSet::new()));
    }

    #[test]
    fn a_patient_enlistment_is_added_once_and_removed_once() {
        let enlisted = UserEvent::PatientEnlisted(PatientEnlisted {
            group_id: id(1),
            expires_at: Some(Timestamp(5)),
        });
        given::<User>(&[registered()])
            .when(UserCommand::EnlistPatient {
                group_id: id(1),
                expires_at: Some(Timestamp(5)),
            })
            .then(std::slice::from_ref(&enlisted));
        given::<User>(&[registered(), enlisted.clone()])
            .when(UserCommand::EnlistPatient {
                group_id: id(1),
                expires_at: None,
            })
            .then_err(UserError::AlreadyPatient);
        given::<User>(&[registered()])
            .when(UserCommand::RemovePatient { group_id: id(1) })
            .then_err(UserError::NotPatient);
    }

    #[test]
    fn patients_leave_a_group_themselves_or_by_a_remove_patient_permission() {
        let enlisted = UserEvent::PatientEnlisted(PatientEnlisted {
            group_id: id(1),
            expires_at: None,
        });
        let removed = UserEvent::PatientRemoved(PatientRemoved { group_id: id(1) });
        let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
        given::<User>(&[registered(), enlisted.clone()])
            .by(me)
            .when(UserCommand::RemovePatient { group_id: id(1) })
            .then(std::slice::from_ref(&removed));
        given::<User>(&[registered(), enlisted.clone()])
            .by(staff_of(id(1), &["REMOVE_PATIENT"]))
            .when(UserCommand::RemovePatient { group_id: id(1) })
            .then(std::slice::from_ref(&removed));
        given::<User>(&[registered(), enlisted.clone()])
            .by(staff_of(id(2), &["REMOVE_PATIENT"]))
            .when(UserCommand::RemovePatient { group_id: id(1) })
            .then_err(UserError::NoPermission("REMOVE_PATIENT"));
        // Adding a patient is a global permission only.
        given::<User>(&[registered()])
            .by(staff_of(id(1), &["ADD_PATIENT"]))
            .when(UserCommand::EnlistPatient {
                group_id: id(1),
                expires_at: None,
            })
            .then_err(UserError::NoPermission("ADD_PATIENT"));
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
                    _ => {}
                }
            }
            prop_assert_eq!(state.role_ids, expected);
        }
    }
}
