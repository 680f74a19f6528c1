//! The room every backend leaves around a frame, in one place: the packet
//! sockets' slots and netmap's buffers are sized from the same figures.

/// Room in front of each frame for VIP mode's outer IPv4 + GRE header
/// (24 bytes; 44 with IPv6 toward an IPv6 backend, and GRE mode's IPv4
/// header replaced by an IPv6 one takes 20), with room to spare.
pub const HEADROOM: u32 = 128;

/// An Ethernet header with one 802.1Q tag.
pub const ETHERNET_VLAN_HEADER: u32 = 18;
