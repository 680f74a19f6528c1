//! A client cut from one balancer, done at the router.
//!
//! A partition drops, in each namespace, what arrives from the addresses it
//! holds a grudge against ([`crate::partition`]). Between a client and a
//! balancer that cuts nothing that matters: the client's packets reach the
//! balancer with the router's address outside (GRE) or the VIP as their
//! destination, a balancer reading frames (`AF_PACKET`, `AF_XDP`) sees them
//! before netfilter, and replies come from the servers (DSR) or from the
//! VIP (a proxy), never from the balancer's own address. What a broken path
//! between a client and one balancer looks like in life is the router still
//! sending that client's flows to that balancer and nothing arriving, so the
//! router drops, for each cut pair:
//!
//! - what it forwards from the client with the balancer as next hop (the
//!   VIP routed as plain IP: `rusty_rail`'s VIP and BGP modes, `HAProxy`);
//! - what it sends itself in GRE to the balancer with the client inside
//!   (`rusty_rail`'s GRE mode: the router's tunnel writes an unkeyed GRE
//!   header, so the inner source address is 16 bytes into the GRE payload);
//! - what it forwards from the balancer's interface to the client (a
//!   proxy's replies), by the balancer's MAC address.
//!
//! Each rule counts what it dropped (`nft list table inet
//! testbed_route_cut` in the router's namespace while the cut holds).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The router's table for these cuts, apart from the partition's own.
pub const TABLE: &str = "testbed_route_cut";

/// One client cut from one balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPath {
    pub client: Ipv4Addr,
    pub balancer: Ipv4Addr,
    /// The balancer's MAC address on the router's network, if known.
    pub balancer_mac: Option<String>,
}

/// The router's ruleset for `paths`, replacing any it had; with no path it
/// only removes the table.
pub fn ruleset(paths: &[CutPath]) -> String {
    let mut text = heal();
    if paths.is_empty() {
        return text;
    }
    let _ = writeln!(text, "table inet {TABLE} {{");
    text.push_str("  chain forward {\n    type filter hook forward priority -10; policy accept;\n");
    for path in paths {
        let _ = writeln!(
            text,
            "    ip saddr {} rt ip nexthop {} counter drop",
            path.client, path.balancer
        );
        if let Some(mac) = &path.balancer_mac {
            let _ = writeln!(
                text,
                "    ether saddr {mac} ip daddr {} counter drop",
                path.client
            );
        }
    }
    text.push_str(
        "  }\n  chain output {\n    type filter hook output priority -10; policy accept;\n",
    );
    for path in paths {
        let _ = writeln!(
            text,
            "    ip protocol gre ip daddr {} @th,128,32 {:#010x} counter drop",
            path.balancer,
            u32::from(path.client)
        );
    }
    text.push_str("  }\n}\n");
    text
}

/// The ruleset that removes the router's cuts (harmless when none).
pub fn heal() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

/// The client-balancer pairs among `pairs` (either order), by number.
pub fn client_balancer_pairs(pairs: &[[String; 2]]) -> Vec<(usize, usize)> {
    let number = |name: &str, role: &str| -> Option<usize> {
        name.strip_prefix(role)
            .filter(|digits| !digits.starts_with(|c: char| c.is_ascii_lowercase()))
            .and_then(|digits| digits.parse().ok())
    };
    let mut out = Vec::new();
    for [a, b] in pairs {
        let found = match (number(a, "c"), number(b, "lb")) {
            (Some(c), Some(lb)) => Some((c, lb)),
            _ => number(b, "c").zip(number(a, "lb")),
        };
        if let Some(pair) = found {
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_balancer_pair_is_dropped_at_the_router_both_ways_and_in_gre() {
        let text = ruleset(&[CutPath {
            client: Ipv4Addr::new(10, 186, 1, 11),
            balancer: Ipv4Addr::new(10, 186, 2, 11),
            balancer_mac: Some("02:00:00:00:00:01".into()),
        }]);
        let golden = "table inet testbed_route_cut\ndelete table inet testbed_route_cut\n\
            table inet testbed_route_cut {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n    \
            ip saddr 10.186.1.11 rt ip nexthop 10.186.2.11 counter drop\n    \
            ether saddr 02:00:00:00:00:01 ip daddr 10.186.1.11 counter drop\n  }\n  chain output {\n    \
            type filter hook output priority -10; policy accept;\n    \
            ip protocol gre ip daddr 10.186.2.11 @th,128,32 0x0aba010b counter drop\n  }\n}\n";
        assert_eq!(text, golden);
        assert_eq!(ruleset(&[]), heal());
    }

    #[test]
    fn only_client_balancer_pairs_count_in_either_order_once() {
        let pairs = |list: &[(&str, &str)]| -> Vec<[String; 2]> {
            list.iter()
                .map(|(a, b)| [(*a).to_owned(), (*b).to_owned()])
                .collect()
        };
        assert_eq!(
            client_balancer_pairs(&pairs(&[
                ("c1", "lb2"),
                ("lb2", "c1"),
                ("lb1", "c12"),
                ("lb1", "s1"),
                ("c1", "c2"),
                ("r", "lb1"),
            ])),
            vec![(1, 2), (12, 1)]
        );
    }

    /// nft accepts the ruleset (`nft -c`), where nft runs.
    #[test]
    fn nft_accepts_the_ruleset() {
        host::skip_unless!(host::capability::Need::Tool("nft"));
        let text = ruleset(&[CutPath {
            client: Ipv4Addr::new(10, 186, 1, 11),
            balancer: Ipv4Addr::new(10, 186, 2, 12),
            balancer_mac: Some("02:00:00:00:00:01".into()),
        }]);
        let checked = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .map(|mut stdin| stdin.write_all(text.as_bytes()))
                    .transpose()?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(
            checked.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
