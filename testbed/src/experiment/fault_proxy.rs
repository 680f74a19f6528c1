//! `toxic` faults: the clients reach the system through the fault proxy
//! (`testbed proxy`) in the router's namespace, listening on the router's
//! front address, and the fault adds and removes one toxic through the
//! proxy's Toxiproxy API (on the router's loopback) at its times.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::file::{toxic_attributes, FaultEntry};
use super::lab::{RunLab, PORT};

/// The proxy's API port on the router's loopback.
pub const API_PORT: u16 = 8474;
/// The proxy's name in its API.
const PROXY: &str = "vip";
/// The toxic's name in its API.
const TOXIC: &str = "fault";

/// Starts the proxy in front of `upstream`; returns where clients connect.
pub fn start(
    lab: &mut RunLab,
    testbed: &Path,
    dir: &Path,
    upstream: SocketAddr,
    seed: u64,
) -> Result<SocketAddr, String> {
    let listen = SocketAddr::from((lab.addresses.router_front(), PORT));
    let config = dir.join("proxies.json");
    let proxies = serde_json::json!([{
        "name": PROXY, "listen": listen.to_string(), "upstream": upstream.to_string(), "enabled": true,
    }]);
    std::fs::write(&config, proxies.to_string())
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
    let testbed = testbed.to_string_lossy().into_owned();
    lab.spawn(
        "r",
        "proxy",
        &[
            &testbed,
            "proxy",
            "--host",
            "127.0.0.1",
            "--port",
            &API_PORT.to_string(),
            "--seed",
            &seed.to_string(),
            "--config",
            &config.to_string_lossy(),
        ],
        &[],
    )?;
    lab.wait_listening("r", PORT, Duration::from_secs(10))?;
    Ok(listen)
}

/// The API body that adds `fault`'s toxic.
pub fn toxic_body(fault: &FaultEntry) -> String {
    serde_json::json!({
        "name": TOXIC,
        "type": fault.toxic.clone().unwrap_or_default(),
        "stream": fault.stream.clone().unwrap_or_else(|| "downstream".to_owned()),
        "toxicity": 1.0,
        "attributes": toxic_attributes(fault),
    })
    .to_string()
}

/// Adds the toxic (`body` from [`toxic_body`]).
pub fn add(lab: &RunLab, body: &str) -> Result<(), String> {
    call(lab, "POST", &format!("/proxies/{PROXY}/toxics"), Some(body))
}

/// Removes the toxic.
pub fn remove(lab: &RunLab) -> Result<(), String> {
    call(
        lab,
        "DELETE",
        &format!("/proxies/{PROXY}/toxics/{TOXIC}"),
        None,
    )
}

fn call(lab: &RunLab, method: &str, path: &str, body: Option<&str>) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{API_PORT}{path}");
    lab.http("r", method, &url, None, body).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::file::ExperimentFile;

    #[test]
    fn the_toxic_body_is_what_the_proxy_s_api_takes() {
        let text = crate::experiment::file::tests::SMALL.replacen(
            "kind = \"backend_kill\"",
            "kind = \"toxic\"\ntoxic = \"latency\"\nattributes = { latency = 100, jitter = 5 }",
            1,
        );
        let file = ExperimentFile::parse(&text).unwrap();
        let body: serde_json::Value = serde_json::from_str(&toxic_body(&file.faults[1])).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"name": "fault", "type": "latency", "stream": "downstream",
                "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 5}})
        );
        crate::proxy::toxics::ToxicKind::from_json("latency", body["attributes"].clone()).unwrap();
    }
}
