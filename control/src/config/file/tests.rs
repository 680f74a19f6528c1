//! The configuration file: settings become variables, services are checked
//! whole, and every error names its line and field.

use super::*;

fn known() -> Vec<String> {
    [
        "RR_DEVICE",
        "RR_TARGET_IPS",
        "RR_WORKERS",
        "RR_KEEP_OFFLOADS",
        "RR_API_TOKEN_FILE",
    ]
    .map(String::from)
    .to_vec()
}

fn errors(text: &str) -> Vec<FileError> {
    parse(text, &known()).expect_err("the file should be refused")
}

const EXAMPLE: &str = r#"device = "eth0"
workers = 2
keep_offloads = true
target_ips = ["10.1.0.1", "10.1.0.2:3"]

[api]
token_file = "/etc/rusty_rail/token"

[[service]]
name = "web"
vip = "192.0.2.10"
protocol = "tcp"
port = 80
backends = ["10.2.0.1", "10.2.0.2:2"]
health = "http:80/healthz"
table_size = 1009

[[service]]
name = "dns6"
vip = "2001:db8::53"
protocol = 17
backends = ["10.3.0.1;10.3.0.2"]
hash = "source"
"#;

#[test]
fn settings_become_their_rr_variables_with_arrays_as_lists() {
    let file = parse(EXAMPLE, &known()).unwrap();
    let settings: Vec<(&str, &str, usize)> = file
        .settings
        .iter()
        .map(|s| (s.env.as_str(), s.value.as_str(), s.line))
        .collect();
    assert_eq!(
        settings,
        [
            ("RR_DEVICE", "eth0", 1),
            ("RR_WORKERS", "2", 2),
            ("RR_KEEP_OFFLOADS", "true", 3),
            ("RR_TARGET_IPS", "10.1.0.1;10.1.0.2:3", 4),
            ("RR_API_TOKEN_FILE", "/etc/rusty_rail/token", 7),
        ]
    );
}

#[test]
fn services_are_read_with_their_defaults() {
    let file = parse(EXAMPLE, &known()).unwrap();
    let [web, dns] = &file.services[..] else {
        panic!("two services expected: {:?}", file.services);
    };
    assert_eq!(web.name, "web");
    assert_eq!(web.vip, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!((web.protocol, web.port), (Some(6), Some(80)));
    let addrs: Vec<(String, u32)> = web
        .backends
        .iter()
        .map(|t| (t.addr.to_string(), t.weight))
        .collect();
    assert_eq!(
        addrs,
        [("10.2.0.1".to_owned(), 1), ("10.2.0.2".to_owned(), 2)]
    );
    assert!(web.health.is_some());
    assert_eq!((web.table_size, web.hash), (1009, HashFields::FiveTuple));
    assert_eq!(web.line, 9);
    assert_eq!((dns.protocol, dns.port), (Some(17), None));
    assert_eq!(dns.backends.len(), 2);
    assert_eq!(dns.hash, HashFields::SourceAddress);
    assert_eq!(dns.table_size, DEFAULT_TABLE_SIZE);
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../examples/services.toml");
    let known: Vec<String> = [
        "RR_DEVICE",
        "RR_TARGET_IPS",
        "RR_LB_IP",
        "RR_SEED",
        "RR_WORKERS",
        "RR_IO",
        "RR_API_TOKEN_FILE",
        "RR_HEALTH",
    ]
    .map(String::from)
    .to_vec();
    let file = parse(text, &known).unwrap();
    assert_eq!(file.services.len(), 3);
}

#[test]
fn every_bad_field_is_reported_with_its_line_not_only_the_first() {
    let text = r#"device = "eth0"
colour = "blue"

[[service]]
name = "web"
vip = "192.0.2.300"
port = 70000
protocol = "sctp-ish"
backends = ["10.2.0.1:99999"]
"#;
    let found: Vec<(usize, String)> = errors(text)
        .into_iter()
        .map(|e| (e.line, e.field))
        .collect();
    assert_eq!(
        found,
        [
            (2, "colour".to_owned()),
            (6, "service[0].vip".to_owned()),
            (7, "service[0].port".to_owned()),
            (8, "service[0].protocol".to_owned()),
            (9, "service[0].backends".to_owned()),
        ]
    );
}

#[test]
fn an_error_says_what_would_be_accepted() {
    let e = &errors("[[service]]\nname = \"a\"\nvip = \"192.0.2.1\"\nhash = \"dst\"\n")[0];
    assert_eq!(e.line, 4);
    assert_eq!(e.field, "service[0].hash");
    assert!(
        e.message.contains("\"5-tuple\"") && e.message.contains("\"source\""),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("line 4: service[0].hash: {}", e.message)
    );
}

#[test]
fn broken_toml_is_reported_with_its_line() {
    let e = &errors("device = \"eth0\"\nworkers = = 2\n")[0];
    assert_eq!(e.line, 2);
    assert!(e.message.starts_with("not valid TOML"), "{e}");
}

#[test]
fn a_service_without_a_name_or_vip_and_a_port_without_protocol_are_refused() {
    let found: Vec<String> = errors("[[service]]\nport = 80\nbackends = [\"10.2.0.1\"]\n")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        found.iter().any(|m| m.contains("needs a name")),
        "{found:?}"
    );
    assert!(found.iter().any(|m| m.contains("needs a vip")), "{found:?}");
    assert!(
        found.iter().any(|m| m.contains("needs a protocol")),
        "{found:?}"
    );
}

