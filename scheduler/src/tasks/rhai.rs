//! The `rhai` runtime: a function's script run in process, sandboxed by rhai's limits.
//!
//! The function's zip holds `<module>.rhai`; its entry point `<module>.<function>` names the rhai
//! function called with the task (the same object a Lambda handler gets as its event), whose
//! return value is the task's result. A script reaches nothing but what the host registers:
//! no files, no `import`, no `eval`. Its limits:
//!
//! - wall clock: the function's `timeLimit`;
//! - operations: [`MAX_OPERATIONS`]; call depth [`MAX_CALL_LEVELS`]; expression depth;
//! - memory: rhai cannot count a script's allocations, so `memoryLimit` bounds the size of every
//!   string, array and map a script makes (a string at most a quarter of it, an array or map at
//!   most one element per 64 bytes of it).
//!
//! A script exceeding one is stopped and the task fails with a runtime error naming the limit.
//!
//! The host API (see the README): `print`/`debug`/`log(text)` write task logs; `now()` (epoch
//! milliseconds) and `random()` (a float in [0, 1)) come from the host; `api(method, path[,
//! body])` and its shorthands (`find_documents`, `find_document`, `create_document`,
//! `update_document`, `transition_document`, `publish_event`, `create_task`) call Vigil's API
//! through the [`Gateway`] as the function's execution identity; `http(method, url[, headers][,
//! body])` calls any HTTP(S) service. Each host call is recorded with what it answered (header
//! values only as digests), so a run replayed with its recorded calls ([`Host::replaying`]) gets
//! the same answers and reaches the same result without calling anything again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Position, Scope};
use serde_json::{Value, json};
use vigil_domain::id::{Digest, Id};
use vigil_domain::tasks::task::{
    HostCall, LOG_LINE_CHARS, LOG_LINES, LogLine, RunError, RunRecord,
};
use vigil_domain::value::Timestamp;

use super::gateway::{ApiCall, Gateway};
use super::{runtime, time_limit_exceeded};

/// Operations a run may take at most (a tight loop makes about ten million a second).
pub const MAX_OPERATIONS: u64 = 2_000_000_000;
pub const MAX_CALL_LEVELS: usize = 64;
/// How often (in operations) the wall clock is looked at.
const CLOCK_EVERY: u64 = 4096;
/// The most bytes the API and HTTP calls of one run may record (inputs and answers), so that
/// the record fits in the commit that ends the task.
pub const MAX_RECORDED_BYTES: usize = 512 * 1024;
/// The longest HTTP answer body a script is given.
const MAX_HTTP_BODY: usize = 256 * 1024;

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub time: Duration,
    pub memory_mb: u32,
}

/// Claims the run's task for this runner (`task.started`): `Err` when another runner has it.
pub type Claim = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Where a run stands with its task's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Not claimed: the run had no effect outside itself (or there is no task to claim).
    No,
    /// Claimed before its first effect.
    Made,
    /// Another runner had the task: the run must be dropped.
    Lost,
}

/// What a live run reaches beyond its script: Vigil's API as the function's execution identity,
/// and HTTP services.
#[derive(Clone)]
pub struct Connection {
    /// Vigil's API, once it is connected (right after the node's reactors start).
    pub gateway: Arc<OnceLock<Arc<dyn Gateway>>>,
    /// The runtime the calls are made on (the run itself is on a blocking thread).
    pub handle: tokio::runtime::Handle,
    pub function: String,
    /// The function's execution user, if it was given execution credentials.
    pub identity: Option<Id>,
    /// What caused the run (`task-<id>`), the causation of every change it makes.
    pub cause: String,
    pub http: reqwest::Client,
    /// Made before the run's first effect outside itself, so that only one runner's effects
    /// happen; without one, the run changes nothing before its outcome is recorded.
    pub claim: Option<Claim>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("function", &self.function)
            .field("identity", &self.identity)
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

/// What the host answers a script's calls with: live (and recorded), or replayed from a record.
#[derive(Debug)]
pub struct Host {
    replay: Option<VecDeque<HostCall>>,
    calls: Vec<HostCall>,
    logs: Vec<LogLine>,
    /// Set when a replayed run asked something else than the recorded run did.
    diverged: Option<String>,
    connection: Option<Connection>,
    deadline: Option<Instant>,
    /// Bytes the API and HTTP calls recorded so far.
    recorded: usize,
    claimed: std::cell::Cell<Claimed>,
}

/// The answer of an API call that did not reach the API, in the API's error shape.
fn unanswered(status: u16, name: &str, message: impl Into<String>) -> Value {
    json!({"status": status, "body": {"name": name, "message": message.into()}})
}

impl Host {
    /// A host answering live, reaching the API and HTTP through `connection` (none: calls to
    /// them fail).
    pub fn live(connection: Option<Connection>) -> Self {
        Self {
            replay: None,
            calls: Vec::new(),
            logs: Vec::new(),
            diverged: None,
            connection,
            deadline: None,
            recorded: 0,
            claimed: std::cell::Cell::new(Claimed::No),
        }
    }

