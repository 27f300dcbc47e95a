//! The task service over HTTP, in both deployments: rhai functions created, run by tasks, by
//! direct execution and by a document's `task` action, retried, stopped at their limits, and the
//! refusals of each step.

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;

pub(crate) use vigil_tests::code_of;

/// Creates the rhai function `name` running `script`'s `handler`, with `settings` besides.
pub(crate) async fn rhai_function(
    server: &TestServer,
    token: &str,
    name: &str,
    script: &str,
    settings: Value,
) -> anyhow::Result<Value> {
    let mut body = json!({
        "name": name,
        "code": code_of(&[("index.rhai", script)])?,
        "entryPoint": "index.handler",
        "runtime": "rhai",
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

/// The task `id` once it is listed and has left `new` and `inProgress` (within a minute).
pub(crate) async fn finished(server: &TestServer, token: &str, id: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, page) = server
            .call(
                Method::GET,
                &format!("/tasks/v1/?eq(id,{id})"),
                Some(token),
                None,
            )
            .await?;
        anyhow::ensure!(status == StatusCode::OK, "{page}");
        let task = page["data"][0].clone();
        // A task not listed yet (a retry its reactor has still to create) is still to come.
        if !task.is_null() && !matches!(task["status"].as_str(), Some("new" | "inProgress")) {
            return Ok(task);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "task {id} did not finish: {task}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_task(server: &TestServer, token: &str, body: Value) -> anyhow::Result<Value> {
    let (status, task) = server
        .call(Method::POST, "/tasks/v1/", Some(token), Some(body))
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "{task}");
    Ok(task)
}

in_both_deployments! {
    async fn a_rhai_function_runs_as_a_task_and_directly(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;

        let function = rhai_function(
            &server,
            &admin,
            "double",
            "fn handler(task) { print(`doubling ${task.data.x}`); #{ doubled: task.data.x * 2, id: task.id } }",
            json!({
                "description": "doubles x",
                "environmentVariables": {"API_KEY": {"value": "s3cret"}},
                "executionOptions": {"permissionMode": "allUsers", "defaultPriority": 3},
            }),
        )
        .await?;
        assert_eq!(function["name"], "double");
        assert_eq!(function["timeLimit"], 30);
        assert_eq!(function["memoryLimit"], 128);
        assert_eq!(function["enabled"], true);
        assert_eq!(function["environmentVariables"], json!({"API_KEY": {"value": "s3cret"}}));
        assert_eq!(function["executionOptions"], json!({"permissionMode": "allUsers", "defaultPriority": 3}));
        // The environment is sealed in the log.
        let history = server.history("function-double").await?;
        assert!(!history.iter().any(|(_, event)| event.to_string().contains("s3cret")), "{history:?}");

        let (status, list) = server.call(Method::GET, "/tasks/v1/functions", Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["data"][0]["name"], "double");
        assert_eq!(list["data"][0]["description"], "doubles x");

        // Queued: runs, completes, and keeps its logs.
        let task = create_task(&server, &admin, json!({"functionName": "double", "data": {"x": 21}, "tags": ["t"]})).await?;
        assert_eq!(task["status"], "new");
        assert_eq!(task["priority"], 3, "the function's default priority");
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        let done = finished(&server, &admin, &id).await?;
        assert_eq!(done["status"], "complete", "{done}");
        assert_eq!(done["tags"], json!(["t"]));
        let (status, logs) = server.call(Method::GET, &format!("/tasks/v1/{id}/logs"), Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK, "{logs}");
        assert_eq!(logs["data"][0]["message"], "doubling 21");

        // Directly, by any user (allUsers): the task and the result.
        let user = plain_token(&server, "patient@example.com").await?;
        let (status, executed) = server
            .call(Method::POST, "/tasks/v1/functions/double/execute", Some(&user), Some(json!({"data": {"x": 4}})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{executed}");
        assert_eq!(executed["status"], "complete");
        assert_eq!(executed["result"]["doubled"], 8);
        assert_eq!(executed["result"]["id"], executed["id"]);
        // The answer is the task as listed, with the result.
        let executed_id = executed["id"].as_str().unwrap_or_default();
        let (_, listed) = server.call(Method::GET, &format!("/tasks/v1/?eq(id,{executed_id})"), Some(&admin), None).await?;
        let mut answered = executed.clone();
        answered.as_object_mut().map(|fields| fields.remove("result"));
        assert_eq!(listed["data"][0], answered);
        // Not anonymously.
        let (status, refused) = server
            .call(Method::POST, "/tasks/v1/functions/double/execute", None, Some(json!({})))
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

        // Disabled, it is not run.
        let (status, _) = server.call(Method::POST, "/tasks/v1/functions/double/disable", Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK);
        let task = create_task(&server, &admin, json!({"functionName": "double", "data": {"x": 1}})).await?;
        let failed = finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["type"], "invocation");
        assert_eq!(failed["error"]["name"], "FunctionDisabled");

        // Deleted: unknown, its tasks kept.
        let (status, _) = server.call(Method::DELETE, "/tasks/v1/functions/double", Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, gone) = server.call(Method::GET, "/tasks/v1/functions/double", Some(&admin), None).await?;
        assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, Some(16)));
        let (_, kept) = server.call(Method::GET, &format!("/tasks/v1/?eq(id,{id})"), Some(&admin), None).await?;
        assert_eq!(kept["data"][0]["status"], "complete");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_failed_run_is_retried_and_a_runaway_script_stopped(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;

        // Fails the first time, succeeds when it is a retry.
        rhai_function(
            &server,
            &admin,
            "flaky",
            "fn handler(task) { if task.retryForTaskIds == () { throw #{ name: \"CONNECTION_ERROR\", message: \"down\" } } \"ok\" }",
            json!({"retryPolicy": {"enabled": true, "errorsToRetry": ["CONNECTION_ERROR"]}}),
        )
        .await?;
        let task = create_task(&server, &admin, json!({"functionName": "flaky"})).await?;
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        let first = finished(&server, &admin, &id).await?;
        assert_eq!(first["status"], "retried", "{first}");
        assert_eq!(first["error"]["name"], "CONNECTION_ERROR");
        let retry_id = first["retriedByTaskId"].as_str().unwrap_or_default().to_owned();
        let retry = finished(&server, &admin, &retry_id).await?;
        assert_eq!(retry["status"], "complete", "{retry}");
        assert_eq!(retry["retryForTaskIds"], json!([id]));

        // An error the policy does not name fails at once.
        rhai_function(
            &server,
            &admin,
            "broken",
            "fn handler(task) { throw #{ name: \"TypeError\", message: \"no\" } }",
            json!({"retryPolicy": {"enabled": true, "errorsToRetry": ["CONNECTION_ERROR"]}}),
        )
        .await?;
        let task = create_task(&server, &admin, json!({"functionName": "broken"})).await?;
        let failed = finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], json!({"type": "runtime", "name": "TypeError", "message": "no"}));
        // Directly: 1406 with the runtime error and the task.
        let (status, error) = server
            .call(Method::POST, "/tasks/v1/functions/broken/execute", Some(&admin), Some(json!({})))
            .await?;
        assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(1406)), "{error}");
        assert_eq!(error["runtimeError"]["name"], "TypeError");
        assert!(error["taskId"].is_string());

        // A script that never ends is stopped at its time limit.
        rhai_function(&server, &admin, "runaway", "fn handler(task) { loop { } }", json!({"timeLimit": 3})).await?;
        let task = create_task(&server, &admin, json!({"functionName": "runaway"})).await?;
        let stopped = finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?;
        assert_eq!(stopped["status"], "failed");
        assert_eq!(stopped["error"]["name"], "TimeLimitExceeded");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_task_is_canceled_only_while_new(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(&server, &admin, "later", "fn handler(task) { 1 }", json!({})).await?;
        let task = create_task(
            &server,
            &admin,
            json!({"functionName": "later", "startTimestamp": "2099-01-01T00:00:00.000Z"}),
        )
        .await?;
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(task["startTimestamp"], "2099-01-01T00:00:00.000Z");
        let (status, logs) = server.call(Method::GET, &format!("/tasks/v1/{id}/logs"), Some(&admin), None).await?;
        assert_eq!((status, code(&logs)), (StatusCode::BAD_REQUEST, Some(27)), "{logs}");
        let (status, canceled) = server.call(Method::POST, &format!("/tasks/v1/{id}/cancel"), Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK, "{canceled}");
        assert_eq!(canceled, json!({"affectedRecords": 1}));
        let (status, again) = server.call(Method::POST, &format!("/tasks/v1/{id}/cancel"), Some(&admin), None).await?;
        assert_eq!((status, code(&again)), (StatusCode::BAD_REQUEST, Some(27)), "{again}");
        let (_, listed) = server.call(Method::GET, "/tasks/v1/?eq(status,canceled)", Some(&admin), None).await?;
        assert_eq!(listed["page"]["total"], 1, "{listed}");
        Ok(())
    }
}

