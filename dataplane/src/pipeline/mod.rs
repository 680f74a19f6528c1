//! The per-packet pipeline: parse, pick a backend, rewrite in place, verdict.
//!
//! ```text
//! Ethernet (one 802.1Q tag) -> IPv4 to the balancer's address, GRE -> gre_mode
//!                           -> IPv4/IPv6 to a VIP                -> vip_mode
//!                           -> anything else                     -> ToHost
//! ```
//! Every length is checked before it is read: malformed input addressed to
//! us is a `Drop(reason)`, never forwarded and never a panic.
//!
//! The common frame (untagged, option-less IPv4 GRE carrying IPv4 TCP or UDP)
//! takes `fast_path` at fixed offsets; everything else takes the general
//! path above, which decides the same frames identically. Backends that show
//! a batch to [`Pipeline::prefetch`] first get each fast-path frame parsed
//! and hashed once, and its connection-table bucket loaded while the frames
//! before it are decided.

mod balance;
mod fast_path;
mod flow_of;
mod gre_mode;
mod state;
mod vip_mode;

pub use flow_of::{of_ipv4, of_ipv6, FlowOf};
pub use state::{WorkerConfig, WorkerState};
pub use vip_mode::ENCAP_LEN;

use crate::forwarding::ForwardingTable;
use crate::frame::Frame;
use crate::io::FrameHandler;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethertype, EthernetFrame};

/// The batch position of a frame decided on its own: no prefetch pass saw it.
const NOT_IN_BATCH: usize = usize::MAX;

/// Where a frame is headed inside the pipeline.
enum Path {
    /// IPv4 to the balancer's address: GRE mode (or the host's own traffic).
    Gre {
        l2: usize,
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
    fn prefetch(&mut self, index: usize, frame: &[u8]) {
        Pipeline::prefetch(index, frame, self.table, self.state);
    }

    #[inline]
    fn decide(&mut self, index: usize, frame: &mut Frame<'_>) -> Verdict {
        Pipeline::process_at(index, frame, self.table, self.state)
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
        Self::process_at(NOT_IN_BATCH, frame, table, state)
    }

    /// [`Self::process`] for the frame at position `index` of a batch (or
    /// [`NOT_IN_BATCH`]), which may find its prefetch pass's work.
    #[inline]
    fn process_at(
        index: usize,
        frame: &mut Frame<'_>,
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) -> Verdict {
        let verdict = Self::decide(index, frame, table, state);
        state.counters.count(verdict, frame.len());
        verdict
    }

    /// Starts loading what deciding the frame at position `index` of the
    /// batch will need (its connection-table bucket), so that across a batch
    /// the memory loads overlap instead of stalling one after another.
    #[inline]
    pub fn prefetch(index: usize, data: &[u8], table: &ForwardingTable, state: &mut WorkerState) {
        if let Some(flow) = fast_path::classify(data, table) {
            if !state.memo.put(index, data, flow) {
                // No room to remember it: decide will classify it again.
                state.conntrack.prefetch(table.hasher.ipv4(flow.words));
            }
        } else {
            let flow = match Self::path_of(data, table) {
                Path::Gre { l2 } => gre_mode::flow_of(data, l2).ok().flatten(),
                Path::Vip { l2, is_ipv6 } => {
                    vip_mode::flow_of(&data[l2..], is_ipv6).ok().map(|(f, _)| f)
                }
                Path::Host | Path::Drop(_) => None,
            };
            if let Some(FlowOf::Flow { key, .. }) = flow {
                state.conntrack.prefetch(table.hasher.flow(&key));
            }
        }
        state.memo.passed(index, &table.hasher, &state.conntrack);
    }

    /// A batch handler for a packet I/O backend: prefetch, then process.
    pub fn handler<'a>(table: &'a ForwardingTable, state: &'a mut WorkerState) -> BatchHandler<'a> {
        state.memo.begin_batch();
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
                    Path::Gre { l2 }
                } else if table.is_vip_v4(dst) {
                    Path::Vip { l2, is_ipv6: false }
                } else {
                    Path::Host
                }
            }
            ethertype::IPV6 if !table.vips_v6.is_empty() => {
                let Some(dst) = data.get(l2 + 24..l2 + 40) else {
                    return Path::Host;
                };
                let mut addr = [0u8; 16];
                addr.copy_from_slice(dst);
                if table.is_vip_v6(&addr) {
                    Path::Vip { l2, is_ipv6: true }
                } else {
                    Path::Host
                }
            }
            _ => Path::Host,
        }
    }

    /// Decides the frame at position `index` of the batch (or
    /// [`NOT_IN_BATCH`]) without counting the verdict.
    #[inline]
    fn decide(
        index: usize,
        frame: &mut Frame<'_>,
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) -> Verdict {
        if let Some(hash) = state
            .memo
            .take(index, frame.data(), &table.hasher, &state.conntrack)
        {
            return fast_path::forward(frame, hash, table, state);
        }
        if let Some(flow) = fast_path::classify(frame.data(), table) {
            let hash = table.hasher.ipv4(flow.words);
            return fast_path::forward(frame, hash, table, state);
        }
        Self::decide_general(frame, table, state)
    }

    /// Every frame the fast path does not take, valid or not.
    fn decide_general(
        frame: &mut Frame<'_>,
        table: &ForwardingTable,
        state: &mut WorkerState,
    ) -> Verdict {
        let result = match Self::path_of(frame.data(), table) {
            Path::Gre { l2 } => gre_mode::forward(frame, l2, table, state),
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
            let verdict = Self::decide(NOT_IN_BATCH, &mut frame, table, state);
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
