//! The topology file's checks: what is accepted, what each refusal says and
//! where it points. No root needed.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::plan::{Medium, Peer, TopologyPlan};
use super::TopologyError;

const TWO_SUBNETS: &str = r#"
prefix = "t-"

[[network]]
name = "front"
cidr = "10.205.1.0/24"

[[network]]
name = "back"
cidr = "10.205.2.0/24"

[[host]]
name = "router"
forward = true
links = [
  { network = "front", address = "10.205.1.1", tbf = "rate 100mbit burst 32kb latency 50ms" },
  { network = "back", address = "10.205.2.1" },
]

[[host]]
name = "client"
links = [ { network = "front", address = "10.205.1.2" } ]
routes = [ "default via 10.205.1.1" ]

[[host]]
name = "server"
links = [ { network = "back", address = "10.205.2.2" } ]
routes = [ "default via 10.205.2.1" ]
addresses = [ "10.205.9.9/32 dev lo" ]
commands = [ "sleep 1000" ]
"#;

fn refused(text: &str) -> TopologyError {
    TopologyPlan::from_toml(text, None).unwrap_err()
}

/// `TWO_SUBNETS` with `from` replaced by `to` (which must be there).
fn changed(from: &str, to: &str) -> String {
    assert!(TWO_SUBNETS.contains(from), "{from}");
    TWO_SUBNETS.replacen(from, to, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_two_subnet_topology_gets_namespaces_interfaces_and_bridges_named_from_the_prefix() {
    let plan = TopologyPlan::from_toml(TWO_SUBNETS, None).unwrap();
    assert_eq!(plan.prefix, "t-");
    let router = plan.host("router").unwrap();
    assert_eq!(router.namespace, "t-router");
    assert!(router.forward);
    let interfaces: Vec<_> = router
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.network.as_str(), i.address, i.prefix_len))
        .collect();
    assert_eq!(
        interfaces,
        [
            ("eth0", "front", Ipv4Addr::new(10, 205, 1, 1), 24),
            ("eth1", "back", Ipv4Addr::new(10, 205, 2, 1), 24),
        ]
    );
    assert_eq!(
        router.interfaces[0].tbf.as_ref().unwrap().to_string(),
        "rate 100mbit burst 32kb latency 50ms"
    );
    // Two members each: point-to-point veth pairs, no bridge.
    assert_eq!(plan.bridges().count(), 0);
    assert_eq!(
        router.interfaces[0].peer,
        Peer::Host {
            host: "client".into(),
            interface: "eth0".into()
        }
    );
    let server = plan.host("server").unwrap();
    assert_eq!(server.routes[0].to_string(), "default via 10.205.2.1");
    assert_eq!(server.addresses[0].to_string(), "10.205.9.9/32 dev lo");
    assert_eq!(server.commands, ["sleep 1000"]);
}

#[test]
fn a_network_of_three_members_is_a_bridge_whose_ends_carry_the_prefix() {
    let text = format!(
        "{TWO_SUBNETS}\n[[host]]\nname = \"other\"\n\
         links = [ {{ network = \"back\", address = \"10.205.2.3\" }} ]\n"
    );
    let plan = TopologyPlan::from_toml(&text, None).unwrap();
    assert_eq!(plan.bridges().collect::<Vec<_>>(), ["t-back"]);
    assert_eq!(
        plan.host("other").unwrap().interfaces[0].peer,
        Peer::Bridge {
            link: "t-3.0".into()
        }
    );
}

#[test]
fn a_network_asked_to_be_a_bridge_or_holding_the_machine_is_a_bridge_with_two_members() {
    let text = changed(
        "cidr = \"10.205.1.0/24\"",
        "cidr = \"10.205.1.0/24\"\nbridge = true",
    );
    let plan = TopologyPlan::from_toml(&text, None).unwrap();
    assert!(matches!(
        plan.network("front").unwrap().medium,
        Medium::Bridge { .. }
    ));
    let text = changed(
        "cidr = \"10.205.2.0/24\"",
        "cidr = \"10.205.2.0/24\"\naddress = \"10.205.2.254\"",
    );
    let plan = TopologyPlan::from_toml(&text, None).unwrap();
    assert_eq!(
        plan.network("back").unwrap().medium,
        Medium::Bridge {
            bridge: "t-back".into(),
            address: Some(Ipv4Addr::new(10, 205, 2, 254))
        }
    );
}

