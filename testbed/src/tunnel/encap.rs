//! The router's half of the tunnel, without I/O: an inner IP packet read from
//! the tun device gets a GRE header in front and a remote balancer chosen by
//! the hash of its inner 5-tuple (ECMP).
//!
//! The outer header is not built here: the packet is sent on a raw
//! `IPPROTO_GRE` socket of the remotes' family (IPv4, or IPv6 for GRE over
//! IPv6), so the kernel writes it (source address, TTL,
//! identification, checksum, fragmentation when needed) the way it does for
//! its own GRE devices. We only write the GRE header, into headroom reserved
//! in front of the packet, so nothing is copied or allocated per packet.
//!
//! The remote is `FlowHasher(seed).flow(5-tuple) % remotes`: the same hash
//! the balancers use, so a run is reproducible with `--seed`. Like a router's
//! ECMP it reshuffles flows when the remote set changes; keeping flows on
//! their backend across that is the balancers' job (shared Maglev tables).
//! Fragments are hashed with ports 0 so all fragments of a datagram (the
//! first one included, which has the ports) take the same remote.

use std::net::IpAddr;
#[cfg(test)]
use std::net::Ipv4Addr;

use dataplane::flow::{FlowHasher, FlowKey};
use dataplane::wire::{ethertype, ip_proto, transport_ports, GreRepr, Ipv4Packet, Ipv6Packet};

use super::prefix::Prefix;

/// Room reserved in front of each inner packet for the largest GRE header we
/// emit: the 4-byte base plus the 4-byte key.
pub const HEADROOM: usize = 8;

/// Why an inner packet was not encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapDrop {
    /// Not a well-formed IPv4 or IPv6 packet.
    MalformedInner,
    /// Its destination is not one of the VIPs (e.g. an IPv6 router
    /// solicitation the kernel sends on every interface).
    NotForVip,
}

impl EncapDrop {
    pub const ALL: [EncapDrop; 2] = [EncapDrop::MalformedInner, EncapDrop::NotForVip];

    /// The counter name.
    pub fn name(self) -> &'static str {
        match self {
            EncapDrop::MalformedInner => "drop_malformed_inner",
            EncapDrop::NotForVip => "drop_not_for_vip",
        }
    }
}

/// Encapsulates toward one of several remotes.
#[derive(Debug, Clone)]
pub struct Encapsulator {
    remotes: Vec<IpAddr>,
    hasher: FlowHasher,
    key: Option<u32>,
    vips: Vec<Prefix>,
}

/// A packet ready to send: the remote's index and the GRE packet's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Encapsulated<'a> {
    pub remote: usize,
    pub gre: &'a [u8],
}

impl Encapsulator {
    /// `None` when `remotes` is empty: there would be nowhere to send.
    pub fn new(
        remotes: Vec<IpAddr>,
        key: Option<u32>,
        seed: u64,
        vips: Vec<Prefix>,
    ) -> Option<Self> {
        (!remotes.is_empty()).then(|| Self {
            remotes,
            hasher: FlowHasher::new(seed),
            key,
            vips,
        })
    }

    pub fn remotes(&self) -> &[IpAddr] {
        &self.remotes
    }

    /// The index of the remote a flow goes to.
    #[inline]
    pub fn choose(&self, flow: &FlowKey) -> usize {
        (self.hasher.flow(flow) % self.remotes.len() as u64) as usize
    }

    /// Encapsulates the inner packet at `buf[HEADROOM..HEADROOM + len]`,
    /// writing the GRE header into the headroom in front of it.
    pub fn encapsulate<'a>(
        &self,
        buf: &'a mut [u8],
        len: usize,
    ) -> Result<Encapsulated<'a>, EncapDrop> {
        let end = HEADROOM
            .checked_add(len)
            .filter(|&end| end <= buf.len())
            .ok_or(EncapDrop::MalformedInner)?;
        let (flow, protocol_type) = inner_flow(&buf[HEADROOM..end])?;
        let dst = flow.dst_addr();
        if !self.vips.iter().any(|vip| vip.contains(dst)) {
            return Err(EncapDrop::NotForVip);
        }
        let remote = self.choose(&flow);
        let repr = GreRepr {
            protocol_type,
            key: self.key,
            sequence: None,
            checksum: false,
        };
        let start = HEADROOM - repr.header_len();
        repr.emit(&mut buf[start..end]);
        Ok(Encapsulated {
            remote,
            gre: &buf[start..end],
        })
    }
}

