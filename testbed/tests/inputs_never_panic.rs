//! Every parser of text the testbed takes from a person or a client answers
//! any input with a value or an error that says something, never a panic:
//! netem specs, the fault proxy's proxy and toxic bodies (through the checks
//! the API runs before it creates anything), topology files, experiment
//! files, partition specs and the tunnel's remotes file. Each property runs
//! arbitrary text and valid inputs with random edits (`fuzz/hostile_inputs.rs`);
//! the fuzz targets in `fuzz/` explore the same entry points with coverage.

#[path = "../../fuzz/hostile_inputs.rs"]
mod hostile_inputs;
#[path = "../../fuzz/proxy_inputs.rs"]
mod proxy_inputs;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use hostile_inputs::{
    any_text, json_object, json_text, mutated, mutated_document, mutated_text, Syntax,
};
use proptest::prelude::*;
use proxy_inputs::{create_and_update_toxic, create_proxy, update_proxy};
use testbed::experiment::file::ExperimentFile;
use testbed::impair::{ImpairedLink, NetemSpec};
use testbed::lab::topology::plan::TopologyPlan;
use testbed::partition::grudge::Grudge;
use testbed::partition::spec::PartitionSpec;
use testbed::tunnel::ecmp_group;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// An error's text, which must say something.
fn says(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    assert!(!text.trim().is_empty(), "an error with no text");
    text
}

const NETEM_WORDS: &[&str] = &[
    "delay",
    "loss",
    "drop",
    "random",
    "state",
    "gemodel",
    "duplicate",
    "corrupt",
    "reorder",
    "gap",
    "rate",
    "limit",
    "seed",
    "distribution",
    "normal",
    "pareto",
    "paretonormal",
    "uniform",
    "slot",
    "ecn",
    "10ms",
    "1.5s",
    "100us",
    "3600s",
    "1%",
    "100%",
    "101%",
    "25",
    "10mbit",
    "1gbit",
    "500kbps",
    "0bit",
    "-20",
];

const NETEM_VALID: &[&str] = &[
    "delay 20ms 2ms distribution normal loss random 0.5%",
    "delay 100ms 10ms 25% reorder 25% 50% gap 5",
    "loss state 1% 10% 70% 0.1% 1%",
    "loss gemodel 1% 10% 70% 0.1%",
    "duplicate 1% 10% corrupt 0.1% limit 100 seed 7",
    "rate 10mbit 20 100 -4 delay 5ms",
    "delay 1s 500ms 50% distribution pareto",
];

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn netem_specs_parse_or_name_the_word_at_fault(
        text in prop_oneof![any_text(NETEM_WORDS), mutated_text(NETEM_VALID, NETEM_WORDS)],
        seed in any::<u64>(),
        lengths in prop::collection::vec(0..70_000usize, 0..32),
    ) {
        match NetemSpec::parse(&text) {
            // An accepted spec drives the link model through packets of
            // every size, however extreme its numbers.
            Ok(spec) => {
                let mut link = ImpairedLink::new(&spec, seed);
                for (i, len) in lengths.into_iter().enumerate() {
                    let _ = link.offer(Duration::from_micros(i as u64 * 100), len);
                }
            }
            Err(error) => {
                says(&error);
                prop_assert!(!error.expected.is_empty(), "{error}");
                prop_assert!(error.position >= 1, "{error}");
            }
        }
    }
}

const PARTITION_WORDS: &[&str] = &[
    "halves",
    "random-halves",
    "one",
    "bridge",
    "majorities-ring",
    "interval",
    "duration",
    "10s",
    "500ms",
    "0.5",
    "0.25",
    "1",
    "a",
    "b",
    "c",
    "0",
    "1",
    "2",
    "7",
    "->",
    "|",
    ",",
    ";",
];

const PARTITION_VALID: &[&str] = &[
    "halves",
    "a,b|c,d",
    "0->1; 2->3",
    "0.5 0.5 interval 10s duration 5s",
    "0.25 0.75",
    "a|b,c|d",
];

proptest! {
    #![proptest_config(config(2000))]

    /// A spec that parses also prints back to itself and makes a grudge (or
    /// a named refusal) over labs of any size.
    #[test]
    fn partition_specs_parse_print_back_and_make_grudges_or_say_why_not(
        text in prop_oneof![
            any_text(PARTITION_WORDS),
            mutated_text(PARTITION_VALID, PARTITION_WORDS),
            (any::<u32>(), any::<u32>()).prop_map(|(interval, duration)| {
                format!("0.5 0.5 interval {interval}ms duration {duration}ms")
            }),
        ],
        nodes in 0..8usize,
        seed in any::<u64>(),
    ) {
        match PartitionSpec::parse(&text) {
            Ok(spec) => {
                prop_assert_eq!(PartitionSpec::parse(&spec.to_string()), Ok(spec.clone()));
                let names: Vec<String> = ["a", "b", "c", "d", "e", "f", "g", "h"][..nodes]
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect();
                match Grudge::from_spec(&spec, &names, seed) {
                    Ok(grudge) => prop_assert_eq!(grudge.nodes(), nodes),
                    Err(error) => { says(&error); }
                }
            }
            Err(error) => { says(&error); }
        }
    }
}

