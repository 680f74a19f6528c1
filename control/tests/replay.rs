//! End to end through the binary: a generated capture of 100k packets over
//! 10k flows replayed by `rusty_rail replay`; every flow must stay on one
//! backend and the flows must split evenly over the backends.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use pcap_file::pcap::PcapReader;

fn rusty_rail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rusty_rail"))
}

/// Outer destination (the backend) and the inner flow (addresses, ports,
/// protocol) of every frame in a capture of forwarded GRE frames.
fn forwarded(path: &Path) -> Vec<([u8; 4], Vec<u8>)> {
    let mut reader = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let data = packet.unwrap().data.into_owned();
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&data[14..]).unwrap();
        assert_eq!(outer.protocol(), etherparse::IpNumber(47));
        let inner = etherparse::SlicedPacket::from_ip(&data[38..]).unwrap();
        let mut flow = match inner.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                [ip.header().source(), ip.header().destination()].concat()
            }
            etherparse::NetSlice::Ipv6(ip) => {
                [ip.header().source(), ip.header().destination()].concat()
            }
            etherparse::NetSlice::Arp(_) => panic!("ARP inside GRE"),
        };
        match inner.transport.unwrap() {
            etherparse::TransportSlice::Tcp(t) => {
                flow.extend([6, (t.source_port() >> 8) as u8, t.source_port() as u8]);
            }
            etherparse::TransportSlice::Udp(u) => {
                flow.extend([17, (u.source_port() >> 8) as u8, u.source_port() as u8]);
            }
            other => panic!("unexpected transport {other:?}"),
        }
        out.push((outer.destination(), flow));
    }
    out
}

#[test]
fn replaying_100k_packets_over_10k_flows_keeps_each_flow_on_one_backend_and_splits_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");
    synth(&input, 10_000, 100_000);
    let replay = rusty_rail()
        .env("RR_LB_IP", "10.0.0.10")
        .env("RR_TARGET_IPS", "10.1.0.1;10.1.0.2;10.1.0.3")
        .args(["replay", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(report.contains("to_wire          100000"), "{report}");

    let frames = forwarded(&output);
    assert_eq!(frames.len(), 100_000);
    let mut backend_of_flow: HashMap<Vec<u8>, [u8; 4]> = HashMap::new();
    for (backend, flow) in frames {
        let first = *backend_of_flow.entry(flow.clone()).or_insert(backend);
        assert_eq!(first, backend, "flow {flow:?} moved between backends");
    }
    assert_eq!(backend_of_flow.len(), 10_000, "every flow was seen");
    let mut flows_per_backend: HashMap<[u8; 4], usize> = HashMap::new();
    for backend in backend_of_flow.values() {
        *flows_per_backend.entry(*backend).or_default() += 1;
    }
    assert_eq!(flows_per_backend.len(), 3, "{flows_per_backend:?}");
    for (backend, flows) in &flows_per_backend {
        // 10k flows over 3 backends: 3333 each; Maglev plus hashing noise stays
        // well within 10%.
        assert!(
            (3000..3667).contains(flows),
            "{backend:?} has {flows} flows: {flows_per_backend:?}"
        );
    }
}

#[test]
fn weights_shift_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");
    synth(&input, 6000, 6000);
    let replay = rusty_rail()
        .args([
            "replay",
            "--lb-ip",
            "10.0.0.10",
            "--target-ips",
            "10.1.0.1:1;10.1.0.2:2",
            "--input",
        ])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(replay.success());
    let mut per_backend: HashMap<[u8; 4], usize> = HashMap::new();
    for (backend, _) in forwarded(&output) {
        *per_backend.entry(backend).or_default() += 1;
    }
    let light = per_backend[&[10, 1, 0, 1]] as f64;
    let heavy = per_backend[&[10, 1, 0, 2]] as f64;
    assert!((1.7..2.3).contains(&(heavy / light)), "{per_backend:?}");
}