    /// Before an effect outside the run: claims the task if that is still to do. `Err` when
    /// another runner has it.
    fn before_effect(&self) -> Result<(), String> {
        let Some(claim) = self.connection.as_ref().and_then(|c| c.claim.as_ref()) else {
            return Ok(());
        };
        match self.claimed.get() {
            Claimed::Made => Ok(()),
            Claimed::Lost => Err("another runner has this task".into()),
            Claimed::No => {
                let claimed = claim();
                self.claimed.set(if claimed.is_ok() {
                    Claimed::Made
                } else {
                    Claimed::Lost
                });
                claimed
            }
        }
    }

    /// A host answering each call with what the recorded run's same call answered.
    pub fn replaying(recorded: &[HostCall]) -> Self {
        Self {
            replay: Some(recorded.iter().cloned().collect()),
            ..Self::live(None)
        }
    }

    /// How long a host call may take: what is left of the run's time.
    fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::from_secs(30), |deadline| {
            deadline.saturating_duration_since(Instant::now())
        })
    }

    /// `POST`s, `GET`s... `path` of Vigil's API with `body`, as the function's identity:
    /// `{status, body}`.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let Some(connection) = &self.connection else {
            return unanswered(503, "NoApi", "this run does not reach the API");
        };
        let Some(user_id) = connection.identity else {
            return unanswered(
                403,
                "NoExecutionCredentials",
                format!(
                    "the function {0} has no execution credentials: POST /tasks/v1/functions/{0}/executionCredentials gives it some",
                    connection.function
                ),
            );
        };
        if !path.starts_with('/') {
            return unanswered(
                400,
                "InvalidPath",
                format!("`{path}` does not start with /"),
            );
        }
        let method = method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "HEAD")
            && let Err(message) = self.before_effect()
        {
            return unanswered(409, "TaskTaken", message);
        }
        let Some(gateway) = connection.gateway.get() else {
            return unanswered(503, "NoApi", "Vigil's API is not connected yet: try again");
        };
        let call = ApiCall {
            user_id,
            cause: connection.cause.clone(),
            method,
            path: path.to_owned(),
            body,
        };
        let answered = connection
            .handle
            .block_on(tokio::time::timeout(self.remaining(), gateway.call(call)));
        let Ok(answer) = answered else {
            return unanswered(
                504,
                "TimeLimitExceeded",
                "the run's time ran out during the call",
            );
        };
        let answer = json!({"status": answer.status, "body": answer.body});
        match self.beyond_record(&answer) {
            Some(message) => unanswered(507, "RecordLimitExceeded", message),
            None => answer,
        }
    }

    /// Why `answer` cannot be recorded, if the run's record has no room left for it.
    fn beyond_record(&self, answer: &Value) -> Option<String> {
        (self.recorded + answer.to_string().len() > MAX_RECORDED_BYTES).then(|| {
            format!("a run's API and HTTP answers are at most {MAX_RECORDED_BYTES} bytes together")
        })
    }

    /// Calls an HTTP(S) service: `{status, headers, body}` (a JSON body parsed), or `{error}`.
    fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
    ) -> Value {
        let failed = |message: String| json!({"error": message});
        let Some(connection) = &self.connection else {
            return failed("this run makes no HTTP calls".into());
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return failed(format!("`{url}` is not an http:// or https:// URL"));
        }
        let Ok(method) = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
            return failed(format!("`{method}` is not an HTTP method"));
        };
        if let Err(message) = self.before_effect() {
            return failed(message);
        }
        let mut request = connection
            .http
            .request(method, url)
            .timeout(self.remaining());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request = match body {
            None | Some(Value::Null) => request,
            Some(Value::String(text)) => request.body(text.clone()),
            Some(json) => request.json(json),
        };
        let answered = connection.handle.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers: serde_json::Map<String, Value> = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into(),
                    )
                })
                .collect();
            let mut bytes = Vec::new();
            let mut response = response;
            while let Some(chunk) = response.chunk().await? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_HTTP_BODY {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, headers, bytes))
        });
        match answered {
            Err(error) => failed(format!("the call failed: {error}")),
            Ok((_, _, bytes)) if bytes.len() > MAX_HTTP_BODY => {
                failed(format!("the answer is over {MAX_HTTP_BODY} bytes"))
            }
            Ok((status, headers, bytes)) => {
                let body = serde_json::from_slice::<Value>(&bytes)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into());
                let answer = json!({"status": status, "headers": headers, "body": body});
                self.beyond_record(&answer).map_or(answer, failed)
            }
        }
    }

    /// Answers call `name` with `input`: live by `answer`, or as recorded.
    fn call(&mut self, name: &str, input: Value, answer: impl FnOnce(&Self) -> Value) -> Value {
        let input = input.to_string();
        let output = match self.replay.as_mut() {
            None => answer(self),
            Some(recorded) => match recorded.pop_front() {
                Some(call) if call.name == name && call.input == input => {
                    serde_json::from_str(&call.output).unwrap_or(Value::Null)
                }
                other => {
                    self.diverged.get_or_insert_with(|| {
                        format!(
                            "the replay called {name}({input}) where the run called {}",
                            other.map_or_else(
                                || "nothing more".into(),
                                |c| format!("{}({})", c.name, c.input)
                            )
                        )
                    });
                    Value::Null
                }
            },
        };
        let output_text = output.to_string();
        if matches!(name, "api" | "http") {
            self.recorded += input.len() + output_text.len();
        }
        self.calls.push(HostCall {
            name: name.to_owned(),
            input,
            output: output_text,
        });
        output
    }

    fn log(&mut self, message: &str) {
        if self.logs.len() < LOG_LINES {
            self.logs.push(LogLine {
                at: self.timestamp(),
                message: message.chars().take(LOG_LINE_CHARS).collect(),
            });
        }
    }

    /// A log line's time: the latest `now()` answer in a replay, the clock otherwise.
    fn timestamp(&self) -> Timestamp {
        match &self.replay {
            None => Timestamp::now(),
            Some(_) => Timestamp(0),
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Ran {
    pub result: Result<Value, RunError>,
    pub record: RunRecord,
    /// For a replay: where it stopped following the record, if it did.
    pub diverged: Option<String>,
    pub claimed: Claimed,
}

/// Why code cannot be run, found before running it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodeError(pub String);

/// The module and function an entry point names (`index.handler`).
fn entry(entry_point: &str) -> Result<(&str, &str), CodeError> {
    entry_point
        .rsplit_once('.')
        .filter(|(module, function)| !module.is_empty() && !function.is_empty())
        .ok_or_else(|| {
            CodeError(format!(
                "the entry point `{entry_point}` is not `<file>.<function>`, such as `index.handler`"
            ))
        })
}

/// A compiled script, ready to run.
#[derive(Debug)]
pub struct Script {
    ast: rhai::AST,
    function: String,
}

impl Script {
    /// Compiles the script the entry point names in `files` (the unzipped code), checking that
    /// it defines the entry function with one parameter.
    pub fn compile(files: &super::code::Files, entry_point: &str) -> Result<Self, CodeError> {
        let (module, function) = entry(entry_point)?;
        let file = format!("{module}.rhai");
        let source = files.text(&file).ok_or_else(|| {
            CodeError(format!(
                "the code has no `{file}`, which the entry point `{entry_point}` names"
            ))
        })?;
        let ast = engine(128)
            .compile(source)
            .map_err(|error| CodeError(format!("`{file}` does not compile: {error}")))?;
        if !ast
            .iter_functions()
            .any(|f| f.name == function && f.params.len() == 1)
        {
            return Err(CodeError(format!(
                "`{file}` defines no function `{function}` taking the task"
            )));
        }
        Ok(Self {
            ast,
            function: function.to_owned(),
        })
    }

    /// Runs the entry function with `task` as its argument, answering host calls from `host`.
    pub fn run(&self, task: &Value, limits: Limits, mut host: Host) -> Ran {
        host.deadline = Some(Instant::now() + limits.time);
        let engine = engine(limits.memory_mb);
        let (result, host) = Running::enter(host, || {
            rhai::serde::to_dynamic(task).and_then(|task| {
                engine.call_fn::<Dynamic>(&mut Scope::new(), &self.ast, &self.function, (task,))
            })
        });
        let result = result
            .map_err(|error| run_error(*error, limits))
            .and_then(|value| {
                rhai::serde::from_dynamic::<Value>(&value).map_err(|error| {
                    runtime("InvalidResult", format!("the result is not JSON: {error}"))
                })
            });
        Ran {
            result,
            record: RunRecord {
                logs: host.logs,
                host_calls: host.calls,
            },
            diverged: host.diverged,
            claimed: host.claimed.get(),
        }
    }
}

/// The host of the run on this thread. A run is synchronous on one thread, so the engines, built
/// once, find what the current run's host calls go to here.
struct Running;

thread_local! {
    static RUNNING: std::cell::RefCell<Option<Host>> = const { std::cell::RefCell::new(None) };
}

impl Running {
    /// Runs `work` as the run of `host`; gives back what it gave and the host.
    fn enter<T>(host: Host, work: impl FnOnce() -> T) -> (T, Host) {
        /// Ends the run on this thread, also when `work` panics.
        struct Left;
        impl Drop for Left {
            fn drop(&mut self) {
                RUNNING.with(|running| running.borrow_mut().take());
            }
        }
        RUNNING.with(|running| *running.borrow_mut() = Some(host));
        let left = Left;
        let done = work();
        let host = RUNNING.with(|running| running.borrow_mut().take());
        drop(left);
        (done, host.unwrap_or_else(|| Host::live(None)))
    }

    /// What `work` makes of the current run's host.
    fn with<T>(work: impl FnOnce(&mut Host) -> T) -> Result<T, Thrown> {
        RUNNING
            .with(|running| running.borrow_mut().as_mut().map(work))
            .ok_or_else(|| {
                thrown(
                    "NoHost",
                    "a host function was called outside a run",
                    Value::Null,
                )
            })
    }

    /// Whether the current run is past its deadline.
    fn overdue() -> bool {
        RUNNING.with(|running| {
            running
                .borrow()
                .as_ref()
                .and_then(|host| host.deadline)
                .is_some_and(|deadline| Instant::now() >= deadline)
        })
    }
}

/// The engine for runs with a memory limit of `memory_mb`: built once per limit, with the host
/// API registered, and shared by every run and compilation.
fn engine(memory_mb: u32) -> Arc<Engine> {
    static ENGINES: OnceLock<Mutex<HashMap<u32, Arc<Engine>>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(Mutex::default);
    let mut engines = engines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if engines.len() >= 64 {
        engines.clear();
    }
    engines
        .entry(memory_mb)
        .or_insert_with(|| Arc::new(sandboxed(memory_mb)))
        .clone()
}

/// An engine with the sandbox's limits, the host API, and nothing of the machine.
fn sandboxed(memory_mb: u32) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(64, 64);
    let memory = usize::try_from(memory_mb)
        .unwrap_or(usize::MAX)
        .saturating_mul(1024 * 1024);
    engine.set_max_string_size(memory / 4);
    engine.set_max_array_size(memory / 64);
    engine.set_max_map_size(memory / 64);
    engine.set_max_modules(0);
    engine.on_progress(|operations| {
        (operations % CLOCK_EVERY == 0 && Running::overdue()).then(|| Dynamic::from("time limit"))
    });
    register_host(&mut engine);
    engine
}

type Thrown = Box<EvalAltResult>;

/// An error thrown into the script as `#{name, message, ...details}`: uncaught, it fails the
/// task with that name and message.
fn thrown(name: &str, message: &str, details: Value) -> Thrown {
    let mut error = json!({"name": name, "message": message});
    if let (Some(error), Value::Object(details)) = (error.as_object_mut(), details) {
        error.extend(details);
    }
    Box::new(EvalAltResult::ErrorRuntime(
        rhai::serde::to_dynamic(error).unwrap_or_default(),
        Position::NONE,
    ))
}

fn to_json(value: &Dynamic) -> Result<Value, Thrown> {
    rhai::serde::from_dynamic::<Value>(value).map_err(|error| {
        thrown(
            "InvalidArgument",
            &format!("not JSON: {error}"),
            Value::Null,
        )
    })
}

fn to_rhai(value: &Value) -> Result<Dynamic, Thrown> {
    rhai::serde::to_dynamic(value)
}

/// Calls the API (recorded): `{status, body}`.
fn api_call(method: &str, path: &str, body: Option<Value>) -> Result<Value, Thrown> {
    let input = json!({"method": method, "path": path, "body": body});
    Running::with(|host| host.call("api", input, |host| host.api(method, path, body.clone())))
}

/// The body of a successful API answer, or the API's error, thrown.
fn succeeded(answer: &Value) -> Result<Value, Thrown> {
    let status = answer.get("status").and_then(Value::as_u64).unwrap_or(0);
    let body = answer.get("body").cloned().unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    Err(thrown(
        &text("name").unwrap_or_else(|| "ApiError".into()),
        &text("message").unwrap_or_else(|| format!("the API answered {status}")),
        json!({"status": status, "code": body.get("code")}),
    ))
}

/// Calls the API and gives the body of its successful answer.
fn api_body(method: &str, path: &str, body: Option<Value>) -> Result<Dynamic, Thrown> {
    to_rhai(&succeeded(&api_call(method, path, body)?)?)
}

/// The documents path of schema `schema` (a name or id), refusing what would leave it.
fn documents_path(schema: &str) -> Result<String, Thrown> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(thrown(
            "InvalidArgument",
            &format!("`{schema}` is not a schema name or id"),
            Value::Null,
        ));
    }
    Ok(format!("/data/v1/{schema}/documents"))
}

