//! `testbed toxiproxy-cli` against our server: toxiproxy-cli's commands, flags,
//! aliases and (non-terminal) output.

mod proxy_support;

use std::process::Command;

use proxy_support::Harness;
use serde_json::json;

/// Runs the CLI with `TOXIPROXY_URL` pointing at the harness; returns (ok, stdout, stderr).
fn cli(harness: &Harness, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .arg("toxiproxy-cli")
        .args(args)
        .env("TOXIPROXY_URL", format!("http://{}", harness.api))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_proxy_lifecycle_through_the_cli() {
    let harness = Harness::start(1);
    let (ok, out, _) = cli(
        &harness,
        &["create", "-l", "127.0.0.1:0", "-u", "127.0.0.1:9", "redis"],
    );
    assert!(ok);
    assert_eq!(out, "Created new proxy redis\n");
    let listen = harness.get("/proxies/redis").body["listen"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, out, _) = cli(&harness, &["list"]);
    assert!(ok);
    assert!(out.starts_with("redis\t"), "{out:?}");
    assert!(out.contains(&listen) && out.contains("127.0.0.1:9") && out.contains("enabled"));
    assert!(out.trim_end().ends_with('0'), "{out:?}");

    let (ok, out, _) = cli(&harness, &["tog", "redis"]);
    assert!(ok);
    assert_eq!(out, "Proxy redis is now disabled\n");
    assert_eq!(harness.get("/proxies/redis").body["enabled"], false);
    let (_, out, _) = cli(&harness, &["toggle", "redis"]);
    assert_eq!(out, "Proxy redis is now enabled\n");

    let (ok, out, _) = cli(&harness, &["d", "redis"]);
    assert!(ok);
    assert_eq!(out, "Deleted proxy redis\n");
    assert_eq!(harness.get("/proxies/redis").status, 404);
}

#[test]
fn toxics_through_the_cli() {
    let harness = Harness::start(1);
    cli(
        &harness,
        &["new", "-l", "127.0.0.1:0", "-u", "127.0.0.1:9", "db"],
    );
    let (ok, out, err) = cli(
        &harness,
        &[
            "toxic",
            "add",
            "-t",
            "latency",
            "-a",
            "latency=100",
            "-a",
            "jitter=5",
            "db",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Added downstream latency toxic 'latency_downstream' on proxy 'db'\n"
    );
    let (ok, out, _) = cli(
        &harness,
        &[
            "t",
            "a",
            "-t",
            "bandwidth",
            "-n",
            "slow",
            "-u",
            "--tox",
            "0.5",
            "-a",
            "rate=10",
            "db",
        ],
    );
    assert!(ok);
    assert_eq!(out, "Added upstream bandwidth toxic 'slow' on proxy 'db'\n");

    let (_, out, _) = cli(&harness, &["inspect", "db"]);
    assert_eq!(
        out,
        "latency_downstream\ttype=latency\tstream=downstream\ttoxicity=1.00\tattributes=[\tjitter=5\tlatency=100\t]\n\
         slow\ttype=bandwidth\tstream=upstream\ttoxicity=0.50\tattributes=[\trate=10\t]\n"
    );

    let (ok, out, _) = cli(
        &harness,
        &[
            "toxic",
            "update",
            "-n",
            "latency_downstream",
            "-a",
            "latency=7",
            "db",
        ],
    );
    assert!(ok);
    assert_eq!(out, "Updated toxic 'latency_downstream' on proxy 'db'\n");
    assert_eq!(
        harness.get("/proxies/db/toxics/latency_downstream").body["attributes"],
        json!({"latency": 7, "jitter": 5})
    );

    let (ok, out, _) = cli(&harness, &["toxic", "remove", "-n", "slow", "db"]);
    assert!(ok);
    assert_eq!(out, "Removed toxic 'slow' on proxy 'db'\n");
    let (ok, out, _) = cli(&harness, &["t", "d", "-n", "latency_downstream", "db"]);
    assert!(ok, "{out}");
    assert_eq!(harness.get("/proxies/db/toxics").body, json!([]));
}

#[test]
fn cli_failures_print_the_server_error_and_exit_1() {
    let harness = Harness::start(1);
    let (ok, _, err) = cli(&harness, &["inspect", "ghost"]);
    assert!(!ok);
    assert!(
        err.contains("Failed to retrieve proxy ghost: Proxy: HTTP 404: proxy not found"),
        "{err}"
    );
    let (ok, _, err) = cli(&harness, &["toxic", "add", "-t", "warp", "ghost"]);
    assert!(!ok);
    assert!(
        err.contains("Failed to add toxic: AddToxic: HTTP 404"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &harness,
        &["toxic", "add", "-t", "latency", "-u", "-d", "ghost"],
    );
    assert!(!ok);
    assert!(err.contains("Only one should be specified"), "{err}");
}

#[test]
fn the_host_flag_overrides_the_environment() {
    let harness = Harness::start(1);
    let output = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["toxiproxy-cli", "-h", &harness.api.to_string(), "list"])
        .env("TOXIPROXY_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "");
}
