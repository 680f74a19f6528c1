//! The fast path: the frame nearly every packet is — untagged Ethernet,
//! option-less IPv4 to the balancer, a basic GRE header, an option-less,
//! unfragmented inner IPv4 TCP or UDP packet, going to an IPv4 backend (an
//! IPv6 backend's outer header is rebuilt by the general path's
//! `gre_mode`) — checked at fixed offsets in a
//! few straight-line comparisons (Katran's approach). Anything else, valid
//! or not, falls through to the general path, which then decides it; the
//! fast path never decides a frame differently from the general path (a
//! property test holds it to that).

use crate::conntrack::TimeoutClass;
use crate::flow::FlowKey;
use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::checksum;

use super::balance::{by_hash, drop_of_slot};
use super::outer::Outer;
use super::state::WorkerState;

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
pub use avx512::Avx512Fast;

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
const _: () = assert!(TCP & 1 != UDP & 1);

/// The fixed fields of a fast-path frame from the ethertype to the inner
/// IPv4 header's flags, as a mask of the bits that matter and their
/// expected values (the outer destination, bytes 18..22 of the window, is
/// the balancer's address, filled in per table). Checked as a few masked
/// 64-bit words instead of a comparison and branch per field.
const WINDOW: usize = ETHERTYPE;
const WINDOW_LEN: usize = 34;
#[rustfmt::skip]
const WINDOW_MASK: [u8; WINDOW_LEN] = [
    0xff, 0xff,                   // ethertype
    0xff, 0, 0, 0, 0, 0,          // outer version/IHL, TOS, length, id
    0xbf, 0xff, 0, 0xff,          // flags and fragment offset, TTL, protocol
    0, 0, 0, 0, 0, 0,             // checksum, source
    0xff, 0xff, 0xff, 0xff,       // destination
    0xff, 0xff, 0xff, 0xff,       // GRE flags and version, protocol
    0xff, 0, 0, 0, 0, 0,          // inner version/IHL, TOS, length, id
    0xbf, 0xff,                   // inner flags and fragment offset
];
#[rustfmt::skip]
const WINDOW_WANT: [u8; WINDOW_LEN] = [
    0x08, 0x00,
    0x45, 0, 0, 0, 0, 0,
    0, 0, 0, 47,
    0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,
    0, 0, 0x08, 0x00,
    0x45, 0, 0, 0, 0, 0,
    0, 0,
];
/// Where the outer destination lies in the window.
const WINDOW_DST: usize = OUTER + 16 - WINDOW;

/// The window's bytes as four little-endian 64-bit words and a 16-bit
/// tail, loaded once: the fixed-field check and the outer header's checksum
/// both read them (and a whole-word use keeps the compiler from splitting
/// each load into the few bytes the mask keeps).
struct Window {
    words: [u64; 4],
    tail: u16,
}

impl Window {
    #[inline(always)]
    fn load(d: &[u8; MIN_LEN]) -> Self {
        Self::of(&d[WINDOW..])
    }

    /// The words of the first `WINDOW_LEN` bytes of `bytes` (zeros past
    /// its end, which a window from a `MIN_LEN` frame never has).
    #[inline(always)]
    fn of(bytes: &[u8]) -> Self {
        let word = |i: usize| u64::from_le_bytes(*bytes[8 * i..].first_chunk().unwrap_or(&[0; 8]));
        let tail = bytes
            .get(32..WINDOW_LEN)
            .map_or(0, |t| u16::from_le_bytes([t[0], t[1]]));
        Self {
            words: [word(0), word(1), word(2), word(3)],
            tail,
        }
    }

    /// The mask of the fixed fields and their expected values, as windows,
    /// `lb_ipv4` being the balancer's address.
    #[inline(always)]
    fn expected(lb_ipv4: [u8; 4]) -> (Self, Self) {
        let mut want = WINDOW_WANT;
        want[WINDOW_DST..WINDOW_DST + 4].copy_from_slice(&lb_ipv4);
        (Self::of(&WINDOW_MASK), Self::of(&want))
    }

