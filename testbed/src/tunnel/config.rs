//! What an endpoint is told: the command line's options, also built directly
//! by library users (the balancer's end-to-end tests).

use std::net::{IpAddr, Ipv4Addr};

use clap::Args;

use super::prefix::Prefix;

/// The router side: VIP traffic routed into a tun, sent out as GRE.
#[derive(Debug, Clone, Args)]
pub struct EncapConfig {
    /// Name of the tun device to create (at most 15 bytes).
    #[arg(long)]
    pub tun: String,
    /// The VIPs (addresses or prefixes, comma-separated) routed into the tunnel.
    #[arg(long, value_delimiter = ',', required = true)]
    pub vip: Vec<Prefix>,
    /// The balancers (IPv4 or IPv6, all of one family, comma-separated): the outer header is of their family (GRE over IPv6 to IPv6 ones); with several, flows are spread by a hash of the inner 5-tuple.
    #[arg(long, value_delimiter = ',', required = true)]
    pub remote: Vec<IpAddr>,
    /// Source address of the outer header, of the remotes' family [default: the kernel's choice].
    #[arg(long)]
    pub local: Option<IpAddr>,
    /// GRE key (decimal, 0x-hex or dotted like 0.0.0.7) [default: none].
    #[arg(long, value_parser = parse_key)]
    pub key: Option<u32>,
    /// Seed of the flow hash that picks the balancer.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MTU of the tun device [default: 1500 minus the outer IP (20 or 40 bytes) and GRE headers].
    #[arg(long)]
    pub mtu: Option<u16>,
    /// A file listing the balancers currently in the ECMP group (some of
    /// --remote, one per line), re-read when it changes: removing one is a
    /// route withdrawal [default: all of --remote, always].
    #[arg(long, value_name = "FILE", conflicts_with = "follow_routes")]
    pub remotes_file: Option<std::path::PathBuf>,
    /// Spread flows over the --remote balancers (IPv4 only) the router has a /32 route
    /// to (installed by its BGP daemon from their announcements), re-read
    /// every 100 ms: a withdrawal or a failed session takes a balancer out.
    #[arg(long)]
    pub follow_routes: bool,
}

/// The server side: GRE received on a raw socket, inner packets delivered
/// through a tun that holds the VIPs.
#[derive(Debug, Clone, Args)]
pub struct DecapConfig {
    /// Name of the tun device to create (at most 15 bytes).
    #[arg(long)]
    pub tun: String,
    /// The VIPs (addresses, comma-separated) put on the tun device; inner packets to other addresses are dropped.
    #[arg(long, value_delimiter = ',', required = true)]
    pub vip: Vec<Prefix>,
    /// GRE key packets must carry (decimal, 0x-hex or dotted) [default: none: keyed packets are dropped].
    #[arg(long, value_parser = parse_key)]
    pub key: Option<u32>,
}

/// A GRE key as `ip tunnel` accepts it: decimal, `0x` hex, or dotted quad.
pub fn parse_key(text: &str) -> Result<u32, String> {
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        u32::from_str_radix(hex, 16).ok()
    } else if text.contains('.') {
        text.parse::<Ipv4Addr>().ok().map(u32::from)
    } else {
        text.parse().ok()
    };
    parsed.ok_or_else(|| {
        format!("`{text}` is not a GRE key: a 32-bit number, decimal, 0x-hex or dotted (0.0.0.7)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_in_all_three_spellings() {
        assert_eq!(parse_key("7"), Ok(7));
        assert_eq!(parse_key("0x10"), Ok(16));
        assert_eq!(parse_key("0.0.1.2"), Ok(258));
        assert_eq!(parse_key("4294967295"), Ok(u32::MAX));
        let e = parse_key("4294967296").unwrap_err();
        assert!(e.contains("4294967296") && e.contains("0x-hex"), "{e}");
        assert!(parse_key("0xg").is_err());
    }
}
