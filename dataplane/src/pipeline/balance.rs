//! Choosing a backend: the connection table first, Maglev on a miss, and the
//! fragment table for fragments.

use crate::conntrack::{ConnEntry, InsertOutcome, TimeoutClass};
use crate::flow::FlowKey;
use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::verdict::DropReason;
use crate::wire::ip_proto;

use super::flow_of::FlowOf;
use super::state::WorkerState;

/// The backend a packet goes to, or why there is none. `Held` means the
/// packet is a fragment whose first fragment has not been seen yet.
pub enum Choice<'t> {
    /// The backend's slot and what the packet path knows of it.
    Backend(u16, &'t BackendSlot),
    Held,
}

/// Picks the backend for a packet of `flow`; `frame` is the whole frame,
/// copied aside if it is an early fragment.
pub fn choose<'t>(
    flow: FlowOf,
    frame: &[u8],
    ingress: Ingress,
    table: &'t ForwardingTable,
    state: &mut WorkerState,
) -> Result<Choice<'t>, DropReason> {
    match flow {
        FlowOf::Flow {
            key,
            first_fragment_of,
        } => {
            let (slot, backend) = by_flow(&key, frame.len(), ingress, table, state)?;
            if let Some(datagram) = first_fragment_of {
                let hash = table.hasher.datagram(&datagram);
                let now = state.now_ms();
                state
                    .fragments
                    .record(hash, &datagram, slot, backend.generation, now);
            }
            Ok(Choice::Backend(slot, backend))
        }
        FlowOf::LaterFragment(datagram) => {
            let hash = table.hasher.datagram(&datagram);
            let now = state.now_ms();
            let Some((slot, generation)) = state.fragments.lookup(hash, &datagram, now) else {
                state.fragments.hold(&datagram, frame, now)?;
                return Ok(Choice::Held);
            };
            // The datagram's backend may have left since its first fragment:
            // the rest of it cannot be delivered anywhere.
            let backend = table
                .backend(slot, generation)
                .ok_or_else(|| drop_of_slot(DropReason::NoBackend, slot, table, state))?;
            state.counters.count_backend(slot, frame.len());
            Ok(Choice::Backend(slot, backend))
        }
    }
}

/// Counts a drop decided after a backend was chosen (or remembered) for
/// slot `slot` to the named service the slot belongs to, and returns the
/// reason. Only drops come here: a binary search over the services' slots.
#[cold]
#[inline(never)]
pub fn drop_of_slot(
    reason: DropReason,
    slot: u16,
    table: &ForwardingTable,
    state: &WorkerState,
) -> DropReason {
    if let Some(service) = table.services.counter_of_slot(slot) {
        state.counters.count_service_drop(service, reason);
    }
    reason
}

/// Connection table, then Maglev; a new flow is recorded (rate permitting).
fn by_flow<'t>(
    key: &FlowKey,
    bytes: usize,
    ingress: Ingress,
    table: &'t ForwardingTable,
    state: &mut WorkerState,
) -> Result<(u16, &'t BackendSlot), DropReason> {
    let class = if key.protocol == ip_proto::TCP {
        TimeoutClass::Tcp
    } else {
        TimeoutClass::Udp
    };
    by_hash(
        table.hasher.flow(key),
        class,
        || *key,
        bytes,
        ingress,
        table,
        state,
    )
}

/// [`by_flow`] for a flow whose hash and timeout class are already known;
/// `key` makes the flow's key, which only a new flow needs (to find its
/// service); `bytes` is the frame's length, counted to the backend's slot.
/// The connection-table hit, nearly every packet, is inlined into the
/// caller; a new flow is not.
#[inline(always)]
pub fn by_hash<'t>(
    hash: u64,
    class: TimeoutClass,
    key: impl FnOnce() -> FlowKey,
    bytes: usize,
    ingress: Ingress,
    table: &'t ForwardingTable,
    state: &mut WorkerState,
) -> Result<(u16, &'t BackendSlot), DropReason> {
    let now = state.now_secs();
    if let Some(entry) = state.conntrack.lookup(hash, class, now) {
        if let Some(backend) = table.backend(entry.slot, entry.generation) {
            let counters = &state.counters;
            counters.conntrack_hits.add(1);
            counters.count_backend(entry.slot, bytes);
            return Ok((entry.slot, backend));
        }
    }
    let (slot, backend) = by_maglev(hash, class, now, key, ingress, table, state)?;
    state.counters.count_backend(slot, bytes);
    Ok((slot, backend))
}

/// A connection-table miss: the flow's service's Maglev table picks the
/// backend and the flow is recorded (rate permitting).
#[inline(never)]
fn by_maglev<'t>(
    hash: u64,
    class: TimeoutClass,
    now: u32,
    // Made here rather than by the caller, so that the connection-table
    // hit inlined there carries none of it.
    key: impl FnOnce() -> FlowKey,
    ingress: Ingress,
    table: &'t ForwardingTable,
    state: &mut WorkerState,
) -> Result<(u16, &'t BackendSlot), DropReason> {
    let counters = &state.counters;
    counters.conntrack_misses.add(1);
    let (slot, backend) = table
        .pick_in_service(&key(), hash, ingress)
        .map_err(|refused| {
            if let Some(service) = refused.service {
                counters.count_service_drop(service, refused.reason);
            }
            refused.reason
        })?;
    let entry = ConnEntry {
        slot,
        generation: backend.generation,
    };
    match state.conntrack.insert(hash, entry, class, now) {
        InsertOutcome::Inserted | InsertOutcome::Replaced => counters.conntrack_inserts.add(1),
        InsertOutcome::Evicted => {
            counters.conntrack_inserts.add(1);
            counters.conntrack_evictions.add(1);
        }
        InsertOutcome::Full => counters.conntrack_full.add(1),
        InsertOutcome::RateLimited => counters.conntrack_rate_limited.add(1),
    }
    counters.backend_new_flows[usize::from(slot)].add(1);
    Ok((slot, backend))
}
