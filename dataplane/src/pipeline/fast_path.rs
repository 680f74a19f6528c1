//! The fast path: the frame nearly every packet is — untagged Ethernet,
//! option-less IPv4 to the balancer, a basic GRE header, an option-less,
//! unfragmented inner IPv4 TCP or UDP packet — checked at fixed offsets in a
//! few straight-line comparisons (Katran's approach). Anything else, valid
//! or not, falls through to the general path, which then decides it; the
//! fast path never decides a frame differently from the general path (a
//! property test holds it to that).

use crate::flow::FlowHasher;
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

/// The inner flow if the frame is a fast-path frame addressed to the
/// balancer with every header valid; `None` sends it down the general path.
#[inline]
pub fn classify(frame: &[u8], table: &ForwardingTable) -> Option<FastFlow> {
    // One length check up front; every header read below is at a constant
    // offset into this fixed-size view, so none needs its own check.
    let d: &[u8; MIN_LEN] = frame.first_chunk()?;
    if be16(d, ETHERTYPE) != 0x0800
        || d[OUTER] != 0x45
        || d[OUTER + 9] != 47
        || d[OUTER + 16..OUTER + 20] != table.lb_ipv4
        || be16(d, OUTER + 6) & 0xbfff != 0 // reserved bit, MF, offset
        || d[OUTER + 8] <= 1
        || be16(d, GRE) != 0 // no C/R/K/S, no reserved bits, version 0
        || be16(d, GRE + 2) != 0x0800
        || d[INNER] != 0x45
        || be16(d, INNER + 6) & 0xbfff != 0
    {
        return None;
    }
    let outer_len = usize::from(be16(d, OUTER + 2));
    let inner_len = usize::from(be16(d, INNER + 2));
    // The inner packet must fill the GRE payload exactly as the general path
    // reads it: within the outer packet, which lies within the frame.
    if outer_len + OUTER > frame.len() || inner_len + 24 > outer_len || inner_len < 28 {
        return None;
    }
    let header: &[u8; 20] = d[OUTER..GRE].try_into().ok()?;
    if checksum::fold(checksum::sum_ipv4_header(header)) != 0xFFFF {
        return None;
    }
    let protocol = d[INNER + 9];
    let l4_len = inner_len - 20;
    let transport_ok = match protocol {
        // The TCP data offset is read only once 20 bytes are known present.
        TCP => {
            l4_len >= 20 && {
                let data_offset = usize::from(frame[L4 + 12] >> 4) * 4;
                data_offset >= 20 && data_offset <= l4_len
            }
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
    let four = |at: usize| [d[at], d[at + 1], d[at + 2], d[at + 3]];
    Some(FastFlow {
        words: FlowHasher::ipv4_words(
            four(INNER + 12),
            four(INNER + 16),
            protocol,
            be16(d, L4),
            be16(d, L4 + 2),
        ),
        protocol,
    })
}

/// Forwards a fast-path frame whose flow `classify` found, `hash` being
/// the flow's hash.
#[inline]
pub fn forward(
    frame: &mut Frame<'_>,
    flow: FastFlow,
    hash: u64,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Verdict {
    // `classify` saw at least MIN_LEN bytes; this cannot fail, but if the
    // frame were shorter it would be dropped, not forwarded unrewritten.
    let Some(headers) = frame.data_mut().first_chunk_mut::<GRE>() else {
        return Verdict::Drop(DropReason::TruncatedIpv4);
    };
    match by_hash(hash, flow.protocol, table, state) {
        Ok((_, backend)) => {
            rewrite(headers, backend, table);
            Verdict::ToWire
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// `gre_mode::rewrite` for the fast path's fixed layout: the same bytes out
/// (the property test compares them), without per-field bounds checks.
#[inline]
fn rewrite(h: &mut [u8; GRE], backend: &BackendSlot, table: &ForwardingTable) {
    let changed = |h: &[u8; GRE]| {
        u32::from(be16(h, OUTER + 8))
            + u32::from(be16(h, OUTER + 12))
            + u32::from(be16(h, OUTER + 14))
            + u32::from(be16(h, OUTER + 16))
            + u32::from(be16(h, OUTER + 18))
    };
    h[0..6].copy_from_slice(&backend.mac);
    h[6..12].copy_from_slice(&table.lb_mac);
    let before = changed(h);
    let old_checksum = be16(h, OUTER + 10);
    h[OUTER + 8] -= 1;
    h[OUTER + 12..OUTER + 16].copy_from_slice(&table.lb_ipv4);
    h[OUTER + 16..OUTER + 20].copy_from_slice(&backend.addr);
    let sum = checksum::update_sum(old_checksum, before, changed(h));
    h[OUTER + 10..OUTER + 12].copy_from_slice(&sum.to_be_bytes());
}
