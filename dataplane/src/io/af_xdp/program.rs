//! The steering program: which received frames go to the balancer's socket
//! (`XDP_REDIRECT` through the `XSKMAP`) and which stay with the kernel
//! (`XDP_PASS`), decided exactly as [`Pipeline`](crate::pipeline::Pipeline)
//! decides `ToHost`, so that the kernel keeps, without a copy, everything
//! the balancer would hand it back (ARP, SSH, the host's own services).
//!
//! ```text
//! shorter than Ethernet (or than its 802.1Q tag)      -> redirect (the pipeline drops it)
//! one 802.1Q tag: look behind it
//! IPv4, shorter than l2 + 20                           -> pass
//! IPv4 to the balancer's address:
//!     header not IPv4-valid (version, IHL, total length) -> redirect (dropped as malformed)
//!     protocol GRE                                     -> redirect
//!     anything else                                    -> pass (the host's own traffic)
//! IPv4 to a VIP (in the IPv4 VIP map)                 -> redirect
//! IPv6, shorter than l2 + 40                           -> pass
//! IPv6 to the balancer's IPv6 address (when it has one):
//!     header not IPv6-valid (version, jumbogram, payload length) -> redirect (dropped as malformed)
//!     next header GRE                                  -> redirect
//!     anything else                                    -> pass (the host's own traffic)
//! IPv6 to a VIP (in the IPv6 VIP map)                 -> redirect
//! anything else                                        -> pass
//! ```
//!
//! For IPv6 only the fixed header's next header is read, never a chain of
//! extension headers: the pipeline takes GRE over IPv6 only when GRE
//! follows the fixed header directly, and leaves GRE behind extension
//! headers to the host like any other traffic to the balancer's address
//! (`gre_mode::outer_ipv6`), so walking the chain here would steer frames
//! the pipeline hands straight back.
//!
//! The VIPs are looked up in two BPF hash sets ([`super::vips`]) rather
//! than compared with constants, so that the balancer adds and removes VIPs
//! while the program runs. The lookup key is the destination copied to the
//! stack word by word as loaded, so its bytes are the packet's (network
//! order), as the sets hold them.
//!
//! The redirect falls back to `on_missing_socket` when the frame's receive
//! queue has no socket in the map: `XDP_PASS` in service (the kernel then
//! sees the frame as if nothing were attached), a distinct code in the
//! tests, which run the program without sockets.
//!
//! Packet bytes are loaded as the little-endian words they are in memory,
//! so constants are compared in the same byte order (`0x0008` is `EtherType`
//! 0x0800), with 32-bit jumps so that a word's top bit is not sign-extended.

use super::asm::{
    bits_i32, Asm, AsmError, Cond, Insn, Label, Size, R0, R1, R10, R2, R3, R4, R5, R6,
};

/// `XDP_*` verdicts.
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// `bpf_map_lookup_elem(map, key)`: the value's address, or 0.
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
/// `bpf_redirect_map(map, key, flags)`.
const HELPER_REDIRECT_MAP: i32 = 51;
/// Offsets in `struct xdp_md`.
const CTX_DATA: i16 = 0;
const CTX_DATA_END: i16 = 4;
const CTX_RX_QUEUE_INDEX: i16 = 16;

const ETHERNET: i32 = 14;
const VLAN_TAG: i32 = 4;
const ETHERTYPE_AT: i16 = 12;
/// `EtherType`s as 16-bit little-endian loads see them.
const LE_VLAN: i32 = 0x0081;
const LE_IPV4: i32 = 0x0008;
const LE_IPV6: i32 = 0xdd86;
const GRE: i32 = 47;
/// Where the words of an untagged IPv6 destination are (Ethernet + 24..40).
const IPV6_DST_WORDS: [i16; 4] = [38, 42, 46, 50];
/// `Ipv6Packet::check_len` refuses a zero payload length before a
/// hop-by-hop header (a jumbogram).
const IPV6_HOPOPTS: i32 = 0;

