//! Every input the balancer takes from a person or a client answers any
//! text with a value or an error that names it, never a panic: the
//! `--config` file, every `RR_*` value (through the same clap parsers the
//! flags and the environment use: targets, MACs, durations, health checks,
//! addresses, BGP prefixes, ...), and the API's JSON bodies through the
//! real router (`POST /backends`, `PATCH /backends/{ip}`, `POST /services`,
//! `POST /services/{name}/backends`), whose refusals are 4xx with an
//! `error` that says something, and never a 5xx. Each property runs
//! arbitrary text and valid inputs with random edits
//! (`fuzz/hostile_inputs.rs`); the fuzz targets in `fuzz/` explore the
//! same entry points with coverage.

#[path = "../../fuzz/control_inputs.rs"]
mod control_inputs;
#[path = "../../fuzz/hostile_inputs.rs"]
mod hostile_inputs;

use axum::http::StatusCode;
use control::backends::MAX_WEIGHT;
use control::config::file;
use control::config::{parse_health_check, parse_targets, MAX_TARGETS};
use control_inputs::{
    fault_in_answer, fresh_api, known_settings, parse_setting, send, value_flags,
};
use hostile_inputs::{
    any_text, apply, edits, json_object, json_text, mutated, mutated_document, mutated_text, Syntax,
};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Values of every kind the settings take, for the edits to start from.
const SETTING_VALUES: &[&str] = &[
    "10.1.0.1;10.1.0.2:3",
    "10.1.0.1, [2001:db8::1]:3 ,2001:db8::2",
    "02:00:00:00:00:01",
    "10.1.0.1=02:00:00:00:00:09;2001:db8::1=02:00:00:00:00:0a",
    "192.0.2.10;2001:db8::80",
    "0x5275737479526169",
    "65537",
    "300s",
    "1m 30s",
    "100ms",
    "tcp:5001",
    "http:8080/healthz",
    "none",
    "127.0.0.1:9090",
    "[::1]:9090",
    "af_packet",
    "0;1",
    "0-1",
    "1",
    "true",
    "info,control=debug",
    "65000",
    "10.0.0.1:65001;10.0.0.2:65002",
    "10.99.0.1/32;2001:db8::/64",
    "lb.example;127.0.0.1",
];

const SETTING_WORDS: &[&str] = &[
    ";",
    ",",
    ":",
    "=",
    "/",
    "[",
    "]",
    "0x",
    "tcp",
    "http",
    "udp",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "none",
    "auto",
    "2001:db8::1",
    "10.1.0.1",
    "/32",
    "/0",
    "/129",
    "65535",
    "65536",
];

proptest! {
    #![proptest_config(config(2000))]

    /// Any value of any setting (its default with edits among them):
    /// parsed, or a clap error that says something.
    #[test]
    fn every_setting_s_value_parses_or_is_refused_with_a_reason(
        flag in any::<prop::sample::Index>(),
        value in prop_oneof![
            1 => any_text(SETTING_WORDS).prop_map(Some),
            1 => mutated_text(SETTING_VALUES, SETTING_WORDS).prop_map(Some),
            2 => Just(None),
        ],
        edits in edits(SETTING_WORDS),
    ) {
        let flags = value_flags();
        let (flag, default) = &flags[flag.index(flags.len())];
        let value = value.unwrap_or_else(|| {
            String::from_utf8_lossy(&apply(default.as_bytes(), &edits)).into_owned()
        });
        if let Err(error) = parse_setting(flag, &value) {
            prop_assert!(!error.trim().is_empty());
        }
    }

    /// `RR_TARGET_IPS` alone: each address once, weights in range.
    #[test]
    fn target_lists_give_distinct_weighted_backends_or_name_the_entry(
        text in prop_oneof![
            any_text(SETTING_WORDS),
            mutated_text(SETTING_VALUES, SETTING_WORDS),
        ]
    ) {
        match parse_targets(&text) {
            Ok(targets) => {
                prop_assert!(!targets.is_empty() && targets.len() <= MAX_TARGETS);
                prop_assert!(targets.iter().all(|t| t.weight <= MAX_WEIGHT));
                let mut addrs: Vec<_> = targets.iter().map(|t| t.addr).collect();
                addrs.sort();
                addrs.dedup();
                prop_assert_eq!(addrs.len(), targets.len());
            }
            Err(error) => prop_assert!(error.to_string().contains("RR_TARGET_IPS"), "{}", error),
        }
    }

    /// `RR_HEALTH` alone: a check prints as text that parses back to it.
    #[test]
    fn health_checks_print_back_to_themselves_or_name_the_setting(
        text in prop_oneof![
            any_text(&["tcp", "http", "none", ":", "/", "8080", "0", "65536", "/healthz", "?a=b"]),
            mutated_text(&["tcp:5001", "http:8080/healthz", "HTTP:80", "none"], SETTING_WORDS),
        ]
    ) {
        match parse_health_check(&text) {
            Ok(check) => prop_assert_eq!(parse_health_check(&check.to_string()).ok(), Some(check)),
            Err(error) => prop_assert!(error.to_string().contains("RR_HEALTH"), "{}", error),
        }
    }
}

