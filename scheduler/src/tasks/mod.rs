//! The task service's scheduler side: running a task ([`TaskRunner`]) and the queue that runs
//! every task when it is due ([`Tasks`], a reactor).
//!
//! A run claims its task first (`task.started`, decided on the task's stream with optimistic
//! concurrency), so of two nodes reaching for one task only one runs it; the claim's lease runs
//! out a minute after the function's time limit, and a task still in progress then lost its
//! runner and is failed as `zombieTaskCleaned` by whichever node runs the queue. The outcome is
//! recorded with the run's logs and host calls in one commit.
//!
//! The queue also creates the tasks others ask for: a document's `task` actions
//! (`document.task_requested`) and the retries of failed runs (`task.retried`), each under an id
//! derived from what asked for it, so doing it twice creates one task.

pub mod code;
pub mod gateway;
pub mod lambda;
pub mod replay;
pub mod rhai;

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use vigil_commands::blobs::{BlobError, Blobs};
use vigil_commands::secrets::Vault;
use vigil_commands::{CommandBus, CommandError};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::data::document::{Document, DocumentEvent};
use vigil_domain::event::{Event, ScheduleEvent, TaskEvent};
use vigil_domain::events::{CustomEvent, CustomEventCommand, EventError, EventPublished};
use vigil_domain::id::{Digest, Id, StreamId};
use vigil_domain::json::JsonOf;
use vigil_domain::log::{Filter, LogError};
use vigil_domain::tasks::function::{self, Function, FunctionError, RHAI};
use vigil_domain::tasks::schedule::{Schedule, ScheduleCommand, ScheduleError, ScheduleFired};
use vigil_domain::tasks::task::{
    ErrorKind, Execution, Outcome, RunError, RunRecord, Task, TaskCommand, TaskCompleted,
    TaskCreated, TaskError, TaskFailed, TaskRetried, TaskStarted, TaskStatus, retry_at, retry_of,
};
use vigil_domain::value::Timestamp;
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

use self::code::Files;
use self::gateway::Gateway;
use self::lambda::{Interpreter, Runtimes, Version};
use self::rhai::{Claimed, Connection, Host, Limits, Script};
use crate::delays::until;
use crate::runner::{Reactor, Retry};

/// Tasks run at once on a node unless configured.
pub const CONCURRENCY: usize = 16;
/// How long after its time limit a run's claim lasts unless configured.
pub const LEASE_GRACE_SECONDS: i64 = 60;

/// How a node runs tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSettings {
    /// Tasks run at once.
    pub concurrency: usize,
    /// How long after its time limit a run's claim lasts: a task still in progress then lost its
    /// node and is failed as `zombieTaskCleaned`.
    pub lease_grace_seconds: i64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            concurrency: CONCURRENCY,
            lease_grace_seconds: LEASE_GRACE_SECONDS,
        }
    }
}
/// Compiled scripts kept, by code and entry point.
const SCRIPTS: usize = 256;
/// How long to wait for the read models before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// How a call to [`TaskRunner::run`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Complete(Value),
    Failed(RunError),
    /// Failed, and tried again by the task with this id.
    Retried(RunError, Id),
    /// The task was not new (canceled, or another node runs it).
    NotRun,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Task(#[from] CommandError<TaskError>),
    #[error(transparent)]
    Function(#[from] CommandError<FunctionError>),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A blocking job (unpacking code, a run) ended without an answer.
    #[error("a run crashed: {0}")]
    Crashed(String),
}

/// Runs tasks; shared by the queue and by direct executions.
pub struct TaskRunner {
    bus: Arc<CommandBus>,
    blobs: Blobs,
    vault: Vault,
    runtimes: Runtimes,
    node: String,
    lease_grace_seconds: i64,
    slots: Arc<Semaphore>,
    scripts: Mutex<lru::LruCache<(Digest, String), Arc<Script>>>,
    /// Vigil's API, for the host calls of rhai functions; connected once the API is assembled.
    gateway: Arc<OnceLock<Arc<dyn Gateway>>>,
    http: reqwest::Client,
}

/// Where a task to run comes from: the queue (it is in the log, new), or a direct execution
/// (not yet in the log: its first commit records it, for the caller of `meta`).
enum Origin {
    Queued,
    Direct(Box<Direct>),
}

/// A direct execution: its task, who may execute it, its caller's command metadata, and the
/// function as the caller's request found it.
struct Direct {
    task: TaskCreated,
    execution: Execution,
    meta: CommandMeta,
    function: Function,
}

impl Origin {
    /// Whether the task's stream was just made for this run (a direct execution's): its first
    /// commit is appended without reading the stream first.
    fn is_new(&self) -> bool {
        matches!(self, Self::Direct(_))
    }

    /// The command recording that task `id` started as `started` (a claim), or, with its
    /// `outcome`, a whole run at once; and its metadata.
    fn record(
        &self,
        id: Id,
        started: TaskStarted,
        outcome: Option<Outcome>,
    ) -> (TaskCommand, CommandMeta) {
        match (self, outcome) {
            (Self::Queued, None) => (TaskCommand::Start(started), task_step(id, "start")),
            (Self::Queued, Some(outcome)) => (
                TaskCommand::Run { started, outcome },
                task_step(id, "outcome"),
            ),
            (Self::Direct(direct), outcome) => (
                TaskCommand::Execute {
                    task: direct.task.clone(),
                    execution: direct.execution.clone(),
                    started,
                    outcome,
                },
                direct.meta.clone(),
            ),
        }
    }
}

/// A function as it is called: its name, settings and code, and the user it acts as.
#[derive(Debug, Clone, Copy)]
pub struct Called<'a> {
    pub name: &'a str,
    pub settings: &'a function::FunctionSettings,
    pub code: &'a function::FunctionCode,
    pub identity: Option<Id>,
}

