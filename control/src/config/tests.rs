//! The options as clap sees them: flags and environment variables reach
//! `BalancerArgs`, defaults apply, and bad values exit with code 2 and our
//! message.

use std::net::IpAddr;
use std::process::Command;

use clap::{CommandFactory, Parser};

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    balancer: BalancerArgs,
}

fn parse(args: &[&str]) -> Result<BalancerArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("rusty_rail").chain(args.iter().copied()))
        .map(|cli| cli.balancer)
}

#[test]
fn the_command_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_option_has_an_rr_variable_and_help() {
    let command = Cli::command();
    let options: Vec<_> = command
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "help")
        .collect();
    assert_eq!(options.len(), 28);
    for arg in options {
        let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
        assert!(env.starts_with("RR_"), "{:?} has env {env:?}", arg.get_id());
        assert!(arg.get_help().is_some(), "{:?} has no help", arg.get_id());
    }
}

#[test]
fn every_setting_names_the_variable_its_option_reads() {
    let command = Cli::command();
    let envs: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    for setting in [
        Setting::TargetIps,
        Setting::LbIp,
        Setting::LbIpv6,
        Setting::LbMac,
        Setting::NexthopMac,
        Setting::BackendMacs,
        Setting::Vips,
        Setting::Seed,
        Setting::TableSize,
        Setting::ConntrackCapacity,
        Setting::TcpTimeout,
        Setting::UdpTimeout,
        Setting::MaxNewFlows,
        Setting::FragmentHold,
        Setting::FragmentHoldCapacity,
        Setting::Mtu,
        Setting::Health,
        Setting::HealthInterval,
        Setting::HealthTimeout,
        Setting::HealthRise,
        Setting::HealthFall,
        Setting::Api,
    ] {
        assert!(envs.iter().any(|e| e == setting.env()), "{}", setting.env());
    }
}

#[test]
fn defaults_apply_when_only_targets_are_given() {
    let args = parse(&["--target-ips", "10.1.0.1;10.1.0.2:3"]).unwrap();
    assert_eq!(
        args.target_ips.as_slice(),
        [
            TargetSpec {
                addr: [10, 1, 0, 1].into(),
                weight: 1
            },
            TargetSpec {
                addr: [10, 1, 0, 2].into(),
                weight: 3
            },
        ]
    );
    assert_eq!(args.lb_ip, None);
    assert_eq!(args.lb_ipv6, None);
    assert_eq!(args.lb_mac, MacAddr([2, 0, 0, 0, 0, 1]));
    assert_eq!(args.nexthop_mac, MacAddr([2, 0, 0, 0, 0, 2]));
    assert_eq!(args.backend_macs, BackendMacs::default());
    assert_eq!(args.vips, Vips::default());
    assert_eq!(args.seed, DEFAULT_SEED);
    assert_eq!(args.table_size, 65_537);
    assert_eq!(args.conntrack_capacity, 1_048_576);
    assert_eq!(args.tcp_timeout, Duration::from_secs(300));
    assert_eq!(args.udp_timeout, Duration::from_secs(30));
    assert_eq!(args.max_new_flows_per_sec, 1_000_000);
    assert_eq!(args.fragment_hold, Duration::from_millis(100));
    assert_eq!(args.fragment_hold_capacity, 64);
    assert_eq!(args.mtu, 1500);
    assert_eq!(args.health, HealthCheck::None);
    assert_eq!(args.health_interval, Duration::from_secs(1));
    assert_eq!(args.health_timeout, Duration::from_secs(1));
    assert_eq!((args.health_rise, args.health_fall), (2, 3));
    assert_eq!(args.api, ApiListen(Some("127.0.0.1:9700".parse().unwrap())));
    args.validate().unwrap();
}

