//! The per-packet pipeline: parse, pick a backend, rewrite in place, verdict.
//!
//! ```text
//! Ethernet (one 802.1Q tag) -> IPv4 to the balancer's address, GRE -> gre_mode
//!                           -> IPv6 to the balancer's address, GRE -> gre_mode
//!                           -> IPv4/IPv6 to a VIP                -> vip_mode
//!                           -> anything else                     -> ToHost
//! ```
//!
//! What the dataplane supports, by family: GRE over IPv4 or over IPv6 in
//! (GRE mode), plain IPv4 or IPv6 to a VIP (VIP mode); inner flows of either
//! family inside GRE; IPv4 and IPv6 backends, mixed in one Maglev table,
//! reached by GRE over their own family (`gre_mode` has the table of
//! rewrites). IPv6 GRE needs the balancer's IPv6 address
//! (`ForwardingSpec::lb_ipv6`).
//! Every length is checked before it is read: malformed input addressed to
//! us is a `Drop(reason)`, never forwarded and never a panic.
//!
//! The common frame (untagged, option-less IPv4 GRE carrying IPv4 TCP or UDP,
//! toward an IPv4 backend) takes `fast_path` at fixed offsets; everything else takes the general
//! path above, which decides the same frames identically. A batch handed
//! over whole ([`FrameHandler::decide_all`]) has every fast-path frame parsed
//! and hashed first, and its connection-table bucket loaded while the frames
//! before it are decided.

mod balance;
mod fast_path;
mod flow_of;
mod gre_mode;
mod outer;
mod state;
mod too_big;
mod vip_mode;

pub use flow_of::{of_ipv4, of_ipv6, FlowOf};
pub use state::{WorkerConfig, WorkerState};
pub use vip_mode::{ENCAP_LEN, ENCAP_LEN_V6};

use crate::forwarding::ForwardingTable;
use crate::frame::Frame;
use crate::io::{FrameHandler, CHUNK};
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethertype, EthernetFrame};

/// Flows hashed together: one per lane of [`FlowHasher::ipv4_x8`](crate::flow::FlowHasher::ipv4_x8).
const LANES: usize = 8;

/// Where a frame is headed inside the pipeline.
enum Path {
    /// IP to the balancer's address: GRE mode (or the host's own traffic).
    Gre {
        l2: usize,
        outer_v6: bool,
    },
    /// IP to a configured VIP: VIP mode.
    Vip {
        l2: usize,
        is_ipv6: bool,
    },
    /// Not ours: passthrough.
    Host,
    Drop(DropReason),
}

/// [`Pipeline`] as a [`FrameHandler`] for one batch.
#[derive(Debug)]
pub struct BatchHandler<'a> {
    table: &'a ForwardingTable,
    state: &'a mut WorkerState,
}

impl FrameHandler for BatchHandler<'_> {
    #[inline]
    fn decide(&mut self, frame: &mut Frame<'_>) -> Verdict {
        Pipeline::process(frame, self.table, self.state)
    }

    #[inline]
    fn decide_all(&mut self, frames: &mut [Frame<'_>], verdicts: &mut [Verdict]) {
        for (frames, verdicts) in frames.chunks_mut(CHUNK).zip(verdicts.chunks_mut(CHUNK)) {
            Pipeline::process_chunk(frames, verdicts, self.table, self.state);
        }
    }
}

/// The packet pipeline. It holds no state of its own: the forwarding table
/// is shared and read-only, the worker state is the worker's alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipeline;

impl Pipeline {
    /// Decides one frame's fate, rewriting it in place when it is forwarded,
    /// and counts the verdict.
    #[inline]
    pub fn process(
        frame: &mut Frame<'_>,
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) -> Verdict {
        let verdict = Self::decide(frame, table, state);
        state.counters.count(verdict, frame.len());
        verdict
    }

