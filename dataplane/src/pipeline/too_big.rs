//! The one ICMP error the balancer sends itself: a VIP packet that would
//! exceed the MTU once wrapped in GRE is answered, as a router on the path
//! would answer it, with "fragmentation needed" (ICMP type 3 code 4, RFC
//! 1191) or "packet too big" (`ICMPv6` type 2, RFC 8201) quoting the MTU left
//! after the encapsulation. The sender's path MTU discovery then shrinks its
//! packets instead of retrying into a black hole. Katran does the same.
//!
//! The frame is rewritten in place into the error, addressed from the VIP
//! back to the sender through the router it came from (Ethernet: to the
//! frame's source, from the balancer). No error is sent where RFC 1812
//! section 4.3.2.7 and RFC 4443 section 2.4 forbid one: about an ICMP
//! error, a link-layer broadcast or multicast, a packet whose source is not
//! a unicast host, or (IPv4) a packet that allows fragmentation; nor more
//! than [`REPLIES_PER_SEC`] a second per worker (RFC 4443 2.4(f), RFC 1812
//! 4.3.2.8), so that spoofed big packets cannot make the balancer reflect
//! errors at line rate; nor an MTU the sender must ignore (below 68 for
//! IPv4, 1280 for IPv6). Those packets are dropped as before.

use crate::wire::{
    icmpv4, icmpv6, ip_proto, Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

use super::vip_mode::ENCAP_LEN;

/// The IPv4 error's length limit (RFC 1812 section 4.3.2.3: at most 576
/// bytes in all).
const ICMPV4_MAX: usize = 576;
/// The IPv6 error's length limit (RFC 4443 section 2.4(c): the minimum
/// IPv6 MTU).
const ICMPV6_MAX: usize = 1280;
/// IPv4 and ICMP headers of the error.
const V4_HEADERS: usize = 20 + icmpv4::HEADER_LEN;
/// IPv6 and ICMP headers of the error.
const V6_HEADERS: usize = 40 + icmpv6::HEADER_LEN;
/// TTL or hop limit of the error.
const HOP_LIMIT: u8 = 64;
/// Errors a worker sends per second, at most (Linux's default ICMP rate).
pub const REPLIES_PER_SEC: u64 = 1000;
/// Errors a worker may send at once after a quiet spell.
const BURST: u64 = 50;
/// The smallest MTU an IPv4 host accepts (RFC 791).
const MIN_MTU_V4: u16 = 68;
/// The smallest MTU an IPv6 host accepts (RFC 8200 section 5).
const MIN_MTU_V6: u16 = 1280;

/// A worker's allowance of errors: a token bucket refilled with time.
#[derive(Debug, Clone, Copy)]
pub struct ReplyBudget {
    tokens: u64,
    /// The worker clock (ms) at which `tokens` was last refilled.
    refilled_ms: u64,
}

impl Default for ReplyBudget {
    fn default() -> Self {
        Self {
            tokens: BURST,
            refilled_ms: 0,
        }
    }
}

impl ReplyBudget {
    /// Takes one error's token at `now_ms`, if there is one.
    fn take(&mut self, now_ms: u64) -> bool {
        let earned = now_ms.saturating_sub(self.refilled_ms) * REPLIES_PER_SEC / 1000;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(BURST);
            self.refilled_ms = now_ms;
        }
        let Some(left) = self.tokens.checked_sub(1) else {
            return false;
        };
        self.tokens = left;
        true
    }
}

/// What `reply` needs from the balancer: its MTU and MAC, and the worker's
/// error budget and clock.
pub struct Sender<'a> {
    pub mtu: u16,
    pub lb_mac: [u8; 6],
    pub budget: &'a mut ReplyBudget,
    pub now_ms: u64,
}

/// Rewrites `frame` (Ethernet header of `l2` bytes, then an IP packet of
/// `ip_len` bytes addressed to a VIP, checked by `vip_mode::flow_of`) into
/// the ICMP error telling its sender that the balancer's MTU less the
/// encapsulation fits. Returns the error's frame length, or `None` (frame
/// untouched) when no error may be sent.
pub fn reply(
    frame: &mut [u8],
    l2: usize,
    ip_len: usize,
    is_ipv6: bool,
    sender: Sender<'_>,
) -> Option<usize> {
    let Sender {
        mtu,
        lb_mac,
        budget,
        now_ms,
    } = sender;
    let fits = mtu.checked_sub(ENCAP_LEN as u16)?;
    let ip_end = l2.checked_add(ip_len)?;
    // The group bit of the destination MAC: broadcast or multicast.
    if ip_end > frame.len() || l2 < 12 || frame[0] & 1 != 0 {
        return None;
    }
    let ip = &mut frame[l2..ip_end];
    let answerable = if is_ipv6 {
        fits >= MIN_MTU_V6 && answerable_v6(ip)
    } else {
        fits >= MIN_MTU_V4 && answerable_v4(ip)
    };
    if !answerable || !budget.take(now_ms) {
        return None;
    }
    let len = if is_ipv6 {
        reply_v6(ip, fits)?
    } else {
        reply_v4(ip, fits)?
    };
    // Back to the router the packet came through, from the balancer.
    frame.copy_within(6..12, 0);
    frame[6..12].copy_from_slice(&lb_mac);
    Some(l2 + len)
}

