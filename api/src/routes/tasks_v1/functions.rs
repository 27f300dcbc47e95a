//! Functions: `/tasks/v1/functions` and `/tasks/v1/functions/{name}` (enable, disable, execute).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use vigil_commands::blobs::Blobs;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_domain::json::JsonOf;
use vigil_domain::tasks::function::{
    self, EnvironmentVariable, Function, FunctionCode, FunctionCommand, FunctionSettings,
    PermissionMode, RHAI, RetryPolicy, SettingsChange,
};
use vigil_domain::tasks::task::{Execution, Task, TaskCreated, TaskError, TaskStatus};
use vigil_projections::tasks::function as model;
use vigil_projections::tasks::task::TaskRow;
use vigil_scheduler::tasks::code::Files;
use vigil_scheduler::tasks::lambda;
use vigil_scheduler::tasks::rhai::Script;
use vigil_scheduler::tasks::{Finished, RunnerError};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, MaybeCaller, OptionalJsonBody};
use crate::routes::{field_format, iso_time};
use crate::state::{AppState, TasksService};

/// The longest time limit of a function run directly (Extra Horizon's).
pub const DIRECT_TIME_LIMIT: u32 = 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/functions", get(list).post(create))
        .route("/functions/{name}", get(details).put(update).delete(remove))
        .route("/functions/{name}/enable", post(enable))
        .route("/functions/{name}/disable", post(disable))
        .route("/functions/{name}/execute", post(execute))
}

fn configuration(message: impl Into<String>) -> ApiError {
    ApiError::new(ExhCode::FunctionConfiguration, message)
}

/// A function's settings as a request gives them (the keys of `FunctionCreation`), the code
/// apart; `name` is read by the caller.
fn settings_change(
    state: &TasksService,
    name: &str,
    fields: &mut Map<String, Value>,
) -> Result<SettingsChange, ApiError> {
    let text = |fields: &mut Map<String, Value>, key: &str| match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(field_format(format!("`{key}` is a string"))),
    };
    let number = |fields: &mut Map<String, Value>, key: &str| match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| configuration(format!("`{key}` is a whole number"))),
    };
    let mut change = SettingsChange {
        description: text(fields, "description")?,
        entry_point: text(fields, "entryPoint")?,
        runtime: text(fields, "runtime")?,
        time_limit: number(fields, "timeLimit")?,
        memory_limit: number(fields, "memoryLimit")?,
        ..SettingsChange::default()
    };
    match fields.remove("environmentVariables") {
        None | Some(Value::Null) => {}
        Some(Value::Object(variables)) => {
            let mut environment = Vec::with_capacity(variables.len());
            for (variable, value) in variables {
                let Some(value) = value.get("value").and_then(Value::as_str) else {
                    return Err(configuration(format!(
                        "environment variable `{variable}` is `{{\"value\": \"...\"}}`"
                    )));
                };
                let sealed = state
                    .vault
                    .seal(
                        value.as_bytes(),
                        &function::environment_context(name, &variable),
                    )
                    .map_err(ApiError::internal)?;
                environment.push(EnvironmentVariable {
                    name: variable,
                    value: sealed,
                });
            }
            change.environment = Some(environment);
        }
        Some(_) => return Err(configuration("`environmentVariables` is an object")),
    }
    match fields.remove("executionOptions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(mut options)) => {
            match options.remove("permissionMode") {
                None | Some(Value::Null) => {}
                Some(Value::String(mode)) => {
                    change.permission_mode =
                        Some(PermissionMode::from_wire(&mode).ok_or_else(|| {
                            configuration(
                                "`permissionMode` is `permissionRequired`, `allUsers` or `public`",
                            )
                        })?);
                }
                Some(_) => return Err(configuration("`permissionMode` is a string")),
            }
            match options.remove("defaultPriority") {
                None => {}
                Some(Value::Null) => change.default_priority = Some(None),
                Some(value) => {
                    change.default_priority =
                        Some(Some(value.as_i64().ok_or_else(|| {
                            configuration("`defaultPriority` is a whole number")
                        })?));
                }
            }
            if let Some(unknown) = options.keys().next() {
                return Err(configuration(format!(
                    "`executionOptions.{unknown}` is not an option"
                )));
            }
        }
        Some(_) => return Err(configuration("`executionOptions` is an object")),
    }
    match fields.remove("retryPolicy") {
        None | Some(Value::Null) => {}
        Some(Value::Object(policy)) => {
            let enabled = match policy.get("enabled") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(enabled)) => *enabled,
                Some(_) => return Err(configuration("`retryPolicy.enabled` is a boolean")),
            };
            let errors_to_retry = match policy.get("errorsToRetry") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(names)) => names
                    .iter()
                    .map(|name| name.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| configuration("`retryPolicy.errorsToRetry` lists names"))?,
                Some(_) => return Err(configuration("`retryPolicy.errorsToRetry` is a list")),
            };
            change.retry_policy = Some(RetryPolicy {
                enabled,
                errors_to_retry,
            });
        }
        Some(_) => return Err(configuration("`retryPolicy` is an object")),
    }
    if let Some(unknown) = fields.keys().next() {
        return Err(configuration(format!(
            "`{unknown}` is not a function setting"
        )));
    }
    Ok(change)
}

