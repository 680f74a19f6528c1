//! VIP mode (Maglev's and Katran's deployment): a plain IP packet addressed
//! to a VIP is encapsulated in GRE toward its backend: GRE over IPv4 to an
//! IPv4 backend, GRE over IPv6 (from the balancer's IPv6 address) to an
//! IPv6 one, whatever the VIP's family (GRE's protocol type names the inner
//! one). The new headers go into the frame's headroom, so the packet itself
//! is not moved when the I/O backend leaves room in front of it.
//!
//! A packet too big for the MTU once encapsulated is answered with ICMP
//! (see `too_big`) with the MTU that is left for it: 24 bytes less than the
//! balancer's toward IPv4 backends, 44 toward IPv6 ones. The backend is
//! known only once the flow is balanced, so the 24-byte bound is checked
//! first (no flow is recorded for a packet no backend can take) and the
//! IPv6 one after the choice.

use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethertype, ip_proto, EthernetFrame, GreRepr, Ipv4Repr, Ipv6Repr};

use super::balance::{choose, drop_of_slot, Choice};
use super::flow_of::{of_ipv4, of_ipv6, FlowOf};
use super::state::WorkerState;
use super::too_big;

/// Bytes added in front of the packet: outer IPv4 and a basic GRE header.
pub const ENCAP_LEN: usize = 20 + 4;
/// Bytes added in front of the packet toward an IPv6 backend: outer IPv6
/// and a basic GRE header.
pub const ENCAP_LEN_V6: usize = 40 + 4;

/// TTL of the outer header we create (the inner TTL is the client's business).
const OUTER_TTL: u8 = 64;

/// Encapsulates a packet addressed to a VIP; `l2` is the Ethernet header's
/// length and `is_ipv6` the packet's family.
pub fn encapsulate(
    frame: &mut Frame<'_>,
    l2: usize,
    is_ipv6: bool,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Result<Verdict, DropReason> {
    let data = frame.data();
    let (flow, ip_len) = flow_of(&data[l2..], is_ipv6)?;
    // A VIP whose services take other ports or protocols only: the host's.
    if let FlowOf::Flow { key, .. } = &flow {
        if table.service_of(key, Ingress::Vip).is_none() {
            return Ok(Verdict::ToHost);
        }
    }
    // The outer packet must fit the MTU: a packet that would not is
    // answered with ICMP "too big" where the RFCs allow (see `too_big`),
    // else dropped and counted.
    if ip_len + ENCAP_LEN > usize::from(table.mtu) {
        return too_big(frame, l2, ip_len, is_ipv6, ENCAP_LEN, table, state);
    }
    match choose(flow, data, Ingress::Vip, table, state)? {
        Choice::Held => Ok(Verdict::Held),
        Choice::Backend(slot, backend) if backend.is_ipv6 => {
            if ip_len + ENCAP_LEN_V6 > usize::from(table.mtu) {
                return too_big(frame, l2, ip_len, is_ipv6, ENCAP_LEN_V6, table, state)
                    .map_err(|reason| drop_of_slot(reason, slot, table, state));
            }
            push_headers(frame, l2, ip_len, is_ipv6, backend, table)
                .map_err(|reason| drop_of_slot(reason, slot, table, state))?;
            Ok(Verdict::ToWire)
        }
        Choice::Backend(slot, backend) => {
            push_headers(frame, l2, ip_len, is_ipv6, backend, table)
                .map_err(|reason| drop_of_slot(reason, slot, table, state))?;
            Ok(Verdict::ToWire)
        }
    }
}

/// Answers a packet that would exceed the MTU once wrapped in `encap_len`
/// bytes with ICMP "too big" where the RFCs allow (see `too_big`), else
/// drops it.
fn too_big(
    frame: &mut Frame<'_>,
    l2: usize,
    ip_len: usize,
    is_ipv6: bool,
    encap_len: usize,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Result<Verdict, DropReason> {
    let now_ms = state.now_ms();
    let sender = too_big::Sender {
        // `reply` quotes the MTU less an IPv4 encapsulation: a longer one
        // is the same as that with a smaller MTU.
        mtu: table.mtu.saturating_sub((encap_len - ENCAP_LEN) as u16),
        lb_mac: table.lb_mac,
        budget: &mut state.too_big_budget,
        now_ms,
    };
    let reply = too_big::reply(frame.data_mut(), l2, ip_len, is_ipv6, sender);
    match reply {
        Some(len) if frame.set_len(len) => {
            state.counters.icmp_too_big.add(1);
            Ok(Verdict::ToWire)
        }
        _ => Err(DropReason::EncapExceedsMtu),
    }
}

/// The flow of a packet addressed to a VIP, and the IP packet's length.
pub fn flow_of(ip: &[u8], is_ipv6: bool) -> Result<(FlowOf, usize), DropReason> {
    // The length fields are read only after of_ipv4/of_ipv6 checked them.
    if is_ipv6 {
        let flow = of_ipv6(ip)?;
        Ok((flow, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))))
    } else {
        let flow = of_ipv4(ip)?;
        Ok((flow, usize::from(u16::from_be_bytes([ip[2], ip[3]]))))
    }
}

fn push_headers(
    frame: &mut Frame<'_>,
    l2: usize,
    ip_len: usize,
    is_ipv6: bool,
    backend: &BackendSlot,
    table: &ForwardingTable,
) -> Result<(), DropReason> {
    let (encap_len, outer_ethertype) = if backend.is_ipv6 {
        (ENCAP_LEN_V6, ethertype::IPV6)
    } else {
        (ENCAP_LEN, ethertype::IPV4)
    };
    // Ethernet padding behind the IP packet must not end up inside the tunnel.
    frame.set_len(l2 + ip_len);
    if !frame.push_front(encap_len) {
        return Err(DropReason::NoHeadroom);
    }
    let data = frame.data_mut();
    data.copy_within(encap_len..encap_len + l2, 0);
    // The (last) EtherType now announces the outer header.
    data[l2 - 2..l2].copy_from_slice(&outer_ethertype.to_be_bytes());
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst(backend.mac);
    eth.set_src(table.lb_mac);
    // The MTU check bounds the lengths below far under 65,535.
    let gre_len = (4 + ip_len) as u16;
    let ip_header_len = encap_len - 4;
    if backend.is_ipv6 {
        let outer = Ipv6Repr {
            // A table with an IPv6 backend has the balancer's IPv6 address.
            src: table.lb_ipv6.unwrap_or_default(),
            dst: backend.addr_v6,
            next_header: ip_proto::GRE,
            payload_len: gre_len,
            hop_limit: OUTER_TTL,
        };
        outer.emit(&mut data[l2..l2 + ip_header_len]);
    } else {
        let outer = Ipv4Repr {
            src: table.lb_ipv4,
            dst: backend.addr,
            protocol: ip_proto::GRE,
            payload_len: gre_len,
            ttl: OUTER_TTL,
            ident: 0,
            dont_frag: true,
        };
        outer.emit(&mut data[l2..l2 + ip_header_len]);
    }
    let gre = GreRepr {
        protocol_type: if is_ipv6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        },
        key: None,
        sequence: None,
        checksum: false,
    };
    gre.emit(&mut data[l2 + ip_header_len..l2 + encap_len]);
    Ok(())
}