#[test]
fn services_that_clash_are_reported_at_the_later_one() {
    let text = r#"[[service]]
name = "a"
vip = "192.0.2.1"

[[service]]
name = "a"
vip = "192.0.2.2"
"#;
    let e = &errors(text)[0];
    assert_eq!((e.line, e.field.as_str()), (5, "service"));
    assert!(e.message.contains("used twice"), "{e}");
}

#[test]
fn a_service_table_size_that_is_not_prime_names_the_service_and_the_primes_near() {
    let text = "[[service]]\nname = \"a\"\nvip = \"192.0.2.1\"\ntable_size = 1000\n";
    let e = &errors(text)[0];
    assert_eq!((e.line, e.field.as_str()), (1, "service[0]"));
    assert!(
        e.message.contains("997") && e.message.contains("1009"),
        "{e}"
    );
}

#[test]
fn a_service_table_size_is_bounded_as_rr_table_size_is() {
    // A prime, but about 4 s to build here and hundreds of MB per table.
    let text = "[[service]]\nname = \"a\"\nvip = \"192.0.2.1\"\ntable_size = 67108859\n";
    let e = &errors(text)[0];
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("3 to 16777213"), "{e}");
}

#[test]
fn the_environment_overrides_the_file() {
    let file = ConfigFile {
        settings: vec![
            FileSetting {
                env: "RR_TEST_FILE_ONLY_8A1".into(),
                value: "from-file".into(),
                line: 1,
            },
            FileSetting {
                env: "RR_TEST_FILE_AND_ENV_8A1".into(),
                value: "from-file".into(),
                line: 2,
            },
        ],
        services: vec![],
    };
    std::env::set_var("RR_TEST_FILE_AND_ENV_8A1", "from-env");
    file.apply_to_environment();
    assert_eq!(
        std::env::var("RR_TEST_FILE_ONLY_8A1").as_deref(),
        Ok("from-file")
    );
    assert_eq!(
        std::env::var("RR_TEST_FILE_AND_ENV_8A1").as_deref(),
        Ok("from-env")
    );
}

#[test]
fn a_backend_address_in_two_services_is_refused() {
    let text = "[[service]]\nname = \"a\"\nvip = \"192.0.2.1\"\nbackends = [\"10.2.0.1\"]\n\n[[service]]\nname = \"b\"\nvip = \"192.0.2.2\"\nbackends = [\"10.2.0.1\"]\n";
    let e = &errors(text)[0];
    assert_eq!((e.line, e.field.as_str()), (6, "service[1].backends"));
    assert!(e.message.contains("also a backend of service \"a\""), "{e}");
}

#[test]
fn a_service_s_backends_may_be_ipv6_bare_or_bracketed_with_a_weight() {
    let text = "[[service]]\nname = \"v6\"\nvip = \"2001:db8::80\"\nbackends = [\"2001:db8:2::1\", \"[2001:db8:2::2]:3\", \"10.2.0.1\"]\ntable_size = 251\n";
    let file = parse(text, &known()).unwrap();
    let backends: Vec<(String, u32)> = file.services[0]
        .backends
        .iter()
        .map(|t| (t.addr.to_string(), t.weight))
        .collect();
    assert_eq!(
        backends,
        [
            ("2001:db8:2::1".to_owned(), 1),
            ("2001:db8:2::2".to_owned(), 3),
            ("10.2.0.1".to_owned(), 1)
        ]
    );
}

#[test]
fn an_ipv6_backend_with_an_unbracketed_weight_is_named_with_its_line() {
    let text =
        "[[service]]\nname = \"v6\"\nvip = \"192.0.2.1\"\nbackends = [\"2001:db8:2::1:x\"]\n";
    let e = &errors(text)[0];
    assert_eq!((e.line, e.field.as_str()), (4, "service[0].backends"));
    assert!(
        e.message.contains("\"2001:db8:2::1:x\" is not an address: an IPv6 backend with a weight is written in brackets, such as [2001:db8::1]:3"),
        "{e}"
    );
}
