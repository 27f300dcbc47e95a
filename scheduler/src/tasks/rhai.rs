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
//! milliseconds) and `random()` (a float in [0, 1)) come from the host, and each call is recorded
//! with what it answered, so a run replayed with its recorded calls ([`Host::replaying`]) gets the
//! same answers and reaches the same result.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Scope};
use serde_json::Value;
use vigil_domain::tasks::task::{
    HostCall, LOG_LINE_CHARS, LOG_LINES, LogLine, RunError, RunRecord,
};
use vigil_domain::value::Timestamp;

use super::{runtime, time_limit_exceeded};

/// Operations a run may take at most (a tight loop makes about ten million a second).
pub const MAX_OPERATIONS: u64 = 2_000_000_000;
pub const MAX_CALL_LEVELS: usize = 64;
/// How often (in operations) the wall clock is looked at.
const CLOCK_EVERY: u64 = 4096;

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub time: Duration,
    pub memory_mb: u32,
}

/// What the host answers a script's calls with: live (and recorded), or replayed from a record.
#[derive(Debug)]
pub struct Host {
    replay: Option<VecDeque<HostCall>>,
    calls: Vec<HostCall>,
    logs: Vec<LogLine>,
    /// Set when a replayed run asked something else than the recorded run did.
    diverged: Option<String>,
}

impl Host {
    pub fn live() -> Self {
        Self {
            replay: None,
            calls: Vec::new(),
            logs: Vec::new(),
            diverged: None,
        }
    }

    /// A host answering each call with what the recorded run's same call answered.
    pub fn replaying(recorded: &[HostCall]) -> Self {
        Self {
            replay: Some(recorded.iter().cloned().collect()),
            ..Self::live()
        }
    }

    /// Answers call `name` with `input`: live by `answer`, or as recorded.
    fn call(&mut self, name: &str, input: Value, answer: impl FnOnce() -> Value) -> Value {
        let input = input.to_string();
        let output = match &mut self.replay {
            None => answer(),
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
        self.calls.push(HostCall {
            name: name.to_owned(),
            input,
            output: output.to_string(),
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
        let ast = engine(Limits {
            time: Duration::from_secs(1),
            memory_mb: 128,
        })
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
    pub fn run(&self, task: &Value, limits: Limits, host: Host) -> Ran {
        let host = Arc::new(Mutex::new(host));
        let mut engine = engine(limits);
        register_host(&mut engine, &host);
        let deadline = Instant::now() + limits.time;
        engine.on_progress(move |operations| {
            (operations % CLOCK_EVERY == 0 && Instant::now() >= deadline)
                .then(|| Dynamic::from("time limit"))
        });
        let result = rhai::serde::to_dynamic(task)
            .and_then(|task| {
                engine.call_fn::<Dynamic>(&mut Scope::new(), &self.ast, &self.function, (task,))
            })
            .map_err(|error| run_error(*error, limits))
            .and_then(|value| {
                rhai::serde::from_dynamic::<Value>(&value).map_err(|error| {
                    runtime("InvalidResult", format!("the result is not JSON: {error}"))
                })
            });
        drop(engine);
        let host = match Arc::try_unwrap(host) {
            Ok(host) => host
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Err(shared) => {
                let mut host = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                std::mem::replace(&mut *host, Host::live())
            }
        };
        Ran {
            result,
            record: RunRecord {
                logs: host.logs,
                host_calls: host.calls,
            },
            diverged: host.diverged,
        }
    }
}

/// An engine with the sandbox's limits and nothing of the machine.
fn engine(limits: Limits) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(64, 64);
    let memory = usize::try_from(limits.memory_mb)
        .unwrap_or(usize::MAX)
        .saturating_mul(1024 * 1024);
    engine.set_max_string_size(memory / 4);
    engine.set_max_array_size(memory / 64);
    engine.set_max_map_size(memory / 64);
    engine.set_max_modules(0);
    engine
}

fn register_host(engine: &mut Engine, host: &Arc<Mutex<Host>>) {
    let with = |host: &Arc<Mutex<Host>>| {
        let host = host.clone();
        move |work: &mut dyn FnMut(&mut Host)| {
            let mut host = host
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut host);
        }
    };
    let logger = with(host);
    engine.on_print(move |text| logger(&mut |host| host.log(text)));
    let debugger = with(host);
    engine.on_debug(move |text, _, _| debugger(&mut |host| host.log(text)));
    let log = with(host);
    engine.register_fn("log", move |text: &str| log(&mut |host| host.log(text)));
    let clock = with(host);
    engine.register_fn("now", move || {
        let mut answer = 0;
        clock(&mut |host| {
            answer = host
                .call("now", Value::Array(vec![]), || {
                    Timestamp::now().millis().into()
                })
                .as_i64()
                .unwrap_or_default();
        });
        answer
    });
    let dice = with(host);
    engine.register_fn("random", move || {
        let mut answer = 0.0;
        dice(&mut |host| {
            answer = host
                .call("random", Value::Array(vec![]), || {
                    rand::random::<f64>().into()
                })
                .as_f64()
                .unwrap_or_default();
        });
        answer
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
                    Host::live(),
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
        let ran = script("fn handler(task) { loop { } }").run(&Value::Null, limits, Host::live());
        assert_eq!(ran.result.unwrap_err().name, "TimeLimitExceeded");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn memory_and_depth_are_bounded() {
        let ran = script("fn handler(task) { let s = \"x\"; loop { s += s; } }").run(
            &Value::Null,
            limits(),
            Host::live(),
        );
        assert_eq!(ran.result.unwrap_err().name, "MemoryLimitExceeded");
        let ran = script("fn deeper(n) { deeper(n + 1) } fn handler(task) { deeper(0) }").run(
            &Value::Null,
            limits(),
            Host::live(),
        );
        assert_eq!(ran.result.unwrap_err().name, "CallDepthExceeded");
    }

    #[test]
    fn a_thrown_error_keeps_its_name_and_message() {
        let ran =
            script("fn handler(task) { throw #{ name: \"CONNECTION_ERROR\", message: \"down\" } }")
                .run(&Value::Null, limits(), Host::live());
        let error = ran.result.unwrap_err();
        assert_eq!(
            (error.name.as_str(), error.message.as_str()),
            ("CONNECTION_ERROR", "down")
        );
        let ran = script("fn handler(task) { throw \"plain\" }").run(
            &Value::Null,
            limits(),
            Host::live(),
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
                    .run(&Value::Null, limits(), Host::live())
                    .result
                    .is_err(),
            };
            assert!(refused, "{source}");
        }
    }

    #[test]
    fn a_replay_gets_the_recorded_time_and_randomness() {
        let code = script("fn handler(task) { let t = now(); let r = random(); `${t}/${r}` }");
        let ran = code.run(&Value::Null, limits(), Host::live());
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