    /// [`Self::process`] for up to [`CHUNK`] frames at once, `verdicts[i]`
    /// for `frames[i]`, in two passes: first every frame is parsed, its
    /// flow hashed (eight at a time) and its connection-table bucket
    /// prefetched, so that across the chunk the memory loads overlap
    /// instead of stalling one after another; then each is decided.
    #[inline]
    fn process_chunk(
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) {
        let n = frames.len().min(verdicts.len()).min(CHUNK);
        // Bit `i`: frame `i` takes the fast path, its flow's hash in `hashes[i]`.
        let mut fast = 0u64;
        let mut hashes = [0u64; CHUNK];
        for first in (0..n).step_by(LANES) {
            let group = &frames[first..n.min(first + LANES)];
            let Some(group_hashes) = hashes[first..].first_chunk_mut::<LANES>() else {
                break;
            };
            let mut group_fast = Self::classify_group(group, group_hashes, table, state);
            fast |= group_fast << first;
            while group_fast != 0 {
                state
                    .conntrack
                    .prefetch(group_hashes[group_fast.trailing_zeros() as usize]);
                group_fast &= group_fast - 1;
            }
        }
        // Frames forwarded, and their bytes, counted once for the chunk.
        let (mut to_wire, mut to_wire_bytes) = (0, 0);
        for (i, (frame, verdict)) in frames
            .iter_mut()
            .zip(verdicts.iter_mut())
            .take(n)
            .enumerate()
        {
            let decided = if fast & (1 << i) != 0 {
                fast_path::forward(frame, hashes[i], table, state)
            } else {
                Self::decide(frame, table, state)
            };
            if decided == Verdict::ToWire {
                to_wire += 1;
                to_wire_bytes += frame.len() as u64;
            } else {
                state.counters.count(decided, frame.len());
            }
            *verdict = decided;
        }
        state.counters.to_wire.packets.add(to_wire);
        state.counters.to_wire.bytes.add(to_wire_bytes);
    }

    /// Classifies up to eight frames: bit `i` of the result is set when
    /// `frames[i]` takes the fast path, `hashes[i]` then being its flow's
    /// hash. The other frames' buckets are prefetched here.
    #[inline]
    fn classify_group(
        frames: &[Frame<'_>],
        hashes: &mut [u64; LANES],
        table: &ForwardingTable,
        state: &WorkerState,
    ) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if let (Some(simd), Some(x8)) = (state.avx512, table.hasher.x8()) {
            let fast = simd.classify_and_hash(x8, frames, table.lb_ipv4, hashes);
            for (i, frame) in frames.iter().enumerate() {
                if fast & (1 << i) == 0 {
                    Self::prefetch_general(frame.data(), table, state);
                }
            }
            return u64::from(fast);
        }
        let mut fast = 0u64;
        let mut words = [[0u64; 2]; LANES];
        for (i, frame) in frames.iter().enumerate() {
            match fast_path::classify(frame.data(), table) {
                Some(flow) => {
                    words[i] = flow.words;
                    fast |= 1 << i;
                }
                None => Self::prefetch_general(frame.data(), table, state),
            }
        }
        // Lanes past the group or off the fast path hash zeros: in the
        // vector that costs nothing, and their hashes go unread.
        if fast != 0 {
            *hashes = table.hasher.ipv4_x8(&words);
        }
        fast
    }

    /// Starts loading the connection-table bucket of a frame off the fast
    /// path, if it has a flow.
    fn prefetch_general(data: &[u8], table: &ForwardingTable, state: &WorkerState) {
        let flow = match Self::path_of(data, table) {
            Path::Gre { l2, outer_v6 } => gre_mode::flow_of(data, l2, outer_v6)
                .ok()
                .flatten()
                .map(|(f, _)| f),
            Path::Vip { l2, is_ipv6 } => {
                vip_mode::flow_of(&data[l2..], is_ipv6).ok().map(|(f, _)| f)
            }
            Path::Host | Path::Drop(_) => None,
        };
        if let Some(FlowOf::Flow { key, .. }) = flow {
            state.conntrack.prefetch(table.hasher.flow(&key));
        }
    }