#[test]
fn every_flag_reaches_the_struct() {
    let args = parse(&[
        "--target-ips=10.1.0.1:0,10.1.0.2",
        "--lb-ip=192.0.2.10",
        "--lb-ipv6=2001:db8::10",
        "--lb-mac=02:aa:00:00:00:01",
        "--nexthop-mac=02:bb:00:00:00:02",
        "--backend-macs=10.1.0.2=02:cc:00:00:00:03",
        "--vips=192.0.2.80;2001:db8::80",
        "--seed=0x10",
        "--table-size=251",
        "--conntrack-capacity=1000",
        "--tcp-timeout=10m",
        "--udp-timeout=45",
        "--max-new-flows-per-sec=500",
        "--fragment-hold=250ms",
        "--fragment-hold-capacity=8",
        "--mtu=9000",
    ])
    .unwrap();
    assert_eq!(args.target_ips.as_slice()[0].weight, 0);
    assert_eq!(args.lb_ip, Some(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(args.lb_ipv6, Some("2001:db8::10".parse().unwrap()));
    assert_eq!(args.lb_mac, MacAddr([2, 0xAA, 0, 0, 0, 1]));
    assert_eq!(
        args.backend_mac([10, 1, 0, 1].into()),
        MacAddr([2, 0xBB, 0, 0, 0, 2])
    );
    assert_eq!(
        args.backend_mac([10, 1, 0, 2].into()),
        MacAddr([2, 0xCC, 0, 0, 0, 3])
    );
    assert_eq!(
        args.vips.as_slice(),
        [
            "192.0.2.80".parse::<IpAddr>().unwrap(),
            "2001:db8::80".parse().unwrap()
        ]
    );
    assert_eq!(args.seed, 16);
    assert_eq!(args.table_size, 251);
    assert_eq!(args.conntrack_capacity, 1000);
    assert_eq!(args.tcp_timeout, Duration::from_secs(600));
    assert_eq!(args.udp_timeout, Duration::from_secs(45));
    assert_eq!(args.max_new_flows_per_sec, 500);
    assert_eq!(args.fragment_hold, Duration::from_millis(250));
    assert_eq!(args.fragment_hold_capacity, 8);
    assert_eq!(args.mtu, 9000);
}

#[test]
fn missing_targets_are_a_usage_error() {
    let err = parse(&[]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn a_bad_value_exits_with_code_2_and_our_message() {
    let err = parse(&["--target-ips", "10.1.0.1:x"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    assert_eq!(err.exit_code(), 2);
    let rendered = err.to_string();
    assert!(
        rendered
            .contains("RR_TARGET_IPS: \"10.1.0.1:x\" has weight \"x\"; expected ip or ip:weight"),
        "{rendered}"
    );

    let err = parse(&["--target-ips", "10.1.0.1", "--table-size", "65536"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("65521 below, 65537 above"),
        "{err}"
    );
}

#[test]
fn a_table_smaller_than_the_backend_list_is_refused() {
    let args = parse(&[
        "--target-ips",
        "10.0.0.1;10.0.0.2;10.0.0.3;10.0.0.4",
        "--table-size",
        "3",
    ])
    .unwrap();
    assert_eq!(
        args.validate().unwrap_err().to_string(),
        "RR_TABLE_SIZE: 3 is smaller than the 4 backends in RR_TARGET_IPS; expected a prime at \
         least as large (100 times the backends or more keeps the spread even)"
    );
}

#[test]
fn the_default_seed_text_is_the_documented_constant() {
    let command = Cli::command();
    let seed = command
        .get_arguments()
        .find(|a| a.get_id() == "seed")
        .unwrap();
    let default = seed.get_default_values()[0].to_str().unwrap();
    assert_eq!(parse_seed(default).unwrap(), DEFAULT_SEED);
    assert_eq!(&DEFAULT_SEED.to_be_bytes(), b"RustyRai");
}

/// Set in the child process that `environment_variables_reach_the_struct`
/// starts, where the environment is private to one test.
const CHILD_MARKER: &str = "RR_CONFIG_TEST_CHILD";

#[test]
fn environment_variables_reach_the_struct() {
    let name = "config::tests::environment_variables_reach_the_struct";
    if std::env::var_os(CHILD_MARKER).is_some() {
        // In the child: no flags, everything from the environment.
        let args = parse(&[]).unwrap();
        assert_eq!(args.target_ips.as_slice().len(), 2);
        assert_eq!(args.target_ips.as_slice()[1].weight, 7);
        assert_eq!(args.lb_ip, Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(args.seed, 0xABC);
        assert_eq!(args.table_size, 251);
        assert_eq!(args.tcp_timeout, Duration::from_secs(120));
        assert_eq!(args.mtu, 1400);
        assert_eq!(args.vips.as_slice().len(), 1);
        assert_eq!(
            args.health,
            HealthCheck::Http {
                port: 8080,
                path: "/ready".into()
            }
        );
        assert_eq!(args.health_interval, Duration::from_millis(200));
        assert_eq!(args.health_timeout, Duration::from_millis(100));
        assert_eq!((args.health_rise, args.health_fall), (1, 5));
        assert_eq!(args.api, ApiListen(None));
        // A flag still wins over its variable.
        assert_eq!(parse(&["--mtu", "1450"]).unwrap().mtu, 1450);
        return;
    }
    // The parent: rerun just this test in a child with RR_* set, so no other
    // test (running on another thread) sees these variables; the child's
    // environment is cleared so that none of the caller's RR_* leak in.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD_MARKER, "1")
        .env("RR_TARGET_IPS", "10.1.0.1;10.1.0.2:7")
        .env("RR_LB_IP", "192.0.2.10")
        .env("RR_SEED", "0xabc")
        .env("RR_TABLE_SIZE", "251")
        .env("RR_TCP_TIMEOUT", "2m")
        .env("RR_MTU", "1400")
        .env("RR_VIPS", "192.0.2.80")
        .env("RR_HEALTH", "http:8080/ready")
        .env("RR_HEALTH_INTERVAL", "200ms")
        .env("RR_HEALTH_TIMEOUT", "100ms")
        .env("RR_HEALTH_RISE", "1")
        .env("RR_HEALTH_FALL", "5")
        .env("RR_API", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test:\n{stdout}"
    );
}

#[test]
fn a_bad_environment_variable_is_reported_like_a_bad_flag() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("RR_MTU: \"huge\" is not a whole number"),
            "{err}"
        );
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "config::tests::a_bad_environment_variable_is_reported_like_a_bad_flag",
            "--exact",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD_MARKER, "1")
        .env("RR_TARGET_IPS", "10.1.0.1")
        .env("RR_MTU", "huge")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed:\n{stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test:\n{stdout}"
    );
}