/// The inner packet's 5-tuple (ports 0 for fragments and for protocols
/// without ports) and the GRE protocol type that announces it.
pub fn inner_flow(packet: &[u8]) -> Result<(FlowKey, u16), EncapDrop> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet).map_err(|_| EncapDrop::MalformedInner)?;
            let (src_port, dst_port) = if ip.is_fragment() {
                (0, 0)
            } else {
                ports(ip.protocol(), ip.payload())
            };
            let flow = FlowKey::v4(
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                src_port,
                dst_port,
            );
            Ok((flow, ethertype::IPV4))
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet).map_err(|_| EncapDrop::MalformedInner)?;
            let upper = ip.upper_layer().map_err(|_| EncapDrop::MalformedInner)?;
            let fragmented = upper.fragment.is_some_and(|f| f.is_fragmenting());
            let (src_port, dst_port) = match packet.get(upper.offset..) {
                Some(l4) if !fragmented => ports(upper.protocol, l4),
                _ => (0, 0),
            };
            let flow = FlowKey::v6(
                ip.src_addr(),
                ip.dst_addr(),
                upper.protocol,
                src_port,
                dst_port,
            );
            Ok((flow, ethertype::IPV6))
        }
        _ => Err(EncapDrop::MalformedInner),
    }
}

/// SCTP: its ports sit where TCP's and UDP's do.
const SCTP: u8 = 132;

