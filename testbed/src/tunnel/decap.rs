//! The server's half of the tunnel, without I/O: a packet read from a raw
//! `IPPROTO_GRE` socket is checked and its inner packet handed back for the
//! tun device. GRE over IPv4 comes with its outer IPv4 header (as Linux's
//! IPv4 raw sockets deliver it, [`Decapsulator::decapsulate`]); GRE over
//! IPv6 comes without one (IPv6 raw sockets deliver the payload only,
//! [`Decapsulator::decapsulate_gre`]).
//!
//! Checked, each failure counted under its own name: the outer header's
//! lengths; GRE version 0 with no reserved bits (RFC 2784; a routing field or
//! version 1 = PPTP is not ours); the GRE checksum when present; the key,
//! which must be exactly the configured one (absent when none is configured,
//! as Linux's own GRE devices do); an IPv4 or IPv6 payload that agrees with
//! the protocol type; and an inner destination that is one of our VIPs, so
//! the endpoint cannot be used to inject arbitrary packets into the host.
//! Bytes after the inner packet's own length are cut off.

use dataplane::wire::{ethertype, ip_proto, GrePacket, Ipv4Packet, Ipv6Packet};

use super::prefix::Prefix;

/// Why a received packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapDrop {
    /// The outer IPv4 header is truncated or malformed, or not GRE.
    MalformedOuter,
    /// Shorter than the GRE header its flags announce.
    TruncatedGre,
    /// GRE version other than 0.
    BadVersion,
    /// Reserved bits set (routing present, recursion control, flags).
    ReservedFlags,
    /// The GRE checksum does not verify.
    BadChecksum,
    /// The key differs from the configured one (or one side has none).
    KeyMismatch,
    /// Protocol type neither IPv4 nor IPv6.
    UnsupportedProtocol,
    /// The payload is not a well-formed packet of the announced type.
    MalformedInner,
    /// The inner destination is not one of our VIPs.
    NotForVip,
}

impl DecapDrop {
    pub const ALL: [DecapDrop; 9] = [
        DecapDrop::MalformedOuter,
        DecapDrop::TruncatedGre,
        DecapDrop::BadVersion,
        DecapDrop::ReservedFlags,
        DecapDrop::BadChecksum,
        DecapDrop::KeyMismatch,
        DecapDrop::UnsupportedProtocol,
        DecapDrop::MalformedInner,
        DecapDrop::NotForVip,
    ];

    /// The counter name.
    pub fn name(self) -> &'static str {
        match self {
            DecapDrop::MalformedOuter => "drop_malformed_outer",
            DecapDrop::TruncatedGre => "drop_truncated_gre",
            DecapDrop::BadVersion => "drop_bad_version",
            DecapDrop::ReservedFlags => "drop_reserved_flags",
            DecapDrop::BadChecksum => "drop_bad_checksum",
            DecapDrop::KeyMismatch => "drop_key_mismatch",
            DecapDrop::UnsupportedProtocol => "drop_unsupported_protocol",
            DecapDrop::MalformedInner => "drop_malformed_inner",
            DecapDrop::NotForVip => "drop_not_for_vip",
        }
    }
}

/// Checks GRE packets against a key and a VIP set.
#[derive(Debug, Clone)]
pub struct Decapsulator {
    key: Option<u32>,
    vips: Vec<Prefix>,
}

impl Decapsulator {
    pub fn new(key: Option<u32>, vips: Vec<Prefix>) -> Self {
        Self { key, vips }
    }