    /// Whether every fixed field matches, `lb_ipv4` being the balancer's address.
    #[inline(always)]
    fn matches(&self, lb_ipv4: [u8; 4]) -> bool {
        let (mask, want) = Self::expected(lb_ipv4);
        let mut mismatch = u64::from((self.tail & mask.tail) ^ want.tail);
        for i in 0..4 {
            mismatch |= (self.words[i] & mask.words[i]) ^ want.words[i];
        }
        mismatch == 0
    }

    /// The one's-complement sum of the outer IPv4 header (window bytes
    /// 2..22) in native byte order: word 0 without its first two bytes (the
    /// ethertype), word 1, and word 2, whose last two bytes (the GRE flags)
    /// are zero in a window that `matches`.
    #[inline(always)]
    fn outer_header_sum(&self) -> u64 {
        let [w0, w1, w2, _] = self.words;
        (w0 >> 16) + (w1 >> 32) + (w1 & 0xFFFF_FFFF) + (w2 >> 32) + (w2 & 0xFFFF_FFFF)
    }
}

/// The inner flow of a fast-path frame: its hash words (the protocol among
/// them; `forward` reads it from the frame again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastFlow {
    pub words: [u64; 2],
}

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// The inner flow if the frame is a fast-path frame addressed to the
/// balancer with every header valid; `None` sends it down the general path.
#[inline(always)]
pub fn classify(frame: &[u8], table: &ForwardingTable) -> Option<FastFlow> {
    // One length check up front; every header read below is at a constant
    // offset into this fixed-size view, so none needs its own check.
    let d: &[u8; MIN_LEN] = frame.first_chunk()?;
    let window = Window::load(d);
    if !window.matches(table.lb_ipv4) || d[OUTER + 8] <= 1 {
        return None;
    }
    let outer_len = usize::from(be16(d, OUTER + 2));
    let inner_len = usize::from(be16(d, INNER + 2));
    // The inner packet must fill the GRE payload exactly as the general path
    // reads it: within the outer packet, which lies within the frame.
    if outer_len + OUTER > frame.len() || inner_len + 24 > outer_len || inner_len < 28 {
        return None;
    }
    // A valid header's sum folds to 0xFFFF in either byte order (RFC 1071
    // section 2(B)), so the native-order sum needs no swapping.
    if !checksum::folds_to_ones(window.outer_header_sum()) {
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
    })
}

