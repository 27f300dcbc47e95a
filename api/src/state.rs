//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use vigil_commands::CommandBus;
use vigil_commands::auth::session::TokenLifetimes;
use vigil_commands::ids::IdGenerator;
use vigil_commands::secrets::Vault;
use vigil_projections::access::AccessCache;
use vigil_projections::runner::{Projector, WaitError};
use vigil_projections::store::ReadStore;

use crate::error::ApiError;
use crate::views::UserViews;

/// Everything the handlers share: the core, and each service's own state. A service's handlers
/// take their service's view of it (`State<DataService>`, …: the core and that service's state
/// only); what serves every service (authentication, the route inventory) takes it whole.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub core: Arc<Core>,
    /// What only the user service's handlers use.
    pub users: Arc<UsersState>,
    /// What only the auth service's handlers use.
    pub auth: Arc<AuthState>,
    /// What only the data service's handlers use.
    pub data: Arc<DataState>,
    /// What only the task service's handlers use.
    pub tasks: Arc<TasksState>,
    /// The reactors this node runs, stopped with it.
    pub reactors: vigil_scheduler::runner::Reactors,
}

/// What every service's handlers use.
pub struct Core {
    /// Decides and records commands; shared with the reactors.
    pub bus: Arc<CommandBus>,
    pub store: ReadStore,
    pub projector: Projector,
    /// Who holds which token and what they may do, followed from the log.
    pub access: Arc<AccessCache>,
    pub ids: IdGenerator,
    /// How long a write waits for the read models to show it before answering anyway.
    pub read_your_writes: Duration,
    /// The deployment key, which seals TOTP and OAuth1 secrets and keys recovery-code and PIN
    /// digests.
    pub vault: Vault,
    /// Whether this deployment delivers mails (an SMTP server is configured); without, the flows
    /// that need one (activation, password reset) are refused.
    pub sends_mail: bool,
}

/// A service's view of the handlers' state: the core (which it derefs to) and its own.
#[derive(Clone)]
pub struct Service<S> {
    pub core: Arc<Core>,
    own: Arc<S>,
}

/// The user service's handlers' state: `state.users` is its own.
pub type UsersService = Service<UsersState>;
/// The auth service's handlers' state: `state.auth` is its own.
pub type AuthService = Service<AuthState>;
/// The data service's handlers' state: `state.data` is its own.
pub type DataService = Service<DataState>;
/// The task service's handlers' state: `state.tasks()` is its own.
pub type TasksService = Service<TasksState>;

impl<S> std::ops::Deref for Service<S> {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Service<UsersState> {
    pub fn users(&self) -> &UsersState {
        &self.own
    }
}

impl Service<AuthState> {
    pub fn auth(&self) -> &AuthState {
        &self.own
    }
}

impl Service<DataState> {
    pub fn data(&self) -> &DataState {
        &self.own
    }
}

impl Service<TasksState> {
    pub fn tasks(&self) -> &TasksState {
        &self.own
    }
}

impl FromRef<AppState> for TasksService {
    fn from_ref(state: &AppState) -> Self {
        Service {
            core: state.core.clone(),
            own: state.tasks.clone(),
        }
    }
}

impl FromRef<AppState> for UsersService {
    fn from_ref(state: &AppState) -> Self {
        Service {
            core: state.core.clone(),
            own: state.users.clone(),
        }
    }
}

impl FromRef<AppState> for AuthService {
    fn from_ref(state: &AppState) -> Self {
        Service {
            core: state.core.clone(),
            own: state.auth.clone(),
        }
    }
}

impl FromRef<AppState> for DataService {
    fn from_ref(state: &AppState) -> Self {
        Service {
            core: state.core.clone(),
            own: state.data.clone(),
        }
    }
}

/// The user service's own state.
pub struct UsersState {
    /// Rendered users, served while current.
    pub views: UserViews,
}

/// The auth service's own state.
pub struct AuthState {
    pub lifetimes: TokenLifetimes,
    /// Talks to OIDC providers.
    pub oidc: vigil_commands::auth::oidc::OidcClient,
    /// OAuth1 nonces seen recently on this node.
    pub nonces: crate::oauth1::Nonces,
}

/// The data service's own state.
#[derive(Default)]
pub struct DataState {
    /// Schemas compiled for document commands, per schema version.
    pub snapshots: vigil_commands::data::document::Snapshots,
    /// Where schemas' documents hold arrays at indexed paths, as lists last found.
    pub array_probes: vigil_projections::data::document::ArrayProbes,
}

/// The task service's own state.
pub struct TasksState {
    /// Runs tasks: the queue's, and direct executions.
    pub runner: Arc<vigil_scheduler::tasks::TaskRunner>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// How long a lookup waits for the access cache to reach the log's head before it reports that a
/// token or client does not exist.
const CATCH_UP: Duration = Duration::from_secs(1);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// A reference that does not keep the state alive (for what the state itself holds).
    pub fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.0)
    }

    /// The state `weak` refers to, while it is alive.
    pub fn upgrade(weak: &std::sync::Weak<Shared>) -> Option<Self> {
        weak.upgrade().map(Self)
    }
}

impl Core {
    /// Looks something up in the access cache; if it is not there, waits until the cache has
    /// caught up with the log (it may have been created an instant ago on another node) and looks
    /// again.
    pub async fn lookup<T>(
        &self,
        find: impl Fn(&AccessCache) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        if let Some(found) = find(&self.access) {
            return Ok(Some(found));
        }
        self.catch_up_access().await?;
        Ok(find(&self.access))
    }

    /// Waits until the access cache has caught up with the log (a refusal may have ended a
    /// login, which the next request must find ended).
    pub async fn catch_up_access(&self) -> Result<(), ApiError> {
        Ok(self
            .access
            .catch_up(self.bus.log().as_ref(), CATCH_UP)
            .await?)
    }

    /// Waits until the access cache and the read models show everything up to `position`, so a
    /// client that writes and then reads sees its write. A halted read model is an error; a slow
    /// one is logged and the write is answered anyway, because it is already durable in the log.
    pub async fn settle(&self, position: u64) -> Result<(), ApiError> {
        if !self.access.wait_for(position, self.read_your_writes).await {
            tracing::warn!(position, "the access cache is lagging behind a write");
        }
        match self
            .projector
            .wait_for(position, self.read_your_writes)
            .await
        {
            Ok(()) => Ok(()),
            Err(WaitError::TimedOut(position)) => {
                tracing::warn!(position, "read models are lagging behind a write");
                Ok(())
            }
            Err(halted @ WaitError::Halted { .. }) => Err(ApiError::new(
                vigil_domain::error::ExhCode::ServiceUnavailable,
                format!("The change was recorded, but {halted}"),
            )),
        }
    }
}
