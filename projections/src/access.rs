//! The access cache: who a token belongs to and what that user may do, held in memory on every
//! node and kept current by following the log.
//!
//! Every request is authenticated against this cache, never against the read store, so a warm
//! request costs a hash lookup and no query. Because each node follows the log itself, revoking a
//! token, removing a role or a permission, or deleting a user takes effect on every node as soon as
//! the commit reaches it (milliseconds; the log's live tail), independent of read-model lag.
//!
//! A token this node has not seen yet may have been issued a moment ago on another node: callers
//! ask [`AccessCache::catch_up`] to reach the log's head before they call a token unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_domain::actor::Rights;
use vigil_domain::application::ApplicationKind;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{
    ApplicationEvent, AuthorizationEvent, Event, GroupEvent, MfaEvent, OAuth1TokenEvent, RoleEvent,
    SessionEvent, SsoTokenEvent, UserEvent,
};
use vigil_domain::id::{Digest, Id};
use vigil_domain::log::{EventLog, LogError};
use vigil_domain::permission::Permissions;
use vigil_domain::session::IssuedToken;
use vigil_domain::value::{Sealed, Timestamp};
use vigil_domain::verification::Purpose;

/// How often sessions whose refresh token has expired are dropped from memory.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Pause before following the log again after it failed.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The holder of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    pub session_id: Id,
    pub user_id: Id,
    pub application_id: Id,
    pub expires_at: Timestamp,
}

/// What the token endpoint needs to know about a client id (OAuth2) or consumer key (OAuth1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub application_id: Id,
    pub confidential: bool,
    pub secret_digest: Digest,
}

/// An OAuth1 consumer: its application, and the version whose sealed secret signs requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub application_id: Id,
    pub version_id: Id,
    pub secret: Sealed,
}

/// The holder of an OAuth1 token, and the token's sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth1Holder {
    pub token_id: Id,
    pub user_id: Id,
    pub application_id: Id,
    pub secret: Sealed,
}

#[derive(Debug, Clone)]
struct SessionTokens {
    user_id: Id,
    application_id: Id,
    access: IssuedToken,
    refresh: IssuedToken,
}

#[derive(Debug, Default)]
struct Model {
    access: HashMap<Digest, Id>,
    refresh: HashMap<Digest, Id>,
    sessions: HashMap<Id, SessionTokens>,
    user_sessions: HashMap<Id, HashSet<Id>>,
    user_roles: HashMap<Id, BTreeSet<Id>>,
    roles: HashMap<Id, BTreeSet<String>>,
    /// User → the groups they are staff of, with the group roles held in each.
    staff: HashMap<Id, BTreeMap<Id, BTreeSet<Id>>>,
    /// User → the groups they are a patient of.
    patients: HashMap<Id, BTreeSet<Id>>,
    /// Group role → its group and the permissions it grants there.
    group_roles: HashMap<Id, (Id, BTreeSet<String>)>,
    /// Unspent authorization codes (by digest) → their authorization and when they expire, and
    /// each authorization's code.
    authorization_codes: HashMap<Digest, (Id, Timestamp)>,
    authorizations: HashMap<Id, Digest>,
    /// Open MFA challenges (by token digest) → their user, id and expiry.
    mfa_challenges: HashMap<Digest, (Id, Id, Timestamp)>,
    /// Application id → whether it is a confidential client.
    applications: HashMap<Id, bool>,
    /// Client id → (application id, secret digest).
    clients: HashMap<String, (Id, Digest)>,
    /// Version id → its client id.
    versions: HashMap<Id, String>,
    /// OAuth1 consumer key → its version and sealed secret.
    consumer_secrets: HashMap<String, (Id, Sealed)>,
    /// Valid OAuth1 tokens by digest, and each token's digest by id.
    oauth1_tokens: HashMap<Digest, OAuth1Holder>,
    oauth1_ids: HashMap<Id, Digest>,
    /// Unconsumed SSO tokens (by digest) → their id, user and expiry.
    sso_tokens: HashMap<Digest, (Id, Id, Timestamp)>,
    /// Bumped whenever what a user is permitted may have changed.
    generation: u64,
    /// The position of the last commit that changed how each user is shown (their profile, roles,
    /// login failures), and of the last change to any role.
    user_changed: HashMap<Id, u64>,
    roles_changed: u64,
    /// The purpose of each pending verification request, and the current mailed code of each
    /// user and purpose (by digest), so a presented code finds its user.
    requests: HashMap<Id, Purpose>,
    codes: HashMap<Digest, (Id, Purpose)>,
    user_codes: HashMap<(Id, Purpose), Digest>,
}

