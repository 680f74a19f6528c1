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
//! IPv4 to a VIP                                        -> redirect
//! IPv6 (only when IPv6 VIPs exist), to a VIP, at least l2 + 40 bytes -> redirect
//! anything else                                        -> pass
//! ```
//!
//! The redirect falls back to `on_missing_socket` when the frame's receive
//! queue has no socket in the map: `XDP_PASS` in service (the kernel then
//! sees the frame as if nothing were attached), a distinct code in the
//! tests, which run the program without sockets.
//!
//! Packet bytes are loaded as the little-endian words they are in memory,
//! so constants are compared in the same byte order (`0x0008` is `EtherType`
//! 0x0800), with 32-bit jumps so that a word's top bit is not sign-extended.

use super::asm::{bits_i32, Asm, AsmError, Cond, Insn, Reg, Size, R0, R1, R2, R3, R4, R5, R6};

/// `XDP_*` verdicts.
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

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

const R7: Reg = Reg(7);
const R8: Reg = Reg(8);

/// What the balancer takes: GRE to its address, and packets to its VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    pub lb_ipv4: [u8; 4],
    pub vips_v4: Vec<[u8; 4]>,
    pub vips_v6: Vec<[u8; 16]>,
}

fn le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Steering {
    /// The program for the `XSKMAP` with descriptor `map_fd`.
    pub fn program(&self, map_fd: i32, on_missing_socket: u32) -> Result<Vec<Insn>, AsmError> {
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
        if !self.vips_v6.is_empty() {
            a.jmp_imm(Cond::Eq, R5, LE_IPV6, ipv6);
        }
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
        for vip in &self.vips_v4 {
            a.jmp32_imm(Cond::Eq, R5, le(vip), redirect);
        }
        a.ja(pass);

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

        // IPv6: its destination against each IPv6 VIP, a word at a time.
        if !self.vips_v6.is_empty() {
            a.bind(ipv6);
            a.mov(R4, R2);
            a.add_imm(R4, ETHERNET + 40);
            a.jmp_reg(Cond::Gt, R4, R3, pass);
            let words = [R4, R5, R7, R8];
            // The destination's words: Ethernet (14) + 24, 28, 32, 36.
            for (&reg, at) in words.iter().zip([38, 42, 46, 50]) {
                a.load(Size::U32, reg, R2, at);
            }
            for vip in &self.vips_v6 {
                let next = a.label();
                for (i, &reg) in words.iter().enumerate() {
                    a.jmp32_imm(Cond::Ne, reg, le(&vip[4 * i..]), next);
                }
                a.ja(redirect);
                a.bind(next);
            }
            a.ja(pass);
        }

        // bpf_redirect_map(xsks, rx_queue_index, on_missing_socket)
        a.bind(redirect);
        a.load(Size::U32, R2, R6, CTX_RX_QUEUE_INDEX);
        a.load_map_fd(R1, map_fd);
        a.mov_imm(R3, bits_i32(on_missing_socket));
        a.call(HELPER_REDIRECT_MAP);
        a.exit();
        a.finish()
    }
}
