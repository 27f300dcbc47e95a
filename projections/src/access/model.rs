//! What the cache knows, folded from the log: tokens, sessions, clients, users' roles and enlistments.

use super::*;
use vigil_domain::users::user::KeptLogin;

#[derive(Debug, Clone)]
pub(super) struct SessionTokens {
    pub(super) user_id: Id,
    pub(super) application_id: Id,
    pub(super) access: IssuedToken,
    pub(super) refresh: IssuedToken,
    /// The digests of the refresh tokens it rotated that the session still remembers (see
    /// `Session::retired`): they find the session, whose aggregate ends it when one is reused.
    pub(super) retired: Vec<Digest>,
}

#[derive(Debug, Default)]
pub(super) struct Model {
    pub(super) access: HashMap<Digest, Id>,
    pub(super) refresh: HashMap<Digest, Id>,
    pub(super) sessions: HashMap<Id, SessionTokens>,
    pub(super) user_sessions: HashMap<Id, HashSet<Id>>,
    pub(super) user_roles: HashMap<Id, BTreeSet<Id>>,
    pub(super) roles: HashMap<Id, BTreeSet<String>>,
    /// User → the groups they are staff of, with the group roles held in each.
    pub(super) staff: HashMap<Id, BTreeMap<Id, BTreeSet<Id>>>,
    /// User → the groups they are a patient of.
    pub(super) patients: HashMap<Id, BTreeSet<Id>>,
    /// Group role → its group and the permissions it grants there.
    pub(super) group_roles: HashMap<Id, (Id, BTreeSet<String>)>,
    /// Unspent authorization codes (by digest) → their authorization and when they expire, and
    /// each authorization's code.
    pub(super) authorization_codes: HashMap<Digest, (Id, Timestamp)>,
    pub(super) authorizations: HashMap<Id, Digest>,
    /// Open MFA challenges (by token digest) → their user, id and expiry.
    pub(super) mfa_challenges: HashMap<Digest, (Id, Id, Timestamp)>,
    /// Application id → whether it is a confidential client.
    pub(super) applications: HashMap<Id, bool>,
    /// Client id → (application id, secret digest).
    pub(super) clients: HashMap<String, (Id, Digest)>,
    /// Version id → its client id.
    pub(super) versions: HashMap<Id, String>,
    /// OAuth1 consumer key → its version and sealed secret.
    pub(super) consumer_secrets: HashMap<String, (Id, Sealed)>,
    /// Valid OAuth1 tokens by digest, and each token's digest by id.
    pub(super) oauth1_tokens: HashMap<Digest, OAuth1Holder>,
    pub(super) oauth1_ids: HashMap<Id, Digest>,
    /// Unconsumed SSO tokens (by digest) → their id, user and expiry.
    pub(super) sso_tokens: HashMap<Digest, (Id, Id, Timestamp)>,
    /// Bumped whenever what a user is permitted may have changed.
    pub(super) generation: u64,
    /// The position of the last commit that changed how each user is shown (their profile, roles,
    /// login failures), and of the last change to any role.
    pub(super) user_changed: HashMap<Id, u64>,
    pub(super) roles_changed: u64,
    /// The purpose of each pending verification request, and the current mailed code of each
    /// user and purpose (by digest), so a presented code finds its user.
    pub(super) requests: HashMap<Id, Purpose>,
    pub(super) codes: HashMap<Digest, (Id, Purpose)>,
    pub(super) user_codes: HashMap<(Id, Purpose), Digest>,
}