    /// A batch handler for a packet I/O backend.
    pub fn handler<'a>(table: &'a ForwardingTable, state: &'a mut WorkerState) -> BatchHandler<'a> {
        BatchHandler { table, state }
    }

    /// Which part of the pipeline a frame belongs to, from its Ethernet
    /// header and IP destination alone.
    #[inline]
    fn path_of(data: &[u8], table: &ForwardingTable) -> Path {
        let Ok(eth) = EthernetFrame::new_checked(data) else {
            return Path::Drop(DropReason::TruncatedEthernet);
        };
        let l2 = eth.header_len();
        match eth.inner_ethertype() {
            ethertype::IPV4 => {
                // Too short to name a destination: not recognisably ours.
                let Some(&[a, b, c, d]) = data.get(l2 + 16..l2 + 20) else {
                    return Path::Host;
                };
                let dst = [a, b, c, d];
                if dst == table.lb_ipv4 {
                    Path::Gre {
                        l2,
                        outer_v6: false,
                    }
                } else if table.is_vip_v4(dst) {
                    Path::Vip { l2, is_ipv6: false }
                } else {
                    Path::Host
                }
            }
            ethertype::IPV6 if table.takes_ipv6() => {
                let Some(dst) = data.get(l2 + 24..l2 + 40) else {
                    return Path::Host;
                };
                let mut addr = [0u8; 16];
                addr.copy_from_slice(dst);
                if table.lb_ipv6 == Some(addr) {
                    Path::Gre { l2, outer_v6: true }
                } else if table.is_vip_v6(&addr) {
                    Path::Vip { l2, is_ipv6: true }
                } else {
                    Path::Host
                }
            }
            _ => Path::Host,
        }
    }

    /// Decides one frame without counting the verdict.
    #[inline]
    fn decide(frame: &mut Frame<'_>, table: &ForwardingTable, state: &mut WorkerState) -> Verdict {
        if let Some(flow) = fast_path::classify(frame.data(), table) {
            let hash = table.hasher.ipv4(flow.words);
            return fast_path::forward(frame, hash, table, state);
        }
        Self::decide_general(frame, table, state)
    }

    /// Every frame the fast path does not take, valid or not. Kept out of
    /// line: inlined into the batch loop, its size costs the fast path's
    /// frames registers (callgrind counts the difference).
    #[inline(never)]
    fn decide_general(
        frame: &mut Frame<'_>,
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) -> Verdict {
        let result = match Self::path_of(frame.data(), table) {
            Path::Gre { l2, outer_v6 } => gre_mode::forward(frame, l2, outer_v6, table, state),
            Path::Vip { l2, is_ipv6 } => vip_mode::encapsulate(frame, l2, is_ipv6, table, state),
            Path::Host => return Verdict::ToHost,
            Path::Drop(reason) => return Verdict::Drop(reason),
        };
        result.unwrap_or_else(Verdict::Drop)
    }

    /// Per-batch housekeeping of held fragments: drops (and counts) the ones
    /// that waited too long and runs the ones whose first fragment has come
    /// through the pipeline again, handing the forwarded frames to `transmit`
    /// (which returns false when the wire has no room: the frame is then
    /// dropped and counted, since it has already been rewritten).
    pub fn release_held(
        table: &ForwardingTable,
        state: &mut WorkerState,
        mut transmit: impl FnMut(&[u8]) -> bool,
    ) {
        if state.fragments.is_idle() {
            return;
        }
        let now = state.now_ms();
        state.fragments.expire(now, &state.counters);
        while let Some(mut held) = state.fragments.pop_ready() {
            let mut frame = Frame::new(&mut held.buf, held.head, held.len);
            let verdict = Self::decide(&mut frame, table, state);
            let verdict = if verdict == Verdict::ToWire && !transmit(frame.data()) {
                Verdict::Drop(DropReason::TransmitRingFull)
            } else {
                verdict
            };
            state.counters.count(verdict, frame.len());
            state.fragments.recycle(held.buf);
        }
    }
}

#[cfg(test)]
mod tests;