    /// The inner packet of `packet` (outer IPv4 + GRE + inner), or why not.
    pub fn decapsulate<'a>(&self, packet: &'a [u8]) -> Result<&'a [u8], DecapDrop> {
        let outer = Ipv4Packet::new_checked(packet).map_err(|_| DecapDrop::MalformedOuter)?;
        if outer.protocol() != ip_proto::GRE {
            return Err(DecapDrop::MalformedOuter);
        }
        let outer_header = outer.header_len();
        let outer_end = usize::from(outer.total_len());
        self.decapsulate_gre(&packet[outer_header..outer_end])
    }

    /// The inner packet of `gre_bytes` (GRE + inner, the outer header
    /// already taken off), or why not.
    pub fn decapsulate_gre<'a>(&self, gre_bytes: &'a [u8]) -> Result<&'a [u8], DecapDrop> {
        let gre = GrePacket::new_checked(gre_bytes).map_err(|_| DecapDrop::TruncatedGre)?;
        if gre.version() != 0 {
            return Err(DecapDrop::BadVersion);
        }
        if gre.reserved0() != 0 {
            return Err(DecapDrop::ReservedFlags);
        }
        if !gre.verify_checksum() {
            return Err(DecapDrop::BadChecksum);
        }
        if gre.key() != self.key {
            return Err(DecapDrop::KeyMismatch);
        }
        let inner = &gre_bytes[gre.header_len()..];
        let (inner, in_vip) = match gre.protocol_type() {
            ethertype::IPV4 => {
                let ip = Ipv4Packet::new_checked(inner).map_err(|_| DecapDrop::MalformedInner)?;
                let dst = ip.dst_addr();
                let len = usize::from(ip.total_len());
                (&inner[..len], self.vips.iter().any(|v| v.contains_v4(dst)))
            }
            ethertype::IPV6 => {
                let ip = Ipv6Packet::new_checked(inner).map_err(|_| DecapDrop::MalformedInner)?;
                let dst = ip.dst_addr();
                let len = 40 + usize::from(ip.payload_len());
                (&inner[..len], self.vips.iter().any(|v| v.contains_v6(dst)))
            }
            _ => return Err(DecapDrop::UnsupportedProtocol),
        };
        if !in_vip {
            return Err(DecapDrop::NotForVip);
        }
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::{GreRepr, Ipv4Repr};

    /// A UDP datagram 10.0.0.1:1234 -> 192.0.2.1:53 carrying "hi".
    fn inner() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 30, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1, // IPv4
            0x04, 0xd2, 0, 53, 0, 10, 0, 0, b'h', b'i', // UDP
        ];
        Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

    /// outer IPv4 (10.0.0.1 -> 10.0.0.2) + GRE as `repr` + `payload`.
    fn wrapped(repr: GreRepr, payload: &[u8]) -> Vec<u8> {
        let gre_len = repr.header_len() + payload.len();
        let mut p = vec![0xA5; 20 + gre_len];
        Ipv4Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: ip_proto::GRE,
            payload_len: gre_len as u16,
            ttl: 64,
            ident: 7,
            dont_frag: false,
        }
        .emit(&mut p);
        p[20 + repr.header_len()..].copy_from_slice(payload);
        repr.emit(&mut p[20..]);
        p
    }

    fn gre(key: Option<u32>) -> GreRepr {
        GreRepr {
            protocol_type: ethertype::IPV4,
            key,
            sequence: None,
            checksum: false,
        }
    }

    fn decap(key: Option<u32>) -> Decapsulator {
        Decapsulator::new(key, vec!["192.0.2.1".parse().unwrap()])
    }

    #[test]
    fn the_inner_packet_comes_out_byte_for_byte() {
        let packet = wrapped(gre(Some(9)), &inner());
        assert_eq!(decap(Some(9)).decapsulate(&packet), Ok(&inner()[..]));
        let packet = wrapped(gre(None), &inner());
        assert_eq!(decap(None).decapsulate(&packet), Ok(&inner()[..]));
    }

    #[test]
    fn hand_written_bytes_decapsulate() {
        let mut packet = vec![
            0x45, 0, 0, 58, 0, 0, 0, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4, GRE
            0x20, 0x00, 0x08, 0x00, 0, 0, 0, 9, // K, IPv4, key 9
        ];
        packet.extend_from_slice(&inner());
        assert_eq!(decap(Some(9)).decapsulate(&packet), Ok(&inner()[..]));
    }

    #[test]
    fn a_checksummed_packet_is_verified() {
        let repr = GreRepr {
            checksum: true,
            sequence: Some(3),
            ..gre(None)
        };
        let mut packet = wrapped(repr, &inner());
        assert_eq!(decap(None).decapsulate(&packet), Ok(&inner()[..]));
        let last = packet.len() - 1;
        packet[last] ^= 1;
        assert_eq!(
            decap(None).decapsulate(&packet),
            Err(DecapDrop::BadChecksum)
        );
    }

    #[test]
    fn a_wrong_missing_or_unexpected_key_is_a_key_mismatch() {
        let d = decap(Some(9));
        for key in [Some(8), None] {
            let packet = wrapped(gre(key), &inner());
            assert_eq!(d.decapsulate(&packet), Err(DecapDrop::KeyMismatch));
        }
        let packet = wrapped(gre(Some(9)), &inner());
        assert_eq!(
            decap(None).decapsulate(&packet),
            Err(DecapDrop::KeyMismatch)
        );
    }

    #[test]
    fn version_reserved_bits_and_protocol_are_checked() {
        let good = wrapped(gre(None), &inner());
        let mut v1 = good.clone();
        v1[21] |= 1;
        assert_eq!(decap(None).decapsulate(&v1), Err(DecapDrop::BadVersion));
        let mut routing = good.clone();
        routing[20] |= 0x40;
        assert_eq!(
            decap(None).decapsulate(&routing),
            Err(DecapDrop::ReservedFlags)
        );
        let mut arp = good.clone();
        arp[22..24].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(
            decap(None).decapsulate(&arp),
            Err(DecapDrop::UnsupportedProtocol)
        );
        let mut v6 = good;
        v6[22..24].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        assert_eq!(decap(None).decapsulate(&v6), Err(DecapDrop::MalformedInner));
    }

    #[test]
    fn inner_packets_for_other_addresses_are_refused() {
        let mut other = inner();
        other[19] = 2;
        let packet = wrapped(gre(None), &other);
        assert_eq!(decap(None).decapsulate(&packet), Err(DecapDrop::NotForVip));
    }

    #[test]
    fn every_truncation_is_a_drop_never_a_panic() {
        let packet = wrapped(gre(Some(9)), &inner());
        for len in 0..packet.len() {
            let mut cut = packet[..len].to_vec();
            if len >= 4 {
                // Keep the outer length honest so the inner layers get checked too.
                cut[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            }
            assert!(decap(Some(9)).decapsulate(&cut).is_err(), "len {len}");
        }
    }

    #[test]
    fn trailing_bytes_after_the_inner_packet_are_cut_off() {
        let mut padded = inner();
        padded.extend_from_slice(&[0; 6]);
        let packet = wrapped(gre(None), &padded);
        assert_eq!(decap(None).decapsulate(&packet), Ok(&inner()[..]));
    }

    #[test]
    fn gre_over_ipv6_arrives_without_its_outer_header_and_is_checked_alike() {
        // What an IPv6 raw socket reads: GRE and the inner packet only.
        let packet = wrapped(gre(Some(9)), &inner());
        let gre_only = &packet[20..];
        assert_eq!(decap(Some(9)).decapsulate_gre(gre_only), Ok(&inner()[..]));
        assert_eq!(
            decap(None).decapsulate_gre(gre_only),
            Err(DecapDrop::KeyMismatch)
        );
        for len in 0..gre_only.len() {
            assert!(
                decap(Some(9)).decapsulate_gre(&gre_only[..len]).is_err(),
                "len {len}"
            );
        }
    }

    #[test]
    fn drop_reasons_index_their_counters_in_declaration_order() {
        for (index, reason) in DecapDrop::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, index, "{}", reason.name());
        }
    }
}
