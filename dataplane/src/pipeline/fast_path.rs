//! The fast path: the frame nearly every packet is — untagged Ethernet,
//! option-less IPv4 to the balancer, a basic GRE header, an option-less,
//! unfragmented inner IPv4 TCP or UDP packet — checked at fixed offsets in a
//! few straight-line comparisons (Katran's approach). Anything else, valid
//! or not, falls through to the general path, which then decides it; the
//! fast path never decides a frame differently from the general path (a
//! property test holds it to that).

use crate::forwarding::{BackendSlot, ForwardingTable};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::checksum;

use super::balance::by_hash;
use super::state::WorkerState;

/// Offsets in the fast-path frame.
const ETHERTYPE: usize = 12;
const OUTER: usize = 14;
const GRE: usize = OUTER + 20;
const INNER: usize = GRE + 4;
const L4: usize = INNER + 20;
/// Shortest frame the fast path takes: up to the inner UDP header's end.
const MIN_LEN: usize = L4 + 8;

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The fixed fields of a fast-path frame, checked as five little-endian
/// 64-bit words (at `ETHERTYPE`, `OUTER + 6`, `OUTER + 14`, `GRE + 2` and
/// `INNER + 6`): each word masked to the bits that matter must equal the
/// expected bits. One load, AND and XOR per word instead of a comparison
/// and branch per field.
///
/// Word 0: ethertype 0x0800, outer version 4 with a 20-byte header.
const MASK_0: u64 = 0x00FF_FFFF;
const WANT_0: u64 = 0x0045_0008;
/// Word 1: outer reserved bit, MF and fragment offset all zero; protocol 47 (GRE).
const MASK_1: u64 = 0xFF00_FFBF;
const WANT_1: u64 = 0x2F00_0000;
/// Word 2: outer destination (the balancer's address, bytes 2..6), then the
/// first GRE word's flag bits and version all zero (bytes 6..8).
const MASK_2: u64 = 0xFFFF_FFFF_FFFF_0000;
/// Word 3: GRE protocol 0x0800, inner version 4 with a 20-byte header.
const MASK_3: u64 = 0x00FF_FFFF;
const WANT_3: u64 = 0x0045_0008;
/// Word 4: inner reserved bit, MF and fragment offset all zero.
const MASK_4: u64 = 0xFFBF;

/// The inner flow of a fast-path frame: its hash words and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastFlow {
    pub words: [u64; 2],
    pub protocol: u8,
}

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// The eight bytes at `at` as a little-endian word (one unaligned load).
#[inline(always)]
fn le64(d: &[u8; MIN_LEN], at: usize) -> u64 {
    u64::from_le_bytes([
        d[at],
        d[at + 1],
        d[at + 2],
        d[at + 3],
        d[at + 4],
        d[at + 5],
        d[at + 6],
        d[at + 7],
    ])
}

/// The inner flow if the frame is a fast-path frame addressed to the
/// balancer with every header valid; `None` sends it down the general path.
#[inline(always)]
pub fn classify(frame: &[u8], table: &ForwardingTable) -> Option<FastFlow> {
    // One length check up front; every header read below is at a constant
    // offset into this fixed-size view, so none needs its own check.
    let d: &[u8; MIN_LEN] = frame.first_chunk()?;
    let w0 = le64(d, ETHERTYPE);
    let w1 = le64(d, OUTER + 6);
    let w2 = le64(d, OUTER + 14);
    let lb = u64::from(u32::from_le_bytes(table.lb_ipv4)) << 16;
    let mismatch = (w0 & MASK_0 ^ WANT_0)
        | (w1 & MASK_1 ^ WANT_1)
        | (w2 & MASK_2 ^ lb)
        | (le64(d, GRE + 2) & MASK_3 ^ WANT_3)
        | (le64(d, INNER + 6) & MASK_4);
    if mismatch != 0 || d[OUTER + 8] <= 1 {
        return None;
    }
    let outer_len = usize::from(be16(d, OUTER + 2));
    let inner_len = usize::from(be16(d, INNER + 2));
    // The inner packet must fill the GRE payload exactly as the general path
    // reads it: within the outer packet, which lies within the frame.
    if outer_len + OUTER > frame.len() || inner_len + 24 > outer_len || inner_len < 28 {
        return None;
    }
    // The outer header's one's-complement sum, in native byte order (RFC
    // 1071 section 2(B): the sum of a valid header folds to 0xFFFF in either
    // order): bytes 2..8 of word 0, all of word 1, and word 2, whose last two
    // bytes (the GRE flags) were just found to be zero.
    let halves = |w: u64| (w >> 32) + (w & 0xFFFF_FFFF);
    if checksum::fold64((w0 >> 16) + halves(w1) + halves(w2)) != 0xFFFF {
        return None;
    }
    let protocol = d[INNER + 9];
    let l4_len = inner_len - 20;
    let transport_ok = match protocol {
        // The TCP data offset is read only once 20 bytes are known present.
        TCP => {
            l4_len >= 20
                && frame.get(L4 + 12).is_some_and(|&b| {
                    let data_offset = usize::from(b >> 4) * 4;
                    data_offset >= 20 && data_offset <= l4_len
                })
        }
        UDP => {
            let udp_len = usize::from(be16(d, L4 + 4));
            udp_len >= 8 && udp_len <= l4_len
        }
        _ => false,
    };
    if !transport_ok {
        return None;
    }
    // Source and destination address are adjacent: read big-endian, they are
    // already the first hash word; the ports likewise head the second.
    let addresses = u64::from_be_bytes(*d[INNER + 12..].first_chunk()?);
    let ports = u32::from_be_bytes(*d[L4..].first_chunk()?);
    Some(FastFlow {
        words: [
            addresses,
            u64::from(ports) << 32 | u64::from(protocol) << 24 | 4,
        ],
        protocol,
    })
}

