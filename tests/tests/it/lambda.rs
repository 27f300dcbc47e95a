//! The Lambda-compatible runtimes over HTTP, in both deployments: Node.js and Python functions
//! run by task, directly and as API functions, in warm workers, with their logs, errors and
//! limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::in_both_deployments;
use crate::tasks::{code_of, finished};

/// Creates function `name` of `runtime` from `files`, with `settings` besides.
async fn lambda_function(
    server: &TestServer,
    token: &str,
    name: &str,
    runtime: &str,
    files: &[(&str, &str)],
    settings: Value,
) -> anyhow::Result<Value> {
    let mut body = json!({
        "name": name,
        "code": code_of(files)?,
        "entryPoint": "index.handler",
        "runtime": runtime,
    });
    if let (Some(body), Value::Object(settings)) = (body.as_object_mut(), settings) {
        body.extend(settings);
    }
    let (status, function) = server
        .call(Method::POST, "/tasks/v1/functions", Some(token), Some(body))
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "{function}");
    Ok(function)
}

async fn execute(
    server: &TestServer,
    token: &str,
    name: &str,
    data: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    server
        .call(
            Method::POST,
            &format!("/tasks/v1/functions/{name}/execute"),
            Some(token),
            Some(json!({"data": data})),
        )
        .await
}

/// Runs a task of `function` with `data` to its end.
async fn run_task(
    server: &TestServer,
    token: &str,
    function: &str,
    data: Value,
) -> anyhow::Result<Value> {
    let (status, task) = server
        .call(
            Method::POST,
            "/tasks/v1/",
            Some(token),
            Some(json!({"functionName": function, "data": data})),
        )
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "{task}");
    finished(server, token, task["id"].as_str().unwrap_or_default()).await
}

async fn log_messages(
    server: &TestServer,
    token: &str,
    task: &Value,
) -> anyhow::Result<Vec<String>> {
    let id = task["id"].as_str().unwrap_or_default();
    let (status, logs) = server
        .call(
            Method::GET,
            &format!("/tasks/v1/{id}/logs"),
            Some(token),
            None,
        )
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "{logs}");
    Ok(logs["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|line| line["message"].as_str().map(str::to_owned))
        .collect())
}

const NODE_HANDLER: &str = r"
let runs = 0;
exports.handler = async (task, context) => {
  runs += 1;
  console.log('doubling', task.data.x);
  console.error('to stderr');
  if (task.data.fail) throw new TypeError('x is ' + task.data.x);
  return { doubled: task.data.x * 2, runs, pid: process.pid, key: process.env.API_KEY,
           name: context.functionName, left: context.getRemainingTimeInMillis() > 0, id: task.id };
};
";

in_both_deployments! {
    async fn a_node_function_runs_in_a_warm_worker(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        lambda_function(
            &server,
            &admin,
            "node-double",
            "nodejs20.x",
            &[("index.js", NODE_HANDLER)],
            json!({"environmentVariables": {"API_KEY": {"value": "k3y"}}}),
        )
        .await?;

        // By task: complete, stdout and stderr in its logs.
        let task = run_task(&server, &admin, "node-double", json!({"x": 21})).await?;
        assert_eq!(task["status"], "complete", "{task}");
        let logs = log_messages(&server, &admin, &task).await?;
        assert!(logs.contains(&"doubling 21".to_owned()), "{logs:?}");
        assert!(logs.contains(&"to stderr".to_owned()), "{logs:?}");

        // Directly, twice: the result, from the same warm worker.
        let (status, first) = execute(&server, &admin, "node-double", json!({"x": 4})).await?;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["result"]["doubled"], 8);
        assert_eq!(first["result"]["key"], "k3y");
        assert_eq!(first["result"]["name"], "node-double");
        assert_eq!(first["result"]["left"], true);
        assert_eq!(first["result"]["id"], first["id"], "the task is the event");
        let (_, second) = execute(&server, &admin, "node-double", json!({"x": 5})).await?;
        assert_eq!(second["result"]["pid"], first["result"]["pid"], "{second}");
        assert_eq!(
            second["result"]["runs"].as_u64(),
            first["result"]["runs"].as_u64().map(|runs| runs + 1)
        );

        // A thrown error is a runtime error.
        let failed = run_task(&server, &admin, "node-double", json!({"x": 1, "fail": true})).await?;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], json!({"type": "runtime", "name": "TypeError", "message": "x is 1"}));

        // A new version of the code gets a new worker.
        let (status, updated) = server
            .call(
                Method::PUT,
                "/tasks/v1/functions/node-double",
                Some(&admin),
                Some(json!({"code": code_of(&[("index.js", "exports.handler = async () => ({ pid: process.pid, v: 2 });")])?})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{updated}");
        let (_, third) = execute(&server, &admin, "node-double", json!({})).await?;
        assert_eq!(third["result"]["v"], 2, "{third}");
        assert_ne!(third["result"]["pid"], first["result"]["pid"]);
        Ok(())
    }
}

