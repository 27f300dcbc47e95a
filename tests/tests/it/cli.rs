//! The `vigil` binary as an operator runs it: bootstrap, serve, shut down, rebuild, and one-line
//! errors for bad configuration.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use vigil_tests::{TestEnv, free_port};

use crate::in_both_deployments;

pub const BINARY: &str = env!("CARGO_BIN_EXE_vigil-for-tests");

fn vigil(args: &[&str], extra: &[String]) -> anyhow::Result<Output> {
    Ok(Command::new(BINARY)
        .args(args)
        .args(extra)
        .env_remove("VIGIL_ADMIN_EMAIL")
        .env_remove("VIGIL_ADMIN_PASSWORD")
        .output()?)
}

/// Bootstraps through the binary; returns the printed credentials.
pub fn bootstrap(env: &TestEnv) -> anyhow::Result<serde_json::Value> {
    let output = vigil(
        &[
            "bootstrap",
            "--admin-email",
            "admin@example.com",
            "--admin-password",
            "correct horse battery",
        ],
        &env.cli_args(),
    )?;
    anyhow::ensure!(
        output.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    anyhow::ensure!(stdout.lines().count() == 1, "one line expected: {stdout}");
    Ok(serde_json::from_str(stdout.trim())?)
}

/// `vigil serve` on free ports, with its output captured.
pub struct Serving {
    pub child: std::process::Child,
    pub http: u16,
}

impl Serving {
    pub async fn start(env: &TestEnv, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with(&env.cli_args(), extra_env).await
    }

    /// `vigil serve` with these storage flags.
    pub async fn start_with(
        storage: &[String],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let (http, grpc) = (free_port()?, free_port()?);
        let child = Command::new(BINARY)
            .arg("serve")
            .args(storage)
            .args([
                "--http",
                &format!("127.0.0.1:{http}"),
                "--grpc",
                &format!("127.0.0.1:{grpc}"),
            ])
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut serving = Self { child, http };
        let health = format!("http://127.0.0.1:{http}/users/v1/health");
        for _ in 0..200 {
            if let Ok(response) = reqwest::get(&health).await
                && response.status().is_success()
            {
                return Ok(serving);
            }
            if let Some(status) = serving.child.try_wait()? {
                anyhow::bail!("vigil serve exited early with {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = serving.child.kill();
        anyhow::bail!("vigil serve did not become healthy")
    }

    /// SIGTERM, then the exit status and everything logged.
    pub fn terminate(self) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let output = self.child.wait_with_output()?;
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status, logs))
    }
}

in_both_deployments! {
    async fn bootstrap_prints_credentials_once_then_refuses(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let credentials = bootstrap(&env)?;
        for field in ["user_id", "client_id", "client_secret"] {
            assert!(credentials[field].as_str().is_some_and(|v| !v.is_empty()), "{field}");
        }
        let again = vigil(&["bootstrap", "--admin-email", "other@example.com", "--admin-password", "another password"], &env.cli_args())?;
        assert!(!again.status.success());
        let stderr = String::from_utf8(again.stderr)?;
        assert_eq!(stderr.trim(), "error: this deployment is already bootstrapped; nothing was changed");
        Ok(())
    }
}

in_both_deployments! {
    async fn serve_bootstraps_from_the_environment_and_stops_cleanly(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        // Traces are exported over OTLP when a collector is configured; an absent one costs nothing.
        let first = [
            ("VIGIL_ADMIN_EMAIL", "admin@example.com"),
            ("VIGIL_ADMIN_PASSWORD", "s3cret-pa55word"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ];
        let serving = Serving::start(&env, &first).await?;
        let (status, logs) = serving.terminate()?;
        assert!(status.success(), "{status}: {logs}");
        assert!(logs.contains("bootstrapped the deployment"), "{logs}");
        let printed = logs.lines().find(|line| line.starts_with("{\"user_id\""));
        let credentials: serde_json::Value = serde_json::from_str(printed.unwrap_or("{}"))?;
        assert!(credentials["client_secret"].as_str().is_some_and(|s| s.len() == 40), "{logs}");
        assert!(!logs.contains("s3cret-pa55word"), "the password must never be logged");
        assert!(logs.contains("stopped"), "{logs}");
        // Starting again does not bootstrap twice; this time the logs are JSON lines.
        let again = [
            ("VIGIL_ADMIN_EMAIL", "admin@example.com"),
            ("VIGIL_ADMIN_PASSWORD", "s3cret-pa55word"),
            ("VIGIL_LOG_FORMAT", "json"),
        ];
        let serving = Serving::start(&env, &again).await?;
        let (status, logs) = serving.terminate()?;
        assert!(status.success() && !logs.contains("bootstrapped the deployment"), "{logs}");
        for line in logs.lines() {
            let entry: serde_json::Value = serde_json::from_str(line)?;
            assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
        }
        let rebuilt = vigil(&["rebuild"], &env.cli_args())?;
        assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
        Ok(())
    }
}

/// Runs `vigil serve` with a bad setting; it must fail fast with one line naming the problem.
fn fails_with(args: &[String], expected: &str) -> anyhow::Result<()> {
    let output = Command::new(BINARY)
        .arg("serve")
        .args(args)
        .env_remove("VIGIL_ADMIN_EMAIL")
        .env_remove("RUST_LOG")
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(!output.status.success(), "{args:?} started");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(expected),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn bad_configuration_fails_at_start_with_one_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    let free = |port: u16| format!("127.0.0.1:{port}");
    let ports = |http: u16, grpc: u16| {
        vec![
            "--http".to_owned(),
            free(http),
            "--grpc".to_owned(),
            free(grpc),
        ]
    };
    let (http, grpc) = (free_port()?, free_port()?);

    let mut nats = vec![
        "--data-dir".into(),
        data.clone(),
        "--nats-url".into(),
        "nats://127.0.0.1:1".into(),
    ];
    nats.extend(ports(http, grpc));
    fails_with(
        &nats,
        "--secrets-key (VIGIL_SECRETS_KEY) is required with --nats-url",
    )?;
    let mut malformed_key = nats.clone();
    malformed_key.extend(["--secrets-key".into(), "abc".into()]);
    fails_with(
        &malformed_key,
        "--secrets-key: the secrets key must be 64 hexadecimal digits",
    )?;
    nats.extend(["--secrets-key".into(), "ab".repeat(32)]);
    fails_with(&nats, "cannot reach NATS at nats://127.0.0.1:1")?;

    let mut postgres = vec![
        "--data-dir".into(),
        data.clone(),
        "--database-url".into(),
        "postgres://postgres:pw@127.0.0.1:1/x".into(),
    ];
    postgres.extend(ports(http, grpc));
    fails_with(
        &postgres,
        "cannot reach the read store at postgres://postgres:***@127.0.0.1:1/x",
    )?;

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"")?;
    let mut unwritable = vec!["--data-dir".into(), file.join("data").display().to_string()];
    unwritable.extend(ports(http, grpc));
    fails_with(&unwritable, "cannot create data directory")?;

    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut busy = vec!["--data-dir".into(), data];
    busy.extend(ports(taken.local_addr()?.port(), grpc));
    fails_with(
        &busy,
        &format!("cannot listen for HTTP on {}", taken.local_addr()?),
    )?;
    Ok(())
}

#[test]
fn unknown_flags_are_reported_by_the_parser() -> anyhow::Result<()> {
    let output = vigil(&["serve", "--no-such-flag"], &[])?;
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr)?.contains("--no-such-flag"));
    Ok(())
}

