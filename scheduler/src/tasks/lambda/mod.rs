//! The Lambda-compatible runtimes: a `nodejs*` or `python3*` function runs in a child process of
//! the interpreter installed on the machine (`node`, `python3`), through a bootstrap shipped with
//! Vigil ([`bootstrap.cjs`](bootstrap.cjs), [`bootstrap.py`](bootstrap.py)) that calls the handler
//! the entry point names the way AWS Lambda does: the task as the event, `async` handlers and
//! callbacks, the return value as the result, a thrown error as `{type: 'runtime', name,
//! message}`.
//!
//! A worker is kept warm between runs of one version of a function (its code and settings), as
//! Lambda keeps an execution environment, and runs one task at a time; [`IDLE_WORKERS`] wait at
//! most, for [`IDLE_FOR`]. What a run writes to stdout and stderr is its task log. A run past its
//! time limit has its worker killed; a worker's data segment may grow by the function's memory
//! limit past what the runtime itself took to start (`RLIMIT_DATA`), and Node.js's heap is capped
//! at that limit too.
//!
//! What this isolation does not do: the worker runs as Vigil's own user, sees the machine's files
//! and network, and its environment holds only the function's variables (not Vigil's). Functions
//! are deployed by administrators; run Vigil in a container or as a dedicated user to fence them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use vigil_domain::id::Digest;
use vigil_domain::tasks::function::FunctionSettings;
use vigil_domain::tasks::task::{LOG_LINE_CHARS, LOG_LINES, LogLine, RunError, RunRecord};
use vigil_domain::value::Timestamp;

use super::code::Files;
use super::{invocation, runtime, time_limit_exceeded};

/// Idle workers kept at most, over all functions.
pub const IDLE_WORKERS: usize = 32;
/// How long an idle worker is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(600);
/// How long a worker may take to start and load its handler.
const START_WITHIN: Duration = Duration::from_secs(30);
/// How long after its answer a run's last log lines may arrive.
const LOGS_WITHIN: Duration = Duration::from_secs(2);
/// The line the bootstrap ends a run's output with (followed by the run's number).
const END: &str = "\u{1}vigil-end ";

const NODE_BOOTSTRAP: &str = include_str!("bootstrap.cjs");
const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap.py");

/// The interpreter a Lambda runtime needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Node,
    Python,
}

impl Interpreter {
    /// The interpreter of `runtime` (`nodejs20.x`, `python3.12`), if it is a Lambda runtime.
    pub fn of(runtime: &str) -> Option<Self> {
        if runtime.starts_with("nodejs") {
            Some(Self::Node)
        } else if runtime.starts_with("python3") {
            Some(Self::Python)
        } else {
            None
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Python => "python3",
        }
    }

    /// Where the interpreter is on this machine's `PATH`, if it is.
    pub fn find(self) -> Option<PathBuf> {
        self.find_in(&std::env::var_os("PATH")?)
    }

    /// Where the interpreter is in the directories of `path` (a `PATH` value), if it is.
    fn find_in(self, path: &std::ffi::OsStr) -> Option<PathBuf> {
        std::env::split_paths(path)
            .map(|dir| dir.join(self.program()))
            .find(|candidate| candidate.is_file())
    }

    fn bootstrap(self) -> (&'static str, &'static str) {
        match self {
            Self::Node => ("bootstrap.cjs", NODE_BOOTSTRAP),
            Self::Python => ("bootstrap.py", PYTHON_BOOTSTRAP),
        }
    }
}

/// Why a function of `runtime` cannot run on this machine, if it cannot.
pub fn unavailable(runtime: &str) -> Option<String> {
    let interpreter = Interpreter::of(runtime)?;
    interpreter.find().is_none().then(|| {
        format!(
            "the `{runtime}` runtime needs `{}` on the PATH of the machine running Vigil, and it is not there",
            interpreter.program()
        )
    })
}