impl Model {
    pub(super) fn apply(&mut self, recorded: &Recorded) {
        let position = recorded.position;
        for event in &recorded.commit.events {
            // Login throttling is keyed by address and names the account it concerns; the other
            // streams are keyed by their aggregate's id.
            if let Event::Login(login) = event {
                if let Some(user) = login.user_id() {
                    self.user_changed.insert(user, position);
                }
                continue;
            }
            let Some(id) = recorded.commit.stream.id() else {
                continue;
            };
            match event {
                Event::Session(event) => self.apply_session(id, event),
                Event::User(event) => {
                    self.user_changed.insert(id, position);
                    self.apply_user(id, event);
                }
                Event::Role(event) => {
                    self.roles_changed = position;
                    self.apply_role(id, event);
                }
                Event::Application(event) => self.apply_application(id, event),
                Event::Group(event) => {
                    self.roles_changed = position;
                    self.apply_group(id, event);
                }
                Event::Authorization(event) => self.apply_authorization(id, event),
                Event::Mfa(event) => self.apply_mfa(id, event),
                Event::OAuth1Token(event) => self.apply_oauth1_token(id, event),
                Event::SsoToken(SsoTokenEvent::Created(e)) => {
                    self.sso_tokens
                        .insert(e.digest, (id, e.user_id, e.expires_at));
                }
                Event::SsoToken(SsoTokenEvent::Consumed(_)) => {
                    self.sso_tokens.retain(|_, (sso, _, _)| *sso != id);
                }
                Event::Deployment(_)
                | Event::Reservation(_)
                | Event::Login(_)
                | Event::Settings(_)
                | Event::Presence(_)
                | Event::ResetRequest(_)
                | Event::OidcProvider(_)
                | Event::OidcLogin(_)
                | Event::Schema(_)
                | Event::Document(_)
                | Event::Bulk(_)
                | Event::Function(_)
                | Event::Task(_)
                | Event::Schedule(_)
                | Event::CustomEvent(_)
                | Event::Dispatcher(_)
                | Event::ApiRequest(_)
                | Event::Subscription(_)
                | Event::Localization(_)
                | Event::Template(_) => {}
            }
        }
    }

