//! VIP mode (Maglev's and Katran's deployment): a plain IP packet addressed
//! to a VIP is encapsulated in IPv4 + GRE toward its backend. The new headers
//! go into the frame's headroom, so the packet itself is not moved when the
//! I/O backend leaves room in front of it.

use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethertype, ip_proto, EthernetFrame, GreRepr, Ipv4Repr};

use super::balance::{choose, Choice};
use super::flow_of::{of_ipv4, of_ipv6, FlowOf};
use super::state::WorkerState;
use super::too_big;

/// Bytes added in front of the packet: outer IPv4 and a basic GRE header.
pub const ENCAP_LEN: usize = 20 + 4;

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
        let now_ms = state.now_ms();
        let sender = too_big::Sender {
            mtu: table.mtu,
            lb_mac: table.lb_mac,
            budget: &mut state.too_big_budget,
            now_ms,
        };
        let reply = too_big::reply(frame.data_mut(), l2, ip_len, is_ipv6, sender);
        return match reply {
            Some(len) if frame.set_len(len) => {
                state.counters.icmp_too_big.add(1);
                Ok(Verdict::ToWire)
            }
            _ => Err(DropReason::EncapExceedsMtu),
        };
    }
    match choose(flow, data, Ingress::Vip, table, state)? {
        Choice::Held => Ok(Verdict::Held),
        Choice::Backend(backend) => {
            push_headers(frame, l2, ip_len, is_ipv6, backend, table)?;
            Ok(Verdict::ToWire)
        }
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
    // Ethernet padding behind the IP packet must not end up inside the tunnel.
    frame.set_len(l2 + ip_len);
    if !frame.push_front(ENCAP_LEN) {
        return Err(DropReason::NoHeadroom);
    }
    let data = frame.data_mut();
    data.copy_within(ENCAP_LEN..ENCAP_LEN + l2, 0);
    // The (last) EtherType now announces the outer IPv4 header.
    data[l2 - 2..l2].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst(backend.mac);
    eth.set_src(table.lb_mac);
    let outer = Ipv4Repr {
        src: table.lb_ipv4,
        dst: backend.addr,
        protocol: ip_proto::GRE,
        payload_len: (4 + ip_len) as u16,
        ttl: OUTER_TTL,
        ident: 0,
        dont_frag: true,
    };
    outer.emit(&mut data[l2..l2 + 20]);
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
    gre.emit(&mut data[l2 + 20..l2 + ENCAP_LEN]);
    Ok(())
}