#[tokio::test]
async fn the_embedded_data_is_private_and_secrets_can_come_from_files() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(vigil_tests::Deployment::Embedded).await?;
    let data_dir = env.storage_args().data_dir.join("vigil");
    let secrets = tempfile::tempdir()?;
    let key_file = secrets.path().join("key");
    std::fs::write(&key_file, format!("{}\n", env.secrets_key))?;
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, "correct horse battery\n")?;
    let storage = [
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
        "--secrets-key-file".to_owned(),
        key_file.display().to_string(),
    ];
    let bootstrapped = Command::new(BINARY)
        .args([
            "bootstrap",
            "--admin-email",
            "admin@example.com",
            "--admin-password-file",
        ])
        .arg(&password_file)
        .args(&storage)
        .env_remove("VIGIL_ADMIN_PASSWORD")
        .output()?;
    anyhow::ensure!(
        bootstrapped.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrapped.stderr)
    );
    let credentials: serde_json::Value = serde_json::from_slice(&bootstrapped.stdout)?;

    let serving = Serving::start_with(&storage, &[]).await?;
    let login = serde_json::json!({
        "grant_type": "password",
        "username": "admin@example.com",
        "password": "correct horse battery",
        "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"],
    });
    let answer = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/auth/v2/oauth2/tokens",
            serving.http
        ))
        .json(&login)
        .send()
        .await?;
    let (status, _) = serving.terminate()?;
    assert!(
        answer.status().is_success(),
        "the password from the file logs in: {}",
        answer.status()
    );
    assert!(status.success());

    // The key came from its file: none was made in the data directory.
    assert!(!data_dir.join("secrets.key").exists());
    let mode = |path: &std::path::Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&data_dir)?, 0o700);
    for name in [
        "log.sqlite",
        "read.sqlite",
        "log.sqlite-wal",
        "read.sqlite-wal",
        "log.sqlite-shm",
        "read.sqlite-shm",
    ] {
        let path = data_dir.join(name);
        if path.exists() {
            assert_eq!(mode(&path)?, 0o600, "{name}");
        }
    }
    Ok(())
}