/// `?<rql>` for an RQL query given with or without its `?`.
fn query(rql: &str) -> String {
    match rql.trim_start_matches('?') {
        "" => String::new(),
        rql => format!("?{rql}"),
    }
}

/// An id for a path: hex digits only.
fn path_id(id: &str) -> Result<&str, Thrown> {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(thrown(
            "InvalidArgument",
            &format!("`{id}` is not an id"),
            Value::Null,
        ))
    }
}

/// Calls an HTTP service (recorded, header values as digests); a call that failed is thrown.
fn http_call(
    method: &str,
    url: &str,
    headers: &rhai::Map,
    body: &Dynamic,
) -> Result<Dynamic, Thrown> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let body = (!body.is_unit()).then(|| to_json(body)).transpose()?;
    let digests: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                Digest::of(value.as_bytes()).to_string().into(),
            )
        })
        .collect();
    let input = json!({"method": method, "url": url, "headers": digests, "body": body});
    let answer = Running::with(|host| {
        host.call("http", input, |host| {
            host.http(method, url, &headers, body.as_ref())
        })
    })?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(thrown("HttpError", error, Value::Null));
    }
    to_rhai(&answer)
}

/// A task log line of the current run.
fn log_line(text: &str) {
    // Outside a run (never, as the engines are only used by runs) a line has nowhere to go.
    let _ = Running::with(|host| host.log(text));
}

