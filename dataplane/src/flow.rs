//! Flow keys and the cluster-wide flow hash.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use core::hash::Hasher;

use siphasher::sip::SipHasher13;

mod sip13_x4;
mod sip13_x8;

#[cfg(target_arch = "x86_64")]
pub(crate) use sip13_x8::Avx512Sip13;

/// The identity of an inner flow: its 5-tuple (ports are zero for protocols
/// without them). IPv4 addresses occupy the first four bytes of `src`/`dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub is_ipv6: bool,
}

impl FlowKey {
    /// An IPv4 5-tuple.
    #[inline]
    pub fn v4(src: [u8; 4], dst: [u8; 4], protocol: u8, src_port: u16, dst_port: u16) -> Self {
        let mut key = Self {
            src: [0; 16],
            dst: [0; 16],
            src_port,
            dst_port,
            protocol,
            is_ipv6: false,
        };
        key.src[..4].copy_from_slice(&src);
        key.dst[..4].copy_from_slice(&dst);
        key
    }

    /// An IPv6 5-tuple.
    #[inline]
    pub fn v6(src: [u8; 16], dst: [u8; 16], protocol: u8, src_port: u16, dst_port: u16) -> Self {
        Self {
            src,
            dst,
            src_port,
            dst_port,
            protocol,
            is_ipv6: true,
        }
    }

    /// The same flow seen from the other side (what an ICMP error quotes).
    #[inline]
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            protocol: self.protocol,
            is_ipv6: self.is_ipv6,
        }
    }

    /// Source address as a std type (for display and tests).
    pub fn src_addr(&self) -> IpAddr {
        addr(&self.src, self.is_ipv6)
    }

    /// Destination address as a std type (for display and tests).
    pub fn dst_addr(&self) -> IpAddr {
        addr(&self.dst, self.is_ipv6)
    }
}

fn addr(bytes: &[u8; 16], is_ipv6: bool) -> IpAddr {
    if is_ipv6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

/// The identity of one fragmented datagram: what its non-first fragments
/// share with the first (RFC 791 / RFC 8200: source, destination, protocol
/// and identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ident: u32,
    pub protocol: u8,
    pub is_ipv6: bool,
}