in_both_deployments! {
    async fn a_lockout_policy_locks_as_a_recorded_security_event_and_vigil_unlock_ends_the_lock(deployment: Deployment) {
        use reqwest::Method;
        use vigil_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let set = vigil(&["lockout", "--after", "3"], &env.cli_args())?;
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        let unsound = vigil(&["lockout", "--after", "0"], &env.cli_args())?;
        assert!(!unsound.status.success());

        // Three wrong passwords (a signed-in user's checks are not paced) lock the account.
        let token = server.admin_token().await?;
        for _ in 0..3 {
            let (status, body) = server
                .call(Method::POST, "/users/v1/confirm_password", Some(&token), Some(serde_json::json!({"password": "wrong"})))
                .await?;
            assert!(status.is_client_error(), "{body}");
        }
        let refused = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let refusal = refused.expect_err("the account is locked").to_string();
        assert!(refusal.contains("TOO_MANY_FAILED_ATTEMPTS"), "{refusal}");

        // The lock is a security event naming where the failures came from.
        let email = vigil_domain::value::Email::parse(ADMIN_EMAIL)?;
        let stream = vigil_domain::users::login::stream(&email).to_string();
        let history = server.history(&stream).await?;
        let locked: Vec<_> = history.iter().filter(|(name, _)| name == "login.locked").collect();
        assert_eq!(locked.len(), 1, "{history:?}");
        assert_eq!(locked[0].1["failed_count"], 3, "{history:?}");
        assert_eq!(locked[0].1["until"], serde_json::Value::Null, "{history:?}");
        assert_eq!(locked[0].1["addresses"], serde_json::json!(["127.0.0.1"]), "{history:?}");

        // From the command line, the administrator is let in again.
        let unlocked = vigil(&["unlock", ADMIN_EMAIL], &env.cli_args())?;
        assert!(unlocked.status.success(), "{}", String::from_utf8_lossy(&unlocked.stderr));
        server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let unknown = vigil(&["unlock", "nobody@example.com"], &env.cli_args())?;
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account"));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_request_that_stops_arriving_is_cut_off_after_the_read_timeout(deployment: Deployment) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let env = TestEnv::new(deployment).await?;
        let serving = Serving::start(&env, &[("VIGIL_READ_TIMEOUT_SECONDS", "1")]).await?;
        let answer = |request: &'static [u8]| async move {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", serving.http)).await?;
            stream.write_all(request).await?;
            let started = std::time::Instant::now();
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                .await
                .map_err(|_| anyhow::anyhow!("the connection was held open"))??;
            anyhow::Ok((String::from_utf8(answer)?, started.elapsed()))
        };

        // A body that stops arriving: 408, in Extra Horizon's shape.
        let (body_stalled, after) = answer(b"POST /users/v1/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"email\"").await?;
        assert!(body_stalled.starts_with("HTTP/1.1 408 "), "{body_stalled}");
        let json = body_stalled.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(json)?;
        assert_eq!(json["name"], "BODY_FORMAT_EXCEPTION", "{json}");
        assert!(after < Duration::from_secs(10), "{after:?}");

        // A head that stops arriving, and a connection that never sends one, are closed.
        for request in [&b"GET /users/v1/health HTTP/1.1\r\nhost: x\r\n"[..], &b""[..]] {
            let (closed, after) = answer(request).await?;
            assert!(closed.is_empty(), "{closed}");
            assert!(after < Duration::from_secs(10), "{after:?}");
        }
        let (status, logs) = serving.terminate()?;
        assert!(status.success(), "{logs}");
        Ok(())
    }
}

in_both_deployments! {
    async fn a_forwarded_client_address_is_believed_from_trusted_proxies_only(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = vigil_tests::log_of(&env).await?;
        let rounds = [(None, "127.0.0.1", "one@example.com"), (Some("127.0.0.0/8"), "203.0.113.7", "two@example.com")];
        for (trusted, recorded, email) in rounds {
            let settings: Vec<_> = trusted.map(|proxies| ("VIGIL_TRUSTED_PROXIES", proxies)).into_iter().collect();
            let serving = Serving::start(&env, &settings).await?;
            // An address without an account is throttled, and its failures recorded, like any.
            let response = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{}/users/v1/authenticate", serving.http))
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
                .json(&serde_json::json!({"email": email, "password": "wrong"}))
                .send()
                .await?;
            assert_eq!(response.status().as_u16(), 401);
            let stream = vigil_domain::users::login::stream(&vigil_domain::value::Email::parse(email)?);
            let commits = log.read_stream(&stream, 0).await?;
            let events: Vec<_> = commits.iter().flat_map(|c| &c.commit.events).map(|e| e.data_json()).collect();
            assert_eq!(events.first().map(|e| e["address"].clone()), Some(serde_json::json!(recorded)), "{events:?}");
            serving.terminate()?;
        }
        Ok(())
    }
}
