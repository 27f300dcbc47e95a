//! The event service over HTTP, in both deployments: custom events kept as given, and the system
//! events derived from the log (a registration, a task's final failure).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_token};
use crate::in_both_deployments;
use crate::tasks::{finished, rhai_function};

/// The events of `event_type` once there are `count` of them (within a minute).
async fn events_of(
    server: &TestServer,
    token: &str,
    event_type: &str,
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, page) = server
            .call(
                Method::GET,
                &format!("/events/v1/?eq(type,{event_type})"),
                Some(token),
                None,
            )
            .await?;
        anyhow::ensure!(status == StatusCode::OK, "{page}");
        let events = page["data"].as_array().cloned().unwrap_or_default();
        if events.len() >= count {
            return Ok(events);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

in_both_deployments! {
    async fn custom_and_system_events_are_listed(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;

        let content = json!({"measurement_id": "m1", "empty": {}, "none": []});
        let (status, event) = server
            .call(Method::POST, "/events/v1/", Some(&admin), Some(json!({"type": "measurement_analyzed", "content": content})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(event["type"], "measurement_analyzed");
        assert_eq!(event["content"], content);
        assert!(event["creation_timestamp"].is_i64(), "{event}");
        let listed = events_of(&server, &admin, "measurement_analyzed", 1).await?;
        assert_eq!(listed[0]["id"], event["id"]);
        assert_eq!(listed[0]["content"], content, "empty objects and arrays are kept");

        // A registration is `user_created`.
        let user = plain_token(&server, "patient@example.com").await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&user), None).await?;
        let created = events_of(&server, &admin, "user_created", 1).await?;
        assert!(created.iter().any(|e| e["content"]["id"] == me["id"]), "{created:?}");

        // Only with the permissions.
        let (status, refused) = server
            .call(Method::POST, "/events/v1/", Some(&user), Some(json!({"type": "x"})))
            .await?;
        assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, refused) = server.call(Method::GET, "/events/v1/", Some(&user), None).await?;
        assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, refused) = server.call(Method::POST, "/events/v1/", Some(&admin), Some(json!({"content": {}}))).await?;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, Some(14)));

        // A task's final failure is `task_failed`, once.
        rhai_function(&server, &admin, "broken", "fn handler(task) { throw #{ name: \"TypeError\", message: \"no\" } }", json!({})).await?;
        let (_, task) = server
            .call(Method::POST, "/tasks/v1/", Some(&admin), Some(json!({"functionName": "broken"})))
            .await?;
        let task_id = task["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(finished(&server, &admin, &task_id).await?["status"], "failed");
        let failed = events_of(&server, &admin, "task_failed", 1).await?;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(
            failed[0]["content"],
            json!({"id": task_id, "functionName": "broken", "error": {"type": "runtime", "name": "TypeError", "message": "no"}})
        );
        Ok(())
    }
}