const REMOTES_VALID: &[&str] = &[
    "10.0.0.3\n# lb1 withdrawn\n10.0.0.2\n",
    "10.0.0.1 # the only one\n10.0.0.1\n",
];

proptest! {
    #![proptest_config(config(2000))]

    /// The positions a remotes file gives are known balancers', in order,
    /// each once.
    #[test]
    fn remotes_files_give_known_balancers_or_say_why_not(
        text in prop_oneof![
            any_text(&["10.0.0.1", "10.0.0.2", "10.0.0.9", "#", "\n", "\r\n"]),
            mutated_text(REMOTES_VALID, &["10.0.0.1", "10.0.0.2", "#", "\n"]),
        ]
    ) {
        let known = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
        match ecmp_group::parse(&text, &known) {
            Ok(active) => {
                prop_assert!(!active.is_empty());
                prop_assert!(active.windows(2).all(|w| w[0] < w[1]), "{active:?}");
                prop_assert!(active.iter().all(|&i| i < known.len()), "{active:?}");
            }
            Err(error) => { says(&error); }
        }
    }
}

const TOPOLOGY_WORDS: &[&str] = &[
    "prefix",
    "seed",
    "[[network]]",
    "[[host]]",
    "name",
    "cidr",
    "address",
    "bridge",
    "forward",
    "links",
    "routes",
    "addresses",
    "commands",
    "network",
    "tbf",
    "netem",
    "netem_out",
    "netem_in",
    "out",
    "in",
    "bgp",
    "as",
    "peers",
    "hold",
    "bfd",
    "default via 10.0.0.1",
    "10.9.0.0/16 via 10.0.0.1",
    "10.9.9.9/32 dev lo",
    "10.0.0.0/8",
    "10.0.0.0/31",
    "0.0.0.0/0",
    "10.0.0.1",
    "10.0.0.1/32",
    "10.205.2.1",
    "delay 10ms",
    "rate 1mbit burst 32kbit latency 400ms",
    "10.0.0.2:65001",
    "router",
    "server1",
    "front",
    "back",
    "wan",
    "4294967295",
];

const TOPOLOGY_VALID: &[&str] = &[
    include_str!("../examples/lb-lab.toml"),
    include_str!("../examples/impaired-wan.toml"),
    include_str!("../examples/lb-demo.toml"),
    r#"prefix = "t-"
seed = 3
[[network]]
name = "n"
cidr = "10.0.0.0/24"
address = "10.0.0.254"
bridge = true
[[network]]
name = "p"
cidr = "10.0.1.0/30"
[[host]]
name = "r"
forward = true
links = [ { network = "n", address = "10.0.0.1", tbf = "rate 1mbit burst 32kbit latency 400ms" },
          { network = "p", address = "10.0.1.1", netem_in = "loss 1%", netem_out = "delay 1ms", seed = 9 } ]
bgp = { as = 65000, peers = ["10.0.0.2:65001"], hold = 3, bfd = true }
[[host]]
name = "a"
links = [ { network = "n", address = "10.0.0.2" } ]
routes = [ "default via 10.0.0.1", "10.9.0.0/16 via 10.0.0.1" ]
addresses = [ "10.9.9.9/32 dev lo" ]
commands = [ "sleep 1" ]
[[host]]
name = "b"
links = [ { network = "p", address = "10.0.1.2", netem = { out = "delay 5ms", in = "rate 10mbit" } } ]
"#,
];

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn topology_files_plan_or_point_at_the_fault(
        text in prop_oneof![
            1 => any_text(TOPOLOGY_WORDS),
            2 => mutated_text(TOPOLOGY_VALID, TOPOLOGY_WORDS),
            4 => mutated_document(Syntax::Toml, TOPOLOGY_VALID, TOPOLOGY_WORDS),
        ],
        prefix in prop::option::of(prop_oneof![Just("t-".to_owned()), any::<String>()]),
    ) {
        match TopologyPlan::from_toml(&text, prefix.as_deref()) {
            Ok(plan) => {
                let _ = plan.emulated_links();
            }
            Err(error) => {
                says(&error);
            }
        }
    }
}

