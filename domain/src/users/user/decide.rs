//! How the user aggregate decides the commands that need more than a few lines: one method per
//! command, called from `Aggregate::handle`.

use super::*;

impl User {
    /// A new account, with its activation request or OIDC link if any.
    pub(super) fn registered(
        &self,
        r: &Registration,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.registered {
            return Err(UserError::AlreadyRegistered);
        }
        let registered = UserEvent::Registered(UserRegistered {
            email: Personal(r.email.as_str().to_owned()),
            first_name: name("first_name", &r.first_name)?,
            last_name: name("last_name", &r.last_name)?,
            phone_number: r
                .phone_number
                .as_deref()
                .map(phone_number)
                .transpose()?
                .flatten()
                .map(Personal),
            language: r.language.clone(),
            time_zone: r.time_zone.clone(),
            password_hash: r.password_hash.clone(),
            activated: r.activated,
        });
        let request = r
            .activation_request
            .filter(|_| !r.activated)
            .map(|request| request.event(&Verification::default(), Purpose::Activation, ctx.now));
        let link = r.oidc.clone().map(UserEvent::OidcLinked);
        Ok([registered]
            .into_iter()
            .chain(request)
            .chain(link)
            .collect())
    }

    pub(super) fn roles_added(&self, role_ids: &[Id]) -> Result<Vec<UserEvent>, UserError> {
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

    pub(super) fn roles_removed(&self, role_ids: &[Id]) -> Result<Vec<UserEvent>, UserError> {
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

    /// The profile fields given, checked; nothing when none is.
    pub(super) fn updated(&self, changes: &ProfileChanges) -> Result<Vec<UserEvent>, UserError> {
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
            phone_number: changes
                .phone_number
                .as_ref()
                .map(|phone| {
                    let phone = phone.as_deref().map(phone_number).transpose()?.flatten();
                    Ok::<_, UserError>(match phone {
                        Some(phone) => Optional::Set(Personal(phone)),
                        None => Optional::Cleared,
                    })
                })
                .transpose()?,
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

    pub(super) fn verification_requested(
        &self,
        purpose: Purpose,
        request: &CodeRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<UserEvent>, UserError> {
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
            self.verification(purpose)
                .admits(purpose, request.mode, ctx.now)?;
        }
        Ok(vec![request.event(
            self.verification(purpose),
            purpose,
            ctx.now,
        )])
    }

    pub(super) fn profile_image_set(
        &self,
        hash: Option<&str>,
    ) -> Result<Vec<UserEvent>, UserError> {
        let hash = hash.map(str::trim);
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

    pub(super) fn email_changed(
        &self,
        email: &Email,
        activation_request: Option<&CodeRequest>,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.email.as_ref() == Some(email) {
            return Ok(vec![]);
        }
        let changed = UserEvent::EmailChanged(EmailChanged {
            email: Personal(email.as_str().to_owned()),
        });
        // The new address starts a new run of requests.
        let request = activation_request
            .map(|request| request.event(&Verification::default(), Purpose::Activation, ctx.now));
        Ok([changed].into_iter().chain(request).collect())
    }

    pub(super) fn staff_roles_added(
        &self,
        group_id: Id,
        role_ids: &[Id],
    ) -> Result<Vec<UserEvent>, UserError> {
        let added = self.staff_roles_picked(group_id, role_ids, |asked, held| {
            asked.difference(held).copied().collect()
        });
        Ok(added
            .map(|role_ids| UserEvent::StaffRolesAdded(StaffRolesAdded { group_id, role_ids }))
            .into_iter()
            .collect())
    }

    pub(super) fn staff_roles_removed(
        &self,
        group_id: Id,
        role_ids: &[Id],
    ) -> Result<Vec<UserEvent>, UserError> {
        let removed = self.staff_roles_picked(group_id, role_ids, |asked, held| {
            asked.intersection(held).copied().collect()
        });
        Ok(removed
            .map(|role_ids| UserEvent::StaffRolesRemoved(StaffRolesRemoved { group_id, role_ids }))
            .into_iter()
            .collect())
    }

    /// The roles `pick` takes from those asked for (`role_ids`) and those the user holds as staff
    /// of `group_id`; none when the user is not staff there or `pick` takes none.
    fn staff_roles_picked(
        &self,
        group_id: Id,
        role_ids: &[Id],
        pick: impl Fn(&BTreeSet<Id>, &BTreeSet<Id>) -> Vec<Id>,
    ) -> Option<Vec<Id>> {
        let held = self.staff.get(&group_id)?;
        let asked: BTreeSet<Id> = role_ids.iter().copied().collect();
        Some(pick(&asked, held)).filter(|picked| !picked.is_empty())
    }

    /// Every OIDC link removed, and a password reset requested so the user can choose a password.
    pub(super) fn oidc_unlinked(
        &self,
        reset_request: Id,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.oidc_links.is_empty() {
            return Err(UserError::NotLinked);
        }
        let last = self.oidc_links.len() - 1;
        let unlinked = self.oidc_links.keys().enumerate().map(|(n, provider_id)| {
            UserEvent::OidcUnlinked(OidcUnlinked {
                provider_id: *provider_id,
                reset_request: (n == last).then_some(reset_request),
            })
        });
        // An administrator's doing: the limits on reset requests do not apply.
        let reset = CodeRequest {
            request_id: reset_request,
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
}