/// One version of a function: what a warm worker was started for.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub function: String,
    pub digest: Digest,
    pub settings: FunctionSettings,
    /// The environment variables, opened.
    pub environment: Vec<(String, String)>,
}

/// A run of a Lambda function.
#[derive(Debug)]
pub struct Invoked {
    pub result: Result<Value, RunError>,
    pub record: RunRecord,
}

/// What a worker printed: a line, or the end of a run's output.
enum Output {
    Line(String),
    End(u64),
}

struct Worker {
    child: Child,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    output: mpsc::UnboundedReceiver<Output>,
    runs: u64,
    idle_since: Instant,
}

/// The Lambda runtimes of a node: where code is unpacked, and the warm workers.
pub struct Runtimes {
    root: PathBuf,
    idle: Mutex<Vec<(Version, Worker)>>,
}

impl Runtimes {
    /// Runtimes unpacking code and their bootstraps under `root`.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("code"))?;
        for interpreter in [Interpreter::Node, Interpreter::Python] {
            // Nodes sharing `root` may be starting workers: the file is replaced whole.
            let (name, text) = interpreter.bootstrap();
            let staging = root.join(format!(
                ".{name}-{}",
                hex::encode(rand::random::<[u8; 6]>())
            ));
            std::fs::write(&staging, text)?;
            std::fs::rename(&staging, root.join(name))?;
        }
        Ok(Self {
            root: root.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `version` with `event` (the task), unpacking `zip` (its code) if no worker is warm:
    /// what the handler returned or threw, and what it logged.
    pub async fn invoke(
        &self,
        interpreter: Interpreter,
        version: &Version,
        zip: impl AsyncFnOnce() -> Result<Option<Vec<u8>>, String>,
        event: Value,
        request_id: &str,
    ) -> Invoked {
        let mut worker = match self.warm(version) {
            Some(worker) => worker,
            None => match self.start(interpreter, version, zip).await {
                Ok(worker) => worker,
                Err(error) => {
                    return Invoked {
                        result: Err(error),
                        record: RunRecord::default(),
                    };
                }
            },
        };
        let (invoked, healthy) = worker.run(version, event, request_id).await;
        if healthy {
            self.park(version.clone(), worker);
        }
        invoked
    }

    /// A warm worker of `version`, if one is idle.
    fn warm(&self, version: &Version) -> Option<Worker> {
        let mut idle = self.idle.lock().ok()?;
        idle.retain(|(_, worker)| worker.idle_since.elapsed() < IDLE_FOR);
        let index = idle.iter().rposition(|(v, _)| v == version)?;
        Some(idle.swap_remove(index).1)
    }

    fn park(&self, version: Version, mut worker: Worker) {
        worker.idle_since = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((version, worker));
            if idle.len() > IDLE_WORKERS {
                // The one idle longest goes (its process is killed as it drops).
                let oldest = idle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, w))| w.idle_since)
                    .map(|(i, _)| i);
                if let Some(oldest) = oldest {
                    idle.swap_remove(oldest);
                }
            }
        }
    }

    /// The directory `version`'s code is unpacked in, unpacking it if it is not yet.
    async fn unpacked(
        &self,
        digest: Digest,
        zip: impl AsyncFnOnce() -> Result<Option<Vec<u8>>, String>,
    ) -> Result<PathBuf, RunError> {
        let dir = self.root.join("code").join(digest.to_string());
        if dir.is_dir() {
            return Ok(dir);
        }
        let zip = zip()
            .await
            .map_err(|e| invocation("CodeMissing", e))?
            .ok_or_else(|| {
                invocation(
                    "CodeMissing",
                    format!("the function's code {digest} is not in the blob store"),
                )
            })?;
        let staging = self.root.join("code").join(format!(
            ".{digest}-{}",
            hex::encode(rand::random::<[u8; 6]>())
        ));
        let unpack = {
            let staging = staging.clone();
            let dir = dir.clone();
            move || -> Result<(), RunError> {
                let files = Files::unzip(&zip).map_err(|e| invocation("InvalidCode", e.0))?;
                let failed = |e: std::io::Error| {
                    invocation("CodeUnpacking", format!("cannot unpack the code: {e}"))
                };
                for (path, content) in files.iter() {
                    let target = staging.join(path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(failed)?;
                    }
                    std::fs::write(&target, content).map_err(failed)?;
                }
                std::fs::create_dir_all(&staging).map_err(failed)?;
                // Another run may have unpacked the same code meanwhile: either copy will do.
                if std::fs::rename(&staging, &dir).is_err() {
                    let _ = std::fs::remove_dir_all(&staging);
                    if !dir.is_dir() {
                        return Err(invocation(
                            "CodeUnpacking",
                            format!("cannot unpack the code into {}", dir.display()),
                        ));
                    }
                }
                Ok(())
            }
        };
        tokio::task::spawn_blocking(unpack)
            .await
            .map_err(|e| invocation("CodeUnpacking", e.to_string()))??;
        Ok(dir)
    }

    /// Starts a worker for `version`: its interpreter running the bootstrap in the code's
    /// directory, connected to a socket of its own, with its handler loaded.
    async fn start(
        &self,
        interpreter: Interpreter,
        version: &Version,
        zip: impl AsyncFnOnce() -> Result<Option<Vec<u8>>, String>,
    ) -> Result<Worker, RunError> {
        let program = interpreter.find().ok_or_else(|| {
            invocation(
                "RuntimeUnavailable",
                unavailable(&version.settings.runtime).unwrap_or_default(),
            )
        })?;
        let dir = self.unpacked(version.digest, zip).await?;
        let settings = &version.settings;
        // Socket paths are short (108 bytes), so they live in the temporary directory.
        let socket = std::env::temp_dir().join(format!(
            "vigil-{}.sock",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let failed = |e: std::io::Error| {
            invocation("RuntimeStart", format!("cannot start the runtime: {e}"))
        };
        let listener = UnixListener::bind(&socket).map_err(failed)?;
        let mut command = Command::new(program);
        match interpreter {
            Interpreter::Node => {
                command.arg(format!("--max-old-space-size={}", settings.memory_limit));
            }
            Interpreter::Python => {
                command.args(["-u", "-B"]);
            }
        }
        command
            .arg(self.root.join(interpreter.bootstrap().0))
            .arg(&socket)
            .arg(&settings.entry_point)
            .current_dir(&dir)
            .env_clear()
            .envs(lambda_environment(version, &dir))
            .envs(version.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_file(&socket);
                return Err(failed(error));
            }
        };
        let (sender, output) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward(stdout, sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward(stderr, sender));
        }
        let accepted = timeout(START_WITHIN, listener.accept()).await;
        let _ = std::fs::remove_file(&socket);
        let stream = match accepted {
            Ok(Ok((stream, _))) => stream,
            Ok(Err(error)) => return Err(failed(error)),
            Err(_) => {
                return Err(invocation(
                    "RuntimeStart",
                    format!("the runtime did not start within {START_WITHIN:?}"),
                ));
            }
        };
        let (read, writer) = stream.into_split();
        let mut worker = Worker {
            child,
            reader: BufReader::new(read),
            writer,
            output,
            runs: 0,
            idle_since: Instant::now(),
        };
        match timeout(START_WITHIN, worker.message()).await {
            Ok(Some(ready)) if ready.get("ready") == Some(&Value::Bool(true)) => {}
            Ok(Some(answer)) => {
                let (name, message) = error_parts(answer.get("error"));
                return Err(invocation(&name, message));
            }
            Ok(None) => {
                let logs = worker.drain();
                let status = worker.exit_status().await;
                let tail = logs.iter().rev().take(5).rev().cloned().collect::<Vec<_>>();
                return Err(invocation(
                    "Runtime.ExitError",
                    format!(
                        "the runtime exited while starting ({status}): {}",
                        tail.join("\n")
                    ),
                ));
            }
            Err(_) => {
                return Err(invocation(
                    "RuntimeStart",
                    format!("the handler did not load within {START_WITHIN:?}"),
                ));
            }
        }
        worker.limit_memory(settings.memory_limit);
        Ok(worker)
    }
}

