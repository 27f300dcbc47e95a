//! The dispatchers service over HTTP, in both deployments: a dispatcher's task action runs once
//! per event of its type, with the action's data and the event, also for a burst of events.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;
use crate::tasks::{finished, rhai_function};

/// The number of tasks of `function`, once it is at least `count` (within two minutes).
async fn tasks_of(
    server: &TestServer,
    token: &str,
    function: &str,
    count: u64,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, page) = server
            .call(
                Method::GET,
                &format!("/tasks/v1/?eq(functionName,{function})&limit(1)"),
                Some(token),
                None,
            )
            .await?;
        anyhow::ensure!(status == StatusCode::OK, "{page}");
        if page["page"]["total"].as_u64().unwrap_or_default() >= count {
            return Ok(page);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

in_both_deployments! {
    async fn a_dispatchers_task_action_runs_on_each_event_of_its_type(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(&server, &admin, "notify", "fn handler(task) { task.data.event.content.patient }", json!({})).await?;

        let (status, dispatcher) = server
            .call(Method::POST, "/dispatchers/v1/", Some(&admin), Some(json!({
                "eventType": "measurement_analyzed",
                "name": "notify on analysis",
                "tags": ["EXH_CLI_MANAGED"],
                "actions": [
                    {"type": "task", "name": "notify", "functionName": "notify", "data": {"channel": "mail"}, "tags": ["t"]},
                    {"type": "mail", "name": "mail", "recipients": {"to": ["doctor@example.com"]}, "templateId": "5e9fff9d90135a2a9a718e2f"},
                ],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{dispatcher}");
        assert_eq!(dispatcher["eventType"], "measurement_analyzed");
        assert_eq!(dispatcher["actions"][0]["functionName"], "notify");
        assert_eq!(dispatcher["actions"][1]["recipients"]["to"], json!(["doctor@example.com"]));
        let id = dispatcher["id"].as_str().unwrap_or_default().to_owned();

        let (_, event) = server
            .call(Method::POST, "/events/v1/", Some(&admin), Some(json!({"type": "measurement_analyzed", "content": {"patient": "p1"}})))
            .await?;
        let page = tasks_of(&server, &admin, "notify", 1).await?;
        let task = page["data"][0].clone();
        assert_eq!(task["data"]["channel"], "mail");
        assert_eq!(task["data"]["event"]["id"], event["id"]);
        assert_eq!(task["data"]["event"]["content"], json!({"patient": "p1"}));
        assert_eq!(task["tags"], json!(["t"]));
        assert_eq!(finished(&server, &admin, task["id"].as_str().unwrap_or_default()).await?["status"], "complete");
        // Another type runs nothing.
        server
            .call(Method::POST, "/events/v1/", Some(&admin), Some(json!({"type": "other"})))
            .await?;

        // Actions are changed by id; a dispatcher's attributes by what is given.
        let (status, added) = server
            .call(Method::POST, &format!("/dispatchers/v1/{id}/actions"), Some(&admin), Some(json!({"type": "task", "functionName": "notify"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{added}");
        let action = added["id"].as_str().unwrap_or_default().to_owned();
        let (status, _) = server
            .call(Method::PUT, &format!("/dispatchers/v1/{id}/actions/{action}"), Some(&admin), Some(json!({"data": {"n": 2}})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (status, error) = server
            .call(Method::PUT, &format!("/dispatchers/v1/{id}/actions/{action}"), Some(&admin), Some(json!({"type": "mail"})))
            .await?;
        assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(15)), "{error}");
        let (status, _) = server
            .call(Method::PUT, &format!("/dispatchers/v1/{id}"), Some(&admin), Some(json!({"description": "d"})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (_, listed) = server.call(Method::GET, &format!("/dispatchers/v1/?eq(id,{id})"), Some(&admin), None).await?;
        let listed = &listed["data"][0];
        assert_eq!((listed["description"].clone(), listed["name"].clone()), (json!("d"), json!("notify on analysis")));
        assert_eq!(listed["actions"][2]["data"], json!({"n": 2}));
        let (status, _) = server
            .call(Method::DELETE, &format!("/dispatchers/v1/{id}/actions/{action}"), Some(&admin), None)
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (status, gone) = server
            .call(Method::DELETE, &format!("/dispatchers/v1/{id}/actions/{action}"), Some(&admin), None)
            .await?;
        assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, Some(16)));

        // Refusals.
        for (body, expected) in [
            (json!({"actions": []}), 14),
            (json!({"eventType": "e", "actions": [{"type": "sms"}]}), 15),
            (json!({"eventType": "e", "actions": [{"type": "task", "functionName": "a b"}]}), 15),
            (json!({"eventType": "e", "actions": [{"type": "mail", "recipients": {"to": ["nobody"]}}]}), 15),
        ] {
            let (status, error) = server.call(Method::POST, "/dispatchers/v1/", Some(&admin), Some(body.clone())).await?;
            assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, Some(expected)), "{body}: {error}");
        }
        let user = plain_token(&server, "nobody@example.com").await?;
        let (status, error) = server.call(Method::GET, "/dispatchers/v1/", Some(&user), None).await?;
        assert_eq!((status, code(&error)), (StatusCode::UNAUTHORIZED, Some(10)));

        let (status, _) = server.call(Method::DELETE, &format!("/dispatchers/v1/{id}"), Some(&admin), None).await?;
        assert_eq!(status, StatusCode::OK);
        let (status, gone) = server.call(Method::DELETE, &format!("/dispatchers/v1/{id}"), Some(&admin), None).await?;
        assert_eq!((status, code(&gone)), (StatusCode::NOT_FOUND, Some(16)));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_burst_of_a_thousand_events_runs_a_thousand_tasks(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        rhai_function(&server, &admin, "count", "fn handler(task) { task.data.event.content.n }", json!({})).await?;
        let (status, dispatcher) = server
            .call(Method::POST, "/dispatchers/v1/", Some(&admin), Some(json!({
                "eventType": "burst",
                "actions": [{"type": "task", "functionName": "count"}],
            })))
            .await?;
        assert_eq!(status, StatusCode::OK, "{dispatcher}");
        let publishers = (0..10).map(|publisher| {
            let (server, admin) = (&server, &admin);
            async move {
                for n in 0..100 {
                    let (status, event) = server
                        .call(Method::POST, "/events/v1/", Some(admin), Some(json!({"type": "burst", "content": {"n": publisher * 100 + n}})))
                        .await?;
                    anyhow::ensure!(status == StatusCode::OK, "{event}");
                }
                anyhow::Ok(())
            }
        });
        futures::future::try_join_all(publishers).await?;
        tasks_of(&server, &admin, "count", 1000).await?;
        // Every one runs, and none more appear.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        loop {
            let (_, open) = server
                .call(Method::GET, "/tasks/v1/?eq(functionName,count)&in(status,new,inProgress)&limit(1)", Some(&admin), None)
                .await?;
            if open["page"]["total"] == 0 {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{open}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (_, all) = server
            .call(Method::GET, "/tasks/v1/?eq(functionName,count)&eq(status,complete)&limit(1)", Some(&admin), None)
            .await?;
        assert_eq!(all["page"]["total"], 1000, "{all}");
        let (_, all) = server
            .call(Method::GET, "/tasks/v1/?eq(functionName,count)&limit(1)", Some(&admin), None)
            .await?;
        assert_eq!(all["page"]["total"], 1000, "{all}");
        Ok(())
    }
}
