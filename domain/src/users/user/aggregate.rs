//! The user aggregate: how each command is decided and each event applied.

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