/// The code a request gives (base64 of a zip), if it gives one.
fn given_code(fields: &mut Map<String, Value>) -> Result<Option<Vec<u8>>, ApiError> {
    match fields.remove("code") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(code)) => base64::engine::general_purpose::STANDARD
            .decode(code.trim())
            .map(Some)
            .map_err(|_| ApiError::new(ExhCode::FunctionCode, "`code` is not base64")),
        Some(_) => Err(ApiError::new(
            ExhCode::FunctionCode,
            "`code` is a base64 string",
        )),
    }
}

/// Checks that this deployment can run `zip` as `settings` say: a zip, whose entry point
/// compiles for the `rhai` runtime, of a runtime whose interpreter this machine has.
async fn check_code(settings: &FunctionSettings, zip: Vec<u8>) -> Result<(), ApiError> {
    if let Some(unavailable) = lambda::unavailable(&settings.runtime) {
        return Err(configuration(unavailable));
    }
    let entry_point = settings.entry_point.clone();
    let rhai = settings.runtime == RHAI;
    tokio::task::spawn_blocking(move || {
        let files = Files::unzip(&zip)?;
        // A Lambda runtime finds its handler when it starts, as AWS Lambda does.
        if rhai {
            Script::compile(&files, &entry_point).map(drop)
        } else {
            Ok(())
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|error| ApiError::new(ExhCode::FunctionCode, error.0))
}

async fn keep(blobs: &Blobs, zip: &[u8]) -> Result<FunctionCode, ApiError> {
    let digest = blobs.put(zip).await.map_err(ApiError::internal)?;
    Ok(FunctionCode {
        digest,
        size: zip.len() as u64,
    })
}

/// The function a path names, as the log has it now.
async fn load(state: &TasksService, name: &str) -> Result<(StreamId, Function), ApiError> {
    let stream = function::stream(name).map_err(|_| unknown_function())?;
    let (function, _) = state.bus.load::<Function>(&stream).await?;
    if !function.exists() {
        return Err(unknown_function());
    }
    Ok((stream, function))
}

fn unknown_function() -> ApiError {
    ApiError::new(ExhCode::ResourceUnknown, "No function has this name")
}

/// `GET /tasks/v1/functions`: every function, in one page (Extra Horizon ignores RQL here).
async fn list(State(state): State<TasksService>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TASK_FUNCTIONS")?;
    let rows = model::functions(&state.store).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "name": row.name,
                "description": row.description,
                "updateTimestamp": iso_time(row.update_timestamp),
            })
        })
        .collect();
    let total = data.len();
    Ok(Json(
        json!({"data": data, "page": {"total": total, "offset": 0, "limit": total.max(1)}}),
    ))
}

/// A function's details, as `GET /tasks/v1/functions/{name}` shows them.
async fn details_json(
    state: &TasksService,
    name: &str,
    function: &Function,
) -> Result<Value, ApiError> {
    let Some((settings, _)) = &function.current else {
        return Err(unknown_function());
    };
    let mut environment = Map::new();
    for variable in &settings.environment {
        let value = state
            .vault
            .open(
                &variable.value,
                &function::environment_context(name, &variable.name),
            )
            .map_err(ApiError::internal)?;
        environment.insert(
            variable.name.clone(),
            json!({"value": String::from_utf8_lossy(&value)}),
        );
    }
    let mut options = json!({"permissionMode": settings.permission_mode.wire_name()});
    if let (Some(priority), Some(options)) = (settings.default_priority, options.as_object_mut()) {
        options.insert("defaultPriority".into(), priority.into());
    }
    let updated = model::updated_at(&state.store, name)
        .await?
        .unwrap_or_default();
    Ok(json!({
        "name": name,
        "description": settings.description,
        "entryPoint": settings.entry_point,
        "runtime": settings.runtime,
        "timeLimit": settings.time_limit,
        "memoryLimit": settings.memory_limit,
        "environmentVariables": environment,
        "executionOptions": options,
        "retryPolicy": {
            "enabled": settings.retry_policy.enabled,
            "errorsToRetry": settings.retry_policy.errors_to_retry,
        },
        "enabled": function.enabled,
        "updateTimestamp": iso_time(updated),
    }))
}

