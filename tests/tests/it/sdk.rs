//! The Extra Horizon SDK conformance suite (`tests/sdk/`, node's test runner) against a real
//! `vigil serve`, in both deployments.

use std::path::PathBuf;
use std::process::Command;

use vigil_tests::oidc::TestOidcProvider;
use vigil_tests::{TestEnv, free_port};

use crate::cli::{Serving, bootstrap};
use crate::in_both_deployments;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk")
}

/// Installs the pinned SDK once (`npm ci` from the committed lock file).
fn install() -> anyhow::Result<()> {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut installed = INSTALLED.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if *installed
        || suite_dir()
            .join("node_modules/@extrahorizon/javascript-sdk")
            .exists()
    {
        *installed = true;
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(suite_dir())
        .status()?;
    anyhow::ensure!(status.success(), "npm ci failed in tests/sdk");
    *installed = true;
    Ok(())
}

in_both_deployments! {
    async fn the_extra_horizon_sdk_works_unchanged(deployment: Deployment) {
        install()?;
        let env = TestEnv::new(deployment).await?;
        let credentials = bootstrap(&env)?;
        // The suite runs the SMTP server (tests/sdk/smtp.mjs) that Vigil mails to.
        let smtp_port = free_port()?;
        let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
        let serving = Serving::start(&env, &[("VIGIL_SMTP_URL", smtp_url.as_str())]).await?;
        // The OpenID provider the OIDC tests log in through, served by this test's runtime while
        // node runs on a blocking thread.
        let idp = TestOidcProvider::start("sdk-client", "the SDK provider's secret W9zq").await?;
        let mut node = Command::new("node");
        node
            .args(["--test", "--test-reporter=spec"])
            // `VIGIL_SDK_FILES="tasks.test.mjs events.test.mjs"` runs only these files.
            .args(std::env::var("VIGIL_SDK_FILES").unwrap_or_default().split_whitespace())
            .current_dir(suite_dir())
            // The SDK uses a host containing `localhost` as given; make it resolve to IPv4 first.
            .env("NODE_OPTIONS", "--dns-result-order=ipv4first")
            .env("VIGIL_URL", format!("http://localhost:{}", serving.http))
            .env("VIGIL_CLIENT_ID", credentials["client_id"].as_str().unwrap_or_default())
            .env("VIGIL_CLIENT_SECRET", credentials["client_secret"].as_str().unwrap_or_default())
            .env("VIGIL_ADMIN_EMAIL", "admin@example.com")
            .env("VIGIL_ADMIN_PASSWORD", "correct horse battery")
            .env("VIGIL_TEST_SMTP_PORT", smtp_port.to_string())
            .env("VIGIL_TEST_OIDC_ISSUER", &idp.issuer)
            .env("VIGIL_TEST_OIDC_CLIENT_ID", &idp.client_id)
            .env("VIGIL_TEST_OIDC_CLIENT_SECRET", &idp.client_secret)
            // For `vigil replay-task`, run against the deployment the suite uses.
            .env("VIGIL_TEST_BINARY", crate::cli::BINARY)
            .env("VIGIL_TEST_STORAGE_ARGS", serde_json::to_string(&env.cli_args())?);
        let output = tokio::task::spawn_blocking(move || node.output()).await??;
        let (status, logs) = serving.terminate()?;
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "SDK suite failed:\n{report}\nserver logs:\n{logs}");
        assert!(status.success(), "vigil serve did not stop cleanly: {logs}");
        Ok(())
    }
}
