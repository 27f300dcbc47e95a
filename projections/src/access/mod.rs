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
use vigil_domain::auth::application::ApplicationKind;
use vigil_domain::auth::session::{IssuedToken, RETIRED_KEPT};
use vigil_domain::commit::Recorded;
use vigil_domain::event::{
    ApplicationEvent, AuthorizationEvent, Event, GroupEvent, MfaEvent, OAuth1TokenEvent, RoleEvent,
    SessionEvent, SsoTokenEvent, UserEvent,
};
use vigil_domain::id::{Digest, Id};
use vigil_domain::log::{EventLog, LogError};
use vigil_domain::permission::Permissions;
use vigil_domain::users::verification::Purpose;
use vigil_domain::value::{Sealed, Timestamp};

mod model;
#[cfg(test)]
mod tests;

use model::*;

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

    /// The session whose current refresh token, or one it rotated not long ago (whose reuse the
    /// session's aggregate then takes for theft), has this digest.
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
