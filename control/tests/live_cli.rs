//! The live balancer's start-up checks through the binary: every refused
//! setting exits with code 2 and a message naming the variable, the value
//! and what is accepted, before anything on the system is touched (these
//! need no root: the checks come first).

use std::process::{Command, Output};

/// Runs `rusty_rail` with only `env` set among the `RR_*` variables.
fn rusty_rail(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rusty_rail"));
    for (key, _) in std::env::vars() {
        if key.starts_with("RR_") {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("running rusty_rail")
}

fn refused_with(env: &[(&str, &str)], expected: &[&str]) {
    let output = rusty_rail(env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
    for part in expected {
        assert!(
            stderr.contains(part),
            "{env:?}: {part:?} missing from: {stderr}"
        );
    }
}

#[test]
fn without_a_device_or_targets_it_says_which_are_missing() {
    refused_with(&[], &["--device", "--target-ips"]);
    refused_with(&[("RR_DEVICE", "lo")], &["--target-ips"]);
}

#[test]
fn an_interface_that_is_not_there_is_named_with_the_ones_that_are() {
    refused_with(
        &[("RR_DEVICE", "rrnosuch0"), ("RR_TARGET_IPS", "10.1.0.1")],
        &["RR_DEVICE: \"rrnosuch0\" is not an interface", "lo"],
    );
}

#[test]
fn packet_io_backends_this_machine_lacks_are_refused_with_what_to_use() {
    // Where /dev/netmap exists, `netmap` is accepted; the refusal is for
    // kernels without it, as here.
    if !std::path::Path::new("/dev/netmap").exists() {
        refused_with(
            &[
                ("RR_DEVICE", "lo"),
                ("RR_TARGET_IPS", "10.1.0.1"),
                ("RR_IO", "netmap"),
            ],
            &[
                "RR_IO: \"netmap\" is not available",
                "use af_xdp, af_packet or auto",
            ],
        );
    }
    refused_with(
        &[
            ("RR_DEVICE", "lo"),
            ("RR_TARGET_IPS", "10.1.0.1"),
            ("RR_IO", "dpdk"),
        ],
        &[
            "RR_IO: \"dpdk\"",
            "expected auto, af_packet, af_xdp, netmap or netmap-emulated",
        ],
    );
}

#[test]
fn a_table_size_that_is_not_prime_gets_the_nearest_primes() {
    refused_with(
        &[
            ("RR_DEVICE", "lo"),
            ("RR_TARGET_IPS", "10.1.0.1"),
            ("RR_TABLE_SIZE", "65536"),
        ],
        &["RR_TABLE_SIZE: \"65536\" is not a prime", "65521", "65537"],
    );
}

#[test]
fn bad_workers_cores_health_api_and_log_settings_are_named() {
    let base = [("RR_DEVICE", "lo"), ("RR_TARGET_IPS", "10.1.0.1")];
    let cases: [(&str, &str, &str); 6] = [
        ("RR_WORKERS", "0", "RR_WORKERS: \"0\" is out of range"),
        ("RR_CORES", "0;0", "RR_CORES: \"0\""),
        ("RR_HEALTH", "udp:53", "RR_HEALTH: \"udp:53\""),
        ("RR_API", "localhost", "RR_API: \"localhost\""),
        ("RR_TARGET_IPS", "10.1.0.1:70000", "RR_TARGET_IPS"),
        (
            "RR_LOG",
            "control=loud",
            "RR_LOG: \"control=loud\" is not a log filter",
        ),
    ];
    for (key, value, message) in cases {
        let mut env: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != key).collect();
        env.push((key, value));
        refused_with(&env, &[message]);
    }
}

#[test]
fn workers_and_cores_must_agree() {
    refused_with(
        &[
            ("RR_DEVICE", "lo"),
            ("RR_TARGET_IPS", "10.1.0.1"),
            ("RR_WORKERS", "1"),
            ("RR_CORES", "0-1"),
        ],
        &["RR_CORES", "one per worker"],
    );
}

/// The BGP settings (off by default), each with a device and targets given.
fn bgp_refused_with(bgp: &[(&str, &str)], expected: &[&str]) {
    let mut env = vec![("RR_DEVICE", "lo"), ("RR_TARGET_IPS", "10.1.0.1")];
    env.extend_from_slice(bgp);
    refused_with(&env, expected);
}

#[test]
fn bad_bgp_values_are_named_with_what_is_accepted() {
    bgp_refused_with(
        &[("RR_BGP_HOLD", "1s")],
        &[
            "RR_BGP_HOLD: \"1s\" is out of range",
            "whole seconds from 3 to 65535",
        ],
    );
    bgp_refused_with(
        &[
            ("RR_BGP_LOCAL_AS", "65001"),
            ("RR_BGP_PEERS", "router:65000"),
        ],
        &["RR_BGP_PEERS: \"router:65000\"", "address:as entries"],
    );
}

#[test]
fn bgp_peers_without_a_local_as_or_a_local_as_without_peers_are_refused() {
    bgp_refused_with(
        &[("RR_BGP_PEERS", "10.0.0.1:65000")],
        &["RR_BGP_PEERS: \"10.0.0.1:65000\" is given without RR_BGP_LOCAL_AS"],
    );
    bgp_refused_with(
        &[("RR_BGP_LOCAL_AS", "65001")],
        &["RR_BGP_PEERS: \"\" is not given, and RR_BGP_LOCAL_AS=65001 needs a router"],
    );
}