#[test]
fn the_prefix_option_overrides_the_file_and_a_missing_prefix_is_refused() {
    let plan = TopologyPlan::from_toml(TWO_SUBNETS, Some("o-")).unwrap();
    assert_eq!(plan.host("client").unwrap().namespace, "o-client");
    let error = refused(&changed("prefix = \"t-\"", ""));
    assert!(error.message.contains("missing"), "{error}");
    let error = TopologyPlan::from_toml(TWO_SUBNETS, Some("Bad")).unwrap_err();
    assert_eq!(error.field, "-p");
    assert!(error.message.contains("\"Bad\" is not usable"), "{error}");
}

#[test]
fn an_unknown_network_is_refused_at_its_line_with_the_known_names() {
    let text = changed(
        "{ network = \"back\", address = \"10.205.2.2\" }",
        "{ network = \"bak\", address = \"10.205.2.2\" }",
    );
    let error = refused(&text);
    assert_eq!(error.line, line_of(&text, "\"bak\""));
    assert_eq!(error.field, "host \"server\" links[0].network");
    assert!(
        error
            .message
            .contains("unknown network \"bak\"; the [[network]] names are: front, back"),
        "{error}"
    );
    assert!(error
        .to_string()
        .starts_with(&format!("line {}, column", error.line)));
}

#[test]
fn an_address_outside_its_network_is_refused_with_the_range_accepted() {
    let text = changed("address = \"10.205.1.2\"", "address = \"10.205.3.2\"");
    let error = refused(&text);
    assert_eq!(error.line, line_of(&text, "10.205.3.2"));
    assert!(
        error.message.contains(
            "10.205.3.2 is outside network \"front\" (10.205.1.0/24); expected one of 10.205.1.1 to 10.205.1.254"
        ),
        "{error}"
    );
    // The network and broadcast addresses are not host addresses either.
    assert!(refused(&changed(
        "address = \"10.205.1.2\"",
        "address = \"10.205.1.255\""
    ))
    .message
    .contains("outside"));
    assert!(
        refused(&changed("address = \"10.205.1.2\"", "address = \"ten\""))
            .message
            .contains("not an IPv4 address")
    );
}

#[test]
fn a_link_address_may_repeat_its_networks_prefix_length_but_not_another() {
    let plan =
        TopologyPlan::from_toml(&changed("\"10.205.1.2\"", "\"10.205.1.2/24\""), None).unwrap();
    let client = &plan.host("client").unwrap().interfaces[0];
    assert_eq!(
        (client.address, client.prefix_len),
        (Ipv4Addr::new(10, 205, 1, 2), 24)
    );
    let error = refused(&changed("\"10.205.1.2\"", "\"10.205.1.2/16\""));
    assert!(
        error
            .message
            .contains("has another prefix length than network \"front\" (10.205.1.0/24)"),
        "{error}"
    );
}

#[test]
fn duplicate_addresses_hosts_and_networks_are_refused() {
    let error = refused(&changed(
        "address = \"10.205.1.2\"",
        "address = \"10.205.1.1\"",
    ));
    assert!(
        error
            .message
            .contains("10.205.1.1 is already the address of host \"router\""),
        "{error}"
    );
    let error = refused(&changed("name = \"client\"", "name = \"router\""));
    assert!(
        error.message.contains("\"router\" is given twice"),
        "{error}"
    );
    let error = refused(&changed("name = \"back\"", "name = \"front\""));
    assert!(
        error.message.contains("\"front\" is given twice"),
        "{error}"
    );
    let error = refused(&changed(
        "addresses = [ \"10.205.9.9/32 dev lo\" ]",
        "addresses = [ \"10.205.2.1\" ]",
    ));
    assert!(
        error
            .message
            .contains("already the link address of host \"router\""),
        "{error}"
    );
}