/// The variables AWS Lambda sets that functions commonly read.
fn lambda_environment(version: &Version, dir: &Path) -> Vec<(String, String)> {
    let mut environment = vec![
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("TZ".to_owned(), ":UTC".to_owned()),
        ("HOME".to_owned(), dir.display().to_string()),
        ("LAMBDA_TASK_ROOT".to_owned(), dir.display().to_string()),
        ("_HANDLER".to_owned(), version.settings.entry_point.clone()),
        (
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            version.function.clone(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            version.settings.memory_limit.to_string(),
        ),
        (
            "AWS_EXECUTION_ENV".to_owned(),
            format!("AWS_Lambda_{}", version.settings.runtime),
        ),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        environment.push(("PATH".to_owned(), path.to_string_lossy().into_owned()));
    }
    environment
}

fn error_parts(error: Option<&Value>) -> (String, String) {
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    (
        text("name").unwrap_or_else(|| "Error".into()),
        text("message").unwrap_or_default(),
    )
}

/// Forwards a worker's output, line by line, ends of runs marked. The bootstrap starts its end
/// marker on a line of its own, so the empty line just before a marker is not the function's.
async fn forward(stream: impl AsyncRead + Unpin, sender: mpsc::UnboundedSender<Output>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut held_empty = false;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let mut outputs = Vec::with_capacity(2);
        match text.split_once(END) {
            Some((before, run)) => {
                if !before.is_empty() {
                    outputs.push(Output::Line(before.to_owned()));
                }
                held_empty = false;
                outputs.push(Output::End(run.trim().parse().unwrap_or(0)));
            }
            None => {
                if std::mem::replace(&mut held_empty, text.is_empty()) {
                    outputs.push(Output::Line(String::new()));
                }
                if !text.is_empty() {
                    outputs.push(Output::Line(text.to_owned()));
                }
            }
        }
        if outputs
            .into_iter()
            .any(|output| sender.send(output).is_err())
        {
            return;
        }
    }
    if held_empty {
        let _ = sender.send(Output::Line(String::new()));
    }
}