impl<'a> Called<'a> {
    /// Function `function` as it is now, if it exists.
    pub fn of(function: &'a Function) -> Option<Self> {
        function.current.as_ref().map(|(settings, code)| Self {
            name: &function.name,
            settings,
            code,
            identity: function.execution.map(|e| e.user_id),
        })
    }
}

/// Appends the first commit of a run of a task; on a `new` stream (see [`Origin::is_new`])
/// nothing is read from the log first (were something there, the append would conflict and the
/// command be decided again).
async fn record_first(
    bus: &CommandBus,
    new: bool,
    stream: &StreamId,
    command: &TaskCommand,
    meta: &CommandMeta,
) -> Result<vigil_commands::Outcome, CommandError<TaskError>> {
    if new {
        bus.execute_new::<Task>(stream, command, meta, None).await
    } else {
        bus.execute::<Task>(stream, command, meta).await
    }
}

/// The metadata of step `step` of what Vigil does to task `id` (`start`, `outcome`, `retry`,
/// `zombie`), caused by the task: one command id per step, so a step repeated changes nothing
/// twice.
fn task_step(id: Id, step: &str) -> CommandMeta {
    system(format!("task/{id}/{step}"), Some(format!("task-{id}")))
}

pub(crate) fn system(command_id: String, causation: Option<String>) -> CommandMeta {
    CommandMeta {
        command_id,
        correlation_id: "tasks".into(),
        causation_id: causation,
        reason: None,
        actor: Actor::system(Via::Scheduler),
    }
}

/// A runtime error: the function's code ran and failed.
fn runtime(name: &str, message: impl Into<String>) -> RunError {
    RunError {
        kind: ErrorKind::Runtime,
        name: name.to_owned(),
        message: message.into(),
    }
}

/// The error of a run stopped at its time limit of `seconds`, in every runtime.
fn time_limit_exceeded(seconds: u64) -> RunError {
    runtime(
        "TimeLimitExceeded",
        format!("The run was stopped at its time limit of {seconds} s"),
    )
}

fn invocation(name: &str, message: impl Into<String>) -> RunError {
    RunError {
        kind: ErrorKind::Invocation,
        name: name.to_owned(),
        message: message.into(),
    }
}

/// A task as its function receives it, and as the task service answers its creation: the task
/// object, `status` since `at`.
pub fn task_json(id: Id, task: &TaskCreated, status: TaskStatus, at: Timestamp) -> Value {
    let iso = |at: Timestamp| Value::String(vigil_projections::rql::iso_date(at.millis()));
    let mut json = json!({
        "id": id.to_string(),
        "functionName": task.function_name,
        "status": status.wire_name(),
        "data": task.data.0,
        "tags": task.tags,
        "priority": task.priority,
        "startTimestamp": iso(task.start_at),
        "statusChangedTimestamp": iso(at),
        "creationTimestamp": iso(id.created_at()),
        "updateTimestamp": iso(at),
    });
    let fields = json.as_object_mut();
    if let Some(fields) = fields {
        if let Some(user) = task.created_by_user {
            fields.insert("createdByUserId".into(), user.to_string().into());
        }
        if let Some(application) = task.created_by_application {
            fields.insert(
                "createdByApplicationId".into(),
                application.to_string().into(),
            );
        }
        if !task.retry_for.is_empty() {
            let ids: Vec<String> = task.retry_for.iter().map(Id::to_string).collect();
            fields.insert("retryForTaskIds".into(), ids.into());
        }
    }
    json
}