#[test]
fn a_shared_extra_address_such_as_a_vip_is_accepted_on_several_hosts() {
    let text = changed(
        "routes = [ \"default via 10.205.1.1\" ]",
        "routes = [ \"default via 10.205.1.1\" ]\naddresses = [ \"10.205.9.9\" ]",
    );
    assert!(TopologyPlan::from_toml(&text, None).is_ok());
}

#[test]
fn bad_routes_are_refused_with_the_reason_and_the_accepted_forms() {
    for (route, message) in [
        ("default via 10.205.7.1", "gateway 10.205.7.1 is not on a network of host \"server\""),
        ("default via 10.205.2.2", "gateway 10.205.2.2 is host \"server\"'s own address on eth0"),
        ("default dev eth5", "dev \"eth5\" is not an interface of host \"server\"; its interfaces are eth0 (on back), lo"),
        ("default gw 10.205.2.1", "unknown word \"gw\""),
        ("10.205.2.0/24 dev eth0", "is network \"back\", which host \"server\" is on already"),
        ("10.205.0.0/15 via 10.205.2.1", "host bits set"),
    ] {
        let text = changed("\"default via 10.205.2.1\"", &format!("{route:?}"));
        let error = refused(&text);
        assert_eq!(error.field, "host \"server\" routes[0]", "{route}");
        assert_eq!(error.line, line_of(&text, route), "{route}");
        assert!(error.message.contains(message), "{route}: {error}");
    }
    let text = changed(
        "\"default via 10.205.2.1\"",
        "\"default via 10.205.2.1\", \"0.0.0.0/0 dev eth0\"",
    );
    assert!(refused(&text)
        .message
        .contains("a route to 0.0.0.0/0 is given twice"));
    assert!(
        refused(&changed("\"default via 10.205.2.1\"", "\"default gw x\""))
            .message
            .contains("accepted: \"default via")
    );
}

#[test]
fn bad_names_are_refused_with_what_is_accepted() {
    let error = refused(&changed("name = \"client\"", "name = \"Client_1\""));
    assert!(
        error.message.contains("\"Client_1\" is not usable; expected 1 to 32 characters from a-z, 0-9 and '-', starting with a letter"),
        "{error}"
    );
    // t- + 14 characters is 16: one more than an interface name holds.
    let error = refused(&changed("name = \"front\"", "name = \"abcdefghijklmn\""));
    assert!(
        error
            .message
            .contains("at most 13 characters with prefix \"t-\""),
        "{error}"
    );
    assert!(error.message.contains("15 characters"), "{error}");
}

#[test]
fn bad_cidrs_and_overlapping_networks_are_refused() {
    let error = refused(&changed("\"10.205.2.0/24\"", "\"10.205.2.1/24\""));
    assert!(
        error
            .message
            .contains("expected a subnet such as 10.0.1.0/24"),
        "{error}"
    );
    let error = refused(&changed("\"10.205.2.0/24\"", "\"10.205.0.0/16\""));
    assert!(
        error
            .message
            .contains("overlaps network \"front\" (10.205.1.0/24)"),
        "{error}"
    );
}

#[test]
fn bad_impairments_are_refused_and_netem_is_kept_as_written() {
    let error = refused(&changed(
        "rate 100mbit burst 32kb latency 50ms",
        "rate 100mbit latency 50ms",
    ));
    assert_eq!(error.field, "host \"router\" links[0].tbf");
    assert!(
        error
            .message
            .starts_with("\"rate 100mbit latency 50ms\": burst is missing; expected \"rate R"),
        "{error}"
    );
    let text = changed(
        "address = \"10.205.2.1\" }",
        "address = \"10.205.2.1\", netem = \"delay  10ms loss 1%\" }",
    );
    let plan = TopologyPlan::from_toml(&text, None).unwrap();
    assert_eq!(
        plan.host("router").unwrap().interfaces[1]
            .netem
            .egress
            .as_deref(),
        Some("delay 10ms loss 1%")
    );
    let error = refused(&changed(
        "address = \"10.205.2.1\" }",
        "address = \"10.205.2.1\", netem = \"delay often\" }",
    ));
    assert_eq!(error.field, "host \"router\" links[1].netem");
    assert!(error.message.contains("\"often\""), "{error}");
}