impl Worker {
    /// The next message on the socket; `None` once the worker hung up.
    async fn message(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }

    /// Runs one request; whether the worker can run another.
    async fn run(&mut self, version: &Version, event: Value, request_id: &str) -> (Invoked, bool) {
        self.runs += 1;
        let id = self.runs;
        let limit = Duration::from_secs(u64::from(version.settings.time_limit));
        let deadline_ms = Timestamp::now().0 + i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        let request = json!({
            "id": id,
            "event": event,
            "context": {
                "functionName": version.function,
                "functionVersion": version.digest.to_string(),
                "memoryLimitInMB": version.settings.memory_limit.to_string(),
                "awsRequestId": request_id,
                "invokedFunctionArn": format!("arn:vigil:tasks:function:{}", version.function),
                "deadline": deadline_ms,
            },
        });
        let mut line = request.to_string();
        line.push('\n');
        let mut logs = Vec::new();
        let answered = timeout(limit, async {
            if self.writer.write_all(line.as_bytes()).await.is_err() {
                return None;
            }
            loop {
                match self.message().await {
                    Some(answer) if answer.get("id").and_then(Value::as_u64) == Some(id) => {
                        return Some(answer);
                    }
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await;
        let (result, healthy) = match answered {
            Ok(Some(answer)) => {
                self.collect(id, &mut logs).await;
                let result = match answer.get("error") {
                    Some(error) => {
                        let (name, message) = error_parts(Some(error));
                        Err(runtime(&name, message))
                    }
                    None => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
                };
                (result, true)
            }
            Ok(None) => {
                let status = self.exit_status().await;
                logs.extend(self.drain());
                (
                    Err(runtime(
                        "Runtime.ExitError",
                        format!("the runtime exited during the run ({status})"),
                    )),
                    false,
                )
            }
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                logs.extend(self.drain());
                (
                    Err(time_limit_exceeded(u64::from(version.settings.time_limit))),
                    false,
                )
            }
        };
        let logs = logs
            .into_iter()
            .take(LOG_LINES)
            .map(|message| LogLine {
                at: Timestamp::now(),
                message: message.chars().take(LOG_LINE_CHARS).collect(),
            })
            .collect();
        (
            Invoked {
                result,
                record: RunRecord {
                    logs,
                    host_calls: Vec::new(),
                },
            },
            healthy,
        )
    }

    /// Collects run `id`'s output until both its streams marked its end.
    async fn collect(&mut self, id: u64, logs: &mut Vec<String>) {
        let mut ends = 0;
        let deadline = Instant::now() + LOGS_WITHIN;
        while ends < 2 {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(Output::Line(line))) => logs.push(line),
                Ok(Some(Output::End(run))) if run == id => ends += 1,
                Ok(Some(Output::End(_))) => {}
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// The output already forwarded.
    fn drain(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(output) = self.output.try_recv() {
            if let Output::Line(line) = output {
                lines.push(line);
            }
        }
        lines
    }

    async fn exit_status(&mut self) -> String {
        match timeout(Duration::from_secs(1), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => {
                let _ = self.child.start_kill();
                "killed".into()
            }
        }
    }

    /// Lets the worker's data segment grow by `megabytes` past what it holds now.
    fn limit_memory(&self, megabytes: u32) {
        let Some(pid) = self.child.id() else {
            return;
        };
        let data = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmData:"))
                    .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        let limit = data * 1024 + u64::from(megabytes) * 1024 * 1024;
        if let Ok(pid) = i32::try_from(pid)
            && let Err(error) =
                rlimit::prlimit(pid, rlimit::Resource::DATA, Some((limit, limit)), None)
        {
            tracing::warn!(%error, "cannot limit a function runtime's memory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_runtimes_name_their_interpreter() {
        assert_eq!(Interpreter::of("nodejs20.x"), Some(Interpreter::Node));
        assert_eq!(Interpreter::of("python3.12"), Some(Interpreter::Python));
        assert_eq!(Interpreter::of("rhai"), None);
        assert_eq!(Interpreter::of("java21"), None);
        assert_eq!(unavailable("rhai"), None);
    }

    #[test]
    fn an_interpreter_is_found_on_the_path_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Interpreter::Node.find_in(dir.path().as_os_str()), None);
        assert_eq!(Interpreter::Node.find_in(std::ffi::OsStr::new("")), None);
        std::fs::write(dir.path().join("node"), "").unwrap();
        assert_eq!(
            Interpreter::Node.find_in(dir.path().as_os_str()),
            Some(dir.path().join("node"))
        );
        assert_eq!(Interpreter::Python.find_in(dir.path().as_os_str()), None);
    }

    #[tokio::test]
    async fn output_is_forwarded_by_line_with_the_ends_of_runs_marked() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let printed = format!("one\n\n{END}6\n\n\ntwo{END}7\n{END}8\nthree\n\n");
        forward(printed.as_bytes(), sender).await;
        let mut seen = Vec::new();
        while let Ok(output) = receiver.try_recv() {
            seen.push(match output {
                Output::Line(line) => line,
                Output::End(run) => format!("end {run}"),
            });
        }
        assert_eq!(
            seen,
            ["one", "end 6", "", "two", "end 7", "end 8", "three", ""]
        );
    }
}