/// Forwards a fast-path frame whose flow `classify` found, `hash` being
/// the flow's hash.
#[inline(always)]
pub fn forward(
    frame: &mut Frame<'_>,
    hash: u64,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Verdict {
    let bytes = frame.len();
    // `classify` saw at least MIN_LEN bytes; this cannot fail, but if the
    // frame were shorter it would be dropped, not forwarded unrewritten.
    let Some(headers) = frame.data_mut().first_chunk_mut::<MIN_LEN>() else {
        return Verdict::Drop(DropReason::TruncatedIpv4);
    };
    // `classify` admits TCP (6) and UDP (17) only, told apart by their
    // lowest bit: one AND instead of a comparison and a select.
    let protocol = headers[INNER + 9];
    debug_assert!(protocol == TCP || protocol == UDP);
    let class = if protocol & 1 == TCP & 1 {
        TimeoutClass::Tcp
    } else {
        TimeoutClass::Udp
    };
    // Made only for a new flow, which looks up its service by it.
    let key = || {
        let at = |i: usize| [headers[i], headers[i + 1], headers[i + 2], headers[i + 3]];
        let port = |i: usize| u16::from_be_bytes([headers[i], headers[i + 1]]);
        FlowKey::v4(
            at(INNER + 12),
            at(INNER + 16),
            protocol,
            port(L4),
            port(L4 + 2),
        )
    };
    match by_hash(hash, class, key, bytes, Ingress::Gre, table, state) {
        // Read from the slot's cache line, loaded already: a branch that an
        // IPv4-only balancer always predicts.
        Ok((slot, backend)) if backend.is_ipv6 => match to_ipv6(frame, backend, table) {
            Verdict::Drop(reason) => Verdict::Drop(drop_of_slot(reason, slot, table, state)),
            verdict => verdict,
        },
        Ok((_, backend)) => {
            rewrite(headers, backend);
            Verdict::ToWire
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// A fast-path frame balanced to an IPv6 backend: its outer IPv4 header is
/// replaced as the general path replaces it. Out of line: the IPv4 case
/// carries none of it.
#[inline(never)]
#[cold]
fn to_ipv6(frame: &mut Frame<'_>, backend: &BackendSlot, table: &ForwardingTable) -> Verdict {
    let d = frame.data();
    // `classify` checked these: an option-less header, total length within
    // the frame, TTL at least 2.
    let outer = Outer {
        is_ipv6: false,
        header_len: 20,
        packet_len: usize::from(be16(d, OUTER + 2)),
        traffic_class: d[OUTER + 1],
        hop_limit: d[OUTER + 8],
    };
    match super::outer::replace(frame, OUTER, &outer, backend, table) {
        Ok(()) => Verdict::ToWire,
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
/// sum (0xFFFE is in this one), so the two agree bit for bit. Everything in
/// the sum but the old checksum and source is the backend's, computed when
/// its table was built (`BackendSlot::checksum_base`), as are the Ethernet
/// and outer addresses written.
#[inline]
fn rewrite(h: &mut [u8; MIN_LEN], backend: &BackendSlot) {
    let ne16 = |h: &[u8; MIN_LEN], at: usize| u64::from(u16::from_ne_bytes([h[at], h[at + 1]]));
    let ne32 = |h: &[u8; MIN_LEN], at: usize| {
        u64::from(u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]))
    };
    // `!x` of a 16- or 32-bit word complements each 16-bit half in it, and
    // is `0xFFFF - x` or `0xFFFF_FFFF - x`: the base holds those constants,
    // the backend's address and 0xFFFE.
    let acc = backend.checksum_base - ne16(h, OUTER + 10) - ne32(h, OUTER + 12);
    h[0..12].copy_from_slice(&backend.ethernet);
    // `classify` checked the TTL is at least 2.
    h[OUTER + 8] -= 1;
    h[OUTER + 12..OUTER + 20].copy_from_slice(&backend.outer_addresses);
    // Never zero: it includes 0xFFFE.
    let sum = !checksum::fold64_nonzero(acc);
    h[OUTER + 10..OUTER + 12].copy_from_slice(&sum.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::{rewrite, MIN_LEN, OUTER};
    use crate::forwarding::{BackendSlot, BackendSpec, ForwardingSpec, ForwardingTable};
    use crate::pipeline::gre_mode;

    fn table(lb_ipv4: [u8; 4]) -> ForwardingTable {
        ForwardingTable::build(&ForwardingSpec {
            lb_ipv4: Ipv4Addr::from(lb_ipv4),
            lb_ipv6: None,
            lb_mac: [2, 0, 0, 0, 0, 1],
            vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            backends: vec![BackendSpec {
                slot: 0,
                addr: Ipv4Addr::new(10, 1, 0, 1).into(),
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
            mut header in any::<[u8; MIN_LEN]>(),
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
            let backend = BackendSlot::new(
                backend_addr.into(),
                Some([2, 0, 0, 9, 9, 9]),
                0,
                (table.lb_ipv4, table.lb_mac),
            );
            let mut fast = header;
            rewrite(&mut fast, &backend);
            let mut general = header;
            gre_mode::rewrite(&mut general, OUTER, &backend, &table);
            prop_assert_eq!(fast, general);
        }
    }
}