/// Registers the host API: what a script reaches of the world.
fn register_host(engine: &mut Engine) {
    engine.on_print(log_line);
    engine.on_debug(|text, _, _| log_line(text));
    engine.register_fn("log", log_line);
    engine.register_fn("now", || -> Result<i64, Thrown> {
        let answer = Running::with(|host| {
            host.call("now", Value::Array(vec![]), |_| {
                Timestamp::now().millis().into()
            })
        })?;
        Ok(answer.as_i64().unwrap_or_default())
    });
    engine.register_fn("random", || -> Result<f64, Thrown> {
        let answer = Running::with(|host| {
            host.call("random", Value::Array(vec![]), |_| {
                rand::random::<f64>().into()
            })
        })?;
        Ok(answer.as_f64().unwrap_or_default())
    });
    engine.register_fn("http", |method: &str, url: &str| {
        http_call(method, url, &rhai::Map::new(), &Dynamic::UNIT)
    });
    engine.register_fn("http", |method: &str, url: &str, body: Dynamic| {
        http_call(method, url, &rhai::Map::new(), &body)
    });
    engine.register_fn(
        "http",
        |method: &str, url: &str, headers: rhai::Map, body: Dynamic| {
            http_call(method, url, &headers, &body)
        },
    );
    register_api(engine);
}