/// Forwards a fast-path frame whose flow `classify` found, `hash` being
/// the flow's hash.
#[inline(always)]
pub fn forward(
    frame: &mut Frame<'_>,
    protocol: u8,
    hash: u64,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Verdict {
    // `classify` saw at least MIN_LEN bytes; this cannot fail, but if the
    // frame were shorter it would be dropped, not forwarded unrewritten.
    let Some(headers) = frame.data_mut().first_chunk_mut::<GRE>() else {
        return Verdict::Drop(DropReason::TruncatedIpv4);
    };
    match by_hash(hash, protocol, table, state) {
        Ok((_, backend)) => {
            rewrite(headers, backend, table);
            Verdict::ToWire
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// `gre_mode::rewrite` for a frame `classify` accepted: the same bytes out
/// (the property test compares them), without per-field bounds checks.
///
/// The checksum update is RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, over the
/// words forwarding changes, summed in native byte order: the
/// one's-complement sum does not depend on byte order (RFC 1071 section
/// 2(B)), so no word needs swapping, and the result, stored back in native
/// order, is the big-endian checksum. `classify` found the old destination
/// to be the balancer's address, which becomes the new source: those two
/// terms cancel, leaving the old source going, the backend's address coming,
/// and the TTL one lower, which in native order (TTL in the low byte of its
/// word) adds `~1`, 0xFFFE. It is the value `checksum::update_sum` computes:
/// both are the same one's-complement sum, and neither is ever the all-zero
/// sum (0xFFFE is in this one), so the two agree bit for bit.
#[inline]
fn rewrite(h: &mut [u8; GRE], backend: &BackendSlot, table: &ForwardingTable) {
    let ne16 = |h: &[u8; GRE], at: usize| u64::from(u16::from_ne_bytes([h[at], h[at + 1]]));
    let ne32 = |h: &[u8; GRE], at: usize| {
        u64::from(u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]))
    };
    // `!x` of a 16- or 32-bit word complements each 16-bit half in it.
    let acc = (0xFFFF ^ ne16(h, OUTER + 10))
        + (0xFFFF_FFFF ^ ne32(h, OUTER + 12))
        + u64::from(u32::from_ne_bytes(backend.addr))
        + 0xFFFE;
    h[0..6].copy_from_slice(&backend.mac);
    h[6..12].copy_from_slice(&table.lb_mac);
    // `classify` checked the TTL is at least 2.
    h[OUTER + 8] -= 1;
    h[OUTER + 12..OUTER + 16].copy_from_slice(&table.lb_ipv4);
    h[OUTER + 16..OUTER + 20].copy_from_slice(&backend.addr);
    // Four words of at most 32 bits: under 2^34, so two folds bring the
    // value under 2^32 in the same class modulo 0xFFFF.
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    let sum = !checksum::fold(acc as u32);
    h[OUTER + 10..OUTER + 12].copy_from_slice(&sum.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::{rewrite, GRE, OUTER};
    use crate::forwarding::{BackendSlot, BackendSpec, ForwardingSpec, ForwardingTable};
    use crate::pipeline::gre_mode;

    fn table(lb_ipv4: [u8; 4]) -> ForwardingTable {
        ForwardingTable::build(&ForwardingSpec {
            lb_ipv4: Ipv4Addr::from(lb_ipv4),
            lb_mac: [2, 0, 0, 0, 0, 1],
            vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            backends: vec![BackendSpec {
                slot: 0,
                addr: Ipv4Addr::new(10, 1, 0, 1),
                weight: 1,
                mac: Some([2, 0, 0, 0, 1, 0]),
                generation: 0,
            }],
            seed: 1,
            table_size: 7,
            mtu: 1500,
            generation: 1,
        })
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Whatever the header's checksum field holds (valid or not, 0x0000
        /// or 0xFFFF included), the native-order update writes the bytes the
        /// general path's big-endian `update_sum` writes.
        #[test]
        fn the_fast_rewrite_writes_what_the_general_rewrite_writes(
            mut header in any::<[u8; GRE]>(),
            ttl in 2u8..,
            checksum in prop_oneof![Just(0u16), Just(0xFFFF), any::<u16>()],
            lb_ipv4 in any::<[u8; 4]>(),
            backend_addr in any::<[u8; 4]>(),
        ) {
            header[OUTER + 8] = ttl;
            header[OUTER + 9] = 47;
            header[OUTER + 10..OUTER + 12].copy_from_slice(&checksum.to_be_bytes());
            // What `classify` guarantees: the frame is addressed to the balancer.
            header[OUTER + 16..OUTER + 20].copy_from_slice(&lb_ipv4);
            let table = table(lb_ipv4);
            let backend = BackendSlot {
                addr: backend_addr,
                mac: [2, 0, 0, 9, 9, 9],
                generation: 0,
                usable: true,
            };
            let mut fast = header;
            rewrite(&mut fast, &backend, &table);
            let mut general = header;
            gre_mode::rewrite(&mut general, OUTER, &backend, &table);
            prop_assert_eq!(fast, general);
        }
    }
}
