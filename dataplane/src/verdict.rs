//! What the pipeline decides for each frame, and why it drops one.

/// Where a frame goes after the pipeline has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Rewritten for a backend: transmit on the wire.
    ToWire,
    /// Not ours: hand to the host stack untouched (passthrough).
    ToHost,
    /// Copied aside by the pipeline (a fragment that arrived before its
    /// first fragment); the backend frees this buffer. The copy is sent later,
    /// or dropped and counted when its wait runs out.
    Held,
    /// Addressed to us but unusable; counted under the reason.
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)+) => {
        /// Why a frame addressed to the balancer was dropped. Counted per worker,
        /// never logged per packet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)+
        }

        impl DropReason {
            /// Every reason, in counter order (`reason as usize` indexes it).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];
            /// How many reasons there are: the length of a per-reason counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// The `snake_case` name used in counters, metrics and replay output.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header (or its 802.1Q tag).
    TruncatedEthernet => "truncated_ethernet",
    /// The outer IPv4 header is cut short or its IHL/total length do not fit the frame.
    TruncatedIpv4 => "truncated_ipv4",
    /// The outer IPv4 header is malformed (version, IHL below 5, total length below the header).
    MalformedIpv4 => "malformed_ipv4",
    /// The outer IPv4 header checksum does not verify.
    BadIpv4Checksum => "bad_ipv4_checksum",
    /// The GRE header (with its optional checksum, key and sequence words) is cut short.
    TruncatedGre => "truncated_gre",
    /// GRE version is not 0 (version 1 is PPTP, not ours).
    BadGreVersion => "bad_gre_version",
    /// GRE routing bit or reserved bits set (RFC 2784 says they must be zero).
    BadGreFlags => "bad_gre_flags",
    /// GRE carries something other than IPv4 (0x0800) or IPv6 (0x86DD).
    UnsupportedGreProtocol => "unsupported_gre_protocol",
    /// The encapsulated IPv4 header is cut short or inconsistent.
    TruncatedInnerIpv4 => "truncated_inner_ipv4",
    /// The encapsulated IPv6 header or its extension headers are cut short or inconsistent.
    TruncatedInnerIpv6 => "truncated_inner_ipv6",
    /// The encapsulated (or VIP-addressed) IP header is malformed: bad version, IHL or lengths.
    MalformedInnerIp => "malformed_inner_ip",
    /// The encapsulated packet's version nibble does not match the GRE protocol type.
    InnerVersionMismatch => "inner_version_mismatch",
    /// The TCP or UDP header of the flow is cut short.
    TruncatedTransport => "truncated_transport",
    /// The TCP data offset or UDP length field contradicts the packet.
    MalformedTransport => "malformed_transport",
    /// An ICMP error whose embedded packet is too short to name the flow.
    TruncatedIcmpError => "truncated_icmp_error",
    /// Too many IPv6 extension headers to walk.
    Ipv6ExtensionChainTooLong => "ipv6_extension_chain_too_long",
    /// The outer TTL would reach zero on forwarding.
    TtlExpired => "ttl_expired",
    /// No backend with weight above zero (or the chosen one has no next-hop MAC).
    NoBackend => "no_backend",
    /// A non-first fragment waited for its first fragment longer than the hold time.
    FragmentTimeout => "fragment_timeout",
    /// A non-first fragment arrived before its first and the hold buffer was full.
    FragmentHoldFull => "fragment_hold_full",
    /// A fragment whose offset, length or flags are impossible.
    MalformedFragment => "malformed_fragment",
    /// The outer GRE packet is itself fragmented (reassemble before the balancer).
    OuterFragment => "outer_fragment",
    /// Encapsulating this VIP packet would exceed the MTU.
    EncapExceedsMtu => "encap_exceeds_mtu",
    /// A released fragment found the wire's transmit ring full.
    TransmitRingFull => "transmit_ring_full",
    /// The frame buffer has no room to prepend the encapsulation headers.
    NoHeadroom => "no_headroom",
    /// GRE whose inner destination, protocol and port no service takes.
    NoService => "no_service",
    /// The outer IPv6 header (GRE over IPv6 to the balancer) has a payload length past the frame.
    TruncatedIpv6 => "truncated_ipv6",
    /// The outer IPv6 header is not version 6, or is a jumbogram.
    MalformedIpv6 => "malformed_ipv6",
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_counter_slot() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
    }

    #[test]
    fn reason_names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