/// `api` and its shorthands for documents, events and tasks.
fn register_api(engine: &mut Engine) {
    engine.register_fn("api", |method: &str, path: &str| {
        to_rhai(&api_call(method, path, None)?)
    });
    engine.register_fn("api", |method: &str, path: &str, body: Dynamic| {
        to_rhai(&api_call(method, path, Some(to_json(&body)?))?)
    });
    engine.register_fn("find_documents", |schema: &str, rql: &str| {
        let path = format!("{}{}", documents_path(schema)?, query(rql));
        let page = succeeded(&api_call("GET", &path, None)?)?;
        to_rhai(page.get("data").unwrap_or(&Value::Array(vec![])))
    });
    engine.register_fn("find_document", |schema: &str, id: &str| {
        let path = format!("{}?eq(id,{})", documents_path(schema)?, path_id(id)?);
        let page = succeeded(&api_call("GET", &path, None)?)?;
        match page.pointer("/data/0") {
            Some(document) => to_rhai(document),
            None => Ok(Dynamic::UNIT),
        }
    });
    engine.register_fn("create_document", |schema: &str, data: Dynamic| {
        api_body("POST", &documents_path(schema)?, Some(to_json(&data)?))
    });
    engine.register_fn(
        "update_document",
        |schema: &str, id: &str, data: Dynamic| {
            let path = format!("{}/{}", documents_path(schema)?, path_id(id)?);
            api_body("PUT", &path, Some(to_json(&data)?))
        },
    );
    fn transition(
        schema: &str,
        id: &str,
        name: &str,
        data: Option<Value>,
    ) -> Result<Dynamic, Thrown> {
        let path = format!("{}/{}/transition", documents_path(schema)?, path_id(id)?);
        let mut body = json!({"name": name});
        if let (Some(data), Some(body)) = (data, body.as_object_mut()) {
            body.insert("data".into(), data);
        }
        api_body("POST", &path, Some(body))
    }
    engine.register_fn(
        "transition_document",
        |schema: &str, id: &str, name: &str| transition(schema, id, name, None),
    );
    engine.register_fn(
        "transition_document",
        |schema: &str, id: &str, name: &str, data: Dynamic| {
            transition(schema, id, name, Some(to_json(&data)?))
        },
    );
    engine.register_fn("publish_event", |kind: &str, content: Dynamic| {
        let body = json!({"type": kind, "content": to_json(&content)?});
        api_body("POST", "/events/v1", Some(body))
    });
    engine.register_fn("create_task", |function: &str, data: Dynamic| {
        let body = json!({"functionName": function, "data": to_json(&data)?});
        api_body("POST", "/tasks/v1", Some(body))
    });
}

