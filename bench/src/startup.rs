//! `startup`: a node of the production deployment (the `vigil` binary, as a process) starting on a
//! JetStream log of N user registrations, twice: first on an empty read store (it projects the
//! log), then again, as a restart. For each start it reports how long until the node answers its
//! health check, how long until every log subscription it opened has caught up (no JetStream
//! consumer of the stream has commits pending), and how many commits those subscriptions were
//! handed. Mail is configured (nothing asks for one), so every reactor runs. The baseline is the
//! same binary's first start on the same log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_commands::ids::IdGenerator;
use vigil_domain::id::StreamId;
use vigil_tests::{Deployment, TestEnv, free_port};

use crate::{publish, registration};

/// How long every consumer must stay caught up before the node is called caught up.
const SETTLED: Duration = Duration::from_secs(2);

pub async fn startup(commits: usize, binary: Option<PathBuf>) -> anyhow::Result<()> {
    let binary = match binary {
        Some(binary) => binary,
        None => std::env::current_exe()?.with_file_name("vigil"),
    };
    anyhow::ensure!(
        binary.exists(),
        "no vigil binary at {} (build it: cargo build --release)",
        binary.display()
    );
    let mut env = TestEnv::new(Deployment::Production).await?;
    env.pool_size = 16;
    let prefix = env
        .stream
        .as_ref()
        .map(|s| s.prefix.clone())
        .unwrap_or_default();
    vigil_commands::jetstream::JetStreamLog::connect(&vigil_tests::nats_url(), &prefix).await?;
    let ids = IdGenerator::new();
    let filling = Instant::now();
    publish(
        &prefix,
        (0..commits).map(|n| registration(&StreamId::of("user", ids.next()), None, n)),
    )
    .await?;
    println!(
        "startup: {} on a log of {commits} user registrations (filled in {:.1?})",
        binary.display(),
        filling.elapsed()
    );
    let client = async_nats::connect(vigil_tests::nats_url()).await?;
    for round in ["first start (projects the log)", "restart"] {
        let http = free_port()?;
        // The consumers a previous node left behind until they expire are not this node's.
        let before = consumers(&client, &prefix).await?;
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .arg("serve")
            .args(env.cli_args())
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--grpc", &format!("127.0.0.1:{}", free_port()?)])
            .env("RUST_LOG", "warn")
            // With mail configured, so the mailer runs (nothing here asks for a mail).
            .env("VIGIL_SMTP_URL", "smtp://127.0.0.1:2525")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let healthy = healthy(http, &mut child).await?;
        let (caught_up, handed) = caught_up(&client, &prefix, started, &before).await?;
        println!(
            "startup {round}: healthy after {healthy:.2?}, every subscription caught up after \
             {caught_up:.2?}, {handed} commits handed to its subscriptions"
        );
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        child.wait()?;
    }
    Ok(())
}

/// How long after the start the node answers its health check.
async fn healthy(http: u16, child: &mut std::process::Child) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let health = format!("http://127.0.0.1:{http}/users/v1/health");
    loop {
        if let Ok(response) = reqwest::get(&health).await
            && response.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("vigil serve exited early with {status}");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "vigil serve did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// When (since `started`) every consumer of stream `prefix` but those `before` had no commit pending, for good; and
/// how many commits the consumers were handed in all. (The JetStream API is asked directly: the
/// client's typed consumer listing does not read NATS 2.9's answers.)
async fn caught_up(
    client: &async_nats::Client,
    prefix: &str,
    started: Instant,
    before: &[String],
) -> anyhow::Result<(Duration, u64)> {
    let mut handed: HashMap<String, u64> = HashMap::new();
    let mut since: Option<Duration> = None;
    loop {
        let mut names = consumers(client, prefix).await?;
        names.retain(|name| !before.contains(name));
        let mut pending = false;
        for name in &names {
            let info = api(client, &format!("$JS.API.CONSUMER.INFO.{prefix}.{name}")).await?;
            if info.get("error").is_some() {
                continue;
            }
            pending |= info["num_pending"].as_u64().unwrap_or(0) > 0;
            let delivered = info["delivered"]["consumer_seq"].as_u64().unwrap_or(0);
            let count = handed.entry(name.clone()).or_default();
            *count = (*count).max(delivered);
        }
        let now = started.elapsed();
        match (pending, since) {
            (true, _) => since = None,
            (false, None) if !names.is_empty() => since = Some(now),
            (false, Some(at)) if now - at >= SETTLED => {
                return Ok((at, handed.values().sum()));
            }
            _ => {}
        }
        anyhow::ensure!(
            now < Duration::from_secs(900),
            "the node did not catch up in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The names of the consumers of stream `prefix`.
async fn consumers(client: &async_nats::Client, prefix: &str) -> anyhow::Result<Vec<String>> {
    let names = api(client, &format!("$JS.API.CONSUMER.NAMES.{prefix}")).await?;
    Ok(names["consumers"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// A JetStream API request's JSON answer.
async fn api(client: &async_nats::Client, subject: &str) -> anyhow::Result<serde_json::Value> {
    let answer = client
        .request(subject.to_owned(), bytes::Bytes::new())
        .await?;
    Ok(serde_json::from_slice(&answer.payload)?)
}
