//! Replays a finished rhai task (`vigil replay-task <id>`): runs its code again, as of its start,
//! with every host call answered from the record its ending commit holds, and compares the outcome
//! with the recorded one. A run depends on nothing else (the task, the code, the host's answers),
//! so a replay that reaches another outcome shows the record or the runtime changed.

use serde_json::Value;
use vigil_commands::blobs::{BlobError, Blobs};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::event::{AreaEvent, FunctionEvent, TaskEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::{EventLog, LogError};
use vigil_domain::tasks::function::{self, Function, RHAI};
use vigil_domain::tasks::task::{RunError, RunRecord, Task, TaskStatus};

use super::code::Files;
use super::rhai::{Host, Limits, Script};
use super::task_json;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Unreplayable(String),
}

/// How a run ended: its result as JSON text, or its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Result(String),
    Error(RunError),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Result(json) => write!(f, "result {json}"),
            Self::Error(error) => write!(
                f,
                "{} error {}: {}",
                error.kind.wire_name(),
                error.name,
                error.message
            ),
        }
    }
}

/// A replay: the recorded and the replayed ending and log lines.
#[derive(Debug)]
pub struct Replayed {
    pub recorded: Ending,
    pub replayed: Ending,
    pub recorded_logs: Vec<String>,
    pub replayed_logs: Vec<String>,
    /// Where the replay asked the host something the run had not, if it did.
    pub diverged: Option<String>,
}

impl Replayed {
    /// Whether the replay reached what the run reached.
    pub fn same(&self) -> bool {
        self.recorded == self.replayed
            && self.recorded_logs == self.replayed_logs
            && self.diverged.is_none()
    }
}

fn unreplayable(message: impl Into<String>) -> ReplayError {
    ReplayError::Unreplayable(message.into())
}

/// Replays task `id` from `log` and `blobs`.
pub async fn replay(log: &dyn EventLog, blobs: &Blobs, id: Id) -> Result<Replayed, ReplayError> {
    let commits = log.read_stream(&StreamId::of(Task::KIND, id), 0).await?;
    let (mut created, mut started, mut ending) = (None, None, None);
    for recorded in &commits {
        for event in recorded.commit.events.iter().filter_map(TaskEvent::within) {
            match event {
                TaskEvent::Created(e) => created = Some(e.clone()),
                TaskEvent::Started(e) => started = Some((e.clone(), recorded.position)),
                TaskEvent::Completed(e) => {
                    ending = Some((Ending::Result(e.result.clone()), e.run.clone()));
                }
                TaskEvent::Failed(e) => {
                    ending = Some((Ending::Error(e.error.clone()), e.run.clone()))
                }
                TaskEvent::Retried(e) => {
                    ending = Some((Ending::Error(e.error.clone()), e.run.clone()));
                }
                TaskEvent::Canceled(_) => {}
            }
        }
    }
    let created = created.ok_or_else(|| unreplayable(format!("no task has the id {id}")))?;
    let (started, start_position) =
        started.ok_or_else(|| unreplayable("the task never started"))?;
    let (recorded, run) = ending.ok_or_else(|| unreplayable("the task has not finished"))?;
    // The function as it was when the task started.
    let function_stream = function::stream(&created.function_name)
        .map_err(|error| unreplayable(error.to_string()))?;
    let mut function = Function::default();
    for recorded in log.read_stream(&function_stream, 0).await? {
        if recorded.position >= start_position {
            break;
        }
        for event in recorded
            .commit
            .events
            .iter()
            .filter_map(FunctionEvent::within)
        {
            function.apply(event);
        }
    }
    let (settings, _) = function
        .current
        .ok_or_else(|| unreplayable("the task's function did not exist when it started"))?;
    if settings.runtime != RHAI {
        return Err(unreplayable(format!(
            "only rhai runs are replayed; this one ran {}",
            settings.runtime
        )));
    }
    let zip = blobs.get(&started.code).await?.ok_or_else(|| {
        unreplayable(format!(
            "the code {} is not in the blob store",
            started.code
        ))
    })?;
    let script = Files::unzip(&zip)
        .and_then(|files| Script::compile(&files, &settings.entry_point))
        .map_err(|error| unreplayable(error.0))?;
    // The task as the run saw it: as of its start time.
    let event = task_json(id, &created, TaskStatus::InProgress, created.start_at);
    let limits = Limits {
        time: std::time::Duration::from_secs(u64::from(settings.time_limit)),
        memory_mb: settings.memory_limit,
    };
    let host_calls = run.host_calls.clone();
    let ran = tokio::task::spawn_blocking(move || {
        script.run(&event, limits, Host::replaying(&host_calls))
    })
    .await
    .map_err(|error| unreplayable(format!("the replay crashed: {error}")))?;
    let messages = |record: &RunRecord| record.logs.iter().map(|l| l.message.clone()).collect();
    Ok(Replayed {
        recorded,
        replayed: match ran.result {
            Ok(value) => Ending::Result(Value::to_string(&value)),
            Err(error) => Ending::Error(error),
        },
        recorded_logs: messages(&run),
        replayed_logs: messages(&ran.record),
        diverged: ran.diverged,
    })
}