/// `POST /tasks/v1/functions`: a new function (`name`, `code`, `entryPoint` and `runtime`
/// required).
async fn create(
    State(state): State<TasksService>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_TASK_FUNCTION")?;
    let mut fields = body.read()?;
    let missing: Vec<&str> = ["name", "code", "entryPoint", "runtime"]
        .into_iter()
        .filter(|key| fields.get(*key).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            format!("A function needs {}", missing.join(", ")),
        ));
    }
    let name = match fields.remove("name") {
        Some(Value::String(name)) => name,
        _ => return Err(field_format("`name` is a string")),
    };
    let stream = function::stream(&name)
        .map_err(|e| ApiError::new(ExhCode::InvalidFunctionName, e.to_string()))?;
    let zip = given_code(&mut fields)?.unwrap_or_default();
    let change = settings_change(&state, &name, &mut fields)?;
    let settings = change.new_settings();
    check_code(&settings, zip.clone()).await?;
    let code = keep(state.tasks().runner.blobs(), &zip).await?;
    let outcome = state
        .bus
        .execute::<Function>(
            &stream,
            &FunctionCommand::Create {
                settings: change,
                code,
            },
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    let (_, function) = load(&state, &name).await?;
    Ok(Json(details_json(&state, &name, &function).await?))
}

/// `GET /tasks/v1/functions/{name}`.
async fn details(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TASK_FUNCTION_DETAILS")?;
    let (_, function) = load(&state, &name).await?;
    Ok(Json(details_json(&state, &name, &function).await?))
}

