//! The services the tests run against, made ready once per test process: NATS with JetStream on
//! 127.0.0.1:4222, Postgres on 127.0.0.1:5432 (user `postgres`, trust authentication), Node.js
//! for the SDK suite and the `nodejs*` functions, and Python 3 for the `python3*` functions. One that is not reachable is installed from Debian's packages when missing
//! and started the way this machine kind starts it; one that runs is never stopped or
//! reconfigured. With `VIGIL_TEST_NATS_URL` or `VIGIL_TEST_POSTGRES_URL` set, that service is
//! the caller's and left alone. What cannot be made ready is reported once on standard error, and
//! the tests that need it then fail on connecting — they are never skipped.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const POSTGRES: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5432);
const NATS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4222);
const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// How long a started service may take to accept connections.
const STARTING: Duration = Duration::from_secs(60);

/// Makes the services ready, once per process.
pub fn ensure() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        for (service, result) in [
            ("Postgres", postgres()),
            ("NATS", nats()),
            ("Node.js", node()),
            ("Python", python()),
        ] {
            if let Err(error) = result {
                eprintln!("vigil-tests: {service} is not ready: {error}");
            }
        }
    });
}

fn reachable(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

fn wait_for(address: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + STARTING;
    while Instant::now() < deadline {
        if reachable(address) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("started, but {address} accepts no connection"))
}

/// Runs a command to its end; its output goes to the test's output.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed: {status}", args.join(" ")))
    }
}

/// Installs Debian packages (the package lists are updated once).
fn install(packages: &[&str]) -> Result<(), String> {
    static UPDATED: OnceLock<Result<(), String>> = OnceLock::new();
    UPDATED
        .get_or_init(|| run("apt-get", &["update", "-qq"]))
        .clone()?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend_from_slice(packages);
    run("apt-get", &args)
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn postgres() -> Result<(), String> {
    if std::env::var_os("VIGIL_TEST_POSTGRES_URL").is_some() || reachable(POSTGRES) {
        return Ok(());
    }
    let fresh = !on_path("pg_ctlcluster");
    if fresh {
        install(&["postgresql"])?;
    }
    let version = std::fs::read_dir("/etc/postgresql")
        .map_err(|error| format!("no cluster in /etc/postgresql: {error}"))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("main").is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .max()
        .ok_or("no cluster named main in /etc/postgresql")?;
    if fresh {
        // Only a cluster installed just now is configured: the tests log in as `postgres`
        // without a password over TCP.
        trust_local_tcp(
            &Path::new("/etc/postgresql")
                .join(&version)
                .join("main/pg_hba.conf"),
        )?;
    }
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
    )?;
    wait_for(POSTGRES)
}

/// Puts a `trust` rule for 127.0.0.1 first in `pg_hba.conf`.
fn trust_local_tcp(hba: &Path) -> Result<(), String> {
    let rules =
        std::fs::read_to_string(hba).map_err(|error| format!("{}: {error}", hba.display()))?;
    let trusted = format!("host all all 127.0.0.1/32 trust\n{rules}");
    std::fs::write(hba, trusted).map_err(|error| format!("{}: {error}", hba.display()))
}

fn nats() -> Result<(), String> {
    if std::env::var_os("VIGIL_TEST_NATS_URL").is_some() || reachable(NATS) {
        return Ok(());
    }
    if !Path::new(NATS_SERVER).exists() {
        install(&["nats-server"])?;
    }
    std::fs::create_dir_all("/var/lib/nats-server")
        .map_err(|error| format!("/var/lib/nats-server: {error}"))?;
    run(
        "start-stop-daemon",
        &[
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            NATS_SERVER,
            "--",
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
            "-js",
            "-sd",
            "/var/lib/nats-server",
            "-l",
            "/var/log/nats-server.log",
        ],
    )?;
    wait_for(NATS)
}

fn node() -> Result<(), String> {
    if on_path("node") && on_path("npm") {
        return Ok(());
    }
    install(&["nodejs", "npm"])
}

/// Python 3, which the `python3*` function runtime runs.
fn python() -> Result<(), String> {
    if on_path("python3") {
        return Ok(());
    }
    install(&["python3"])
}
