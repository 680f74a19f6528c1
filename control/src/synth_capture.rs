//! `rusty_rail synth`: writes a capture of GRE traffic as a router would send
//! it to the balancer, to try `replay` with (the README's demo uses it).

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synth::{ClientFlow, Transport, Tunnel};

/// Options of `rusty_rail synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Where to write the capture.
    #[arg(long, value_name = "PCAP")]
    pub output: PathBuf,
    /// The balancer's address (outer destination of the GRE packets).
    #[arg(long, env = "RR_LB_IP", value_name = "IPV4")]
    pub lb_ip: Ipv4Addr,
    /// The router's address (outer source).
    #[arg(long, value_name = "IPV4", default_value = "10.0.0.1")]
    pub router_ip: Ipv4Addr,
    /// The VIP the clients talk to (inner destination); an IPv6 VIP is used
    /// for one flow in ten.
    #[arg(long, value_name = "IPV4", default_value = "192.0.2.80")]
    pub vip: Ipv4Addr,
    /// Distinct client flows (TCP, one in four UDP).
    #[arg(long, default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=16_000_000))]
    pub flows: u32,
    /// Packets in all, spread over the flows in random order.
    #[arg(long, default_value = "100000", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub packets: u64,
    /// Malformed frames mixed in (TTL 1, wrong GRE version, truncated frames),
    /// to see drops counted by reason.
    #[arg(long, default_value = "0")]
    pub malformed: u64,
    /// Seed of the flow order.
    #[arg(long, default_value = "1")]
    pub seed: u64,
}

const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);

/// Client flow number `i`: addresses from `100.64.0.0/10` (and `2001:db8:1::/48`).
fn flow(i: u32, vip: Ipv4Addr) -> ClientFlow {
    let transport = if i % 4 == 3 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let src_port = 1024 + (i % 60_000) as u16;
    let host = i / 60_000;
    let (src, dst) = if i % 10 == 9 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, (host >> 16) as u16, host as u16);
        (IpAddr::V6(src), IpAddr::V6(VIP6))
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(0x6440_0000 + host)),
            IpAddr::V4(vip),
        )
    };
    ClientFlow {
        src,
        dst,
        transport,
        src_port,
        dst_port: if transport == Transport::Tcp { 80 } else { 53 },
    }
}

/// Writes the capture; returns how many frames it holds.
pub fn run(args: &SynthArgs) -> Result<u64, String> {
    let file = File::create(&args.output)
        .map_err(|e| format!("cannot create {}: {e}", args.output.display()))?;
    let mut writer = PcapWriter::new(BufWriter::new(file))
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let tunnel = Tunnel::new(args.router_ip, args.lb_ip);
    let total = args.packets + args.malformed;
    let mut malformed_left = args.malformed;
    for n in 0..total {
        // 10 µs apart: 100k packets span one second of capture time.
        let at = Duration::from_micros(1_700_000_000_000_000 + n * 10);
        // Each remaining slot is malformed with probability (malformed left /
        // slots left): exactly `malformed` of them, spread at random.
        let frame = if rng.gen_range(0..total - n) < malformed_left {
            malformed_left -= 1;
            malformed(&tunnel, &mut rng, args.vip)
        } else {
            let i = rng.gen_range(0..args.flows);
            tunnel.encapsulate(&flow(i, args.vip).packet(b"GET / HTTP/1.1\r\n\r\n"))
        };
        writer
            .write_packet(&PcapPacket::new(at, frame.len() as u32, &frame))
            .map_err(|e| format!("{}: {e}", args.output.display()))?;
    }
    Ok(total)
}

fn malformed(tunnel: &Tunnel, rng: &mut SmallRng, vip: Ipv4Addr) -> Vec<u8> {
    let packet = flow(rng.gen(), vip).packet(b"");
    match rng.gen_range(0..3) {
        0 => Tunnel { ttl: 1, ..*tunnel }.encapsulate(&packet),
        1 => {
            let mut frame = tunnel.encapsulate(&packet);
            frame[35] |= 1; // GRE version 1
            frame
        }
        _ => {
            let mut frame = tunnel.encapsulate(&packet);
            frame.truncate(36);
            frame
        }
    }
}