/// `SipHash`'s initial state for key `(k0, k1)`: where every lane of the
/// vector hashers (`sip13_x4`, `sip13_x8`) starts.
#[cfg(target_arch = "x86_64")]
fn sip_initial_state(k0: u64, k1: u64) -> [u64; 4] {
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// Keyed SipHash-1-3 of whole 64-bit words (their little-endian bytes), as
/// `siphasher` computes it: the scalar hash, and what every lane of the
/// vector hashers is held to. With a fresh hasher per call the compiler
/// removes all of the byte-buffering logic.
#[inline]
fn sip13_words<const N: usize>(k0: u64, k1: u64, words: [u64; N]) -> u64 {
    let mut sip = SipHasher13::new_with_keys(k0, k1);
    for w in words {
        sip.write_u64(w);
    }
    sip.finish()
}

/// Keyed SipHash-1-3 over flow keys. Every balancer built with the same seed
/// computes the same hash for a flow, so all of them pick the same backend.
///
/// The tuple is fed as whole 64-bit words (two for IPv4, five for IPv6):
/// the hash is SipHash-1-3 of their little-endian bytes, and with a fresh
/// hasher per flow the compiler removes all of the byte-buffering logic.
#[derive(Debug, Clone, Copy)]
pub struct FlowHasher {
    k0: u64,
    k1: u64,
    /// Four IPv4 hashes at once, when the CPU can.
    #[cfg(target_arch = "x86_64")]
    x4: Option<sip13_x4::Avx2Sip13>,
    /// Eight IPv4 hashes at once, when the CPU can.
    #[cfg(target_arch = "x86_64")]
    x8: Option<Avx512Sip13>,
}

impl FlowHasher {
    /// A hasher keyed by the cluster-wide `seed`.
    pub fn new(seed: u64) -> Self {
        // The second key word is derived from the seed so one number configures
        // the cluster; the constant only keeps the two words distinct.
        let k1 = seed.rotate_left(32) ^ 0x5275_7374_7952_6169; // "RustyRai"
        Self {
            k0: seed,
            k1,
            #[cfg(target_arch = "x86_64")]
            x4: sip13_x4::Avx2Sip13::detect(seed, k1),
            #[cfg(target_arch = "x86_64")]
            x8: Avx512Sip13::detect(seed, k1),
        }
    }

    #[inline]
    fn hash_words<const N: usize>(&self, words: [u64; N]) -> u64 {
        sip13_words(self.k0, self.k1, words)
    }

    /// The flow's 64-bit hash: indexes the connection table and the Maglev table.
    #[inline]
    pub fn flow(&self, key: &FlowKey) -> u64 {
        if key.is_ipv6 {
            let tail = u64::from(key.src_port) << 48
                | u64::from(key.dst_port) << 32
                | u64::from(key.protocol) << 24;
            let [s0, s1] = halves(&key.src);
            let [d0, d1] = halves(&key.dst);
            self.hash_words([s0, s1, d0, d1, tail | 6])
        } else {
            let four = |a: &[u8; 16]| [a[0], a[1], a[2], a[3]];
            self.ipv4(Self::ipv4_words(
                four(&key.src),
                four(&key.dst),
                key.protocol,
                key.src_port,
                key.dst_port,
            ))
        }
    }

    /// The hash of a flow's source address alone (services that keep a
    /// client on one backend whatever its ports). The last word's low byte
    /// (5 for IPv4, 7 for IPv6) keeps it apart from every 5-tuple hash.
    #[inline]
    pub fn source(&self, key: &FlowKey) -> u64 {
        if key.is_ipv6 {
            let [s0, s1] = halves(&key.src);
            self.hash_words([s0, s1, 7])
        } else {
            self.hash_words([u64::from(word(&key.src)) << 32, 5])
        }
    }

    /// The two words an IPv4 5-tuple is hashed as (see [`Self::flow`]).
    #[inline]
    pub fn ipv4_words(
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> [u64; 2] {
        let tail =
            u64::from(src_port) << 48 | u64::from(dst_port) << 32 | u64::from(protocol) << 24;
        [
            u64::from(u32::from_be_bytes(src)) << 32 | u64::from(u32::from_be_bytes(dst)),
            tail | 4,
        ]
    }

    /// The hash of an IPv4 5-tuple given as [`Self::ipv4_words`]; equal to
    /// [`Self::flow`] of the same tuple.
    #[inline]
    pub fn ipv4(&self, words: [u64; 2]) -> u64 {
        self.hash_words(words)
    }

    /// [`Self::ipv4`] of four flows at once (vectorised where the CPU can).
    #[inline]
    pub fn ipv4_x4(&self, words: [[u64; 2]; 4]) -> [u64; 4] {
        #[cfg(target_arch = "x86_64")]
        if let Some(x4) = &self.x4 {
            return x4.hash(words);
        }
        words.map(|w| self.ipv4(w))
    }

    /// The eight-lane AVX-512 hasher, where the CPU has it.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(crate) fn x8(&self) -> Option<&Avx512Sip13> {
        self.x8.as_ref()
    }

    /// [`Self::ipv4`] of eight flows at once: in one AVX-512 register where
    /// the CPU has it, else as two groups of four.
    #[inline]
    pub fn ipv4_x8(&self, words: &[[u64; 2]; 8]) -> [u64; 8] {
        #[cfg(target_arch = "x86_64")]
        if let Some(x8) = &self.x8 {
            return x8.hash(words);
        }
        let [m0, m1, m2, m3, m4, m5, m6, m7] = *words;
        let [h0, h1, h2, h3] = self.ipv4_x4([m0, m1, m2, m3]);
        let [h4, h5, h6, h7] = self.ipv4_x4([m4, m5, m6, m7]);
        [h0, h1, h2, h3, h4, h5, h6, h7]
    }

    /// The hash of a fragmented datagram's identity (fragment table index).
    #[inline]
    pub fn datagram(&self, key: &DatagramKey) -> u64 {
        let tail = u64::from(key.ident) << 32 | u64::from(key.protocol) << 24;
        if key.is_ipv6 {
            let [s0, s1] = halves(&key.src);
            let [d0, d1] = halves(&key.dst);
            self.hash_words([s0, s1, d0, d1, tail | 6])
        } else {
            self.hash_words([
                u64::from(word(&key.src)) << 32 | u64::from(word(&key.dst)),
                tail | 4,
            ])
        }
    }
}

/// The first four bytes of an address field (an IPv4 address), big-endian.
#[inline]
fn word(addr: &[u8; 16]) -> u32 {
    u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]])
}

