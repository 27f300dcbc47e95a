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

/// A subscriber: answers each event it is sent with the next status of `statuses` (then 200),
/// and hands over what it was sent.
async fn subscriber(
    statuses: Vec<u16>,
) -> anyhow::Result<(String, tokio::sync::mpsc::UnboundedReceiver<Value>)> {
    use axum::extract::State;
    use std::sync::{Arc, Mutex};
    type Shared = (
        Arc<Mutex<Vec<u16>>>,
        tokio::sync::mpsc::UnboundedSender<Value>,
    );
    async fn receive(
        State((statuses, sent)): State<Shared>,
        axum::Json(event): axum::Json<Value>,
    ) -> axum::http::StatusCode {
        let _ = sent.send(event);
        let next = statuses
            .lock()
            .ok()
            .and_then(|mut s| (!s.is_empty()).then(|| s.remove(0)));
        axum::http::StatusCode::from_u16(next.unwrap_or(200)).unwrap_or(axum::http::StatusCode::OK)
    }
    let (sent, received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/events", axum::routing::post(receive))
        .with_state((Arc::new(Mutex::new(statuses)), sent));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

async fn next_sent(
    received: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
) -> anyhow::Result<Value> {
    tokio::time::timeout(Duration::from_secs(60), received.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the subscriber stopped"))
}

in_both_deployments! {
    async fn subscribers_are_sent_the_events_they_subscribed_to(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        // A retriable subscriber failing once, and one that is not retried.
        let (retried_url, mut retried) = subscriber(vec![503]).await?;
        let (once_url, mut once) = subscriber(vec![500]).await?;
        let (status, subscription) = server
            .call(
                Method::POST,
                "/events/v1/subscriptions",
                Some(&admin),
                Some(json!({"service": {"name": retried_url, "version": {"major": 1, "minor": 2, "patch": 3}}, "event_types": ["reading_taken", "user_created"], "retriable": true})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{subscription}");
        assert_eq!(subscription["service"]["version"], json!({"major": 1, "minor": 2, "patch": 3}));
        assert_eq!(subscription["event_types"], json!(["reading_taken", "user_created"]));
        assert!(subscription["creation_timestamp"].is_i64());
        let (status, _) = server
            .call(Method::POST, "/events/v1/subscriptions", Some(&admin), Some(json!({"service": {"name": once_url}, "event_types": ["reading_taken"]})))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let (_, listed) = server
            .call(Method::GET, "/events/v1/subscriptions?eq(retriable,true)", Some(&admin), None)
            .await?;
        assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed["data"][0]["id"], subscription["id"]);

        let (_, event) = server
            .call(Method::POST, "/events/v1/", Some(&admin), Some(json!({"type": "reading_taken", "content": {"value": 7}})))
            .await?;
        // Sent, refused (503), sent again: the same event twice.
        let first = next_sent(&mut retried).await?;
        assert_eq!(first, json!({"id": event["id"], "type": "reading_taken", "content": {"value": 7}, "creation_timestamp": event["creation_timestamp"], "update_timestamp": event["update_timestamp"]}));
        assert_eq!(next_sent(&mut retried).await?, first);
        assert_eq!(next_sent(&mut once).await?["id"], event["id"]);
        // A system event reaches the subscriber of its type, and only that one.
        let user = plain_token(&server, "subscribed@example.com").await?;
        let (_, me) = server.call(Method::GET, "/users/v1/me", Some(&user), None).await?;
        let created = next_sent(&mut retried).await?;
        assert_eq!(created["type"], "user_created");
        assert_eq!(created["content"]["id"], me["id"]);
        assert!(once.try_recv().is_err(), "the non-retriable subscriber was sent once");

        // Refusals.
        for (body, code_wanted) in [
            (json!({"service": {"name": "https://a"}}), 14),
            (json!({"event_types": ["x"]}), 14),
            (json!({"service": {"name": "https://a"}, "event_types": []}), 15),
            (json!({"service": {"name": "https://a", "version": {"major": -1}}, "event_types": ["x"]}), 15),
        ] {
            let (status, refused) = server.call(Method::POST, "/events/v1/subscriptions", Some(&admin), Some(body.clone())).await?;
            assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, Some(code_wanted)), "{body}: {refused}");
        }
        let (status, refused) = server.call(Method::GET, "/events/v1/subscriptions", Some(&user), None).await?;
        assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, Some(10)));
        Ok(())
    }
}