/// What the balancer takes: GRE to its addresses, and packets to its VIPs
/// (those at start: the VIP maps begin with them and change later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    pub lb_ipv4: [u8; 4],
    /// The balancer's IPv6 address, which GRE over IPv6 is sent to; `None`
    /// when it has none (then IPv6 is steered only to VIPs).
    pub lb_ipv6: Option<[u8; 16]>,
    pub vips_v4: Vec<[u8; 4]>,
    pub vips_v6: Vec<[u8; 16]>,
}

/// The maps the program reads, by descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFds {
    /// The `XSKMAP`: receive queue -> socket.
    pub xsks: i32,
    /// The VIP sets ([`super::vips::VipMaps`]).
    pub vips_v4: i32,
    pub vips_v6: i32,
}

fn le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Steering {
    /// The program over `maps`: GRE to `lb_ipv4` (and `lb_ipv6`), and
    /// destinations in the VIP maps (`vips_v4` and `vips_v6` are only the maps' first content).
    pub fn program(&self, maps: MapFds, on_missing_socket: u32) -> Result<Vec<Insn>, AsmError> {
        let mut a = Asm::new();
        let redirect = a.label();
        let pass = a.label();
        let untagged = a.label();
        let ipv4 = a.label();
        let to_lb = a.label();
        let ipv6 = a.label();

        // r6 = ctx; r2 = data (shifted by the tag when tagged); r3 = data_end.
        a.mov(R6, R1);
        a.load(Size::U32, R2, R1, CTX_DATA);
        a.load(Size::U32, R3, R1, CTX_DATA_END);
        a.mov(R4, R2);
        a.add_imm(R4, ETHERNET);
        a.jmp_reg(Cond::Gt, R4, R3, redirect);
        a.load(Size::U16, R5, R2, ETHERTYPE_AT);
        a.jmp_imm(Cond::Ne, R5, LE_VLAN, untagged);
        a.mov(R4, R2);
        a.add_imm(R4, ETHERNET + VLAN_TAG);
        a.jmp_reg(Cond::Gt, R4, R3, redirect);
        a.add_imm(R2, VLAN_TAG);
        a.load(Size::U16, R5, R2, ETHERTYPE_AT);
        a.bind(untagged);
        a.jmp_imm(Cond::Eq, R5, LE_IPV4, ipv4);
        a.jmp_imm(Cond::Eq, R5, LE_IPV6, ipv6);
        a.bind(pass);
        a.mov_imm(R0, bits_i32(XDP_PASS));
        a.exit();

        // IPv4: the destination decides.
        a.bind(ipv4);
        a.mov(R4, R2);
        a.add_imm(R4, ETHERNET + 20);
        a.jmp_reg(Cond::Gt, R4, R3, pass);
        a.load(Size::U32, R5, R2, (ETHERNET + 16) as i16);
        a.jmp32_imm(Cond::Eq, R5, le(&self.lb_ipv4), to_lb);
        a.store(Size::U32, R10, -4, R5);
        vip_lookup(&mut a, maps.vips_v4, -4, redirect, pass);

        // To the balancer: Ipv4Packet::check_len, then the protocol.
        a.bind(to_lb);
        a.load(Size::U8, R4, R2, ETHERNET as i16);
        a.mov(R5, R4);
        a.rsh_imm(R5, 4);
        a.jmp_imm(Cond::Ne, R5, 4, redirect);
        a.and_imm(R4, 0x0f);
        a.lsh_imm(R4, 2);
        a.jmp_imm(Cond::Lt, R4, 20, redirect);
        a.load(Size::U16, R5, R2, (ETHERNET + 2) as i16);
        a.be16(R5);
        a.and_imm(R5, 0xffff);
        a.jmp_reg(Cond::Lt, R5, R4, redirect);
        // total length >= header length, so a whole total length in the
        // frame means a whole header too.
        a.mov(R0, R2);
        a.add(R0, R5);
        a.add_imm(R0, ETHERNET);
        a.jmp_reg(Cond::Gt, R0, R3, redirect);
        a.load(Size::U8, R5, R2, (ETHERNET + 9) as i16);
        a.jmp_imm(Cond::Ne, R5, GRE, pass);
        a.ja(redirect);

        // IPv6: the balancer's address first, as the pipeline looks, then
        // the destination copied to the stack a word at a time and looked
        // up in the IPv6 VIP map.
        a.bind(ipv6);
        a.mov(R4, R2);
        a.add_imm(R4, ETHERNET + 40);
        a.jmp_reg(Cond::Gt, R4, R3, pass);
        if let Some(lb_ipv6) = self.lb_ipv6 {
            let vip_v6 = a.label();
            to_lb_ipv6(&mut a, &lb_ipv6, vip_v6, redirect, pass);
            a.bind(vip_v6);
        }
        // The destination's words: Ethernet (14) + 24, 28, 32, 36.
        for (word, at) in (0i16..).zip(IPV6_DST_WORDS) {
            a.load(Size::U32, R4, R2, at);
            a.store(Size::U32, R10, -16 + 4 * word, R4);
        }
        vip_lookup(&mut a, maps.vips_v6, -16, redirect, pass);

        // bpf_redirect_map(xsks, rx_queue_index, on_missing_socket)
        a.bind(redirect);
        a.load(Size::U32, R2, R6, CTX_RX_QUEUE_INDEX);
        a.load_map_fd(R1, maps.xsks);
        a.mov_imm(R3, bits_i32(on_missing_socket));
        a.call(HELPER_REDIRECT_MAP);
        a.exit();
        a.finish()
    }
}