fn ports(protocol: u8, l4: &[u8]) -> (u16, u16) {
    match protocol {
        ip_proto::TCP | ip_proto::UDP | SCTP => transport_ports(l4).unwrap_or((0, 0)),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::GrePacket;

    /// A UDP datagram 10.0.0.1:1234 -> 192.0.2.1:53 carrying "hi".
    pub(crate) fn udp_v4(src_port: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 30, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1, // IPv4
            0, 0, 0, 53, 0, 10, 0, 0, b'h', b'i', // UDP
        ];
        p[20..22].copy_from_slice(&src_port.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.fill_checksum();
        p
    }

    fn vip() -> Vec<Prefix> {
        vec!["192.0.2.1".parse().unwrap()]
    }

    fn in_headroom(packet: &[u8]) -> Vec<u8> {
        let mut buf = vec![0xA5; HEADROOM];
        buf.extend_from_slice(packet);
        buf.extend_from_slice(&[0xA5; 16]);
        buf
    }

    #[test]
    fn keyed_encapsulation_writes_flags_protocol_and_key_before_the_untouched_inner_packet() {
        let e = Encapsulator::new(
            vec![Ipv4Addr::new(10, 0, 0, 2).into()],
            Some(0x0102_0304),
            1,
            vip(),
        )
        .unwrap();
        let inner = udp_v4(1234);
        let mut buf = in_headroom(&inner);
        let out = e.encapsulate(&mut buf, inner.len()).unwrap();
        assert_eq!(out.remote, 0);
        assert_eq!(
            out.gre[..8],
            [0x20, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x04]
        );
        assert_eq!(out.gre[8..], inner[..]);
    }

    #[test]
    fn unkeyed_encapsulation_is_the_four_byte_header_and_leaves_the_rest_of_the_headroom() {
        let e = Encapsulator::new(vec![Ipv4Addr::new(10, 0, 0, 2).into()], None, 1, vip()).unwrap();
        let inner = udp_v4(1234);
        let mut buf = in_headroom(&inner);
        let len = e.encapsulate(&mut buf, inner.len()).unwrap().gre.len();
        assert_eq!(len, 4 + inner.len());
        assert_eq!(buf[..4], [0xA5; 4]);
        assert_eq!(buf[4..8], [0x00, 0x00, 0x08, 0x00]);
        let gre = GrePacket::new_checked(&buf[4..4 + len]).unwrap();
        assert_eq!(gre.payload(), &inner[..]);
    }

    #[test]
    fn ipv6_inner_packets_are_announced_as_86dd() {
        let mut inner = vec![0u8; 48];
        inner[0] = 0x60;
        inner[5] = 8; // payload length
        inner[6] = ip_proto::UDP;
        inner[7] = 64;
        inner[24..40].copy_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        let vips = vec!["2001:db8::/64".parse().unwrap()];
        let e = Encapsulator::new(vec![Ipv4Addr::new(10, 0, 0, 2).into()], None, 1, vips).unwrap();
        let mut buf = in_headroom(&inner);
        let out = e.encapsulate(&mut buf, inner.len()).unwrap();
        assert_eq!(out.gre[..4], [0x00, 0x00, 0x86, 0xdd]);
    }

    #[test]
    fn packets_not_for_a_vip_and_garbage_are_refused() {
        let e = Encapsulator::new(vec![Ipv4Addr::new(10, 0, 0, 2).into()], None, 1, vip()).unwrap();
        let mut other = udp_v4(1234);
        other[19] = 2; // 192.0.2.2
        let mut buf = in_headroom(&other);
        assert_eq!(
            e.encapsulate(&mut buf, other.len()),
            Err(EncapDrop::NotForVip)
        );
        for garbage in [&[][..], &[0x45, 0, 0][..], &[0x10; 40][..]] {
            let mut buf = in_headroom(garbage);
            assert_eq!(
                e.encapsulate(&mut buf, garbage.len()),
                Err(EncapDrop::MalformedInner)
            );
        }
        let mut buf = in_headroom(&other);
        assert_eq!(
            e.encapsulate(&mut buf, 10_000),
            Err(EncapDrop::MalformedInner)
        );
    }

    #[test]
    fn ecmp_keeps_a_flow_on_one_remote_and_spreads_flows_over_all() {
        let remotes: Vec<IpAddr> = (1..=3).map(|h| Ipv4Addr::new(10, 0, 0, h).into()).collect();
        let e = Encapsulator::new(remotes, None, 42, vip()).unwrap();
        let mut seen = [0u32; 3];
        for port in 1000..1300 {
            let (flow, _) = inner_flow(&udp_v4(port)).unwrap();
            let choice = e.choose(&flow);
            assert_eq!(choice, e.choose(&flow), "a flow must not move");
            seen[choice] += 1;
        }
        // 300 flows over 3 remotes: each gets its share give or take a lot
        // (binomial sd ~8), never none.
        assert!(seen.iter().all(|&n| (60..=140).contains(&n)), "{seen:?}");
    }

    #[test]
    fn the_choice_is_the_balancers_flow_hash_so_a_seed_reproduces_it() {
        let remotes: Vec<IpAddr> = (1..=2).map(|h| Ipv4Addr::new(10, 0, 0, h).into()).collect();
        let (flow, _) = inner_flow(&udp_v4(4321)).unwrap();
        for seed in 0..20 {
            let e = Encapsulator::new(remotes.clone(), None, seed, vip()).unwrap();
            let expected = (FlowHasher::new(seed).flow(&flow) % 2) as usize;
            assert_eq!(e.choose(&flow), expected);
        }
    }

    #[test]
    fn fragments_hash_without_ports_so_they_stay_together() {
        let mut first = udp_v4(1234);
        first[6] = 0x20; // MF
        let (flow, _) = inner_flow(&first).unwrap();
        assert_eq!((flow.src_port, flow.dst_port), (0, 0));
        let (whole, _) = inner_flow(&udp_v4(1234)).unwrap();
        assert_eq!((whole.src_port, whole.dst_port), (1234, 53));
    }

    #[test]
    fn without_remotes_there_is_no_encapsulator() {
        assert!(Encapsulator::new(Vec::new(), None, 0, vip()).is_none());
    }

    #[test]
    fn drop_reasons_index_their_counters_in_declaration_order() {
        for (index, reason) in EncapDrop::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, index, "{}", reason.name());
        }
    }
}