/// The task error a rhai error becomes: a limit names itself; a thrown `#{name, message}` map
/// gives its name and message (so a retry policy can name it), any other thrown value is an
/// `Error` with the value as its message.
fn run_error(error: EvalAltResult, limits: Limits) -> RunError {
    match error {
        EvalAltResult::ErrorTerminated(..) => time_limit_exceeded(limits.time.as_secs()),
        EvalAltResult::ErrorTooManyOperations(_) => runtime(
            "OperationLimitExceeded",
            format!("The run was stopped after {MAX_OPERATIONS} operations"),
        ),
        EvalAltResult::ErrorStackOverflow(_) => runtime(
            "CallDepthExceeded",
            format!("The run was stopped at a call depth of {MAX_CALL_LEVELS}"),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => runtime(
            "MemoryLimitExceeded",
            format!(
                "The run was stopped: {what} exceeds what a memory limit of {} MB allows",
                limits.memory_mb
            ),
        ),
        EvalAltResult::ErrorRuntime(value, _) => {
            let thrown = rhai::serde::from_dynamic::<Value>(&value).unwrap_or(Value::Null);
            let text = |key: &str| thrown.get(key).and_then(Value::as_str).map(str::to_owned);
            match (text("name"), text("message")) {
                (Some(name), message) => runtime(&name, message.unwrap_or_default()),
                (None, _) => runtime("Error", value.to_string()),
            }
        }
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => run_error(*inner, limits),
        other => runtime("ScriptError", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::code::Files;

    fn script(source: &str) -> Script {
        Script::compile(&Files::single("index.rhai", source), "index.handler").unwrap()
    }

    fn limits() -> Limits {
        Limits {
            time: Duration::from_secs(3),
            memory_mb: 128,
        }
    }

    #[test]
    fn the_entry_function_gets_the_task_and_returns_the_result() {
        let ran =
            script("fn handler(task) { log(`got ${task.data.x}`); #{ doubled: task.data.x * 2 } }")
                .run(
                    &serde_json::json!({"data": {"x": 21}}),
                    limits(),
                    Host::live(None),
                );
        assert_eq!(ran.result.unwrap(), serde_json::json!({"doubled": 42}));
        assert_eq!(ran.record.logs[0].message, "got 21");
    }

    #[test]
    fn code_without_the_entry_function_is_refused() {
        let files = Files::single("index.rhai", "fn other(task) { 1 }");
        assert!(Script::compile(&files, "index.handler").is_err());
        assert!(Script::compile(&files, "main.other").is_err());
        assert!(Script::compile(&files, "nodot").is_err());
        assert!(
            Script::compile(
                &Files::single("index.rhai", "fn handler(task) {"),
                "index.handler"
            )
            .is_err()
        );
    }

    #[test]
    fn a_runaway_script_is_stopped_at_its_time_limit() {
        let limits = Limits {
            time: Duration::from_millis(200),
            memory_mb: 128,
        };
        let started = Instant::now();
        let ran =
            script("fn handler(task) { loop { } }").run(&Value::Null, limits, Host::live(None));
        assert_eq!(ran.result.unwrap_err().name, "TimeLimitExceeded");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn memory_and_depth_are_bounded() {
        let ran = script("fn handler(task) { let s = \"x\"; loop { s += s; } }").run(
            &Value::Null,
            limits(),
            Host::live(None),
        );
        assert_eq!(ran.result.unwrap_err().name, "MemoryLimitExceeded");
        let ran = script("fn deeper(n) { deeper(n + 1) } fn handler(task) { deeper(0) }").run(
            &Value::Null,
            limits(),
            Host::live(None),
        );
        assert_eq!(ran.result.unwrap_err().name, "CallDepthExceeded");
    }

    #[test]
    fn a_thrown_error_keeps_its_name_and_message() {
        let ran =
            script("fn handler(task) { throw #{ name: \"CONNECTION_ERROR\", message: \"down\" } }")
                .run(&Value::Null, limits(), Host::live(None));
        let error = ran.result.unwrap_err();
        assert_eq!(
            (error.name.as_str(), error.message.as_str()),
            ("CONNECTION_ERROR", "down")
        );
        let ran = script("fn handler(task) { throw \"plain\" }").run(
            &Value::Null,
            limits(),
            Host::live(None),
        );
        assert_eq!(ran.result.unwrap_err().name, "Error");
    }

    #[test]
    fn the_machine_is_out_of_reach() {
        for source in [
            "fn handler(task) { import \"fs\" as fs; 1 }",
            "fn handler(task) { eval(\"1\") }",
        ] {
            let compiled = Script::compile(&Files::single("index.rhai", source), "index.handler");
            let refused = match compiled {
                Err(_) => true,
                Ok(script) => script
                    .run(&Value::Null, limits(), Host::live(None))
                    .result
                    .is_err(),
            };
            assert!(refused, "{source}");
        }
    }

    #[test]
    fn a_replay_gets_the_recorded_time_and_randomness() {
        let code = script("fn handler(task) { let t = now(); let r = random(); `${t}/${r}` }");
        let ran = code.run(&Value::Null, limits(), Host::live(None));
        let result = ran.result.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let replayed = code.run(
            &Value::Null,
            limits(),
            Host::replaying(&ran.record.host_calls),
        );
        assert_eq!(replayed.result.unwrap(), result);
        assert_eq!(replayed.diverged, None);
        let other = script("fn handler(task) { random() }").run(
            &Value::Null,
            limits(),
            Host::replaying(&ran.record.host_calls),
        );
        assert!(other.diverged.is_some());
    }
}
