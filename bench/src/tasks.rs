//! Automation benchmarks (`tasks`): trivial functions run end to end over HTTP.
//!
//! - rhai and Node.js (warm worker) tasks: `connections` clients create tasks for `seconds`; the
//!   rate is tasks created per second over the time until the last one is `complete` in the read
//!   models, against the creation rate alone (the ceiling the queue is compared with).
//! - `execute` of a trivial rhai function, one request at a time, against `GET /users/v1/me` one
//!   at a time (the cheapest authenticated request).
//! - event → task: custom events published one at a time to a dispatcher with a task action;
//!   for each, the time from the event's commit to its task's `task.started` commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::Method;
use serde_json::json;
use vigil_domain::event::{Event, TaskEvent};
use vigil_domain::id::StreamId;
use vigil_tests::{Deployment, TestServer, code_of};

use crate::auth::{Request, load, report_load, serving};

/// Creates function `name` of `runtime` from `files`, runnable by anyone logged in.
async fn function(
    server: &TestServer,
    token: &str,
    name: &str,
    runtime: &str,
    files: &[(&str, &str)],
) -> anyhow::Result<()> {
    let body = json!({
        "name": name,
        "code": code_of(files)?,
        "entryPoint": "index.handler",
        "runtime": runtime,
        "executionOptions": {"permissionMode": "allUsers"},
    });
    let (status, answer) = server
        .call(Method::POST, "/tasks/v1/functions", Some(token), Some(body))
        .await?;
    anyhow::ensure!(status.is_success(), "{answer}");
    Ok(())
}

/// How many tasks of `function` the read models show as `status`.
async fn count(
    server: &TestServer,
    token: &str,
    function: &str,
    status: &str,
) -> anyhow::Result<u64> {
    let (_, page) = server
        .call(
            Method::GET,
            &format!("/tasks/v1/?eq(functionName,{function})&eq(status,{status})&limit(1)"),
            Some(token),
            None,
        )
        .await?;
    page["page"]["total"]
        .as_u64()
        .with_context(|| format!("no total in {page}"))
}

/// Creates tasks of `function` with `connections` clients for `seconds`, then waits for all of
/// them to complete; prints both rates.
async fn throughput(
    server: &TestServer,
    token: &str,
    function: &str,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let url = server.url("/tasks/v1/");
    let duration = Duration::from_secs(seconds);
    let post: Request = {
        let (token, function) = (token.to_owned(), function.to_owned());
        Arc::new(move |client, n| {
            client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"functionName": function, "data": {"n": n}}))
        })
    };
    let started = Instant::now();
    let samples = tokio::task::spawn_blocking(move || load(connections, duration, post)).await??;
    let created = samples.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(server, token, function, "complete").await? < created {
        anyhow::ensure!(Instant::now() < deadline, "the tasks did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let failed = count(server, token, function, "failed").await?;
    anyhow::ensure!(failed == 0, "{failed} tasks of {function} failed");
    let end_to_end = created as f64 / elapsed.as_secs_f64();
    let creation = created as f64 / duration.as_secs_f64();
    println!(
        "  {function:<14} created → complete : {end_to_end:>7.0} tasks/s  ({created} tasks in {elapsed:.1?}; creation alone {creation:.0} tasks/s, ratio {:.2})",
        end_to_end / creation
    );
    Ok(())
}

/// The latencies of `request` sent one at a time for `duration`.
fn sequential(duration: Duration, request: Request) -> anyhow::Result<Vec<Duration>> {
    load(1, duration, request)
}

/// Publishes `events` events one at a time, each dispatched to a task of `function`, and prints
/// the time from each event's commit to its task's start.
async fn event_to_task(
    server: &TestServer,
    token: &str,
    function: &str,
    events: usize,
) -> anyhow::Result<()> {
    let (status, dispatcher) = server
        .call(
            Method::POST,
            "/dispatchers/v1/",
            Some(token),
            Some(json!({"eventType": "bench_event", "actions": [{"type": "task", "functionName": function}]})),
        )
        .await?;
    anyhow::ensure!(status.is_success(), "{dispatcher}");
    let mut published = Vec::with_capacity(events);
    for n in 0..events {
        let (status, event) = server
            .call(
                Method::POST,
                "/events/v1/",
                Some(token),
                Some(json!({"type": "bench_event", "content": {"n": n}})),
            )
            .await?;
        anyhow::ensure!(status.is_success(), "{event}");
        published.push(event);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(server, token, function, "complete").await? < events as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dispatched tasks did not complete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut delays = Vec::with_capacity(events);
    let log = server.state.bus.log();
    for event in &published {
        let event_id = event["id"].as_str().context("an event id")?;
        let (_, page) = server
            .call(
                Method::GET,
                &format!("/tasks/v1/?eq(data.event.id,{event_id})"),
                Some(token),
                None,
            )
            .await?;
        let task_id = page["data"][0]["id"]
            .as_str()
            .with_context(|| format!("no task for event {event_id}: {page}"))?
            .parse()?;
        let stream = StreamId::of("task", task_id);
        let started = log
            .read_stream(&stream, 0)
            .await?
            .into_iter()
            .find(|recorded| {
                recorded
                    .commit
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Task(TaskEvent::Started(_))))
            })
            .context("a task that never started")?;
        let published_at = event["creation_timestamp"].as_i64().context("a time")?;
        let delay = started.commit.recorded_at.millis() - published_at;
        delays.push(Duration::from_millis(u64::try_from(delay).unwrap_or(0)));
    }
    crate::auth::report_latencies(delays, "event → task started (ms precision)");
    Ok(())
}

/// `tasks`: the automation figures of one deployment.
pub async fn tasks(deployment: Deployment, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let (_env, server) = serving(deployment).await?;
    let token = server.admin_token().await?;
    function(
        &server,
        &token,
        "bench-rhai",
        "rhai",
        &[("index.rhai", "fn handler(task) { 1 }")],
    )
    .await?;
    function(
        &server,
        &token,
        "bench-node",
        "nodejs20.x",
        &[("index.js", "exports.handler = async () => 1;")],
    )
    .await?;
    println!(
        "tasks: {deployment:?} deployment, task concurrency {}, {connections} creating clients for {seconds}s, load generator in the same process on its own 2-thread runtime",
        vigil_scheduler::tasks::CONCURRENCY
    );
    throughput(&server, &token, "bench-rhai", connections, seconds).await?;
    throughput(&server, &token, "bench-node", connections, seconds).await?;

    let duration = Duration::from_secs(seconds);
    let execute: Request = {
        let (url, token) = (
            server.url("/tasks/v1/functions/bench-rhai/execute"),
            token.clone(),
        );
        Arc::new(move |client, _| {
            client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"data": {}}))
        })
    };
    let me: Request = {
        let (url, token) = (server.url("/users/v1/me"), token.clone());
        Arc::new(move |client, _| client.get(&url).bearer_auth(&token))
    };
    let executed = tokio::task::spawn_blocking(move || sequential(duration, execute)).await??;
    report_load(
        executed,
        duration,
        "req/s",
        "execute (rhai), one at a time",
        "execute latency",
    );
    let baseline = tokio::task::spawn_blocking(move || sequential(duration, me)).await??;
    report_load(
        baseline,
        duration,
        "req/s",
        "GET /users/v1/me, one at a time",
        "me latency (baseline)",
    );
    function(
        &server,
        &token,
        "bench-event",
        "rhai",
        &[("index.rhai", "fn handler(task) { 1 }")],
    )
    .await?;
    event_to_task(&server, &token, "bench-event", 500).await?;
    Ok(())
}