/// Whether RFC 1812 section 4.3.2.7 lets an error answer `ip` (an IPv4
/// packet): DF set, not a later fragment, from a unicast host, not itself
/// an ICMP error.
fn answerable_v4(ip: &[u8]) -> bool {
    let Ok(packet) = Ipv4Packet::new_checked(ip) else {
        return false;
    };
    let src = packet.src_addr();
    let unicast_source = !(src[0] == 0 || src[0] == 127 || src[0] >= 224);
    let is_icmp_error = packet.protocol() == ip_proto::ICMP
        && Icmpv4Packet::new_checked(packet.payload()).is_ok_and(|icmp| icmp.is_error());
    packet.dont_frag() && packet.frag_offset() == 0 && unicast_source && !is_icmp_error
}

/// Whether RFC 4443 section 2.4(e) lets an error answer `ip` (an IPv6
/// packet): from a unicast host, not itself an `ICMPv6` error (looked for
/// behind any extension headers).
fn answerable_v6(ip: &[u8]) -> bool {
    let Ok(packet) = Ipv6Packet::new_checked(ip) else {
        return false;
    };
    let src = packet.src_addr();
    let unicast_source = src[0] != 0xff && src != [0; 16];
    let is_icmp_error = packet.upper_layer().map_or(true, |upper| {
        upper.protocol == ip_proto::ICMPV6
            && upper.fragment.is_none_or(|f| f.offset == 0)
            && ip.get(upper.offset..).is_some_and(|rest| {
                Icmpv6Packet::new_checked(rest).is_ok_and(|icmp| icmp.is_error())
            })
    });
    unicast_source && !is_icmp_error
}

/// The IPv4 error in place of `ip` (the whole IPv4 packet); its length.
fn reply_v4(ip: &mut [u8], fits: u16) -> Option<usize> {
    let packet = Ipv4Packet::new_checked(&*ip).ok()?;
    let (ihl, src, dst) = (packet.header_len(), packet.src_addr(), packet.dst_addr());
    // The quote: as much of the packet as the 576-byte limit leaves room for.
    let quoted = (ICMPV4_MAX - V4_HEADERS).min(ip.len().checked_sub(V4_HEADERS)?);
    if quoted < ihl + 8 {
        return None;
    }
    ip.copy_within(..quoted, V4_HEADERS);
    let total = V4_HEADERS + quoted;
    let mut icmp = Icmpv4Packet::new_unchecked(&mut ip[20..total]);
    icmp.set_msg_type(icmpv4::DEST_UNREACHABLE);
    icmp.set_msg_code(icmpv4::FRAG_NEEDED);
    // Unused (16 bits), then the next-hop MTU (RFC 1191).
    icmp.set_rest_of_header(u32::from(fits));
    icmp.fill_checksum();
    Ipv4Repr {
        src: dst,
        dst: src,
        protocol: ip_proto::ICMP,
        payload_len: (total - 20) as u16,
        ttl: HOP_LIMIT,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut ip[..20]);
    Some(total)
}

/// The IPv6 error in place of `ip` (the whole IPv6 packet); its length.
fn reply_v6(ip: &mut [u8], fits: u16) -> Option<usize> {
    let packet = Ipv6Packet::new_checked(&*ip).ok()?;
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    let quoted = (ICMPV6_MAX - V6_HEADERS).min(ip.len().checked_sub(V6_HEADERS)?);
    ip.copy_within(..quoted, V6_HEADERS);
    let total = V6_HEADERS + quoted;
    Ipv6Repr {
        src: dst,
        dst: src,
        next_header: ip_proto::ICMPV6,
        payload_len: (total - 40) as u16,
        hop_limit: HOP_LIMIT,
    }
    .emit(&mut ip[..40]);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut ip[40..total]);
    icmp.set_msg_type(icmpv6::PACKET_TOO_BIG);
    icmp.set_msg_code(0);
    icmp.set_rest_of_header(u32::from(fits));
    icmp.fill_checksum(&dst, &src);
    Some(total)
}

#[cfg(test)]
mod tests;
