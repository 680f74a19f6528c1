//! The per-packet pipeline: parse, pick a backend, rewrite in place, verdict.
//!
//! ```text
//! Ethernet (one 802.1Q tag) -> IPv4 to the balancer's address, GRE -> gre_mode
//!                           -> IPv4/IPv6 to a VIP                -> vip_mode
//!                           -> anything else                     -> ToHost
//! ```
//! Every length is checked before it is read: malformed input addressed to
//! us is a `Drop(reason)`, never forwarded and never a panic.

mod balance;
mod flow_of;
mod gre_mode;
mod state;
mod vip_mode;

pub use flow_of::{of_ipv4, of_ipv6, FlowOf};
pub use state::{WorkerConfig, WorkerState};
pub use vip_mode::ENCAP_LEN;

use crate::forwarding::ForwardingTable;
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethertype, EthernetFrame};

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

    #[inline]
    fn decide(frame: &mut Frame<'_>, table: &ForwardingTable, state: &mut WorkerState) -> Verdict {
        let data = frame.data();
        let Ok(eth) = EthernetFrame::new_checked(data) else {
            return Verdict::Drop(DropReason::TruncatedEthernet);
        };
        let l2 = eth.header_len();
        let result = match eth.inner_ethertype() {
            ethertype::IPV4 => {
                // Too short to name a destination: not recognisably ours.
                let Some(&[a, b, c, d]) = data.get(l2 + 16..l2 + 20) else {
                    return Verdict::ToHost;
                };
                let dst = [a, b, c, d];
                if dst == table.lb_ipv4 {
                    gre_mode::forward(frame, l2, table, state)
                } else if table.is_vip_v4(dst) {
                    vip_mode::encapsulate(frame, l2, false, table, state)
                } else {
                    return Verdict::ToHost;
                }
            }
            ethertype::IPV6 if !table.vips_v6.is_empty() => {
                let Some(dst) = data.get(l2 + 24..l2 + 40) else {
                    return Verdict::ToHost;
                };
                let mut addr = [0u8; 16];
                addr.copy_from_slice(dst);
                if !table.is_vip_v6(&addr) {
                    return Verdict::ToHost;
                }
                vip_mode::encapsulate(frame, l2, true, table, state)
            }
            _ => return Verdict::ToHost,
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