/// `PUT /tasks/v1/functions/{name}`: changes what the body gives (the code too, if given).
async fn update(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_TASK_FUNCTION")?;
    let mut fields = body.read()?;
    let (stream, function) = load(&state, &name).await?;
    if let Some(renamed) = fields
        .remove("name")
        .filter(|n| n.as_str() != Some(name.as_str()))
    {
        return Err(configuration(format!(
            "a function keeps its name; it cannot become {renamed}"
        )));
    }
    let zip = given_code(&mut fields)?;
    let change = settings_change(&state, &name, &mut fields)?;
    let Some((settings, current)) = &function.current else {
        return Err(unknown_function());
    };
    let runs_differently =
        zip.is_some() || change.entry_point.is_some() || change.runtime.is_some();
    let code = match zip {
        Some(zip) => {
            check_code(&change.applied_to(settings), zip.clone()).await?;
            Some(keep(state.tasks().runner.blobs(), &zip).await?)
        }
        None if runs_differently => {
            let zip = state
                .tasks()
                .runner
                .blobs()
                .get(&current.digest)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| {
                    ApiError::internal("a function's code is missing from the blob store")
                })?;
            check_code(&change.applied_to(settings), zip).await?;
            None
        }
        None => None,
    };
    let outcome = state
        .bus
        .execute::<Function>(
            &stream,
            &FunctionCommand::Update {
                settings: change,
                code,
            },
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// Runs `command` on the function a path names, as the caller.
async fn on_function(
    state: &TasksService,
    caller: &Caller,
    name: &str,
    command: FunctionCommand,
) -> Result<Json<Value>, ApiError> {
    caller.require(match command {
        FunctionCommand::Delete => "DELETE_TASK_FUNCTION",
        _ => "UPDATE_TASK_FUNCTION",
    })?;
    let (stream, _) = load(state, name).await?;
    let outcome = state
        .bus
        .execute::<Function>(&stream, &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /tasks/v1/functions/{name}`: its tasks and their logs are kept.
async fn remove(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    on_function(&state, &caller, &name, FunctionCommand::Delete).await
}

async fn enable(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    on_function(&state, &caller, &name, FunctionCommand::Enable).await
}

async fn disable(
    State(state): State<TasksService>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    on_function(&state, &caller, &name, FunctionCommand::Disable).await
}

/// `POST /tasks/v1/functions/{name}/execute` `{data?}`: runs the function now, as a task, and
/// answers the task with the function's `result` (not kept). Who may is the function's
/// permission mode's business.
async fn execute(
    State(state): State<TasksService>,
    caller: MaybeCaller,
    Path(name): Path<String>,
    body: OptionalJsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let actor = caller.actor();
    let Ok((_, function)) = load(&state, &name).await else {
        // Whoever could not see the function learns nothing more.
        return Err(match caller.user() {
            Some(_) => unknown_function(),
            None => ApiError::new(
                ExhCode::UserNotAuthenticated,
                "This request needs an access token",
            ),
        });
    };
    let Some((settings, _)) = &function.current else {
        return Err(unknown_function());
    };
    let execution = Execution {
        mode: settings.permission_mode,
        function_name: name.clone(),
    };
    let mut fields = body.read()?;
    let data = match fields.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(field_format("`data` is an object")),
    };
    if settings.time_limit > DIRECT_TIME_LIMIT {
        return Err(ApiError::new(
            ExhCode::DirectExecutionTimeLimit,
            format!(
                "Only functions with a time limit of at most {DIRECT_TIME_LIMIT} s are executed directly"
            ),
        ));
    }
    let runner = &state.tasks().runner;
    let Some(slot) = runner.try_slot() else {
        return Err(ApiError::new(
            ExhCode::ConcurrentExecutionLimit,
            "As many tasks run as this deployment allows at once; try again shortly",
        ));
    };
    let id = state.ids.next();
    let task = TaskCreated {
        function_name: name.clone(),
        data: JsonOf(data),
        tags: Vec::new(),
        priority: settings.default_priority.unwrap_or(0),
        start_at: vigil_commands::ids::now(),
        created_by_user: actor.record().user_id,
        created_by_application: actor.record().application_id,
        retry_for: Vec::new(),
        direct: true,
    };
    let task_created = task.clone();
    // Checked before the run, which is recorded (and authorized again) only once it has run.
    execution
        .mode
        .allows(&actor, "EXECUTE_TASK_FUNCTION", &name)
        .map_err(|permission| {
            ApiError::from(vigil_commands::CommandError::Domain(
                TaskError::NoPermission(permission),
            ))
        })?;
    let finished = runner
        .execute(
            id,
            task_created,
            (execution, caller.meta()),
            function.clone(),
            slot,
        )
        .await
        .map_err(|error| match error {
            RunnerError::Task(refused) => refused.into(),
            other => ApiError::internal(other),
        })?;
    // The run's own commit is the last this node saw of the task.
    let stream = StreamId::of(Task::KIND, id);
    let (_, head) = state.bus.load_seen::<Task>(&stream).await?;
    if let Some(head) = head {
        state.settle(head.position).await?;
    }
    match finished {
        Finished::Complete(result) => {
            let row =
                match head.and_then(|head| completed(&state, &stream, id, &task, head.version)) {
                    Some(row) => row,
                    None => super::tasks::listed(&state, id).await?,
                };
            let mut json = super::tasks::task_json(&row);
            if let Some(fields) = json.as_object_mut() {
                fields.insert("result".into(), result);
            }
            Ok(Json(json))
        }
        Finished::Failed(error) | Finished::Retried(error, _) => {
            Err(super::function_failed(&error).with("taskId", json!(id.to_string())))
        }
        Finished::NotRun => Err(ApiError::internal(
            "a direct execution's task was run elsewhere",
        )),
    }
}

/// Task `id` (`task`, of `stream`), completed by the run whose last commit is version `last`, as it is
/// listed, from the commits this node remembers of it (their times are the row's); `None` when
/// it no longer remembers all of them (then the read model answers).
fn completed(
    state: &TasksService,
    stream: &StreamId,
    id: Id,
    task: &TaskCreated,
    last: u64,
) -> Option<TaskRow> {
    let commits = state.bus.seen_commits(stream);
    let versions: Vec<u64> = commits.iter().map(|(version, _)| *version).collect();
    if versions != (1..=last).collect::<Vec<u64>>() {
        return None;
    }
    let (created_at, ended_at) = (commits.first()?.1.millis(), commits.last()?.1.millis());
    Some(TaskRow {
        id: id.to_string(),
        function_name: task.function_name.clone(),
        status: TaskStatus::Complete.wire_name().to_owned(),
        status_changed_timestamp: ended_at,
        data: sqlx::types::Json(Value::Object(task.data.0.clone())),
        tags: sqlx::types::Json(json!(task.tags)),
        priority: task.priority,
        start_timestamp: task.start_at.millis(),
        created_by_user_id: task.created_by_user.map(|id| id.to_string()),
        created_by_application_id: task.created_by_application.map(|id| id.to_string()),
        retried_by_task_id: None,
        retry_for_task_ids: sqlx::types::Json(json!([])),
        error: None,
        creation_timestamp: created_at,
        update_timestamp: ended_at,
    })
}
