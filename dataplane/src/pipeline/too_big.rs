//! The one ICMP error the balancer sends itself: a VIP packet that would
//! exceed the MTU once wrapped in GRE is answered, as a router on the path
//! would answer it, with "fragmentation needed" (ICMP type 3 code 4, RFC
//! 1191) or "packet too big" (`ICMPv6` type 2, RFC 8201) quoting the MTU left
//! after the encapsulation. The sender's path MTU discovery then shrinks its
//! packets instead of retrying into a black hole. Katran does the same.
//!
//! The frame is rewritten in place into the error, addressed from the VIP
//! back to the sender through the router it came from (the Ethernet
//! addresses swap). No error is sent where RFC 1812 section 4.3.2.7 and
//! RFC 4443 section 2.4 forbid one: about an ICMP error, a packet whose
//! source is not a unicast host, or (IPv4) a packet that allows
//! fragmentation, which is dropped as before.

use crate::wire::{checksum, ip_proto, Ipv4Repr, Ipv6Repr};

use super::vip_mode::ENCAP_LEN;

/// The IPv4 error's length limit (RFC 1812 section 4.3.2.3: at most 576
/// bytes in all).
const ICMPV4_MAX: usize = 576;
/// The IPv6 error's length limit (RFC 4443 section 2.4(c): the minimum
/// IPv6 MTU).
const ICMPV6_MAX: usize = 1280;
/// IPv4 and ICMP headers of the error.
const V4_HEADERS: usize = 20 + 8;
/// IPv6 and ICMP headers of the error.
const V6_HEADERS: usize = 40 + 8;
/// TTL or hop limit of the error.
const HOP_LIMIT: u8 = 64;

/// Rewrites `frame` (Ethernet header of `l2` bytes, then an IP packet of
/// `ip_len` bytes addressed to a VIP, checked by `vip_mode::flow_of`) into
/// the ICMP error telling its sender that `mtu` less the encapsulation
/// fits. Returns the error's frame length, or `None` (frame untouched)
/// when no error may be sent.
pub fn reply(frame: &mut [u8], l2: usize, ip_len: usize, is_ipv6: bool, mtu: u16) -> Option<usize> {
    let fits = mtu.checked_sub(ENCAP_LEN as u16)?;
    let ip_end = l2.checked_add(ip_len)?;
    if ip_end > frame.len() {
        return None;
    }
    let len = if is_ipv6 {
        reply_v6(&mut frame[l2..ip_end], fits)?
    } else {
        reply_v4(&mut frame[l2..ip_end], fits)?
    };
    // Back to where the packet came from, from the address it was sent to.
    let (dst, src) = frame.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    Some(l2 + len)
}

/// The IPv4 error in place of `ip` (the whole IPv4 packet); its length.
fn reply_v4(ip: &mut [u8], fits: u16) -> Option<usize> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let dont_fragment = ip.get(6)? & 0x40 != 0;
    let offset = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
    let (src, dst): ([u8; 4], [u8; 4]) = (
        ip.get(12..16)?.try_into().ok()?,
        ip.get(16..20)?.try_into().ok()?,
    );
    let unicast_source = !(src[0] == 0 || src[0] == 127 || src[0] >= 224);
    let is_icmp_error = ip[9] == ip_proto::ICMP
        && offset == 0
        && ip
            .get(ihl)
            .is_some_and(|&kind| matches!(kind, 3 | 4 | 5 | 11 | 12));
    if !dont_fragment || offset != 0 || !unicast_source || is_icmp_error {
        return None;
    }
    // The quote: as much of the packet as the 576-byte limit leaves room for.
    let quoted = (ICMPV4_MAX - V4_HEADERS).min(ip.len().checked_sub(V4_HEADERS)?);
    if quoted < ihl + 8 {
        return None;
    }
    ip.copy_within(..quoted, V4_HEADERS);
    let total = V4_HEADERS + quoted;
    let icmp = &mut ip[20..total];
    icmp[..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
    icmp[6..8].copy_from_slice(&fits.to_be_bytes());
    let sum = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ipv4Repr {
        src: dst,
        dst: src,
        protocol: ip_proto::ICMP,
        payload_len: (total - 20) as u16,
        ttl: HOP_LIMIT,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut ip[..20]);
    Some(total)
}

/// The IPv6 error in place of `ip` (the whole IPv6 packet); its length.
fn reply_v6(ip: &mut [u8], fits: u16) -> Option<usize> {
    let (src, dst): ([u8; 16], [u8; 16]) = (
        ip.get(8..24)?.try_into().ok()?,
        ip.get(24..40)?.try_into().ok()?,
    );
    let unicast_source = src[0] != 0xff && src != [0; 16];
    // An ICMPv6 error (types below 128) right behind the header; one behind
    // extension headers is rare enough to answer.
    let is_icmp_error = ip[6] == ip_proto::ICMPV6 && ip.get(40).is_some_and(|&kind| kind < 128);
    if !unicast_source || is_icmp_error {
        return None;
    }
    let quoted = (ICMPV6_MAX - V6_HEADERS).min(ip.len().checked_sub(V6_HEADERS)?);
    ip.copy_within(..quoted, V6_HEADERS);
    let total = V6_HEADERS + quoted;
    let icmp_len = total - 40;
    Ipv6Repr {
        src: dst,
        dst: src,
        next_header: ip_proto::ICMPV6,
        payload_len: icmp_len as u16,
        hop_limit: HOP_LIMIT,
    }
    .emit(&mut ip[..40]);
    let icmp = &mut ip[40..total];
    icmp[..8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&u32::from(fits).to_be_bytes());
    let pseudo = checksum::pseudo_header_v6(&dst, &src, ip_proto::ICMPV6, icmp_len as u32);
    let sum = !checksum::fold(checksum::sum(icmp, pseudo));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests;
