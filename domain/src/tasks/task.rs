//! Tasks: one run of a function with some data, queued by priority then start time.
//!
//! Lifecycle (Extra Horizon's): `new → inProgress → complete | failed | retried`, and
//! `new → canceled`. A task is claimed for a run by `Start`, decided on its stream with optimistic
//! concurrency, so of two nodes reaching for the same task one runs it and the other is refused.
//! The claim holds a lease: a task still in progress when its lease has run out lost its runner,
//! and is failed as `zombieTaskCleaned`. A failed run the function's retry policy covers leaves
//! the task `retried`, naming the new task that tries again (`retriedByTaskId`), which the
//! scheduler then creates with `retryForTaskIds`.
//!
//! What a run logged, the time and random values it was given and what its host calls answered
//! are recorded with its outcome, in the same commit.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::json::JsonOf;
use crate::tasks::function::PermissionMode;
use crate::value::Timestamp;

/// The most bytes of a task's data as JSON (Extra Horizon's 250 KB).
pub const DATA_BYTES: usize = 250 * 1024;
/// How many times a task is tried again, and the pause before each (Extra Horizon's 2, 5, 10 s).
pub const RETRY_PAUSES_SECONDS: [i64; 3] = [2, 5, 10];
/// The error name of a task whose runner stopped before it finished.
pub const ZOMBIE: &str = "zombieTaskCleaned";
/// The most log lines a run keeps, and the most characters of each.
pub const LOG_LINES: usize = 1000;
pub const LOG_LINE_CHARS: usize = 4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum TaskStatus {
    New,
    InProgress,
    Complete,
    Failed,
    Retried,
    Canceled,
}

impl TaskStatus {
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::InProgress => "inProgress",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::Canceled => "canceled",
        }
    }
}

/// Whether a run failed before the function's code ran (`invocation`) or in it (`runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum ErrorKind {
    Invocation,
    Runtime,
    /// An API function answered what cannot be an answer.
    Response,
}

impl ErrorKind {
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Invocation => "invocation",
            Self::Runtime => "runtime",
            Self::Response => "response",
        }
    }
}

/// Why a run failed, as Extra Horizon shows it: `{type, name, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RunError {
    pub kind: ErrorKind,
    pub name: String,
    pub message: String,
}

/// One line a run logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LogLine {
    pub at: Timestamp,
    pub message: String,
}

/// One call a run made to its host (the time, a random number, a query, a command), with what it
/// was asked and what it answered, as JSON text: what a replay of the run answers in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HostCall {
    pub name: String,
    pub input: String,
    pub output: String,
}

