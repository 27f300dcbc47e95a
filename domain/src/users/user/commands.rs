//! What a user command asks for.

use super::*;

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
    pub(super) fn event(self, before: &Verification, purpose: Purpose, at: Timestamp) -> UserEvent {
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
    /// A new password, which ends every other login of the user (`kept` stays).
    ChangePassword {
        password_hash: PasswordHash,
        kept: KeptLogin,
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