const EXPERIMENT_WORDS: &[&str] = &[
    "name",
    "prefix",
    "subnet",
    "duration",
    "repeat",
    "seed",
    "[[system]]",
    "[[topology]]",
    "[[workload]]",
    "[[fault]]",
    "kind",
    "mode",
    "settings",
    "clients",
    "balancers",
    "servers",
    "rate",
    "hold",
    "interval",
    "target",
    "recover",
    "withdraw",
    "at",
    "cut",
    "attributes",
    "rusty_rail",
    "haproxy",
    "bgp",
    "vip",
    "gre",
    "balancer_kill",
    "backend_kill",
    "partition",
    "none",
    "toxic",
    "latency",
    "0s",
    "1h",
    "99999999999d",
    "10.0.0.0/8",
    "10.164.0.0/16",
    "c1",
    "lb1",
    "s1",
    "r",
    "0.667",
    "1.5",
];

const EXPERIMENT_VALID: &[&str] = &[
    include_str!("../examples/experiments/failover.toml"),
    include_str!("../examples/experiments/bgp.toml"),
    include_str!("../examples/experiments/iterations.toml"),
];

/// Where experiment files look for topology files: a folder that does not
/// exist, so a mutated `file = "..."` reads nothing (an absolute path could
/// name a device that never ends, which is the operator's own choice).
fn no_folder() -> &'static Path {
    Path::new("/nonexistent/rusty-rail-inputs-never-panic")
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn experiment_files_parse_or_name_the_field(
        text in prop_oneof![
            1 => any_text(EXPERIMENT_WORDS),
            2 => mutated_text(EXPERIMENT_VALID, EXPERIMENT_WORDS),
            4 => mutated_document(Syntax::Toml, EXPERIMENT_VALID, EXPERIMENT_WORDS),
        ]
    ) {
        prop_assume!(!text.contains("file"));
        if let Err(error) = ExperimentFile::parse_in(&text, no_folder()) {
            says(&error);
        }
    }
}

/// The fields and values of the fault proxy's bodies.
const PROXY_WORDS: &[&str] = &[
    "name",
    "listen",
    "upstream",
    "enabled",
    "protocol",
    "toxics",
    "type",
    "stream",
    "toxicity",
    "attributes",
    "clients",
    "duration",
    "tcp",
    "udp",
    "upstream",
    "downstream",
    "127.0.0.1:0",
    "localhost:8080",
    ":0",
    "[::1]:0",
    "redis:6379",
    "10.0.0.0/24",
    "::1/128",
    "30s",
    "500ms",
    "8d",
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "bytes",
    "average_size",
    "size_variation",
    "probability",
    "bandwidth",
    "loss",
];

const PROXY_VALID: &[&str] = &[
    r#"{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": false}"#,
    r#"{"name": "u", "listen": ":0", "upstream": "[::1]:53", "protocol": "udp", "enabled": false,
        "toxics": [{"type": "loss", "attributes": {"probability": 0.5}},
                   {"type": "reorder", "attributes": {"probability": 0.1, "delay": 5}}]}"#,
];

const TOXIC_VALID: &[&str] = &[
    r#"{"name": "lag", "type": "latency", "stream": "upstream", "toxicity": 0.5, "attributes": {"latency": 100, "jitter": 10}}"#,
    r#"{"type": "slicer", "attributes": {"average_size": 64, "size_variation": 32, "delay": 10}, "clients": ["10.0.0.0/24", "::1"], "duration": "30s"}"#,
    r#"{"type": "bandwidth", "stream": "Downstream", "attributes": {"rate": 100}}"#,
    r#"{"type": "limit_data", "attributes": {"bytes": 1000}}"#,
    r#"{"type": "timeout", "attributes": {"timeout": 0}}"#,
    r#"{"type": "accept_delay", "attributes": {"delay": 5}, "stream": "upstream"}"#,
    r#"{"type": "reorder", "attributes": {"probability": 0.5, "delay": 5}, "toxicity": 1}"#,
    r#"{"type": "duplicate", "attributes": {"probability": 0.1}, "name": "dup"}"#,
    r#"{"type": "reset_peer", "attributes": {"timeout": 100}}"#,
    r#"{"type": "blackhole", "attributes": {}}"#,
];

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn proxy_bodies_are_created_or_refused_with_a_reason(
        body in prop_oneof![
            1 => json_object(PROXY_WORDS).prop_map(String::into_bytes),
            1 => json_text(PROXY_WORDS).prop_map(String::into_bytes),
            1 => mutated(PROXY_VALID, PROXY_WORDS),
            3 => mutated_document(Syntax::Json, PROXY_VALID, PROXY_WORDS).prop_map(String::into_bytes),
            1 => any::<Vec<u8>>(),
        ]
    ) {
        create_proxy(&body);
        update_proxy(&body);
    }

    #[test]
    fn toxic_bodies_are_created_updated_or_refused_with_a_reason(
        body in prop_oneof![
            1 => json_object(PROXY_WORDS).prop_map(String::into_bytes),
            1 => mutated(TOXIC_VALID, PROXY_WORDS),
            3 => mutated_document(Syntax::Json, TOXIC_VALID, PROXY_WORDS).prop_map(String::into_bytes),
            1 => any::<Vec<u8>>(),
        ]
    ) {
        create_and_update_toxic(&body);
    }
}
