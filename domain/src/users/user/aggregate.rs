//! The user aggregate: which command needs which permission, which command is decided how (the
//! longer decisions are methods in `decide.rs`), and how each event is applied.

use super::*;

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
            UserCommand::Register(r) => self.registered(r, ctx),
            UserCommand::AddRoles { role_ids } => self.roles_added(role_ids),
            UserCommand::RemoveRoles { role_ids } => self.roles_removed(role_ids),
            UserCommand::Update(changes) => self.updated(changes),
            UserCommand::ChangePassword { .. } | UserCommand::ResetPassword { .. }
                if !self.oidc_links.is_empty() =>
            {
                Err(UserError::DisabledForOidcUsers)
            }
            UserCommand::RequestVerification {
                purpose: Purpose::PasswordReset,
                ..
            } if !self.oidc_links.is_empty() => Err(UserError::DisabledForOidcUsers),
            UserCommand::ChangePassword {
                password_hash,
                kept,
            } => Ok(vec![
                UserEvent::PasswordChanged(PasswordChanged {
                    password_hash: password_hash.clone(),
                }),
                UserEvent::LoggedOutElsewhere(LoggedOutElsewhere { kept: *kept }),
            ]),
            UserCommand::Delete => Ok(vec![UserEvent::Deleted(UserDeleted {})]),
            UserCommand::RequestVerification { purpose, request } => {
                self.verification_requested(*purpose, request, ctx)
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
            UserCommand::SetProfileImage { hash } => self.profile_image_set(hash.as_deref()),
            UserCommand::ChangeEmail {
                email,
                activation_request,
            } => self.email_changed(email, activation_request.as_ref(), ctx),
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
                self.staff_roles_added(*group_id, role_ids)
            }
            UserCommand::RemoveStaffRoles { group_id, role_ids } => {
                self.staff_roles_removed(*group_id, role_ids)
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
            UserCommand::UnlinkOidc { reset_request } => self.oidc_unlinked(*reset_request, ctx),
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
            // Logins are the sessions' and tokens' own streams.
            UserEvent::LoggedOutElsewhere(_) => {}
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
