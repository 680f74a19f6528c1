//! Real Toxiproxy clients, unchanged, against our server: `toxiproxy-python` from
//! `PyPI` and `toxiproxy-node-client` from npm each run a scenario (create a proxy, add
//! a latency toxic, observe it, update and remove it, reset).
//!
//! The tests install the clients themselves (pip into the test's scratch directory,
//! npm into `tests/clients/node`); without python3/node or without the registries they
//! report a skip (`host::capability`: a failure under `RR_REQUIRE_LABS=1`).

mod proxy_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host::capability::{self, Need};
use proxy_support::Harness;

const PYTHON_CLIENT: &str = "toxiproxy-python==0.1.1";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn run(command: &mut Command) -> Result<Output, String> {
    let output = command
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Installs toxiproxy-python once per target directory; returns its PYTHONPATH.
fn install_python_client() -> Result<PathBuf, String> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("toxiproxy-python");
    if target.join("toxiproxy").join("server.py").exists() {
        return Ok(target);
    }
    run(Command::new("python3").arg("--version"))?;
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&target)
        .arg(PYTHON_CLIENT))?;
    Ok(target)
}

fn install_node_client() -> Result<PathBuf, String> {
    let directory = clients_dir().join("node");
    if directory
        .join("node_modules/toxiproxy-node-client/package.json")
        .exists()
    {
        return Ok(directory);
    }
    run(Command::new("node").arg("--version"))?;
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&directory))?;
    Ok(directory)
}

#[test]
fn toxiproxy_python_drives_our_server_unchanged() {
    host::skip_unless!(Need::Tool("python3"));
    let path = match install_python_client() {
        Ok(path) => path,
        Err(reason) => {
            let _ = capability::lab_lacks(format!("{PYTHON_CLIENT} not installed: {reason}"));
            return;
        }
    };
    let harness = Harness::start(1);
    let echo = harness.echo_server();
    let result = run(Command::new("python3")
        .arg(clients_dir().join("python_scenario.py"))
        .env("PYTHONPATH", &path)
        .env("TOXIPROXY_HOST", harness.api.ip().to_string())
        .env("TOXIPROXY_PORT", harness.api.port().to_string())
        .env("ECHO", echo.to_string()));
    let output = result.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[test]
fn toxiproxy_node_client_drives_our_server_unchanged() {
    host::skip_unless!(Need::Tool("node"), Need::Tool("npm"));
    let directory = match install_node_client() {
        Ok(directory) => directory,
        Err(reason) => {
            let _ = capability::lab_lacks(format!("toxiproxy-node-client not installed: {reason}"));
            return;
        }
    };
    let harness = Harness::start(1);
    let echo = harness.echo_server();
    let result = run(Command::new("node")
        .arg("scenario.js")
        .current_dir(&directory)
        .env("TOXIPROXY_URL", format!("http://{}", harness.api))
        .env("ECHO", echo.to_string()));
    let output = result.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}