#[test]
fn malformed_frames_are_dropped_and_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    assert!(rusty_rail()
        .args([
            "synth",
            "--lb-ip",
            "10.0.0.10",
            "--packets",
            "1000",
            "--malformed",
            "300",
            "--output"
        ])
        .arg(&input)
        .status()
        .unwrap()
        .success());
    let dropped = dir.path().join("dropped.pcap");
    let replay = rusty_rail()
        .args([
            "replay",
            "--lb-ip",
            "10.0.0.10",
            "--target-ips",
            "10.1.0.1",
            "--input",
        ])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.pcap"))
        .arg("--dropped")
        .arg(&dropped)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(report.contains("dropped             300"), "{report}");
    for reason in ["ttl_expired", "bad_gre_version", "truncated_ipv4"] {
        assert!(report.contains(reason), "{reason} missing from\n{report}");
    }
    let mut reader = PcapReader::new(std::fs::File::open(&dropped).unwrap()).unwrap();
    let mut n = 0;
    while let Some(p) = reader.next_packet() {
        p.unwrap();
        n += 1;
    }
    assert_eq!(n, 300);
}

#[test]
fn bad_configuration_exits_2_naming_the_variable_and_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("RR_TARGET_IPS", "10.1.0.1"), ("RR_TABLE_SIZE", "65536")],
            "65537",
        ),
        (&[("RR_TARGET_IPS", "10.1.0.1:x")], "RR_TARGET_IPS"),
        (
            &[("RR_TARGET_IPS", "10.1.0.1"), ("RR_LB_IP", "not-an-ip")],
            "RR_LB_IP",
        ),
        (&[("RR_TARGET_IPS", "10.1.0.1")], "RR_LB_IP"),
    ];
    for (env, expected) in cases {
        let mut cmd = rusty_rail();
        cmd.env_clear()
            .args(["replay", "--input"])
            .arg(dir.path().join("in.pcap"));
        cmd.arg("--output").arg(dir.path().join("out.pcap"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
}

/// Writes a capture of `flows` flows and `packets` packets of GRE to
/// 10.0.0.10 at `path`.
fn synth(path: &Path, flows: u32, packets: u32) {
    let synth = rusty_rail()
        .args(["synth", "--lb-ip", "10.0.0.10"])
        .args(["--flows", &flows.to_string()])
        .args(["--packets", &packets.to_string(), "--output"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
}

#[test]
fn ipv6_backends_get_gre_over_ipv6_from_the_lb_ipv6_and_without_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");
    synth(&input, 2000, 4000);
    let replay = |lb_ipv6: Option<&str>| {
        let mut command = rusty_rail();
        command
            .env("RR_LB_IP", "10.0.0.10")
            .env("RR_TARGET_IPS", "10.1.0.1;[2001:db8::2]")
            .args(["replay", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output);
        if let Some(addr) = lb_ipv6 {
            command.args(["--lb-ipv6", addr]);
        }
        command.output().unwrap()
    };

    let refused = replay(None);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("backend 2001:db8::2 is IPv6, and replay needs RR_LB_IPV6 (--lb-ipv6)"),
        "{message}"
    );

    let done = replay(Some("2001:db8::10"));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let mut reader = PcapReader::new(std::fs::File::open(&output).unwrap()).unwrap();
    let (mut over_ipv4, mut over_ipv6) = (0, 0);
    while let Some(packet) = reader.next_packet() {
        let data = packet.unwrap().data.into_owned();
        match &data[12..14] {
            [0x08, 0x00] => {
                let outer = etherparse::Ipv4HeaderSlice::from_slice(&data[14..]).unwrap();
                assert_eq!(outer.destination(), [10, 1, 0, 1]);
                over_ipv4 += 1;
            }
            [0x86, 0xdd] => {
                let outer = etherparse::Ipv6HeaderSlice::from_slice(&data[14..]).unwrap();
                assert_eq!(outer.next_header(), etherparse::IpNumber(47), "GRE");
                assert_eq!(
                    outer.source_addr(),
                    "2001:db8::10".parse::<std::net::Ipv6Addr>().unwrap()
                );
                assert_eq!(
                    outer.destination_addr(),
                    "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap()
                );
                over_ipv6 += 1;
            }
            other => panic!("a forwarded frame of EtherType {other:02x?}"),
        }
    }
    assert_eq!(over_ipv4 + over_ipv6, 4000);
    // 2000 flows over two backends: about 1000 flows, 2000 packets, each.
    assert!(
        (1600..=2400).contains(&over_ipv6),
        "{over_ipv4} frames over IPv4, {over_ipv6} over IPv6"
    );
}