/// The router's link to "back" with `netem` written as `fields`.
fn back_link_netem(fields: &str) -> String {
    changed(
        "address = \"10.205.2.1\" }",
        &format!("address = \"10.205.2.1\", {fields} }}"),
    )
}

#[test]
fn netem_means_what_the_host_sends_and_netem_in_what_it_receives() {
    let specs = |fields: &str| {
        let plan = TopologyPlan::from_toml(&back_link_netem(fields), None).unwrap();
        let specs = plan.host("router").unwrap().interfaces[1].netem.clone();
        (specs.egress, specs.ingress)
    };
    let spec = |text: &str| Some(text.to_owned());
    assert_eq!(specs("netem = \"delay 10ms\""), (spec("delay 10ms"), None));
    assert_eq!(
        specs("netem_out = \"delay 10ms\""),
        (spec("delay 10ms"), None)
    );
    assert_eq!(specs("netem_in = \"loss  1%\""), (None, spec("loss 1%")));
    assert_eq!(
        specs("netem = \"delay 10ms\", netem_in = \"loss 1%\""),
        (spec("delay 10ms"), spec("loss 1%"))
    );
    assert_eq!(
        specs("netem = { out = \"delay 10ms\", in = \"loss 1%\" }"),
        (spec("delay 10ms"), spec("loss 1%"))
    );
    assert_eq!(
        specs("netem = { in = \"loss 1%\" }"),
        (None, spec("loss 1%"))
    );
}

#[test]
fn a_direction_given_twice_or_a_bad_directed_spec_is_refused_at_its_field() {
    let error = refused(&back_link_netem(
        "netem = \"delay 10ms\", netem_out = \"delay 5ms\"",
    ));
    assert_eq!(error.field, "host \"router\" links[1].netem_out");
    assert!(error.message.contains("give it once"), "{error}");
    let error = refused(&back_link_netem(
        "netem = { in = \"loss 1%\" }, netem_in = \"loss 2%\"",
    ));
    assert_eq!(error.field, "host \"router\" links[1].netem_in");
    let error = refused(&back_link_netem("netem_in = \"loss lots\""));
    assert_eq!(error.field, "host \"router\" links[1].netem_in");
    assert!(error.message.contains("\"lots\""), "{error}");
    let error = refused(&back_link_netem("netem = { out = \"delay soon\" }"));
    assert_eq!(error.field, "host \"router\" links[1].netem");
    assert!(error.message.contains("\"soon\""), "{error}");
}

#[test]
fn an_ingress_only_link_gets_an_emulator_and_a_seed_too() {
    let plan = TopologyPlan::from_toml(&back_link_netem("netem_in = \"loss 1%\""), None).unwrap();
    let links = plan.emulated_links();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (
            links[0].specs.egress.as_deref(),
            links[0].specs.ingress.as_deref()
        ),
        (None, Some("loss 1%"))
    );
    assert_eq!(links[0].seed, 1);
}

#[test]
fn a_pair_with_a_netem_link_is_bridged_so_the_emulator_sits_before_the_bridge() {
    let text = changed(
        "address = \"10.205.2.1\" }",
        "address = \"10.205.2.1\", netem = \"delay 10ms\" }",
    );
    let plan = TopologyPlan::from_toml(&text, None).unwrap();
    assert_eq!(
        plan.network("back").unwrap().medium,
        Medium::Bridge {
            bridge: "t-back".into(),
            address: None
        }
    );
    assert_eq!(plan.network("front").unwrap().medium, Medium::PointToPoint);
    let links = plan.emulated_links();
    assert_eq!(links.len(), 1);
    let link = &links[0];
    assert_eq!(
        (
            link.namespace.as_str(),
            link.interface.as_str(),
            link.bridge.as_str(),
            link.link.as_str(),
            link.far.as_str(),
            link.near.as_str(),
            link.specs.egress.as_deref().unwrap(),
        ),
        (
            "t-router",
            "eth1",
            "t-back",
            "t-0.1",
            "t-m0.1",
            "t-n0.1",
            "delay 10ms"
        )
    );
}