in_both_deployments! {
    async fn bad_functions_and_tasks_are_refused(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let function = |name: &str, code: &str, extra: Value| {
            let mut body = json!({"name": name, "code": code, "entryPoint": "index.handler", "runtime": "rhai"});
            if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            body
        };
        let good = code_of(&[("index.rhai", "fn handler(task) { 1 }")])?;
        for (body, expected) in [
            (json!({"name": "f"}), 14),
            (function("f", "not base64!", json!({})), 1401),
            (function("f", &base64::engine::general_purpose::STANDARD.encode("not a zip"), json!({})), 1401),
            (function("f", &code_of(&[("other.rhai", "fn handler(t) { 1 }")])?, json!({})), 1401),
            (function("f", &code_of(&[("index.rhai", "fn handler(t) {")])?, json!({})), 1401),
            (function("f", &good, json!({"timeLimit": 301})), 1402),
            (function("f", &good, json!({"memoryLimit": 64})), 1402),
            (function("f", &good, json!({"runtime": "java21"})), 1402),
            (function("f", &good, json!({"executionOptions": {"permissionMode": "everyone"}})), 1402),
            (function("a.b", &good, json!({})), 1407),
        ] {
            let (status, error) = server.call(Method::POST, "/tasks/v1/functions", admin, Some(body.clone())).await?;
            assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(expected)), "{body}: {error}");
        }
        let (status, _) = server.call(Method::POST, "/tasks/v1/functions", admin, Some(function("f", &good, json!({})))).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, twice) = server.call(Method::POST, "/tasks/v1/functions", admin, Some(function("f", &good, json!({})))).await?;
        assert_eq!((status, code(&twice)), (StatusCode::BAD_REQUEST, Some(17)), "{twice}");
        // An update keeps what it does not give, and checks new code.
        let (status, updated) = server
            .call(Method::PUT, "/tasks/v1/functions/f", admin, Some(json!({"timeLimit": 60})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{updated}");
        let (_, details) = server.call(Method::GET, "/tasks/v1/functions/f", admin, None).await?;
        assert_eq!((details["timeLimit"].clone(), details["entryPoint"].clone()), (json!(60), json!("index.handler")));
        let (status, error) = server
            .call(Method::PUT, "/tasks/v1/functions/f", admin, Some(json!({"entryPoint": "index.missing"})))
            .await?;
        assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(1401)), "{error}");
        // Direct execution is for time limits of at most 30 s.
        let (status, error) = server.call(Method::POST, "/tasks/v1/functions/f/execute", admin, Some(json!({}))).await?;
        assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(1404)), "{error}");
        // Tasks.
        for (body, expected) in [
            (json!({}), 14),
            (json!({"functionName": "f", "data": [1]}), 15),
            (json!({"functionName": "f", "data": {"big": "x".repeat(300 * 1024)}}), 15),
            (json!({"functionName": "f", "priority": "high"}), 15),
        ] {
            let (status, error) = server.call(Method::POST, "/tasks/v1/", admin, Some(body.clone())).await?;
            assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(expected)), "{error}");
        }
        let user = plain_token(&server, "nobody@example.com").await?;
        let (status, error) = server.call(Method::POST, "/tasks/v1/", Some(&user), Some(json!({"functionName": "f"}))).await?;
        assert_eq!((status, code(&error)), (StatusCode::UNAUTHORIZED, Some(10)), "{error}");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_documents_task_action_runs_its_function_once(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(&server, &admin, "analyze", "fn handler(task) { task.data.documentId }", json!({})).await?;
        let (status, schema) = server
            .call(Method::POST, "/data/v1/", Some(&admin), Some(json!({"name": "measurements"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{schema}");
        let (status, transition) = server
            .call(Method::PUT, "/data/v1/measurements/creationTransition", Some(&admin), Some(json!({
                "type": "manual",
                "toStatus": "new",
                "actions": [{"type": "task", "functionName": "analyze", "data": {"kind": "bp"}}],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{transition}");
        let (status, document) = server
            .call(Method::POST, "/data/v1/measurements/documents", Some(&admin), Some(json!({})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{document}");
        let document_id = document["id"].as_str().unwrap_or_default().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let task = loop {
            let (_, page) = server
                .call(Method::GET, "/tasks/v1/?eq(functionName,analyze)", Some(&admin), None)
                .await?;
            if let Some(task) = page["data"].as_array().and_then(|tasks| tasks.first()).cloned() {
                assert_eq!(page["page"]["total"], 1, "{page}");
                break task;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no task was created");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(task["data"]["kind"], "bp");
        assert_eq!(task["data"]["documentId"], document_id.as_str());
        let done = finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?;
        assert_eq!(done["status"], "complete", "{done}");
        // The scheduler restarted: the request is not taken up twice.
        let admin_credentials = server.admin.clone();
        server.stop().await?;
        let server = TestServer::restart(&env, admin_credentials).await?;
        let admin = server.admin_token().await?;
        let (_, page) = server.call(Method::GET, "/tasks/v1/?eq(functionName,analyze)", Some(&admin), None).await?;
        assert_eq!(page["page"]["total"], 1, "{page}");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_schedule_fires_once_per_slot_also_with_two_nodes(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        // A second node runs the scheduler too (on the embedded deployment both follow the log).
        let other = TestServer::another_node(&env, &server).await?;
        let admin = server.admin_token().await?;
        rhai_function(&server, &admin, "tick", "fn handler(task) { task.data.n }", json!({})).await?;
        let (status, schedule) = server
            .call(Method::POST, "/tasks/v1/schedules", Some(&admin), Some(json!({
                "functionName": "tick",
                "interval": 1,
                "data": {"n": 1},
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{schedule}");
        assert_eq!(schedule["interval"], 1);
        assert_eq!(schedule["nextTimestamp"], schedule["startTimestamp"]);
        let id = schedule["id"].as_str().unwrap_or_default().to_owned();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let tasks = loop {
            let (_, page) = server
                .call(Method::GET, "/tasks/v1/?eq(functionName,tick)&sort(startTimestamp)", Some(&admin), None)
                .await?;
            let tasks = page["data"].as_array().cloned().unwrap_or_default();
            if tasks.len() >= 3 {
                break tasks;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the schedule fired {} times", tasks.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let slots: Vec<&str> = tasks.iter().filter_map(|t| t["startTimestamp"].as_str()).collect();
        let mut distinct = slots.clone();
        distinct.dedup();
        assert_eq!(distinct, slots, "a slot fired twice: {slots:?}");
        let history = server.history(&format!("schedule-{id}")).await?;
        assert_eq!(tasks[0]["startTimestamp"], schedule["startTimestamp"], "{history:?} {tasks:?}");
        assert_eq!(tasks[0]["data"], json!({"n": 1}));
        for task in &tasks {
            let done = finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?;
            assert_eq!(done["status"], "complete", "{done}");
        }
        let (_, listed) = server
            .call(Method::GET, &format!("/tasks/v1/schedules?eq(id,{id})"), Some(&admin), None)
            .await?;
        assert!(listed["data"][0]["nextTimestamp"].as_str() > schedule["nextTimestamp"].as_str(), "{listed}");

        let (status, _) = server
            .call(Method::DELETE, &format!("/tasks/v1/schedules/{id}"), Some(&admin), None)
            .await?;
        assert_eq!(status, StatusCode::OK);
        // Deleted: no more firings are decided (the domain refuses them; its tests show it).
        let history = server.history(&format!("schedule-{id}")).await?;
        assert_eq!(history.last().map(|(name, _)| name.as_str()), Some("schedule.deleted"));
        let (status, gone) = server
            .call(Method::DELETE, &format!("/tasks/v1/schedules/{id}"), Some(&admin), None)
            .await?;
        assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, Some(16)));
        drop(other);
        Ok(())
    }
}

in_both_deployments! {
    async fn an_api_function_answers_http_requests_and_each_is_recorded(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(
            &server,
            &admin,
            "hello",
            r#"fn handler(request) {
                print(`called ${request.requestContext.http.method} ${request.rawPath}`);
                if request.rawPath == "/broken" { throw #{ name: "Boom", message: "broken" } }
                if request.rawPath == "/invalid" { return #{ statusCode: 600 } }
                #{
                    statusCode: 201,
                    headers: #{ "x-greeting": "hello" },
                    body: #{
                        path: request.rawPath,
                        query: request.rawQueryString,
                        user: request.headers["x-exh-requesting-user-id"],
                        auth: request.headers.authorization,
                        sent: request.body,
                    },
                }
            }"#,
            json!({"executionOptions": {"permissionMode": "allUsers"}}),
        )
        .await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&admin), None).await?;

        let response = reqwest::Client::new()
            .post(server.url("/tasks/v1/api/hello/greet/you?name=ann"))
            .bearer_auth(&admin)
            .body("plain text")
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-greeting"], "hello");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await?;
        assert_eq!(body["path"], "/greet/you");
        assert_eq!(body["query"], "?name=ann");
        assert_eq!(body["user"], me["id"]);
        assert_eq!(body["auth"], Value::Null, "credentials are not handed to functions");
        assert_eq!(body["sent"], "plain text");

        // Anonymous callers are refused in `allUsers` mode; a failure is 1406, a bad answer 1409.
        let (status, refused) = server.call(Method::GET, "/tasks/v1/api/hello/x", None, None).await?;
        assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, Some(104)), "{refused}");
        let (status, failed) = server.call(Method::GET, "/tasks/v1/api/hello/broken", Some(&admin), None).await?;
        assert_eq!((status, code(&failed)), (StatusCode::BAD_REQUEST, Some(1406)), "{failed}");
        assert_eq!(failed["runtimeError"], json!({"name": "Boom", "message": "broken"}));
        let (status, invalid) = server.call(Method::GET, "/tasks/v1/api/hello/invalid", Some(&admin), None).await?;
        assert_eq!((status, code(&invalid)), (StatusCode::BAD_REQUEST, Some(1409)), "{invalid}");

        // Each call is recorded, with its logs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let requests = loop {
            let (status, page) = server
                .call(Method::GET, "/tasks/v1/apiRequests?eq(functionName,hello)&sort(timestamp)", Some(&admin), None)
                .await?;
            assert_eq!(status, StatusCode::OK, "{page}");
            let requests = page["data"].as_array().cloned().unwrap_or_default();
            if requests.len() >= 3 {
                break requests;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(requests.len(), 3, "the refused call is not a request: {requests:?}");
        assert_eq!(requests[0]["method"], "POST");
        assert_eq!(requests[0]["path"], "/greet/you?name=ann");
        assert_eq!(requests[0]["statusCode"], 201);
        assert_eq!(requests[0]["userId"], me["id"]);
        assert_eq!(requests[1]["error"], json!({"type": "runtime", "name": "Boom", "message": "broken"}));
        assert_eq!(requests[2]["error"]["type"], "response");
        let first = requests[0]["id"].as_str().unwrap_or_default();
        let (status, logs) = server
            .call(Method::GET, &format!("/tasks/v1/apiRequests/{first}/logs"), Some(&admin), None)
            .await?;
        assert_eq!(status, StatusCode::OK, "{logs}");
        assert_eq!(logs["data"][0]["message"], "called POST /greet/you");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_finished_rhai_task_replays_to_the_same_outcome(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(
            &server,
            &admin,
            "dice",
            "fn handler(task) { let r = random(); print(`rolled at ${now()}`); #{ roll: r, x: task.data.x, at: task.startTimestamp } }",
            json!({}),
        )
        .await?;
        let (_, task) = server
            .call(Method::POST, "/tasks/v1/", Some(&admin), Some(json!({"functionName": "dice", "data": {"x": 3}})))
            .await?;
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(finished(&server, &admin, &id).await?["status"], "complete");
        let replayed = vigil_scheduler::tasks::replay::replay(
            server.state.bus.log().as_ref(),
            server.state.tasks.runner.blobs(),
            id.parse()?,
        )
        .await?;
        assert!(replayed.same(), "{replayed:?}");
        assert!(matches!(&replayed.replayed, vigil_scheduler::tasks::replay::Ending::Result(json) if json.contains("\"x\":3")));

        // The command line says the same, from the deployment's files.
        server.stop().await?;
        let output = std::process::Command::new(crate::cli::BINARY)
            .arg("replay-task")
            .args(env.cli_args())
            .arg(&id)
            .output()?;
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{said} {}", String::from_utf8_lossy(&output.stderr));
        assert!(said.contains("the replay reaches the same outcome"), "{said}");
        Ok(())
    }
}