/// The fields and values of the configuration file and the API bodies.
const WORDS: &[&str] = &[
    "service",
    "ip",
    "weight",
    "drain",
    "[2001:db8::4]",
    "10.1.0.1",
    "10.1.0.4",
    "name",
    "vip",
    "protocol",
    "port",
    "backends",
    "health",
    "table_size",
    "hash",
    "device",
    "target_ips",
    "api",
    "token_file",
    "seed",
    "tcp",
    "udp",
    "5-tuple",
    "source",
    "web",
    "192.0.2.10",
    "2001:db8::80",
    "10.2.0.1",
    "10.2.0.2:2",
    "[2001:db8::2]:3",
    "tcp:80",
    "http:8080/healthz",
    "1009",
    "65537",
    "7",
];

const CONFIG_VALID: &[&str] = &[
    r#"# The balancer's settings and two services.
device = "eth0"
target_ips = ["10.1.0.1", "10.1.0.2:3"]
seed = 7
[api]
hosts = "lb.example"

[[service]]
hash = "5-tuple"
table_size = 1009
name = "web"
health = "http:8080/healthz"
vip = "192.0.2.10"
port = 80
protocol = "tcp"
backends = ["10.2.0.1", "10.2.0.2:2"]

[[service]]
name = "dns"
vip = "2001:db8::53"
protocol = 17
backends = "2001:db8::1;[2001:db8::2]:3"
hash = "source"
table_size = 251
"#,
    r#"[[service]]
name = "all"
vip = "192.0.2.20"
backends = ["10.3.0.1"]
"#,
];

proptest! {
    #![proptest_config(config(1000))]

    /// A file is checked whole: every error carries its line within the
    /// file and a message, and a file that passes has services that build.
    #[test]
    fn configuration_files_load_or_list_every_error_with_its_line(
        text in prop_oneof![
            1 => any_text(WORDS),
            2 => mutated_text(CONFIG_VALID, WORDS),
            4 => mutated_document(Syntax::Toml, CONFIG_VALID, WORDS),
        ]
    ) {
        let known = known_settings();
        match file::parse(&text, &known) {
            Ok(parsed) => {
                for setting in &parsed.settings {
                    prop_assert!(known.contains(&setting.env), "{}", setting.env);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                let lines = text.lines().count() + 1;
                for error in &errors {
                    prop_assert!(!error.message.trim().is_empty(), "{:?}", error);
                    prop_assert!(error.line <= lines, "{:?} of {} lines", error, lines);
                }
            }
        }
    }
}

const BACKEND_VALID: &[&str] = &[
    r#"{"ip": "10.1.0.4", "weight": 1}"#,
    r#"{"ip": "[2001:db8::4]"}"#,
    r#"{"weight": 2, "drain": false}"#,
    r#"{"drain": true}"#,
];

const SERVICE_VALID: &[&str] = &[
    r#"{"name": "api", "vip": "192.0.2.11", "protocol": "tcp", "port": 80, "backends": ["10.2.0.5", "10.2.0.6:2"], "table_size": 1009, "hash": "5-tuple"}"#,
    r#"{"name": "dns", "vip": "2001:db8::53", "protocol": 17, "backends": "2001:db8::1;[2001:db8::2]:3", "health": "tcp:53", "hash": "source"}"#,
];

fn bodies(valid: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => json_object(WORDS).prop_map(String::into_bytes),
        1 => json_text(WORDS).prop_map(String::into_bytes),
        1 => mutated(valid, WORDS),
        3 => mutated_document(Syntax::Json, valid, WORDS).prop_map(String::into_bytes),
        1 => any::<Vec<u8>>(),
    ]
}

#[test]
fn api_bodies_are_taken_or_refused_with_a_reason_and_never_a_server_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let routes = [
        ("POST", "/backends", BACKEND_VALID),
        ("PATCH", "/backends/10.1.0.1", BACKEND_VALID),
        ("POST", "/services/web/backends", BACKEND_VALID),
        ("POST", "/services", SERVICE_VALID),
    ];
    for (method, path, valid) in routes {
        proptest!(config(400), |(body in bodies(valid))| {
            let (fault, after) = runtime.block_on(async {
                let api = fresh_api().await;
                let (status, answer) = send(&api, method, path, body).await;
                let fault = fault_in_answer(status, &answer);
                (fault, send(&api, "GET", "/services", Vec::new()).await)
            });
            prop_assert_eq!(fault, None);
            prop_assert_eq!(after.0, StatusCode::OK, "{}", after.1);
        });
    }
}