in_both_deployments! {
    async fn node_callbacks_modules_limits_and_api_functions(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;

        // A callback handler, in an ES module.
        lambda_function(
            &server,
            &admin,
            "node-callback",
            "nodejs20.x",
            &[("index.mjs", "export const handler = (event, context, callback) => { setTimeout(() => callback(null, { awaited: event.data.n + 1 }), 5); };")],
            json!({}),
        )
        .await?;
        let (status, answer) = execute(&server, &admin, "node-callback", json!({"n": 1})).await?;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["result"], json!({"awaited": 2}));

        // A handler that never ends is killed at its time limit; the next run gets a new worker.
        lambda_function(
            &server,
            &admin,
            "node-spin",
            "nodejs20.x",
            &[("index.js", "exports.handler = async (task) => { if (task.data.spin) { for (;;) {} } return process.pid; };")],
            json!({"timeLimit": 3}),
        )
        .await?;
        let (_, before) = execute(&server, &admin, "node-spin", json!({})).await?;
        let stopped = run_task(&server, &admin, "node-spin", json!({"spin": true})).await?;
        assert_eq!(stopped["status"], "failed");
        assert_eq!(stopped["error"]["name"], "TimeLimitExceeded", "{stopped}");
        let (status, after) = execute(&server, &admin, "node-spin", json!({})).await?;
        assert_eq!(status, StatusCode::OK, "{after}");
        assert_ne!(after["result"], before["result"], "a killed worker is not reused");

        // Memory past the limit fails the run, not the deployment.
        lambda_function(
            &server,
            &admin,
            "node-hog",
            "nodejs20.x",
            &[("index.js", "exports.handler = async () => { const kept = []; for (let i = 0; i < 64; i++) kept.push(Buffer.alloc(16 * 1024 * 1024, 1)); return kept.length; };")],
            json!({"memoryLimit": 128}),
        )
        .await?;
        let hog = run_task(&server, &admin, "node-hog", json!({})).await?;
        assert_eq!(hog["status"], "failed", "{hog}");

        // A missing handler is an invocation error naming it.
        lambda_function(&server, &admin, "node-missing", "nodejs20.x", &[("other.js", "")], json!({})).await?;
        let missing = run_task(&server, &admin, "node-missing", json!({})).await?;
        assert_eq!(missing["error"]["type"], "invocation", "{missing}");
        assert_eq!(missing["error"]["name"], "Runtime.ImportModuleError");

        // An API function answering with its own status and header.
        lambda_function(
            &server,
            &admin,
            "node-api",
            "nodejs20.x",
            &[("index.js", "exports.handler = async (request) => ({ statusCode: 202, headers: { 'x-node': 'yes' }, body: JSON.stringify({ path: request.rawPath, method: request.requestContext.http.method }) });")],
            json!({"executionOptions": {"permissionMode": "allUsers"}}),
        )
        .await?;
        let response = reqwest::Client::new()
            .get(server.url("/tasks/v1/api/node-api/some/where"))
            .bearer_auth(&admin)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["x-node"], "yes");
        let body: Value = response.json().await?;
        assert_eq!(body, json!({"path": "/some/where", "method": "GET"}));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_python_function_runs_as_lambda_runs_it(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        lambda_function(
            &server,
            &admin,
            "py-triple",
            "python3.12",
            &[
                ("index.py", "import helper\n\ndef handler(event, context):\n    print('tripling', event['data']['x'])\n    if event['data'].get('fail'):\n        raise ValueError('no')\n    return {'tripled': helper.triple(event['data']['x']), 'name': context.function_name}\n"),
                ("helper.py", "def triple(x):\n    return x * 3\n"),
            ],
            json!({}),
        )
        .await?;
        let (status, answer) = execute(&server, &admin, "py-triple", json!({"x": 3})).await?;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["result"], json!({"tripled": 9, "name": "py-triple"}));
        assert!(log_messages(&server, &admin, &answer).await?.contains(&"tripling 3".to_owned()));

        let failed = run_task(&server, &admin, "py-triple", json!({"x": 1, "fail": true})).await?;
        assert_eq!(failed["error"], json!({"type": "runtime", "name": "ValueError", "message": "no"}));

        lambda_function(
            &server,
            &admin,
            "py-hog",
            "python3.12",
            &[("index.py", "def handler(event, context):\n    return len(bytearray(512 * 1024 * 1024))\n")],
            json!({"memoryLimit": 128}),
        )
        .await?;
        let hog = run_task(&server, &admin, "py-hog", json!({})).await?;
        assert_eq!(hog["error"]["name"], "MemoryError", "{hog}");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_node_killed_mid_task_leaves_it_failed_as_a_zombie_never_complete(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let first = TestServer::start(&env).await?;
        let admin = first.admin_token().await?;
        lambda_function(
            &first,
            &admin,
            "node-slow",
            "nodejs20.x",
            &[("index.js", "exports.handler = () => new Promise((resolve) => setTimeout(() => resolve('late'), 2500));")],
            json!({"timeLimit": 3}),
        )
        .await?;
        let credentials = first.admin.clone();
        drop(first);

        // A node of its own process, whose claims last no longer than the time limit, runs it…
        let killed = crate::cli::Serving::start(&env, &[("VIGIL_TASK_LEASE_GRACE_SECONDS", "0")]).await?;
        let url = |path: &str| format!("http://127.0.0.1:{}{path}", killed.http);
        let client = reqwest::Client::new();
        let task: Value = client
            .post(url("/tasks/v1/"))
            .bearer_auth(&admin)
            .json(&json!({"functionName": "node-slow"}))
            .send()
            .await?
            .json()
            .await?;
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let page: Value = client
                .get(url(&format!("/tasks/v1/?eq(id,{id})")))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            if page["data"][0]["status"] == "inProgress" {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "never started: {page}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // …and is killed mid-run.
        let mut child = killed.child;
        child.kill()?;
        child.wait()?;

        // The node after it finds the claim ended and fails the task once, as a zombie.
        let next = TestServer::restart(&env, credentials).await?;
        let ended = finished(&next, &admin, &id).await?;
        assert_eq!(ended["status"], "failed", "{ended}");
        assert_eq!(ended["error"]["name"], "zombieTaskCleaned", "{ended}");
        let history = next.history(&format!("task-{id}")).await?;
        let kinds: Vec<&str> = history.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(kinds.iter().filter(|kind| **kind == "task.started").count(), 1, "{kinds:?}");
        assert!(!kinds.contains(&"task.completed"), "{kinds:?}");
        Ok(())
    }
}