/// IPv6 with a whole fixed header in r2's frame: to `other` unless the
/// destination is `lb_ipv6`; to the balancer, what the pipeline does with
/// it: a header `Ipv6Packet::check_len` refuses is redirected (the pipeline
/// drops it), GRE right after the fixed header is redirected, anything else
/// (extension headers included) passed. Clobbers r0, r4, r5.
fn to_lb_ipv6(a: &mut Asm, lb_ipv6: &[u8; 16], other: Label, redirect: Label, pass: Label) {
    for (at, word) in IPV6_DST_WORDS.into_iter().zip(lb_ipv6.chunks_exact(4)) {
        a.load(Size::U32, R5, R2, at);
        a.jmp32_imm(Cond::Ne, R5, le(word), other);
    }
    let sized = a.label();
    a.load(Size::U8, R4, R2, ETHERNET as i16);
    a.rsh_imm(R4, 4);
    a.jmp_imm(Cond::Ne, R4, 6, redirect);
    a.load(Size::U16, R5, R2, (ETHERNET + 4) as i16);
    a.be16(R5);
    a.and_imm(R5, 0xffff);
    a.load(Size::U8, R4, R2, (ETHERNET + 6) as i16);
    a.jmp_imm(Cond::Ne, R5, 0, sized);
    a.jmp_imm(Cond::Eq, R4, IPV6_HOPOPTS, redirect);
    a.bind(sized);
    // 40 + payload length past the frame: truncated.
    a.mov(R0, R2);
    a.add(R0, R5);
    a.add_imm(R0, ETHERNET + 40);
    a.jmp_reg(Cond::Gt, R0, R3, redirect);
    a.jmp_imm(Cond::Ne, R4, GRE, pass);
    a.ja(redirect);
}

/// `bpf_map_lookup_elem(map, fp + key_at)`: to `found` when the key is in
/// the map, else to `missing`. The call takes r1-r5; the caller's context
/// stays in r6.
fn vip_lookup(a: &mut Asm, map_fd: i32, key_at: i32, found: Label, missing: Label) {
    a.load_map_fd(R1, map_fd);
    a.mov(R2, R10);
    a.add_imm(R2, key_at);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    a.jmp_imm(Cond::Ne, R0, 0, found);
    a.ja(missing);
}
