//! Synthetic traffic for the pipeline benches: many flows through one GRE
//! tunnel, generated once and replayed round-robin, or never repeating.

use core::net::{IpAddr, Ipv4Addr};

use dataplane::forwarding::{BackendSpec, ForwardingSpec, ForwardingTable};
use dataplane::wire::{checksum, ethertype};
use synth::{ethernet_frame, ClientFlow, Transport, Tunnel, ROUTER_MAC};

pub const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

/// A balancer with `backends` resolved backends and the default table size.
pub fn balancer_table(backends: u16) -> ForwardingTable {
    let backends = (0..backends)
        .map(|i| BackendSpec {
            slot: i,
            addr: Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8).into(),
            weight: 1,
            mac: Some([0x02, 0, 0, 1, (i >> 8) as u8, i as u8]),
            generation: 0,
        })
        .collect();
    ForwardingTable::build(&ForwardingSpec {
        lb_ipv4: LB,
        lb_ipv6: None,
        lb_mac: LB_MAC,
        vips: vec![IpAddr::V4(VIP)],
        backends,
        seed: 0x5eed,
        table_size: 65537,
        mtu: 1500,
        generation: 1,
    })
    .expect("a valid bench table")
}

/// Offset of the inner IPv4 source address in a GRE frame (14 + 20 + 4 + 12).
const INNER_SRC: usize = 50;
/// Offset of the inner TCP source port in a GRE frame.
const INNER_SPORT: usize = 58;
/// In a VIP-mode frame: inner IPv4 source address and TCP source port.
const VIP_SRC: usize = 26;
const VIP_SPORT: usize = 34;

/// Frames of `flows` distinct flows, handed out round-robin.
#[derive(Debug)]
pub struct FlowFrames {
    template: Vec<u8>,
    src_at: usize,
    sport_at: usize,
    ip_at: usize,
    flows: Option<u64>,
    next: u64,
}

impl FlowFrames {
    /// GRE-encapsulated TCP (a 64-byte request) from `flows` clients.
    pub fn gre_tcp(flows: u64) -> Self {
        let template =
            Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&client(0).packet(&[0u8; 64]));
        Self {
            template,
            src_at: INNER_SRC,
            sport_at: INNER_SPORT,
            ip_at: 38,
            flows: Some(flows),
            next: 0,
        }
    }

    /// GRE-encapsulated TCP where every packet is a new flow.
    pub fn gre_tcp_never_repeating() -> Self {
        Self {
            flows: None,
            ..Self::gre_tcp(1)
        }
    }

    /// Plain TCP to the VIP (VIP mode) from `flows` clients.
    pub fn vip_tcp(flows: u64) -> Self {
        let template = ethernet_frame(
            ROUTER_MAC,
            LB_MAC,
            None,
            ethertype::IPV4,
            &client(0).packet(&[0u8; 64]),
        );
        Self {
            template,
            src_at: VIP_SRC,
            sport_at: VIP_SPORT,
            ip_at: 14,
            flows: Some(flows),
            next: 0,
        }
    }

    /// How many distinct flows (`usize::MAX` when never repeating).
    pub fn len(&self) -> usize {
        self.flows.map_or(usize::MAX, |f| f as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.flows == Some(0)
    }

    /// The next frame: the template with the flow's client address and port.
    pub fn next_frame(&mut self) -> &[u8] {
        let n = self.next;
        self.next += 1;
        let flow = self.flows.map_or(n, |f| n % f);
        // 2^16 ports per address, addresses counting up from 100.64.0.0.
        let addr = (0x6440_0000u32 + (flow >> 16) as u32).to_be_bytes();
        let port = (flow as u16).to_be_bytes();
        let t = &mut self.template;
        t[self.src_at..self.src_at + 4].copy_from_slice(&addr);
        t[self.sport_at..self.sport_at + 2].copy_from_slice(&port);
        // Keep the inner IPv4 header valid (its checksum covers the address).
        let ip = self.ip_at;
        t[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let sum = checksum::checksum(&t[ip..ip + 20]);
        t[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        &self.template
    }
}

fn client(port: u16) -> ClientFlow {
    ClientFlow {
        src: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
        dst: IpAddr::V4(VIP),
        transport: Transport::Tcp,
        src_port: port,
        dst_port: 80,
    }
}