/// What a run left besides its outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RunRecord {
    pub logs: Vec<LogLine>,
    pub host_calls: Vec<HostCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskCreated {
    pub function_name: String,
    pub data: JsonOf<Map<String, Value>>,
    pub tags: Vec<String>,
    pub priority: i64,
    pub start_at: Timestamp,
    pub created_by_user: Option<Id>,
    pub created_by_application: Option<Id>,
    /// The tasks this one tries again, earliest first.
    pub retry_for: Vec<Id>,
    /// Run at once by the request that created it (`execute`), never queued.
    pub direct: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskStarted {
    /// The node running it.
    pub node: String,
    /// When it is taken for lost if it has not finished.
    pub lease_until: Timestamp,
    /// The code it runs (the function's at the start), so the run can be replayed.
    pub code: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskCompleted {
    /// What the function returned, as JSON text.
    pub result: String,
    pub run: RunRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskFailed {
    pub error: RunError,
    pub run: RunRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskRetried {
    pub error: RunError,
    pub run: RunRecord,
    /// The task that tries again.
    pub retried_by: Id,
    pub retry_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskCanceled {}

events! {
    pub enum TaskEvent {
        Created(TaskCreated) = "task.created",
        Started(TaskStarted) = "task.started",
        Completed(TaskCompleted) = "task.completed",
        Failed(TaskFailed) = "task.failed",
        Retried(TaskRetried) = "task.retried",
        Canceled(TaskCanceled) = "task.canceled",
    }
}

/// Who may run a function directly: its permission mode and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub mode: PermissionMode,
    pub function_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    /// `direct`: a direct execution, authorized by the function's permission mode instead of
    /// `CREATE_TASKS`.
    Create {
        task: TaskCreated,
        direct: Option<Execution>,
    },
    Start(TaskStarted),
    Complete(TaskCompleted),
    Fail(TaskFailed),
    Retry(TaskRetried),
    /// Records a whole run of a task still `new` at once: its start and how it ended (a run
    /// that had no effect outside itself needs no claim beforehand; a runner that finds the task
    /// taken meanwhile drops its run).
    Run {
        started: TaskStarted,
        outcome: Outcome,
    },
    /// A direct execution, made and started at once (authorized as a direct `Create`), and
    /// with how it ended when it ended before anything else had to be recorded.
    Execute {
        task: TaskCreated,
        execution: Execution,
        started: TaskStarted,
        outcome: Option<Outcome>,
    },
    /// Fails a task whose lease ran out.
    CleanZombie,
    Cancel,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Complete(TaskCompleted),
    Fail(TaskFailed),
    Retry(TaskRetried),
}

impl Outcome {
    /// The command recording it for a task in progress.
    pub fn command(self) -> TaskCommand {
        match self {
            Self::Complete(e) => TaskCommand::Complete(e),
            Self::Fail(e) => TaskCommand::Fail(e),
            Self::Retry(e) => TaskCommand::Retry(e),
        }
    }

    fn event(&self) -> TaskEvent {
        match self {
            Self::Complete(e) => TaskEvent::Completed(e.clone()),
            Self::Fail(e) => TaskEvent::Failed(e.clone()),
            Self::Retry(e) => TaskEvent::Retried(e.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("permission {0} is required")]
    NoPermission(String),
    #[error("no task has this id")]
    Unknown,
    #[error("this task exists already")]
    AlreadyExists,
    #[error("the task is {}, not {}", .0.wire_name(), .1.wire_name())]
    NotInState(TaskStatus, TaskStatus),
    #[error("only a new task can be canceled; this one is {}", .0.wire_name())]
    NotCancelable(TaskStatus),
    #[error("the task's lease has not run out")]
    LeaseHeld,
    #[error("{0}")]
    InvalidData(String),
}

impl DomainError for TaskError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::Unknown => ExhCode::ResourceUnknown,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotInState(..) | Self::NotCancelable(_) | Self::LeaseHeld => {
                ExhCode::IllegalState
            }
            Self::InvalidData(_) => ExhCode::FieldFormat,
        }
    }
}

/// A task's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    pub created: Option<TaskCreated>,
    pub status: Option<TaskStatus>,
    pub lease_until: Option<Timestamp>,
    pub retried_by: Option<Id>,
}

impl Task {
    /// The status, once created.
    fn status(&self) -> Result<TaskStatus, TaskError> {
        self.status.ok_or(TaskError::Unknown)
    }

    fn expect(&self, wanted: TaskStatus) -> Result<(), TaskError> {
        match self.status()? {
            status if status == wanted => Ok(()),
            status => Err(TaskError::NotInState(status, wanted)),
        }
    }
}

/// Why a task's data or tags cannot be, if they cannot.
fn check(task: &TaskCreated) -> Result<(), TaskError> {
    let bytes = serde_json::to_vec(&task.data.0).map_or(usize::MAX, |json| json.len());
    if bytes > DATA_BYTES {
        return Err(TaskError::InvalidData(format!(
            "A task's data is at most {DATA_BYTES} bytes of JSON; this is {bytes}"
        )));
    }
    if task.tags.len() > 100 || task.tags.iter().any(|tag| tag.chars().count() > 200) {
        return Err(TaskError::InvalidData(
            "A task has at most 100 tags of at most 200 characters".into(),
        ));
    }
    if task.function_name.is_empty() || task.function_name.len() > 64 {
        return Err(TaskError::InvalidData(
            "`functionName` is 1 to 64 characters".into(),
        ));
    }
    Ok(())
}

impl Aggregate for Task {
    const KIND: &'static str = "task";
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = TaskError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let actor = ctx.actor;
        match command {
            TaskCommand::Create {
                direct: Some(execution),
                ..
            } => execution
                .mode
                .allows(actor, "EXECUTE_TASK_FUNCTION", &execution.function_name)
                .map_err(TaskError::NoPermission),
            TaskCommand::Execute { execution, .. } => execution
                .mode
                .allows(actor, "EXECUTE_TASK_FUNCTION", &execution.function_name)
                .map_err(TaskError::NoPermission),
            TaskCommand::Create { direct: None, .. } => {
                actor.require("CREATE_TASKS", |p| TaskError::NoPermission(p.into()))
            }
            TaskCommand::Cancel => {
                actor.require("CANCEL_TASKS", |p| TaskError::NoPermission(p.into()))
            }
            // Runs are Vigil's own business.
            TaskCommand::Start(_)
            | TaskCommand::Complete(_)
            | TaskCommand::Fail(_)
            | TaskCommand::Retry(_)
            | TaskCommand::Run { .. }
            | TaskCommand::CleanZombie => {
                if actor.is_system() {
                    Ok(())
                } else {
                    Err(TaskError::NoPermission("Vigil itself".into()))
                }
            }
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        Ok(match command {
            TaskCommand::Create { task, .. } => {
                if self.created.is_some() {
                    return Err(TaskError::AlreadyExists);
                }
                check(task)?;
                vec![TaskEvent::Created(task.clone())]
            }
            TaskCommand::Start(started) => {
                self.expect(TaskStatus::New)?;
                vec![TaskEvent::Started(started.clone())]
            }
            TaskCommand::Complete(completed) => {
                self.expect(TaskStatus::InProgress)?;
                vec![TaskEvent::Completed(completed.clone())]
            }
            TaskCommand::Fail(failed) => {
                // A task that cannot start (its function is gone) fails from `new`.
                match self.status()? {
                    TaskStatus::New | TaskStatus::InProgress => {}
                    status => return Err(TaskError::NotInState(status, TaskStatus::InProgress)),
                }
                vec![TaskEvent::Failed(failed.clone())]
            }
            TaskCommand::Retry(retried) => {
                self.expect(TaskStatus::InProgress)?;
                vec![TaskEvent::Retried(retried.clone())]
            }
            TaskCommand::Run { started, outcome } => {
                self.expect(TaskStatus::New)?;
                vec![TaskEvent::Started(started.clone()), outcome.event()]
            }
            TaskCommand::Execute {
                task,
                started,
                outcome,
                ..
            } => {
                if self.created.is_some() {
                    return Err(TaskError::AlreadyExists);
                }
                check(task)?;
                let mut events = vec![
                    TaskEvent::Created(task.clone()),
                    TaskEvent::Started(started.clone()),
                ];
                events.extend(outcome.as_ref().map(Outcome::event));
                events
            }
            TaskCommand::CleanZombie => {
                self.expect(TaskStatus::InProgress)?;
                if self.lease_until.is_some_and(|until| until > ctx.now) {
                    return Err(TaskError::LeaseHeld);
                }
                vec![TaskEvent::Failed(TaskFailed {
                    error: RunError {
                        kind: ErrorKind::Invocation,
                        name: ZOMBIE.into(),
                        message: "The node running this task stopped before it finished".into(),
                    },
                    run: RunRecord::default(),
                })]
            }
            TaskCommand::Cancel => match self.status()? {
                TaskStatus::New => vec![TaskEvent::Canceled(TaskCanceled {})],
                status => return Err(TaskError::NotCancelable(status)),
            },
        })
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            TaskEvent::Created(e) => {
                self.created = Some(e.clone());
                self.status = Some(TaskStatus::New);
            }
            TaskEvent::Started(e) => {
                self.status = Some(TaskStatus::InProgress);
                self.lease_until = Some(e.lease_until);
            }
            TaskEvent::Completed(_) => self.status = Some(TaskStatus::Complete),
            TaskEvent::Failed(_) => self.status = Some(TaskStatus::Failed),
            TaskEvent::Retried(e) => {
                self.status = Some(TaskStatus::Retried);
                self.retried_by = Some(e.retried_by);
            }
            TaskEvent::Canceled(_) => self.status = Some(TaskStatus::Canceled),
        }
    }
}

/// The task that tries `task` (whose id is `id`) again as `retried`: the same function, data,
/// tags and priority, from when the retry is due.
pub fn retry_of(id: Id, task: &TaskCreated, retried: &TaskRetried) -> TaskCreated {
    let mut retry_for = task.retry_for.clone();
    retry_for.push(id);
    TaskCreated {
        start_at: retried.retry_at,
        retry_for,
        direct: false,
        ..task.clone()
    }
}

/// When a task that failed with `error` is tried again: after its pause, if the function's
/// policy retries that error and it has not been tried again three times already.
pub fn retry_at(
    task: &TaskCreated,
    policy: &crate::tasks::function::RetryPolicy,
    error: &RunError,
    now: Timestamp,
) -> Option<Timestamp> {
    let pause = RETRY_PAUSES_SECONDS.get(task.retry_for.len())?;
    policy
        .retries(&error.name)
        .then(|| now.plus_seconds(*pause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{NOW, given, id};
    use crate::permission::Permissions;
    use crate::tasks::function::RetryPolicy;

    pub(crate) fn new_task() -> TaskCreated {
        TaskCreated {
            function_name: "analyze".into(),
            data: JsonOf(Map::new()),
            tags: vec!["t".into()],
            priority: 0,
            start_at: NOW,
            created_by_user: Some(id(1)),
            created_by_application: None,
            retry_for: vec![],
            direct: false,
        }
    }

    fn created() -> TaskEvent {
        TaskEvent::Created(new_task())
    }

    fn start() -> TaskStarted {
        TaskStarted {
            node: "n".into(),
            lease_until: NOW.plus_seconds(60),
            code: Digest::ZERO,
        }
    }

    fn started() -> TaskEvent {
        TaskEvent::Started(start())
    }

    fn create() -> TaskCommand {
        TaskCommand::Create {
            task: new_task(),
            direct: None,
        }
    }

    fn runtime_error(name: &str) -> RunError {
        RunError {
            kind: ErrorKind::Runtime,
            name: name.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn a_task_is_created_once() {
        given::<Task>(&[]).when(create()).then(&[created()]);
        given::<Task>(&[created()])
            .when(create())
            .then_err(TaskError::AlreadyExists);
    }

    #[test]
    fn a_task_runs_once_from_new_to_complete() {
        given::<Task>(&[created()])
            .when(TaskCommand::Start(start()))
            .then(&[started()]);
        // A second node reaching for it is refused.
        given::<Task>(&[created(), started()])
            .when(TaskCommand::Start(start()))
            .then_err(TaskError::NotInState(
                TaskStatus::InProgress,
                TaskStatus::New,
            ));
        let completed = TaskCompleted {
            result: "1".into(),
            run: RunRecord::default(),
        };
        given::<Task>(&[created(), started()])
            .when(TaskCommand::Complete(completed.clone()))
            .then(&[TaskEvent::Completed(completed.clone())]);
        given::<Task>(&[
            created(),
            started(),
            TaskEvent::Completed(completed.clone()),
        ])
        .when(TaskCommand::Complete(completed))
        .then_err(TaskError::NotInState(
            TaskStatus::Complete,
            TaskStatus::InProgress,
        ));
    }

    #[test]
    fn a_whole_run_is_recorded_at_once_only_for_a_new_task() {
        let completed = TaskCompleted {
            result: "1".into(),
            run: RunRecord::default(),
        };
        let run = TaskCommand::Run {
            started: start(),
            outcome: Outcome::Complete(completed.clone()),
        };
        given::<Task>(&[created()])
            .when(run.clone())
            .then(&[started(), TaskEvent::Completed(completed)]);
        // Another runner claimed it meanwhile: this run is dropped.
        given::<Task>(&[created(), started()])
            .when(run)
            .then_err(TaskError::NotInState(
                TaskStatus::InProgress,
                TaskStatus::New,
            ));
    }

    #[test]
    fn a_direct_execution_is_made_started_and_ended_at_once() {
        let completed = TaskCompleted {
            result: "1".into(),
            run: RunRecord::default(),
        };
        let execute = |outcome| TaskCommand::Execute {
            task: new_task(),
            execution: Execution {
                mode: PermissionMode::AllUsers,
                function_name: "f".into(),
            },
            started: start(),
            outcome,
        };
        given::<Task>(&[])
            .when(execute(Some(Outcome::Complete(completed.clone()))))
            .then(&[created(), started(), TaskEvent::Completed(completed)]);
        given::<Task>(&[])
            .when(execute(None))
            .then(&[created(), started()]);
        given::<Task>(&[created()])
            .when(execute(None))
            .then_err(TaskError::AlreadyExists);
    }

    #[test]
    fn only_a_new_task_is_canceled() {
        given::<Task>(&[created()])
            .when(TaskCommand::Cancel)
            .then(&[TaskEvent::Canceled(TaskCanceled {})]);
        given::<Task>(&[created(), started()])
            .when(TaskCommand::Cancel)
            .then_err(TaskError::NotCancelable(TaskStatus::InProgress));
        given::<Task>(&[])
            .when(TaskCommand::Cancel)
            .then_err(TaskError::Unknown);
    }

    #[test]
    fn a_zombie_is_cleaned_only_after_its_lease() {
        given::<Task>(&[created(), started()])
            .when(TaskCommand::CleanZombie)
            .then_err(TaskError::LeaseHeld);
        let events = given::<Task>(&[created(), started()])
            .at(NOW.plus_seconds(61))
            .when(TaskCommand::CleanZombie)
            .events();
        let [TaskEvent::Failed(failed)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(failed.error.name, ZOMBIE);
    }

    #[test]
    fn direct_executions_follow_the_functions_permission_mode() {
        let user = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        let anonymous = Actor::anonymous(None, Via::Http, None);
        let direct = |mode| TaskCommand::Create {
            task: TaskCreated {
                direct: true,
                ..new_task()
            },
            direct: Some(Execution {
                mode,
                function_name: "analyze".into(),
            }),
        };
        assert!(
            given::<Task>(&[])
                .by(anonymous.clone())
                .when(direct(PermissionMode::Public))
                .events_or_error()
                .is_ok()
        );
        given::<Task>(&[])
            .by(anonymous)
            .when(direct(PermissionMode::AllUsers))
            .then_err(TaskError::NoPermission(
                "EXECUTE_TASK_FUNCTION:analyze".into(),
            ));
        assert!(
            given::<Task>(&[])
                .by(user.clone())
                .when(direct(PermissionMode::AllUsers))
                .events_or_error()
                .is_ok()
        );
        given::<Task>(&[])
            .by(user)
            .when(direct(PermissionMode::PermissionRequired))
            .then_err(TaskError::NoPermission(
                "EXECUTE_TASK_FUNCTION:analyze".into(),
            ));
        let scoped = Actor::user(
            id(1),
            None,
            ["EXECUTE_TASK_FUNCTION:analyze".to_owned()]
                .into_iter()
                .collect::<Permissions>(),
            Via::Http,
            None,
        );
        assert!(
            given::<Task>(&[])
                .by(scoped)
                .when(direct(PermissionMode::PermissionRequired))
                .events_or_error()
                .is_ok()
        );
    }

    #[test]
    fn only_vigil_runs_tasks() {
        let admin = Actor::user(id(1), None, Permissions::all(), Via::Http, None);
        given::<Task>(&[created()])
            .by(admin)
            .when(TaskCommand::Start(start()))
            .then_err(TaskError::NoPermission("Vigil itself".into()));
    }

    #[test]
    fn data_over_250_kb_is_refused() {
        let mut data = Map::new();
        data.insert("x".into(), Value::String("y".repeat(DATA_BYTES)));
        given::<Task>(&[])
            .when(TaskCommand::Create {
                task: TaskCreated {
                    data: JsonOf(data),
                    ..new_task()
                },
                direct: None,
            })
            .events_or_error()
            .expect_err("accepted");
    }

    #[test]
    fn a_failure_is_retried_three_times_after_2_5_and_10_seconds() {
        let policy = RetryPolicy {
            enabled: true,
            errors_to_retry: vec!["CONNECTION_ERROR".into()],
        };
        let mut task = new_task();
        let mut pauses = vec![];
        while let Some(at) = retry_at(&task, &policy, &runtime_error("CONNECTION_ERROR"), NOW) {
            pauses.push((at.millis() - NOW.millis()) / 1000);
            let retried = TaskRetried {
                error: runtime_error("CONNECTION_ERROR"),
                run: RunRecord::default(),
                retried_by: id(9),
                retry_at: at,
            };
            task = retry_of(id(u8::try_from(pauses.len()).unwrap()), &task, &retried);
        }
        assert_eq!(pauses, [2, 5, 10]);
        assert_eq!(task.retry_for, [id(1), id(2), id(3)]);
        assert_eq!(
            retry_at(&new_task(), &policy, &runtime_error("TypeError"), NOW),
            None
        );
    }
}