    pub(super) fn apply_session(&mut self, session_id: Id, event: &SessionEvent) {
        match event {
            SessionEvent::Started(e) => {
                self.access.insert(e.access.digest, session_id);
                self.refresh.insert(e.refresh.digest, session_id);
                self.user_sessions
                    .entry(e.user_id)
                    .or_default()
                    .insert(session_id);
                self.sessions.insert(
                    session_id,
                    SessionTokens {
                        user_id: e.user_id,
                        application_id: e.application_id,
                        access: e.access,
                        refresh: e.refresh,
                        retired: Vec::new(),
                    },
                );
            }
            SessionEvent::Refreshed(e) => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    return;
                };
                self.access.remove(&session.access.digest);
                session.retired.push(session.refresh.digest);
                let excess = session.retired.len().saturating_sub(RETIRED_KEPT);
                for forgotten in session.retired.drain(..excess) {
                    self.refresh.remove(&forgotten);
                }
                session.access = e.access;
                session.refresh = e.refresh;
                self.access.insert(e.access.digest, session_id);
                self.refresh.insert(e.refresh.digest, session_id);
            }
            SessionEvent::Ended(_) | SessionEvent::RefreshTokenReused(_) => {
                self.end_session(session_id);
            }
        }
    }

    pub(super) fn apply_user(&mut self, user_id: Id, event: &UserEvent) {
        match event {
            UserEvent::Registered(_) => {
                self.user_roles.entry(user_id).or_default();
            }
            UserEvent::RolesAdded(e) => {
                self.user_roles
                    .entry(user_id)
                    .or_default()
                    .extend(e.role_ids.iter().copied());
                self.generation += 1;
            }
            UserEvent::RolesRemoved(e) => {
                if let Some(roles) = self.user_roles.get_mut(&user_id) {
                    for role in &e.role_ids {
                        roles.remove(role);
                    }
                }
                self.generation += 1;
            }
            UserEvent::Deleted(_) => {
                self.user_roles.remove(&user_id);
                self.staff.remove(&user_id);
                self.patients.remove(&user_id);
                self.log_out_everywhere(user_id);
                for purpose in [Purpose::Activation, Purpose::PasswordReset] {
                    self.forget_code(user_id, purpose);
                }
                self.generation += 1;
            }
            // Linking an account to an OIDC provider removes its password, unlinking it ends the
            // provider's logins: either way every login ends.
            UserEvent::OidcLinked(_) | UserEvent::OidcUnlinked(_) => {
                self.log_out_everywhere(user_id);
            }
            UserEvent::LoggedOutElsewhere(e) => self.log_out_elsewhere(user_id, e.kept),
            UserEvent::PasswordReset(_) => {
                self.log_out_everywhere(user_id);
                self.forget_code(user_id, Purpose::PasswordReset);
            }
            UserEvent::Activated(_) => self.forget_code(user_id, Purpose::Activation),
            UserEvent::VerificationRequested(e) => {
                self.forget_code(user_id, e.purpose);
                self.requests.insert(e.request_id, e.purpose);
            }
            UserEvent::CodeRequested(e) => {
                self.forget_code(user_id, e.purpose);
                self.requests.insert(e.request_id, e.purpose);
            }
            UserEvent::VerificationCleared(e) => self.forget_code(user_id, e.purpose),
            UserEvent::VerificationCodeIssued(e) => {
                if let Some(purpose) = self.requests.get(&e.request_id).copied() {
                    self.forget_code(user_id, purpose);
                    self.codes.insert(e.digest, (user_id, purpose));
                    self.user_codes.insert((user_id, purpose), e.digest);
                }
            }
            UserEvent::StaffEnlisted(e) => {
                self.staff
                    .entry(user_id)
                    .or_default()
                    .entry(e.group_id)
                    .or_default();
                self.generation += 1;
            }
            UserEvent::StaffRemoved(e) => {
                if let Some(groups) = self.staff.get_mut(&user_id) {
                    groups.remove(&e.group_id);
                }
                self.generation += 1;
            }
            UserEvent::StaffRolesAdded(e) => {
                if let Some(held) = self
                    .staff
                    .get_mut(&user_id)
                    .and_then(|groups| groups.get_mut(&e.group_id))
                {
                    held.extend(e.role_ids.iter().copied());
                }
                self.generation += 1;
            }
            UserEvent::StaffRolesRemoved(e) => {
                if let Some(held) = self
                    .staff
                    .get_mut(&user_id)
                    .and_then(|groups| groups.get_mut(&e.group_id))
                {
                    for role in &e.role_ids {
                        held.remove(role);
                    }
                }
                self.generation += 1;
            }
            UserEvent::PatientEnlisted(e) => {
                self.patients.entry(user_id).or_default().insert(e.group_id);
                self.generation += 1;
            }
            UserEvent::PatientRemoved(e) => {
                if let Some(groups) = self.patients.get_mut(&user_id) {
                    groups.remove(&e.group_id);
                }
                self.generation += 1;
            }
            UserEvent::Updated(_)
            | UserEvent::PasswordChanged(_)
            | UserEvent::VerificationMailSent(_)
            | UserEvent::PinFailed(_)
            | UserEvent::EmailChanged(_)
            | UserEvent::ProfileImageSet(_) => {}
        }
    }

    pub(super) fn apply_role(&mut self, role_id: Id, event: &RoleEvent) {
        match event {
            RoleEvent::Created(_) => {
                self.roles.entry(role_id).or_default();
            }
            RoleEvent::PermissionsAdded(e) => {
                self.roles
                    .entry(role_id)
                    .or_default()
                    .extend(e.permissions.iter().cloned());
            }
            RoleEvent::PermissionsRemoved(e) => {
                if let Some(permissions) = self.roles.get_mut(&role_id) {
                    for permission in &e.permissions {
                        permissions.remove(permission);
                    }
                }
            }
            RoleEvent::Deleted(_) => {
                self.roles.remove(&role_id);
            }
            RoleEvent::Updated(_) => return,
        }
        self.generation += 1;
    }

    pub(super) fn apply_authorization(&mut self, authorization_id: Id, event: &AuthorizationEvent) {
        match event {
            AuthorizationEvent::Created(e) => {
                self.authorization_codes
                    .insert(e.code_digest, (authorization_id, e.expires_at));
                self.authorizations.insert(authorization_id, e.code_digest);
            }
            // A redeemed code still finds its authorization until it expires, so that presenting
            // it again is recognised as a replay (`prune` forgets it).
            AuthorizationEvent::Redeemed(_) | AuthorizationEvent::CodeReplayed(_) => {}
            AuthorizationEvent::Revoked(_) => {
                if let Some(digest) = self.authorizations.remove(&authorization_id) {
                    self.authorization_codes.remove(&digest);
                }
            }
        }
    }

    pub(super) fn apply_mfa(&mut self, user_id: Id, event: &MfaEvent) {
        match event {
            MfaEvent::ChallengeIssued(e) => {
                self.mfa_challenges
                    .insert(e.digest, (user_id, e.challenge_id, e.expires_at));
            }
            MfaEvent::ChallengePassed(e) => {
                self.mfa_challenges
                    .retain(|_, (_, challenge, _)| *challenge != e.challenge_id);
            }
            MfaEvent::Disabled(_) => self.forget_mfa_challenges(user_id),
            MfaEvent::MethodAdded(_)
            | MfaEvent::MethodVerified(_)
            | MfaEvent::MethodRemoved(_)
            | MfaEvent::Enabled(_)
            | MfaEvent::AttemptFailed(_) => {}
        }
    }

    pub(super) fn apply_oauth1_token(&mut self, token_id: Id, event: &OAuth1TokenEvent) {
        match event {
            OAuth1TokenEvent::Created(e) => {
                let holder = OAuth1Holder {
                    token_id,
                    user_id: e.user_id,
                    application_id: e.application_id,
                    secret: e.secret.clone(),
                };
                self.oauth1_tokens.insert(e.token_digest, holder);
                self.oauth1_ids.insert(token_id, e.token_digest);
            }
            OAuth1TokenEvent::Revoked(_) => {
                if let Some(digest) = self.oauth1_ids.remove(&token_id) {
                    self.oauth1_tokens.remove(&digest);
                }
            }
        }
    }

    /// Forgets the OAuth1 tokens `holds` picks out.
    pub(super) fn forget_oauth1_tokens(&mut self, holds: impl Fn(&OAuth1Holder) -> bool) {
        let ids = &mut self.oauth1_ids;
        self.oauth1_tokens.retain(|_, holder| {
            let keep = !holds(holder);
            if !keep {
                ids.remove(&holder.token_id);
            }
            keep
        });
    }

    pub(super) fn forget_mfa_challenges(&mut self, user_id: Id) {
        self.mfa_challenges
            .retain(|_, (user, _, _)| *user != user_id);
    }

    /// Ends every login of the user: sessions, OAuth1 tokens, MFA challenges and SSO tokens.
    pub(super) fn log_out_everywhere(&mut self, user_id: Id) {
        self.log_out_elsewhere(user_id, KeptLogin::None);
    }

    /// Ends every login of the user but `kept`.
    pub(super) fn log_out_elsewhere(&mut self, user_id: Id, kept: KeptLogin) {
        let sessions = self
            .user_sessions
            .get(&user_id)
            .cloned()
            .unwrap_or_default();
        for session in sessions {
            if kept != KeptLogin::Session(session) {
                self.end_session(session);
            }
        }
        self.forget_mfa_challenges(user_id);
        self.forget_oauth1_tokens(|holder| {
            holder.user_id == user_id && kept != KeptLogin::OAuth1Token(holder.token_id)
        });
        self.sso_tokens.retain(|_, (_, user, _)| *user != user_id);
    }

    pub(super) fn apply_group(&mut self, group_id: Id, event: &GroupEvent) {
        match event {
            GroupEvent::RoleCreated(e) => {
                self.group_roles
                    .insert(e.role_id, (group_id, BTreeSet::new()));
            }
            GroupEvent::RolePermissionsAdded(e) => {
                if let Some((_, permissions)) = self.group_roles.get_mut(&e.role_id) {
                    permissions.extend(e.permissions.iter().cloned());
                }
            }
            GroupEvent::RolePermissionsRemoved(e) => {
                if let Some((_, permissions)) = self.group_roles.get_mut(&e.role_id) {
                    for permission in &e.permissions {
                        permissions.remove(permission);
                    }
                }
            }
            GroupEvent::RoleDeleted(e) => {
                self.group_roles.remove(&e.role_id);
            }
            GroupEvent::RoleUpdated(_) => return,
        }
        self.generation += 1;
    }

    pub(super) fn apply_application(&mut self, application_id: Id, event: &ApplicationEvent) {
        match event {
            ApplicationEvent::Created(e) => {
                let confidential = match &e.kind {
                    ApplicationKind::OAuth2 { confidential, .. } => *confidential,
                    // OAuth1 consumers always sign with their secret.
                    ApplicationKind::OAuth1 => true,
                };
                self.applications.insert(application_id, confidential);
            }
            ApplicationEvent::VersionCreated(e) => {
                self.clients
                    .insert(e.client_id.clone(), (application_id, e.secret_digest));
                self.versions.insert(e.version_id, e.client_id.clone());
            }
            ApplicationEvent::VersionDeleted(e) => {
                if let Some(client_id) = self.versions.remove(&e.version_id) {
                    self.clients.remove(&client_id);
                    self.consumer_secrets.remove(&client_id);
                }
            }
            ApplicationEvent::Deleted(_) => {
                self.applications.remove(&application_id);
                let clients = &mut self.clients;
                self.consumer_secrets.retain(|client_id, _| {
                    clients
                        .get(client_id)
                        .is_none_or(|(owner, _)| *owner != application_id)
                });
                clients.retain(|_, (owner, _)| *owner != application_id);
                self.forget_oauth1_tokens(|holder| holder.application_id == application_id);
            }
            ApplicationEvent::ConsumerSecretSealed(e) => {
                if let Some(client_id) = self.versions.get(&e.version_id) {
                    self.consumer_secrets
                        .insert(client_id.clone(), (e.version_id, e.secret.clone()));
                }
            }
            ApplicationEvent::Updated(_) => {}
        }
    }

    pub(super) fn rights_of(&self, user_id: Id) -> Rights {
        let global = self
            .user_roles
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|role| self.roles.get(role))
            .flatten()
            .cloned()
            .collect();
        let staff = self
            .staff
            .get(&user_id)
            .into_iter()
            .flatten()
            .map(|(group, roles)| {
                let permissions: Permissions = roles
                    .iter()
                    .filter_map(|role| self.group_roles.get(role))
                    .filter(|(owner, _)| owner == group)
                    .flat_map(|(_, permissions)| permissions.iter().cloned())
                    .collect();
                (*group, permissions)
            })
            .collect();
        let patient = self.patients.get(&user_id).cloned().unwrap_or_default();
        Rights {
            global,
            staff,
            patient,
        }
    }

    pub(super) fn forget_code(&mut self, user_id: Id, purpose: Purpose) {
        if let Some(digest) = self.user_codes.remove(&(user_id, purpose)) {
            self.codes.remove(&digest);
        }
    }

    /// Forgets a session and its tokens.
    pub(super) fn end_session(&mut self, session_id: Id) {
        if let Some(session) = self.sessions.remove(&session_id) {
            self.access.remove(&session.access.digest);
            self.refresh.remove(&session.refresh.digest);
            for retired in &session.retired {
                self.refresh.remove(retired);
            }
            if let Some(sessions) = self.user_sessions.get_mut(&session.user_id) {
                sessions.remove(&session_id);
                if sessions.is_empty() {
                    self.user_sessions.remove(&session.user_id);
                }
            }
        }
    }

    /// Forgets sessions that can no longer be used: their refresh token has expired.
    pub(super) fn prune(&mut self, now: Timestamp) {
        let expired: Vec<Id> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.refresh.expires_at <= now && s.access.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for session_id in expired {
            self.end_session(session_id);
        }
        self.authorization_codes
            .retain(|_, (authorization, expires_at)| {
                let live = *expires_at > now;
                if !live {
                    self.authorizations.remove(authorization);
                }
                live
            });
        self.mfa_challenges
            .retain(|_, (_, _, expires_at)| *expires_at > now);
        self.sso_tokens
            .retain(|_, (_, _, expires_at)| *expires_at > now);
    }
}