impl TaskRunner {
    pub fn new(
        bus: Arc<CommandBus>,
        blobs: Blobs,
        vault: Vault,
        runtimes: Runtimes,
        settings: TaskSettings,
    ) -> Arc<Self> {
        let node = format!("node-{}", hex::encode(rand::random::<[u8; 6]>()));
        Arc::new(Self {
            bus,
            blobs,
            vault,
            runtimes,
            node,
            lease_grace_seconds: settings.lease_grace_seconds,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            scripts: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(SCRIPTS).unwrap_or(NonZeroUsize::MIN),
            )),
            gateway: Arc::default(),
            http: reqwest::Client::new(),
        })
    }

    /// Connects the host calls of rhai functions to Vigil's API (once; later calls are ignored).
    pub fn connect(&self, gateway: Arc<dyn Gateway>) {
        // A second gateway changes nothing: the first stays connected.
        let _ = self.gateway.set(gateway);
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// A slot to run a task in, if one is free now.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// The script `entry_point` names in the code kept under `digest`.
    async fn script(
        &self,
        digest: Digest,
        entry_point: &str,
    ) -> Result<Result<Arc<Script>, RunError>, RunnerError> {
        let key = (digest, entry_point.to_owned());
        if let Some(script) = self
            .scripts
            .lock()
            .ok()
            .and_then(|mut s| s.get(&key).cloned())
        {
            return Ok(Ok(script));
        }
        let Some(zip) = self.blobs.get(&digest).await? else {
            return Ok(Err(invocation(
                "CodeMissing",
                format!("the function's code {digest} is not in the blob store"),
            )));
        };
        let compiled = tokio::task::spawn_blocking({
            let entry_point = entry_point.to_owned();
            move || Files::unzip(&zip).and_then(|files| Script::compile(&files, &entry_point))
        })
        .await
        .map_err(|e| RunnerError::Crashed(e.to_string()))?;
        Ok(match compiled {
            Ok(script) => {
                let script = Arc::new(script);
                if let Ok(mut scripts) = self.scripts.lock() {
                    scripts.put(key, script.clone());
                }
                Ok(script)
            }
            Err(error) => Err(invocation("InvalidCode", error.0)),
        })
    }

    /// Runs task `id` if it is new, in `slot`: claims it, runs its function, records how it
    /// ended. The slot is free again as soon as the function has run.
    pub async fn run(&self, id: Id, slot: OwnedSemaphorePermit) -> Result<Finished, RunnerError> {
        let stream = StreamId::of(Task::KIND, id);
        // As this node saw it: the claim or the recorded run is checked against the log, and a
        // task taken or canceled meanwhile is not run (or its run dropped).
        let (task, _) = self.bus.load_seen::<Task>(&stream).await?;
        let (Some(created), Some(TaskStatus::New)) = (task.created, task.status) else {
            return Ok(Finished::NotRun);
        };
        self.run_new(id, &created, Origin::Queued, slot).await
    }

    /// Executes `task` directly as `id` for the caller of `meta` (allowed by `execution`), with
    /// `function` as the request found it: the task is recorded with its run, in one commit
    /// when the run has no effect outside itself.
    pub async fn execute(
        &self,
        id: Id,
        task: TaskCreated,
        (execution, meta): (Execution, CommandMeta),
        function: Function,
        slot: OwnedSemaphorePermit,
    ) -> Result<Finished, RunnerError> {
        let origin = Origin::Direct(Box::new(Direct {
            task: task.clone(),
            execution,
            meta,
            function,
        }));
        self.run_new(id, &task, origin, slot).await
    }

    /// Runs the new task `id` (`created`, from `origin`).
    async fn run_new(
        &self,
        id: Id,
        created: &TaskCreated,
        origin: Origin,
        slot: OwnedSemaphorePermit,
    ) -> Result<Finished, RunnerError> {
        let stream = StreamId::of(Task::KIND, id);
        let function = match &origin {
            Origin::Direct(direct) => direct.function.clone(),
            Origin::Queued => match function::stream(&created.function_name) {
                Ok(function_stream) => self.bus.load::<Function>(&function_stream).await?.0,
                Err(error) => {
                    let error = invocation("FunctionUnknown", error.to_string());
                    return self.fail_unstarted(&stream, id, &origin, error).await;
                }
            },
        };
        let unstartable = match &function.current {
            None => Some(invocation(
                "FunctionUnknown",
                format!("no function is named {}", created.function_name),
            )),
            Some(_) if !function.enabled => Some(invocation(
                "FunctionDisabled",
                format!("the function {} is disabled", created.function_name),
            )),
            Some(_) => None,
        };
        if let Some(error) = unstartable {
            return self.fail_unstarted(&stream, id, &origin, error).await;
        }
        let Some(called) = Called::of(&function) else {
            return Ok(Finished::NotRun);
        };
        let settings = called.settings;
        let started = TaskStarted {
            node: self.node.clone(),
            lease_until: Timestamp::now()
                .plus_seconds(i64::from(settings.time_limit) + self.lease_grace_seconds),
            code: called.code.digest,
        };
        let cause = format!("task-{id}");
        let (claim, claim_meta) = origin.record(id, started.clone(), None);
        if settings.runtime == RHAI {
            // Run first, claimed only before the run's first effect outside itself: a run
            // without any is recorded whole, start and end in one commit, if the task is still
            // new by then. The task as the run sees it is the task as of its start time, which
            // a replay knows too.
            let event = task_json(id, created, TaskStatus::InProgress, created.start_at);
            let new = origin.is_new();
            let hook = self.claim_hook(stream.clone(), new, claim, claim_meta);
            let ran = self
                .call(called, event, &id.to_string(), cause, Some(hook))
                .await?;
            drop(slot);
            let unclaimed = match ran.claimed {
                Claimed::Lost => return Ok(Finished::NotRun),
                Claimed::Made => None,
                Claimed::No => Some((&origin, started)),
            };
            return self
                .finish(&stream, (id, created), settings, ran, unclaimed)
                .await;
        }
        // The code of other runtimes can do anything: the task is claimed before it runs.
        let new = origin.is_new();
        let started_at = match record_first(&self.bus, new, &stream, &claim, &claim_meta).await {
            Ok(outcome) => outcome.recorded_at.unwrap_or_else(Timestamp::now),
            Err(CommandError::Domain(TaskError::NotInState(..))) => return Ok(Finished::NotRun),
            Err(error) => return Err(error.into()),
        };
        let event = task_json(id, created, TaskStatus::InProgress, started_at);
        let ran = self
            .call(called, event, &id.to_string(), cause, None)
            .await?;
        drop(slot);
        self.finish(&stream, (id, created), settings, ran, None)
            .await
    }

    /// The claim `command`, made from a run's thread.
    fn claim_hook(
        &self,
        stream: StreamId,
        new: bool,
        command: TaskCommand,
        meta: CommandMeta,
    ) -> rhai::Claim {
        let bus = self.bus.clone();
        let handle = tokio::runtime::Handle::current();
        Arc::new(move || {
            handle
                .block_on(record_first(&bus, new, &stream, &command, &meta))
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }

    /// Runs `script` of `called` with `event` under its limits, off the async threads, its host
    /// calls caused by `cause`.
    async fn run_script(
        &self,
        script: Arc<Script>,
        called: Called<'_>,
        event: Value,
        (cause, claim): (String, Option<rhai::Claim>),
    ) -> Result<rhai::Ran, RunnerError> {
        let limits = Limits {
            time: Duration::from_secs(u64::from(called.settings.time_limit)),
            memory_mb: called.settings.memory_limit,
        };
        let connection = Connection {
            gateway: self.gateway.clone(),
            handle: tokio::runtime::Handle::current(),
            function: called.name.to_owned(),
            identity: called.identity,
            cause,
            http: self.http.clone(),
            claim,
        };
        tokio::task::spawn_blocking(move || {
            script.run(&event, limits, Host::live(Some(connection)))
        })
        .await
        .map_err(|e| RunnerError::Crashed(e.to_string()))
    }

    /// Calls function `called` (an API function) with `event` in `slot`: what it returned or why
    /// it failed, and what the run logged.
    pub async fn invoke(
        &self,
        called: Called<'_>,
        event: Value,
        slot: OwnedSemaphorePermit,
    ) -> Result<rhai::Ran, RunnerError> {
        let request_id = Id::derived(Timestamp::now(), &rand::random::<[u8; 12]>()).to_string();
        let cause = format!("api-request-{request_id}");
        let ran = self.call(called, event, &request_id, cause, None).await?;
        drop(slot);
        Ok(ran)
    }

    /// Runs function `called` with `event`, in its runtime; a rhai run's effects are caused by
    /// `cause` and preceded by `claim`.
    async fn call(
        &self,
        called: Called<'_>,
        event: Value,
        request_id: &str,
        cause: String,
        claim: Option<rhai::Claim>,
    ) -> Result<rhai::Ran, RunnerError> {
        let Called {
            name,
            settings,
            code,
            ..
        } = called;
        let failed = |error| rhai::Ran {
            result: Err(error),
            record: RunRecord::default(),
            diverged: None,
            claimed: Claimed::No,
        };
        if settings.runtime == RHAI {
            return Ok(
                match self.script(code.digest, &settings.entry_point).await? {
                    Ok(script) => {
                        self.run_script(script, called, event, (cause, claim))
                            .await?
                    }
                    Err(error) => failed(error),
                },
            );
        }
        let Some(interpreter) = Interpreter::of(&settings.runtime) else {
            return Ok(failed(invocation(
                "RuntimeUnavailable",
                format!(
                    "this deployment does not run {} functions",
                    settings.runtime
                ),
            )));
        };
        let mut environment = Vec::with_capacity(settings.environment.len());
        for variable in &settings.environment {
            let context = function::environment_context(name, &variable.name);
            match self.vault.open(&variable.value, &context) {
                Ok(value) => environment.push((
                    variable.name.clone(),
                    String::from_utf8_lossy(&value).into_owned(),
                )),
                Err(error) => {
                    return Ok(failed(invocation(
                        "EnvironmentUnreadable",
                        format!("the variable {} cannot be opened: {error}", variable.name),
                    )));
                }
            }
        }
        let version = Version {
            function: name.to_owned(),
            digest: code.digest,
            settings: settings.clone(),
            environment,
        };
        let blobs = &self.blobs;
        let zip = async || blobs.get(&code.digest).await.map_err(|e| e.to_string());
        let invoked = self
            .runtimes
            .invoke(interpreter, &version, zip, event, request_id)
            .await;
        Ok(rhai::Ran {
            result: invoked.result,
            record: invoked.record,
            diverged: None,
            claimed: Claimed::No,
        })
    }

    /// Fails task `id`, which could not be started, with `error` (no retry: its code never ran).
    async fn fail_unstarted(
        &self,
        stream: &StreamId,
        id: Id,
        origin: &Origin,
        error: RunError,
    ) -> Result<Finished, RunnerError> {
        if let Origin::Direct(direct) = origin {
            let create = TaskCommand::Create {
                task: direct.task.clone(),
                direct: Some(direct.execution.clone()),
            };
            self.bus
                .execute_new::<Task>(stream, &create, &direct.meta, None)
                .await?;
        }
        let failed = TaskFailed {
            error: error.clone(),
            run: RunRecord::default(),
        };
        self.record(stream, &task_step(id, "outcome"), TaskCommand::Fail(failed))
            .await?;
        Ok(Finished::Failed(error))
    }

    /// Records how the run of task `id` ended: complete, retried or failed; with its start
    /// (and for a direct execution, the task) when it ran `unclaimed` (then, if another runner
    /// has the task by now, the run is dropped).
    async fn finish(
        &self,
        stream: &StreamId,
        (id, created): (Id, &TaskCreated),
        settings: &function::FunctionSettings,
        ran: rhai::Ran,
        unclaimed: Option<(&Origin, TaskStarted)>,
    ) -> Result<Finished, RunnerError> {
        let run = ran.record;
        let (outcome, finished) = match ran.result {
            Ok(value) => (
                Outcome::Complete(TaskCompleted {
                    result: value.to_string(),
                    run,
                }),
                Finished::Complete(value),
            ),
            Err(error) => match retry_at(created, &settings.retry_policy, &error, Timestamp::now())
            {
                Some(at) => {
                    let retried_by = Id::derived(at, format!("retry/{id}").as_bytes());
                    (
                        Outcome::Retry(TaskRetried {
                            error: error.clone(),
                            run,
                            retried_by,
                            retry_at: at,
                        }),
                        Finished::Retried(error, retried_by),
                    )
                }
                None => (
                    Outcome::Fail(TaskFailed {
                        error: error.clone(),
                        run,
                    }),
                    Finished::Failed(error),
                ),
            },
        };
        let Some((origin, started)) = unclaimed else {
            self.record(stream, &task_step(id, "outcome"), outcome.command())
                .await?;
            return Ok(finished);
        };
        let (run, meta) = origin.record(id, started, Some(outcome));
        let new = origin.is_new();
        match record_first(&self.bus, new, stream, &run, &meta).await {
            Ok(_) => Ok(finished),
            Err(CommandError::Domain(TaskError::NotInState(..))) => Ok(Finished::NotRun),
            Err(error) => Err(error.into()),
        }
    }

    async fn record(
        &self,
        stream: &StreamId,
        meta: &CommandMeta,
        command: TaskCommand,
    ) -> Result<(), RunnerError> {
        match self.bus.execute::<Task>(stream, &command, meta).await {
            // A zombie cleaner was quicker: the task's end is recorded already.
            Ok(_) | Err(CommandError::Domain(TaskError::NotInState(..))) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// The priority of a task of `function_name` that gives none: the function's default, else 0
/// (also for a function that does not exist, whose task fails when it runs).
pub async fn default_priority(bus: &CommandBus, function_name: &str) -> Result<i64, LogError> {
    let Ok(stream) = function::stream(function_name) else {
        return Ok(0);
    };
    let (function, _) = bus.load::<Function>(&stream).await?;
    Ok(function
        .current
        .and_then(|(settings, _)| settings.default_priority)
        .unwrap_or(0))
}

/// Creates task `id` as Vigil itself; one that exists already is left as it is, so a reaction
/// repeated creates the task once.
pub(crate) async fn create_task(
    bus: &CommandBus,
    id: Id,
    task: TaskCreated,
    meta: &CommandMeta,
) -> Result<(), Retry> {
    let command = TaskCommand::Create { task, direct: None };
    match bus
        .execute_new::<Task>(&StreamId::of(Task::KIND, id), &command, meta, None)
        .await
    {
        Ok(_) | Err(CommandError::Domain(TaskError::AlreadyExists)) => Ok(()),
        Err(CommandError::Domain(refused)) => {
            tracing::error!(%refused, task = %id, "a requested task cannot be created");
            Ok(())
        }
        Err(error) => Err(Retry::new(error)),
    }
}

/// Tasks by when they may start.
type Waiting = BTreeSet<(i64, Id, i64)>;
/// Tasks that may start, highest priority first, then earliest start.
type Ready = BTreeSet<(Reverse<i64>, i64, Id)>;

/// Ids by a time each has (a lease's end, a schedule's next slot), earliest first.
#[derive(Debug, Default)]
struct Timetable {
    by_time: BTreeSet<(i64, Id)>,
    time_of: HashMap<Id, i64>,
}

impl Timetable {
    fn set(&mut self, id: Id, at: i64) {
        if let Some(previous) = self.time_of.insert(id, at) {
            self.by_time.remove(&(previous, id));
        }
        self.by_time.insert((at, id));
    }

    fn remove(&mut self, id: Id) {
        if let Some(at) = self.time_of.remove(&id) {
            self.by_time.remove(&(at, id));
        }
    }

    /// The earliest entry, removed, if its time is at most `now`.
    fn pop_due(&mut self, now: i64) -> Option<(i64, Id)> {
        let &(at, id) = self.by_time.first().filter(|(at, _)| *at <= now)?;
        self.remove(id);
        Some((at, id))
    }

    fn earliest(&self) -> Option<i64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    fn clear(&mut self) {
        self.by_time.clear();
        self.time_of.clear();
    }
}

/// The task queue, a [`Reactor`]: runs each task when due, creates the tasks that documents,
/// retries and schedules ask for, fires the schedules, and fails the tasks whose runner stopped.
pub struct Tasks {
    runner: Arc<TaskRunner>,
    bus: Arc<CommandBus>,
    store: ReadStore,
    progresses: Progresses,
    waiting: Waiting,
    ready: Ready,
    /// In-progress tasks by when their lease runs out.
    leases: Timetable,
    /// Schedules by their next slot.
    schedules: Timetable,
}

impl Tasks {
    pub fn new(
        runner: Arc<TaskRunner>,
        bus: Arc<CommandBus>,
        store: ReadStore,
        progresses: Progresses,
    ) -> Self {
        Self {
            runner,
            bus,
            store,
            progresses,
            waiting: Waiting::new(),
            ready: Ready::new(),
            leases: Timetable::default(),
            schedules: Timetable::default(),
        }
    }

    fn enqueue(&mut self, id: Id, priority: i64, start_at: i64) {
        self.waiting.insert((start_at, id, priority));
    }

    /// Creates the task a document's action asked for (the `index`th of its commit).
    async fn create_requested(
        &self,
        recorded: &Recorded,
        index: usize,
        requested: &vigil_domain::data::document::TaskRequested,
    ) -> Result<(), Retry> {
        let commit = &recorded.commit;
        let seed = format!("{}@{}/{index}", commit.stream, commit.version);
        let id = Id::derived(commit.recorded_at, seed.as_bytes());
        let priority = match requested.priority {
            Some(priority) => priority,
            None => default_priority(&self.bus, &requested.function_name)
                .await
                .map_err(Retry::new)?,
        };
        let task = TaskCreated {
            function_name: requested.function_name.clone(),
            data: requested.data.clone(),
            tags: Vec::new(),
            priority,
            start_at: commit.recorded_at,
            created_by_user: commit.actor.user_id,
            created_by_application: commit.actor.application_id,
            retry_for: Vec::new(),
            direct: false,
        };
        let meta = system(
            format!("task-request/{seed}"),
            Some(format!("{}@{}", commit.stream, commit.version)),
        );
        create_task(&self.bus, id, task, &meta).await
    }

    /// Creates the task that tries task `id` again.
    async fn create_retry(&self, id: Id, retried: &TaskRetried) -> Result<(), Retry> {
        let (task, _) = self
            .bus
            .load::<Task>(&StreamId::of(Task::KIND, id))
            .await
            .map_err(Retry::new)?;
        let Some(created) = task.created else {
            return Ok(());
        };
        let retry = retry_of(id, &created, retried);
        create_task(
            &self.bus,
            retried.retried_by,
            retry,
            &task_step(id, "retry"),
        )
        .await
    }

    /// Starts the ready tasks while slots are free.
    fn start_ready(&mut self) {
        let now = Timestamp::now().millis();
        while let Some(&(start_at, id, priority)) = self.waiting.first() {
            if start_at > now {
                break;
            }
            self.waiting.pop_first();
            self.ready.insert((Reverse(priority), start_at, id));
        }
        while !self.ready.is_empty() {
            let Some(slot) = self.runner.try_slot() else {
                break;
            };
            let Some((_, _, id)) = self.ready.pop_first() else {
                break;
            };
            let runner = self.runner.clone();
            tokio::spawn(async move {
                let mut slot = Some(slot);
                let mut pause = Duration::from_millis(200);
                for _ in 0..5 {
                    let Some(held) = slot.take().or_else(|| runner.try_slot()) else {
                        tokio::time::sleep(pause).await;
                        continue;
                    };
                    match runner.run(id, held).await {
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, task = %id, "a task could not be run yet; trying again");
                            tokio::time::sleep(pause).await;
                            pause *= 2;
                        }
                    }
                }
            });
        }
    }

    /// Fails the in-progress tasks whose lease ran out.
    async fn clean_zombies(&mut self) {
        let now = Timestamp::now().millis();
        while let Some((_, id)) = self.leases.pop_due(now) {
            let meta = task_step(id, "zombie");
            match self
                .bus
                .execute::<Task>(
                    &StreamId::of(Task::KIND, id),
                    &TaskCommand::CleanZombie,
                    &meta,
                )
                .await
            {
                Ok(_) | Err(CommandError::Domain(TaskError::NotInState(..))) => {}
                Err(CommandError::Domain(TaskError::LeaseHeld)) => {
                    if let Ok((task, _)) =
                        self.bus.load::<Task>(&StreamId::of(Task::KIND, id)).await
                        && let Some(until) = task.lease_until
                    {
                        self.leases.set(id, until.millis());
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, task = %id, "a lost task could not be failed yet");
                    self.leases.set(id, now + 5_000);
                }
            }
        }
    }

    /// Fires the schedules whose next slot has come.
    async fn fire_schedules(&mut self) {
        let now = Timestamp::now().millis();
        while let Some((next, id)) = self.schedules.pop_due(now) {
            let stream = StreamId::of(Schedule::KIND, id);
            let command = ScheduleCommand::Fire {
                next: Timestamp(next),
            };
            let meta = system(
                format!("schedule/{id}/fire/{next}"),
                Some(format!("schedule-{id}")),
            );
            match self.bus.execute::<Schedule>(&stream, &command, &meta).await {
                // The firing's commit sets the next slot.
                Ok(_) | Err(CommandError::Domain(ScheduleError::Unknown)) => {}
                Err(CommandError::Domain(ScheduleError::Fired)) => {
                    // Another node fired it: follow the schedule from where it is.
                    if let Ok((schedule, _)) = self.bus.load::<Schedule>(&stream).await
                        && let Some(next) = schedule.next
                    {
                        self.schedules.set(id, next.millis());
                    }
                }
                // This node's clock is ahead of the one deciding.
                Err(CommandError::Domain(ScheduleError::NotDue)) => {
                    self.schedules.set(id, now + 1_000);
                }
                Err(error) => {
                    tracing::warn!(%error, schedule = %id, "a schedule could not be fired yet");
                    self.schedules.set(id, now + 5_000);
                }
            }
        }
    }

    /// Publishes the `task_failed` event of task `id`'s final failure (once: its id is derived
    /// from the task).
    async fn announce_failure(
        &self,
        id: Id,
        at: Timestamp,
        failed: &TaskFailed,
    ) -> Result<(), Retry> {
        let (task, _) = self
            .bus
            .load::<Task>(&StreamId::of(Task::KIND, id))
            .await
            .map_err(Retry::new)?;
        let function_name = task.created.map(|c| c.function_name).unwrap_or_default();
        let content = json!({
            "id": id.to_string(),
            "functionName": function_name,
            "error": {
                "type": failed.error.kind.wire_name(),
                "name": failed.error.name,
                "message": failed.error.message,
            },
        });
        let published = EventPublished {
            event_type: "task_failed".into(),
            content: JsonOf(match content {
                Value::Object(content) => content,
                _ => serde_json::Map::new(),
            }),
        };
        let event = Id::derived(at, format!("task_failed/{id}").as_bytes());
        match self
            .bus
            .execute_new::<CustomEvent>(
                &StreamId::of(CustomEvent::KIND, event),
                &CustomEventCommand::Publish(published),
                &task_step(id, "task_failed"),
                None,
            )
            .await
        {
            Ok(_) | Err(CommandError::Domain(EventError::AlreadyPublished)) => Ok(()),
            Err(error) => Err(Retry::new(error)),
        }
    }

    /// Creates the task a schedule's firing names.
    async fn create_scheduled(&self, id: Id, fired: &ScheduleFired) -> Result<(), Retry> {
        let stream = StreamId::of(Schedule::KIND, id);
        let (schedule, _) = self
            .bus
            .load::<Schedule>(&stream)
            .await
            .map_err(Retry::new)?;
        let Some(created) = schedule.created else {
            return Ok(());
        };
        let task = TaskCreated {
            function_name: created.function_name,
            data: created.data,
            tags: Vec::new(),
            priority: created.priority,
            start_at: fired.slot,
            created_by_user: created.created_by_user,
            created_by_application: created.created_by_application,
            retry_for: Vec::new(),
            direct: false,
        };
        let slot = fired.slot.millis();
        let meta = system(
            format!("schedule/{id}/task/{slot}"),
            Some(format!("schedule-{id}")),
        );
        create_task(&self.bus, fired.task_id, task, &meta).await
    }
}

impl Reactor for Tasks {
    fn name(&self) -> &'static str {
        "tasks"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Task::KIND, Document::KIND, Schedule::KIND])
    }

    /// Gathers the queued and in-progress tasks the read models show (once they show the
    /// checkpoint), and follows the log from where they were.
    fn resume(&mut self, checkpoint: u64) -> BoxFuture<'_, Result<u64, Retry>> {
        Box::pin(async move {
            self.progresses
                .wait_for(checkpoint, RETRY_EVERY)
                .await
                .map_err(Retry::new)?;
            let shown = self.progresses.position();
            let pending = vigil_projections::tasks::task::pending(&self.store)
                .await
                .map_err(Retry::new)?;
            self.waiting.clear();
            self.ready.clear();
            self.leases.clear();
            for task in pending {
                let Ok(id) = task.id.parse() else { continue };
                match task.lease_until {
                    Some(until) => self.leases.set(id, until),
                    None => self.enqueue(id, task.priority, task.start_timestamp),
                }
            }
            self.schedules.clear();
            let slots = vigil_projections::tasks::schedule::next_slots(&self.store)
                .await
                .map_err(Retry::new)?;
            for (id, next) in slots {
                if let Ok(id) = id.parse() {
                    self.schedules.set(id, next);
                }
            }
            Ok(shown)
        })
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            let Some(id) = recorded.commit.stream.id() else {
                return Ok(());
            };
            for (index, event) in recorded.commit.events.iter().enumerate() {
                match event {
                    Event::Task(TaskEvent::Created(created)) if !created.direct => {
                        self.enqueue(id, created.priority, created.start_at.millis());
                    }
                    Event::Task(TaskEvent::Started(started)) => {
                        self.leases.set(id, started.lease_until.millis());
                    }
                    Event::Task(TaskEvent::Retried(retried)) => {
                        self.leases.remove(id);
                        self.create_retry(id, retried).await?;
                    }
                    Event::Task(TaskEvent::Completed(_) | TaskEvent::Canceled(_)) => {
                        self.leases.remove(id);
                    }
                    Event::Task(TaskEvent::Failed(failed)) => {
                        self.leases.remove(id);
                        self.announce_failure(id, recorded.commit.recorded_at, failed)
                            .await?;
                    }
                    Event::Schedule(ScheduleEvent::Created(created)) => {
                        self.schedules.set(id, created.start_at.millis());
                    }
                    Event::Schedule(ScheduleEvent::Fired(fired)) => {
                        self.schedules.set(id, fired.next.millis());
                        self.create_scheduled(id, fired).await?;
                    }
                    Event::Schedule(ScheduleEvent::Deleted(_)) => self.schedules.remove(id),
                    Event::Document(DocumentEvent::TaskRequested(requested)) => {
                        self.create_requested(recorded, index, requested).await?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn due(&self) -> Option<Instant> {
        let now = Instant::now();
        let ready =
            (!self.ready.is_empty() && self.runner.slots.available_permits() > 0).then_some(now);
        let waiting = self.waiting.first().map(|(at, ..)| now + until(*at));
        let lease = self.leases.earliest().map(|at| now + until(at));
        let schedule = self.schedules.earliest().map(|at| now + until(at));
        [ready, waiting, lease, schedule]
            .into_iter()
            .flatten()
            .min()
    }

    fn work(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.clean_zombies().await;
            self.fire_schedules().await;
            self.start_ready();
        })
    }
}