impl Model {
    fn apply(&mut self, recorded: &Recorded) {
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
                | Event::Document(_) => {}
            }
        }
    }

    fn apply_session(&mut self, session_id: Id, event: &SessionEvent) {
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
                    },
                );
            }
            SessionEvent::Refreshed(e) => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    return;
                };
                self.access.remove(&session.access.digest);
                self.refresh.remove(&session.refresh.digest);
                session.access = e.access;
                session.refresh = e.refresh;
                self.access.insert(e.access.digest, session_id);
                self.refresh.insert(e.refresh.digest, session_id);
            }
            SessionEvent::Ended(_) => self.end_session(session_id),
        }
    }

    fn apply_user(&mut self, user_id: Id, event: &UserEvent) {
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

    fn apply_role(&mut self, role_id: Id, event: &RoleEvent) {
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

    fn apply_authorization(&mut self, authorization_id: Id, event: &AuthorizationEvent) {
        match event {
            AuthorizationEvent::Created(e) => {
                self.authorization_codes
                    .insert(e.code_digest, (authorization_id, e.expires_at));
                self.authorizations.insert(authorization_id, e.code_digest);
            }
            AuthorizationEvent::Redeemed(_) | AuthorizationEvent::Revoked(_) => {
                if let Some(digest) = self.authorizations.remove(&authorization_id) {
                    self.authorization_codes.remove(&digest);
                }
            }
        }
    }

    fn apply_mfa(&mut self, user_id: Id, event: &MfaEvent) {
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

    fn apply_oauth1_token(&mut self, token_id: Id, event: &OAuth1TokenEvent) {
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
    fn forget_oauth1_tokens(&mut self, holds: impl Fn(&OAuth1Holder) -> bool) {
        let ids = &mut self.oauth1_ids;
        self.oauth1_tokens.retain(|_, holder| {
            let keep = !holds(holder);
            if !keep {
                ids.remove(&holder.token_id);
            }
            keep
        });
    }

    fn forget_mfa_challenges(&mut self, user_id: Id) {
        self.mfa_challenges
            .retain(|_, (user, _, _)| *user != user_id);
    }

    /// Ends every login of the user: sessions, OAuth1 tokens, MFA challenges and SSO tokens.
    fn log_out_everywhere(&mut self, user_id: Id) {
        self.end_sessions_of(user_id);
        self.forget_mfa_challenges(user_id);
        self.forget_oauth1_tokens(|holder| holder.user_id == user_id);
        self.sso_tokens.retain(|_, (_, user, _)| *user != user_id);
    }

    fn apply_group(&mut self, group_id: Id, event: &GroupEvent) {
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

    fn apply_application(&mut self, application_id: Id, event: &ApplicationEvent) {
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

    fn rights_of(&self, user_id: Id) -> Rights {
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

    fn end_sessions_of(&mut self, user_id: Id) {
        for session in self.user_sessions.remove(&user_id).unwrap_or_default() {
            self.end_session(session);
        }
    }

    fn forget_code(&mut self, user_id: Id, purpose: Purpose) {
        if let Some(digest) = self.user_codes.remove(&(user_id, purpose)) {
            self.codes.remove(&digest);
        }
    }

    /// Forgets a session and its tokens.
    fn end_session(&mut self, session_id: Id) {
        if let Some(session) = self.sessions.remove(&session_id) {
            self.access.remove(&session.access.digest);
            self.refresh.remove(&session.refresh.digest);
            if let Some(sessions) = self.user_sessions.get_mut(&session.user_id) {
                sessions.remove(&session_id);
                if sessions.is_empty() {
                    self.user_sessions.remove(&session.user_id);
                }
            }
        }
    }

    /// Forgets sessions that can no longer be used: their refresh token has expired.
    fn prune(&mut self, now: Timestamp) {
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

/// Per-user rights, computed once per change of roles or enlistments.
#[derive(Default)]
struct Memo {
    generation: u64,
    rights: HashMap<Id, Arc<Rights>>,
}

/// The access cache of this node.
pub struct AccessCache {
    model: RwLock<Model>,
    memo: Mutex<Memo>,
    position: watch::Sender<u64>,
    follower: Mutex<Option<JoinHandle<()>>>,
}

impl AccessCache {
    /// An empty cache that is not following any log (see [`AccessCache::follow`]).
    pub fn new() -> Self {
        Self {
            model: RwLock::default(),
            memo: Mutex::default(),
            position: watch::Sender::new(0),
            follower: Mutex::default(),
        }
    }

    /// A cache that follows `log` from its first commit, for as long as it lives.
    pub fn follow(log: Arc<dyn EventLog>) -> Arc<Self> {
        let access = Arc::new(Self::new());
        let task = tokio::spawn(run(Arc::downgrade(&access), log));
        if let Ok(mut follower) = access.follower.lock() {
            *follower = Some(task);
        }
        access
    }

    /// Folds one commit into the cache. Commits must arrive in log order, each once.
    pub fn apply(&self, recorded: &Recorded) {
        if let Ok(mut model) = self.model.write() {
            model.apply(recorded);
        }
        self.position.send_replace(recorded.position);
    }

    /// The position of the last commit folded in.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the cache has folded in everything up to `position`; false after `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut seen = self.position.subscribe();
        tokio::time::timeout(timeout, seen.wait_for(|at| *at >= position))
            .await
            .is_ok_and(|reached| reached.is_ok())
    }

    /// Catches up with the log's current head (up to `timeout`): what a node does before it calls
    /// a token unknown, since another node may have issued it an instant ago.
    pub async fn catch_up(&self, log: &dyn EventLog, timeout: Duration) -> Result<(), LogError> {
        let head = log.head().await?;
        if head > self.position() {
            self.wait_for(head, timeout).await;
        }
        Ok(())
    }

    /// The holder of the access token with this digest, if it is a current one.
    pub fn bearer(&self, digest: &Digest) -> Option<Bearer> {
        let model = self.model.read().ok()?;
        let session_id = *model.access.get(digest)?;
        let session = model.sessions.get(&session_id)?;
        // Tokens die with their application.
        model.applications.get(&session.application_id)?;
        Some(Bearer {
            session_id,
            user_id: session.user_id,
            application_id: session.application_id,
            expires_at: session.access.expires_at,
        })
    }

    /// The session whose current refresh token has this digest.
    pub fn session_of_refresh_token(&self, digest: &Digest) -> Option<Id> {
        self.model.read().ok()?.refresh.get(digest).copied()
    }

    /// The application behind a client id, with its secret's digest.
    pub fn client(&self, client_id: &str) -> Option<Client> {
        let model = self.model.read().ok()?;
        let (application_id, secret_digest) = *model.clients.get(client_id)?;
        let confidential = *model.applications.get(&application_id)?;
        Some(Client {
            application_id,
            confidential,
            secret_digest,
        })
    }

    /// The position of the last commit that changed how `user_id` is shown: a view of the user
    /// read at a position at or after it is current.
    pub fn view_changed_at(&self, user_id: Id) -> u64 {
        self.model.read().map_or(u64::MAX, |model| {
            model
                .user_changed
                .get(&user_id)
                .copied()
                .unwrap_or(0)
                .max(model.roles_changed)
        })
    }

    /// The user a mailed verification code (by digest) was sent to, and what it is for.
    pub fn verification_code(&self, digest: &Digest) -> Option<(Id, Purpose)> {
        self.model.read().ok()?.codes.get(digest).copied()
    }

    /// Whether a global role with this id exists.
    pub fn role_exists(&self, role_id: Id) -> bool {
        self.model
            .read()
            .is_ok_and(|model| model.roles.contains_key(&role_id))
    }

    /// The authorization whose unspent code has this digest.
    pub fn authorization_of_code(&self, digest: &Digest) -> Option<Id> {
        let model = self.model.read().ok()?;
        model.authorization_codes.get(digest).map(|(id, _)| *id)
    }

    /// The OAuth1 consumer with this key.
    pub fn consumer(&self, key: &str) -> Option<Consumer> {
        let model = self.model.read().ok()?;
        let (application_id, _) = *model.clients.get(key)?;
        let (version_id, secret) = model.consumer_secrets.get(key)?.clone();
        Some(Consumer {
            application_id,
            version_id,
            secret,
        })
    }

    /// The holder of the valid OAuth1 token with this digest.
    pub fn oauth1_token(&self, digest: &Digest) -> Option<OAuth1Holder> {
        self.model.read().ok()?.oauth1_tokens.get(digest).cloned()
    }

    /// The unconsumed SSO token with this digest.
    pub fn sso_token(&self, digest: &Digest) -> Option<Id> {
        let model = self.model.read().ok()?;
        model.sso_tokens.get(digest).map(|(id, _, _)| *id)
    }

    /// The user an open MFA challenge (by token digest) was issued to.
    pub fn mfa_challenge_user(&self, digest: &Digest) -> Option<Id> {
        let model = self.model.read().ok()?;
        model.mfa_challenges.get(digest).map(|(user, _, _)| *user)
    }

    /// Whether `role_id` is a role of `group_id`.
    pub fn group_role_exists(&self, group_id: Id, role_id: Id) -> bool {
        self.model.read().is_ok_and(|model| {
            model
                .group_roles
                .get(&role_id)
                .is_some_and(|(group, _)| *group == group_id)
        })
    }

    /// What `user_id` may do: their global permissions through their roles, and their staff and
    /// patient enlistments with the permissions their group roles give.
    pub fn rights(&self, user_id: Id) -> Arc<Rights> {
        let Ok(model) = self.model.read() else {
            return Arc::default();
        };
        let Ok(mut memo) = self.memo.lock() else {
            return Arc::new(model.rights_of(user_id));
        };
        if memo.generation != model.generation {
            memo.generation = model.generation;
            memo.rights.clear();
        }
        memo.rights
            .entry(user_id)
            .or_insert_with(|| Arc::new(model.rights_of(user_id)))
            .clone()
    }

    fn prune(&self, now: Timestamp) {
        if let Ok(mut model) = self.model.write() {
            model.prune(now);
        }
    }

    /// Stops following the log.
    pub fn shutdown(&self) {
        if let Some(task) = self.follower.lock().ok().and_then(|mut f| f.take()) {
            task.abort();
        }
    }
}

impl Default for AccessCache {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AccessCache {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Follows the log into the cache until the cache is dropped; a failed subscription is resumed
/// from the last commit folded in, so no commit is skipped or applied twice.
async fn run(access: std::sync::Weak<AccessCache>, log: Arc<dyn EventLog>) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        let Some(after) = access.upgrade().map(|a| a.position()) else {
            return;
        };
        let mut commits = log.subscribe(after);
        loop {
            tokio::select! {
                next = commits.next() => match next {
                    Some(Ok(recorded)) => {
                        let Some(access) = access.upgrade() else { return };
                        if recorded.position > access.position() {
                            access.apply(&recorded);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "the access cache lost the log; resuming");
                        break;
                    }
                    None => break,
                },
                _ = prune.tick() => {
                    let Some(access) = access.upgrade() else { return };
                    access.prune(Timestamp::now());
                }
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_domain::actor::{Actor, Via};
    use vigil_domain::aggregate::Aggregate;
    use vigil_domain::application::{Application, ApplicationCreated, ApplicationVersionCreated};
    use vigil_domain::commit::{CommandMeta, Commit};
    use vigil_domain::id::StreamId;
    use vigil_domain::role::{
        Role, RoleCreated, RoleDeleted, RolePermissionsAdded, RolePermissionsRemoved,
    };
    use vigil_domain::session::{Session, SessionRefreshed, SessionStarted};
    use vigil_domain::user::{User, UserRolesAdded, UserRolesRemoved};

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 12])
    }

    /// Folds `events` of the aggregate `kind`/`key` in as the commit at `position`.
    fn record(access: &AccessCache, position: u64, stream: StreamId, events: Vec<Event>) {
        let meta = CommandMeta {
            command_id: format!("c{position}"),
            correlation_id: String::new(),
            causation_id: None,
            reason: None,
            actor: Actor::system(Via::Cli),
        };
        let commit = Commit::next(stream, None, &meta, NOW, events);
        access.apply(&Recorded {
            position,
            commit,
            hash: Digest::default(),
        });
    }

    fn token(n: u8, expires_at: Timestamp) -> IssuedToken {
        IssuedToken {
            id: id(n),
            digest: Digest::of(&[n]),
            expires_at,
        }
    }

    fn application_created(access: &AccessCache, position: u64, application: u8) {
        let created = ApplicationEvent::Created(ApplicationCreated {
            name: "App".into(),
            description: "An app".into(),
            kind: ApplicationKind::OAuth2 {
                confidential: true,
                redirect_uris: vec![],
            },
        });
        let stream = StreamId::of(Application::KIND, id(application));
        record(access, position, stream, vec![created.into()]);
    }

    /// A cache that knows the application (`50`) every test session belongs to.
    fn cache() -> AccessCache {
        let access = AccessCache::new();
        application_created(&access, 0, 50);
        access
    }

    fn session_started(
        access: &AccessCache,
        position: u64,
        session: u8,
        user: u8,
        tokens: (u8, u8),
    ) {
        let started = SessionEvent::Started(SessionStarted {
            user_id: id(user),
            application_id: id(50),
            access: token(tokens.0, NOW.plus_seconds(60)),
            refresh: token(tokens.1, NOW.plus_seconds(600)),
        });
        let stream = StreamId::of(Session::KIND, id(session));
        record(access, position, stream, vec![started.into()]);
    }

    #[test]
    fn an_access_token_names_its_session_user_and_application() {
        let access = cache();
        session_started(&access, 1, 1, 2, (10, 11));
        let bearer = access.bearer(&Digest::of(&[10]));
        assert_eq!(
            bearer,
            Some(Bearer {
                session_id: id(1),
                user_id: id(2),
                application_id: id(50),
                expires_at: NOW.plus_seconds(60),
            })
        );
        assert_eq!(
            access.bearer(&Digest::of(&[11])),
            None,
            "a refresh token is no bearer"
        );
        assert_eq!(
            access.session_of_refresh_token(&Digest::of(&[11])),
            Some(id(1))
        );
        assert_eq!(access.position(), 1);
    }

    #[test]
    fn refreshing_retires_both_previous_tokens() {
        let access = cache();
        session_started(&access, 1, 1, 2, (10, 11));
        let refreshed = SessionEvent::Refreshed(SessionRefreshed {
            access: token(12, NOW.plus_seconds(60)),
            refresh: token(13, NOW.plus_seconds(600)),
        });
        record(
            &access,
            2,
            StreamId::of(Session::KIND, id(1)),
            vec![refreshed.into()],
        );
        assert_eq!(access.bearer(&Digest::of(&[10])), None);
        assert_eq!(access.session_of_refresh_token(&Digest::of(&[11])), None);
        assert_eq!(
            access.bearer(&Digest::of(&[12])).map(|b| b.user_id),
            Some(id(2))
        );
        assert_eq!(
            access.session_of_refresh_token(&Digest::of(&[13])),
            Some(id(1))
        );
    }

    #[test]
    fn permissions_follow_roles_and_their_permissions() {
        let access = cache();
        let role = StreamId::of(Role::KIND, id(7));
        let user = StreamId::of(User::KIND, id(2));
        let created = RoleEvent::Created(RoleCreated {
            name: "Viewer".into(),
            description: String::new(),
        });
        let granted = RoleEvent::PermissionsAdded(RolePermissionsAdded {
            permissions: vec!["VIEW_USER".into(), "VIEW_ROLE".into()],
        });
        record(
            &access,
            1,
            role.clone(),
            vec![created.into(), granted.into()],
        );
        assert!(!access.rights(id(2)).global.allows("VIEW_USER"));
        let given = UserEvent::RolesAdded(UserRolesAdded {
            role_ids: vec![id(7)],
        });
        record(&access, 2, user.clone(), vec![given.into()]);
        assert!(access.rights(id(2)).global.allows("VIEW_USER"));

        let revoked = RoleEvent::PermissionsRemoved(RolePermissionsRemoved {
            permissions: vec!["VIEW_USER".into()],
        });
        record(&access, 3, role.clone(), vec![revoked.into()]);
        let now = &access.rights(id(2)).global;
        assert!(!now.allows("VIEW_USER") && now.allows("VIEW_ROLE"));

        record(
            &access,
            4,
            role,
            vec![RoleEvent::Deleted(RoleDeleted {}).into()],
        );
        assert!(!access.rights(id(2)).global.allows("VIEW_ROLE"));
        assert!(!access.role_exists(id(7)));

        let taken = UserEvent::RolesRemoved(UserRolesRemoved {
            role_ids: vec![id(7)],
        });
        record(&access, 5, user, vec![taken.into()]);
        assert_eq!(access.rights(id(2)).global.iter().count(), 0);
    }

    #[test]
    fn group_roles_grant_staff_permissions_inside_their_group_only() {
        use vigil_domain::group::{
            Group, GroupRoleCreated, GroupRoleDeleted, GroupRolePermissionsAdded,
        };
        use vigil_domain::user::{PatientEnlisted, StaffEnlisted, StaffRemoved, StaffRolesAdded};
        let access = cache();
        let group = StreamId::of(Group::KIND, id(30));
        let user = StreamId::of(User::KIND, id(2));
        let created = GroupEvent::RoleCreated(GroupRoleCreated {
            role_id: id(31),
            name: "Physician".into(),
            description: String::new(),
        });
        let granted = GroupEvent::RolePermissionsAdded(GroupRolePermissionsAdded {
            role_id: id(31),
            permissions: vec!["VIEW_DOCUMENTS".into()],
        });
        record(
            &access,
            1,
            group.clone(),
            vec![created.into(), granted.into()],
        );
        assert!(access.group_role_exists(id(30), id(31)));
        assert!(!access.group_role_exists(id(29), id(31)));
        let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(30) });
        let given = UserEvent::StaffRolesAdded(StaffRolesAdded {
            group_id: id(30),
            role_ids: vec![id(31)],
        });
        let patient = UserEvent::PatientEnlisted(PatientEnlisted {
            group_id: id(40),
            expires_at: None,
        });
        record(
            &access,
            2,
            user.clone(),
            vec![enlisted.into(), given.into(), patient.into()],
        );
        let rights = access.rights(id(2));
        assert!(rights.staff[&id(30)].allows("VIEW_DOCUMENTS:bp"));
        assert!(!rights.global.allows("VIEW_DOCUMENTS"));
        assert!(rights.patient.contains(&id(40)));

        let deleted = GroupEvent::RoleDeleted(GroupRoleDeleted { role_id: id(31) });
        record(&access, 3, group, vec![deleted.into()]);
        assert!(!access.rights(id(2)).staff[&id(30)].allows("VIEW_DOCUMENTS"));

        let removed = UserEvent::StaffRemoved(StaffRemoved { group_id: id(30) });
        record(&access, 4, user, vec![removed.into()]);
        assert!(access.rights(id(2)).staff.is_empty());
    }

    #[test]
    fn a_deleted_user_is_logged_out_everywhere() {
        let access = cache();
        session_started(&access, 1, 1, 2, (10, 11));
        session_started(&access, 2, 3, 2, (12, 13));
        session_started(&access, 3, 4, 5, (14, 15));
        let deleted = UserEvent::Deleted(vigil_domain::user::UserDeleted {});
        record(
            &access,
            4,
            StreamId::of(User::KIND, id(2)),
            vec![deleted.into()],
        );
        for gone in [10, 12] {
            assert_eq!(access.bearer(&Digest::of(&[gone])), None);
        }
        assert_eq!(access.session_of_refresh_token(&Digest::of(&[13])), None);
        assert!(
            access.bearer(&Digest::of(&[14])).is_some(),
            "other users stay logged in"
        );
    }

    #[test]
    fn tokens_and_clients_die_with_their_application() {
        let access = cache();
        session_started(&access, 1, 1, 2, (10, 11));
        let version = ApplicationEvent::VersionCreated(ApplicationVersionCreated {
            version_id: id(51),
            name: "1.0".into(),
            client_id: "client".into(),
            secret_digest: Digest::of(b"secret"),
        });
        let application = StreamId::of(Application::KIND, id(50));
        record(&access, 2, application.clone(), vec![version.into()]);
        assert!(access.client("client").is_some());
        let deleted = ApplicationEvent::Deleted(vigil_domain::application::ApplicationDeleted {});
        record(&access, 3, application, vec![deleted.into()]);
        assert_eq!(access.client("client"), None);
        assert_eq!(access.bearer(&Digest::of(&[10])), None);
    }

    #[test]
    fn clients_are_found_by_client_id() {
        let access = cache();
        let application = StreamId::of(Application::KIND, id(50));
        let created = ApplicationEvent::Created(ApplicationCreated {
            name: "App".into(),
            description: "An app".into(),
            kind: ApplicationKind::OAuth2 {
                confidential: true,
                redirect_uris: vec![],
            },
        });
        let version = ApplicationEvent::VersionCreated(ApplicationVersionCreated {
            version_id: id(51),
            name: "1.0".into(),
            client_id: "client".into(),
            secret_digest: Digest::of(b"secret"),
        });
        record(
            &access,
            1,
            application,
            vec![created.into(), version.into()],
        );
        assert_eq!(
            access.client("client"),
            Some(Client {
                application_id: id(50),
                confidential: true,
                secret_digest: Digest::of(b"secret"),
            })
        );
        assert_eq!(access.client("other"), None);
    }

    #[test]
    fn sessions_that_can_no_longer_be_used_are_forgotten() {
        let access = cache();
        session_started(&access, 1, 1, 2, (10, 11));
        access.prune(NOW.plus_seconds(599));
        assert!(
            access
                .session_of_refresh_token(&Digest::of(&[11]))
                .is_some()
        );
        access.prune(NOW.plus_seconds(600));
        assert_eq!(access.session_of_refresh_token(&Digest::of(&[11])), None);
        assert_eq!(access.bearer(&Digest::of(&[10])), None);
    }

    #[tokio::test]
    async fn waiting_ends_when_the_position_is_reached_or_time_runs_out() {
        let access = Arc::new(cache());
        assert!(!access.wait_for(1, Duration::from_millis(20)).await);
        let waiter = tokio::spawn({
            let access = access.clone();
            async move { access.wait_for(1, Duration::from_secs(5)).await }
        });
        session_started(&access, 1, 1, 2, (10, 11));
        assert!(waiter.await.unwrap_or(false));
    }
}