#[test]
fn netem_links_are_seeded_by_their_own_seed_or_the_files_plus_their_position() {
    let both = changed(
        "address = \"10.205.2.1\" }",
        "address = \"10.205.2.1\", netem = \"loss 1%\" }",
    )
    .replacen(
        "links = [ { network = \"back\", address = \"10.205.2.2\" } ]",
        "links = [ { network = \"back\", address = \"10.205.2.2\", netem = \"loss 2%\" } ]",
        1,
    );
    let seeds = |text: &str| -> Vec<u64> {
        TopologyPlan::from_toml(text, None)
            .unwrap()
            .emulated_links()
            .iter()
            .map(|l| l.seed)
            .collect()
    };
    assert_eq!(seeds(&both), [1, 2]);
    assert_eq!(seeds(&format!("seed = 40\n{both}")), [40, 41]);
    let own = both.replacen("netem = \"loss 2%\"", "netem = \"loss 2%\", seed = 7", 1);
    assert_eq!(seeds(&format!("seed = 40\n{own}")), [40, 7]);
    let error = refused(&changed(
        "address = \"10.205.2.1\" }",
        "address = \"10.205.2.1\", seed = 3 }",
    ));
    assert_eq!(error.field, "host \"router\" links[1].seed");
    assert!(error.message.contains("without netem"), "{error}");
}

#[test]
fn a_netem_link_whose_emulator_end_would_not_fit_an_interface_name_is_refused() {
    // Host number 10000's link ends on the bridge as "abcdefg-10000.0" (15
    // characters, the most an interface name has); its emulator's end
    // "abcdefg-m10000.0" would be 16.
    let mut text = String::from(
        "prefix = \"abcdefg-\"\n[[network]]\nname = \"n\"\ncidr = \"10.205.0.0/16\"\n",
    );
    for n in 0..10_000 {
        let _ = writeln!(text, "[[host]]\nname = \"h{n}\"");
    }
    text.push_str(
        "[[host]]\nname = \"last\"\nlinks = [ { network = \"n\", address = \"10.205.0.1\" } ]\n",
    );
    assert!(TopologyPlan::from_toml(&text, None).is_ok());
    let impaired = text.replace(
        "\"10.205.0.1\" }",
        "\"10.205.0.1\", netem = \"delay 1ms\" }",
    );
    let error = refused(&impaired);
    assert_eq!(error.field, "host \"last\" links[0].netem");
    assert!(error.message.contains("\"abcdefg-m10000.0\""), "{error}");
}

#[test]
fn the_lb_lab_example_plans_clients_behind_a_forwarding_router() {
    let text = include_str!("../../../examples/lb-lab.toml");
    let plan = TopologyPlan::from_toml(text, None).unwrap();
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["router", "client1", "client2", "lb1", "lb2", "server1", "server2", "server3"]
    );
    assert!(plan.host("router").unwrap().forward);
    assert_eq!(plan.bridges().collect::<Vec<_>>(), ["lb-front", "lb-back"]);
}

#[test]
fn the_impaired_wan_example_says_which_direction_each_link_impairs() {
    let text = include_str!("../../../examples/impaired-wan.toml");
    let plan = TopologyPlan::from_toml(text, None).unwrap();
    let specs = |host: &str| {
        let links = plan.emulated_links();
        let link = links.iter().find(|l| l.host == host).unwrap();
        (
            link.specs.egress.clone(),
            link.specs.ingress.clone(),
            link.seed,
        )
    };
    let delay = "delay 20ms 2ms distribution normal";
    assert_eq!(
        specs("router-a"),
        (Some(format!("{delay} loss random 0.5%")), None, 7)
    );
    assert_eq!(
        specs("router-b"),
        (Some(delay.to_owned()), Some("rate 10mbit".to_owned()), 8)
    );
    assert_eq!(plan.emulated_links().len(), 2);
    // Every impaired link of every example names its direction in a comment.
    for example in [text, include_str!("../../../examples/lb-lab.toml")] {
        assert!(!example.contains("netem") || example.contains("SENDS"));
    }
}

#[test]
fn a_plan_survives_the_state_file_round_trip() {
    let plan = TopologyPlan::from_toml(TWO_SUBNETS, None).unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<TopologyPlan>(&json).unwrap(), plan);
}