/// An IPv6 address as two big-endian words.
#[inline]
fn halves(addr: &[u8; 16]) -> [u64; 2] {
    let v = u128::from_be_bytes(*addr);
    [(v >> 64) as u64, v as u64]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_hash_different_seed_different_hash() {
        let key = FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 6, 40000, 80);
        assert_eq!(FlowHasher::new(7).flow(&key), FlowHasher::new(7).flow(&key));
        assert_ne!(FlowHasher::new(7).flow(&key), FlowHasher::new(8).flow(&key));
    }

    #[test]
    fn every_tuple_field_changes_the_hash() {
        let h = FlowHasher::new(1);
        let base = FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 6, 40000, 80);
        let variants = [
            FlowKey::v4([10, 0, 0, 2], [10, 9, 0, 1], 6, 40000, 80),
            FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 2], 6, 40000, 80),
            FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 17, 40000, 80),
            FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 6, 40001, 80),
            FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 6, 40000, 81),
            base.reversed(),
        ];
        for v in variants {
            assert_ne!(h.flow(&base), h.flow(&v), "{v:?}");
        }
    }

    #[test]
    fn ipv4_and_ipv4_mapped_ipv6_are_different_flows() {
        let h = FlowHasher::new(1);
        let v4 = FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 6, 1, 2);
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[10, 9, 0, 1]);
        let v6 = FlowKey::v6(src, dst, 6, 1, 2);
        assert_ne!(h.flow(&v4), h.flow(&v6));
    }

    #[test]
    fn the_ipv4_word_form_hashes_like_the_key() {
        let h = FlowHasher::new(3);
        let key = FlowKey::v4([10, 0, 0, 1], [10, 9, 0, 1], 17, 1234, 53);
        let words = FlowHasher::ipv4_words([10, 0, 0, 1], [10, 9, 0, 1], 17, 1234, 53);
        assert_eq!(h.ipv4(words), h.flow(&key));
    }

    #[test]
    fn four_at_once_hash_as_one_at_a_time() {
        let h = FlowHasher::new(5);
        let words: [[u64; 2]; 4] = core::array::from_fn(|i| {
            FlowHasher::ipv4_words([10, 0, 0, i as u8], [10, 9, 0, 1], 6, 40000 + i as u16, 80)
        });
        assert_eq!(h.ipv4_x4(words), words.map(|w| h.ipv4(w)));
    }

    #[test]
    fn eight_at_once_hash_as_one_at_a_time() {
        let h = FlowHasher::new(7);
        let words: [[u64; 2]; 8] = core::array::from_fn(|i| {
            FlowHasher::ipv4_words([10, 0, 0, i as u8], [10, 9, 0, 1], 17, 50000 + i as u16, 53)
        });
        assert_eq!(h.ipv4_x8(&words), words.map(|w| h.ipv4(w)));
    }

    #[test]
    fn reversing_twice_is_the_identity() {
        let key = FlowKey::v6([1; 16], [2; 16], 17, 53, 5353);
        assert_eq!(key.reversed().reversed(), key);
        assert_eq!(key.reversed().src_port, 5353);
    }
}
