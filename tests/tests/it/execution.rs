//! Execution credentials and the host API of rhai functions, in both deployments: a function
//! given credentials on request reaches the API as its own user, through the same routes as an
//! HTTP request, each change caused by its task; and a finished run replays from its record
//! without calling anything again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_domain::event::{Event, TaskEvent};
use vigil_domain::id::{Digest, StreamId};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;
use crate::tasks::{finished, rhai_function};

const ANALYZE: &str = r#"
fn handler(task) {
    let reading = find_document("host-readings", task.data.documentId);
    update_document("host-readings", reading.id, #{ doubled: reading.data.value * 2 });
    transition_document("host-readings", reading.id, "analyze");
    let analyzed = find_documents("host-readings", "?eq(status,analyzed)");
    publish_event("reading_analyzed", #{ documentId: reading.id });
    let raw = api("GET", `/data/v1/host-readings/documents?eq(id,${reading.id})`);
    let health = http("GET", task.data.health, #{ "X-Secret": "top-secret-value" }, ());
    #{ analyzed: analyzed.len(), status: raw.status, doubled: raw.body.data[0].data.doubled, health: health.status }
}
"#;

/// Creates the schema `host-readings`: `value` and `doubled`, and a manual `analyze` transition
/// from `new` to `analyzed`.
async fn readings_schema(server: &TestServer, admin: &str) -> anyhow::Result<()> {
    let steps = [
        ("/data/v1/", json!({"name": "host-readings"})),
        (
            "/data/v1/host-readings/properties",
            json!({"name": "value", "configuration": {"type": "number"}}),
        ),
        (
            "/data/v1/host-readings/properties",
            json!({"name": "doubled", "configuration": {"type": "number"}}),
        ),
        (
            "/data/v1/host-readings/statuses",
            json!({"name": "analyzed"}),
        ),
        (
            "/data/v1/host-readings/transitions",
            json!({"name": "analyze", "type": "manual", "fromStatuses": ["new"], "toStatus": "analyzed"}),
        ),
    ];
    for (path, body) in steps {
        let (status, answer) = server
            .call(Method::POST, path, Some(admin), Some(body))
            .await?;
        anyhow::ensure!(status == StatusCode::OK, "{path}: {answer}");
    }
    Ok(())
}

in_both_deployments! {
    async fn a_rhai_function_reaches_the_api_as_its_execution_identity(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        readings_schema(&server, &admin).await?;
        rhai_function(&server, &admin, "analyze-reading", ANALYZE, json!({})).await?;
        let (status, reading) = server
            .call(Method::POST, "/data/v1/host-readings/documents", Some(&admin), Some(json!({"value": 21})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{reading}");
        let document_id = reading["id"].as_str().unwrap_or_default().to_owned();
        let data = json!({"documentId": document_id, "health": server.url("/tasks/v1/health")});

        // Without credentials, the function is nobody: its API calls fail, clearly.
        let (status, refused) = server
            .call(Method::POST, "/tasks/v1/functions/analyze-reading/execute", Some(&admin), Some(json!({"data": data})))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(refused["runtimeError"]["name"], "NoExecutionCredentials", "{refused}");

        // Credentials are given only by who may update the function, never beyond their own rights.
        let ask = json!({"permissions": ["VIEW_DOCUMENTS", "UPDATE_DOCUMENTS", "TRANSITION_DOCUMENTS", "CREATE_EVENTS"]});
        let nobody = plain_token(&server, "nobody@example.com").await?;
        let (status, answer) = server
            .call(Method::POST, "/tasks/v1/functions/analyze-reading/executionCredentials", Some(&nobody), Some(ask.clone()))
            .await?;
        assert_eq!((status, code(&answer)), (StatusCode::UNAUTHORIZED, Some(10)), "{answer}");
        let (status, answer) = server
            .call(Method::POST, "/tasks/v1/functions/missing/executionCredentials", Some(&admin), Some(ask.clone()))
            .await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let (status, granted) = server
            .call(Method::POST, "/tasks/v1/functions/analyze-reading/executionCredentials", Some(&admin), Some(ask))
            .await?;
        assert_eq!(status, StatusCode::OK, "{granted}");
        let user_id = granted["userId"].as_str().unwrap_or_default().to_owned();
        assert_eq!(granted["apiHost"], server.url("").trim_end_matches('/'), "{granted}");

        // The Lambda variables hand the same identity to code that signs its own requests.
        let (_, function) = server
            .call(Method::GET, "/tasks/v1/functions/analyze-reading", Some(&admin), None)
            .await?;
        for variable in ["API_HOST", "API_OAUTH_CONSUMER_KEY", "API_OAUTH_CONSUMER_SECRET", "API_OAUTH_TOKEN", "API_OAUTH_TOKEN_SECRET"] {
            assert!(function["environmentVariables"][variable]["value"].is_string(), "{variable}: {function}");
        }

        let (status, task) = server
            .call(Method::POST, "/tasks/v1/", Some(&admin), Some(json!({"functionName": "analyze-reading", "data": data})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{task}");
        let task_id = task["id"].as_str().unwrap_or_default().to_owned();
        let done = finished(&server, &admin, &task_id).await?;
        assert_eq!(done["status"], "complete", "{done}");
        let (_, document) = server
            .call(Method::GET, &format!("/data/v1/host-readings/documents?eq(id,{document_id})"), Some(&admin), None)
            .await?;
        assert_eq!(document["data"][0]["status"], "analyzed", "{document}");
        assert_eq!(document["data"][0]["data"]["doubled"], 42, "{document}");
        let (_, events) = server
            .call(Method::GET, "/events/v1?eq(type,reading_analyzed)", Some(&admin), None)
            .await?;
        assert_eq!(events["data"][0]["content"]["documentId"], document_id.as_str(), "{events}");

        // Every change is the function user's, caused by the task.
        let log = server.state.bus.log();
        let stream = StreamId::new("document", &document_id)?;
        let commits = log.read_stream(&stream, 0).await?;
        let by_task: Vec<_> = commits
            .iter()
            .filter(|c| c.commit.causation_id.as_deref() == Some(format!("task-{task_id}").as_str()))
            .collect();
        assert_eq!(by_task.len(), 2, "the update and the transition");
        for recorded in by_task {
            assert_eq!(recorded.commit.actor.user_id.map(|id| id.to_string()), Some(user_id.clone()));
        }

        // The task was claimed before the run's first change, in a commit of its own.
        let task_stream = StreamId::new("task", &task_id)?;
        let task_commits = log.read_stream(&task_stream, 0).await?;
        let kinds: Vec<Vec<&str>> = task_commits
            .iter()
            .map(|c| c.commit.events.iter().map(Event::wire_name).collect())
            .collect();
        assert_eq!(kinds, [["task.created"], ["task.started"], ["task.completed"]]);
        let first_change = commits.iter().find(|c| c.commit.causation_id.is_some()).map(|c| c.position);
        assert!(Some(task_commits[1].position) < first_change);

        // A run without any effect is recorded whole, its start and its end in one commit.
        rhai_function(&server, &admin, "pure", "fn handler(task) { task.data.x + 1 }", json!({})).await?;
        let (_, pure) = server
            .call(Method::POST, "/tasks/v1/", Some(&admin), Some(json!({"functionName": "pure", "data": {"x": 1}})))
            .await?;
        let pure_id = pure["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(finished(&server, &admin, &pure_id).await?["status"], "complete");
        let pure_commits = log.read_stream(&StreamId::new("task", &pure_id)?, 0).await?;
        let kinds: Vec<Vec<&str>> = pure_commits
            .iter()
            .map(|c| c.commit.events.iter().map(Event::wire_name).collect())
            .collect();
        assert_eq!(kinds, [vec!["task.created"], vec!["task.started", "task.completed"]]);

        // The record holds each call and its answer; header values only as digests.
        let mut calls = Vec::new();
        for recorded in task_commits {
            for event in recorded.commit.events {
                if let Event::Task(TaskEvent::Completed(completed)) = event {
                    calls = completed.run.host_calls;
                }
            }
        }
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["api", "api", "api", "api", "api", "api", "http"]);
        let http: Value = serde_json::from_str(&calls[6].input)?;
        assert_eq!(http["headers"]["X-Secret"], Digest::of(b"top-secret-value").to_string());
        assert!(!calls[6].input.contains("top-secret-value"));

        // A replay answers every call from the record: the document, transitioned since, does
        // not change the outcome, and nothing is called again.
        let replayed = vigil_scheduler::tasks::replay::replay(
            log.as_ref(),
            server.state.tasks.runner.blobs(),
            task_id.parse()?,
        )
        .await?;
        assert!(replayed.same(), "{replayed:?}");
        let after = log.read_stream(&stream, 0).await?;
        assert_eq!(after.len(), commits.len());
        Ok(())
    }
}

in_both_deployments! {
    async fn execution_credentials_follow_what_they_are_asked_for(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        readings_schema(&server, &admin).await?;
        rhai_function(
            &server,
            &admin,
            "creator",
            "fn handler(task) { publish_event(\"made\", #{ by: \"creator\" }).id }",
            json!({}),
        )
        .await?;
        let grant = |permissions: Value| {
            server.call(
                Method::POST,
                "/tasks/v1/functions/creator/executionCredentials",
                Some(&admin),
                Some(json!({"permissions": permissions, "apiHost": "http://localhost:1"})),
            )
        };
        let (status, first) = grant(json!(["VIEW_DOCUMENTS"])).await?;
        assert_eq!(status, StatusCode::OK, "{first}");
        let execute = || {
            server.call(
                Method::POST,
                "/tasks/v1/functions/creator/execute",
                Some(&admin),
                Some(json!({"data": {}})),
            )
        };
        let (status, refused) = execute().await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(refused["runtimeError"]["name"], "NO_PERMISSION_EXCEPTION", "{refused}");

        // Asked again: the same identity, now allowed to publish, with a new token.
        let (status, second) = grant(json!(["CREATE_EVENTS"])).await?;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(second["userId"], first["userId"]);
        assert_eq!(second["roleId"], first["roleId"]);
        let (status, created) = execute().await?;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert!(created["result"].is_string(), "{created}");
        let (_, role) = server
            .call(Method::GET, &format!("/users/v1/roles?eq(id,{})", second["roleId"].as_str().unwrap_or_default()), Some(&admin), None)
            .await?;
        let permissions: Vec<&str> = role["data"][0]["permissions"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str().or(p.as_str())).collect())
            .unwrap_or_default();
        assert_eq!(permissions, ["CREATE_EVENTS"], "{role}");
        let (status, tokens) = server
            .call(Method::GET, "/auth/v2/oauth1/tokens", Some(&admin), None)
            .await?;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let of_function = tokens["data"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["userId"] == second["userId"]).count())
            .unwrap_or_default();
        assert_eq!(of_function, 1, "the first token is revoked: {tokens}");

        let (status, refused) = server
            .call(
                Method::POST,
                "/tasks/v1/functions/creator/executionCredentials",
                Some(&admin),
                Some(json!({"permissions": "VIEW_DOCUMENTS"})),
            )
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        Ok(())
    }
}
