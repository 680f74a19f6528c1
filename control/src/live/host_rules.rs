//! The nftables rules that keep the kernel out of what the balancer handles.
//!
//! With `AF_PACKET` the kernel receives its own copy of every frame. Left
//! alone it would answer GRE sent to the balancer's addresses with ICMP
//! protocol-unreachable or an IPv6 parameter problem (no GRE device here)
//! and, in VIP mode, forward or
//! answer VIP traffic a second time. One table, named for the interface,
//! drops those copies before routing; the balancer's own copies are taken
//! by `AF_PACKET` before netfilter runs, so they are unaffected. The table is
//! deleted when the guard drops.
//!
//! The VIPs are two named sets (`vips4`, `vips6`) that one rule per family
//! matches, so a VIP that a reload adds or removes is one element added to
//! or deleted from a set ([`VipSets`]): one nft transaction, atomic, with
//! the rules and their counters untouched. The sets go with the table.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use super::steered_vips::{VipChanges, VipFailure, VipSteering};

/// The installed table; deleted on drop.
#[derive(Debug)]
pub struct HostRules {
    table: String,
}

/// The nftables table name for `interface` (nft identifiers are letters,
/// digits and underscores here).
pub fn table_name(interface: &str) -> String {
    let safe: String = interface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("rusty_rail_{safe}")
}

/// The ruleset for a balancer at `lb` (its IPv4 address, and its IPv6
/// address where it has one) on `interface` serving `vips`. A leftover
/// table of the same name (a previous run killed with -9) is replaced in
/// the same transaction.
pub fn ruleset(interface: &str, lb: (Ipv4Addr, Option<Ipv6Addr>), vips: &[IpAddr]) -> String {
    let (lb_ipv4, lb_ipv6) = lb;
    let table = table_name(interface);
    let mut script = format!(
        "table inet {table} {{}}\n\
         delete table inet {table}\n\
         table inet {table} {{\n"
    );
    for family in [Family::V4, Family::V6] {
        let _ = write!(
            script,
            "\tset {} {{\n\t\ttype {};\n",
            family.set(),
            family.address_type()
        );
        let members = family.members(vips);
        if !members.is_empty() {
            let _ = writeln!(script, "\t\telements = {{ {members} }}");
        }
        script.push_str("\t}\n");
    }
    let _ = write!(
        script,
        "\tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname \"{interface}\" ip daddr {lb_ipv4} ip protocol gre counter drop comment \"balanced by rusty_rail\"\n"
    );
    // `ip6 nexthdr` is the fixed header's next header, as the pipeline
    // reads it: GRE behind extension headers is handed to the host by the
    // pipeline, so the kernel's copy must stay (`meta l4proto` would walk
    // the chain and drop it).
    if let Some(lb_ipv6) = lb_ipv6 {
        let _ = writeln!(
            script,
            "\t\tiifname \"{interface}\" ip6 daddr {lb_ipv6} ip6 nexthdr gre counter drop comment \"balanced by rusty_rail\""
        );
    }
    for family in [Family::V4, Family::V6] {
        let _ = writeln!(
            script,
            "\t\tiifname \"{interface}\" {} daddr @{} meta l4proto {{ tcp, udp }} counter drop comment \"VIP balanced by rusty_rail\"",
            family.selector(),
            family.set()
        );
    }
    script.push_str("\t}\n}\n");
    script
}

/// An address family's set and how nft names its addresses.
#[derive(Debug, Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn set(self) -> &'static str {
        match self {
            Self::V4 => "vips4",
            Self::V6 => "vips6",
        }
    }

    fn address_type(self) -> &'static str {
        match self {
            Self::V4 => "ipv4_addr",
            Self::V6 => "ipv6_addr",
        }
    }

    fn selector(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }

    /// `vips` of this family, comma-separated.
    fn members(self, vips: &[IpAddr]) -> String {
        let of_family = |vip: &&IpAddr| match self {
            Self::V4 => vip.is_ipv4(),
            Self::V6 => vip.is_ipv6(),
        };
        let members: Vec<String> = vips
            .iter()
            .filter(of_family)
            .map(ToString::to_string)
            .collect();
        members.join(", ")
    }
}

/// The nft script that adds `added` to table `table`'s VIP sets and
/// deletes `removed` from them, in one transaction (`nft -f` applies a
/// file whole or not at all).
pub fn set_changes(table: &str, added: &[IpAddr], removed: &[IpAddr]) -> String {
    let mut script = String::new();
    for (verb, vips) in [("add", added), ("delete", removed)] {
        for family in [Family::V4, Family::V6] {
            let members = family.members(vips);
            if !members.is_empty() {
                let _ = writeln!(
                    script,
                    "{verb} element inet {table} {} {{ {members} }}",
                    family.set()
                );
            }
        }
    }
    script
}

/// A handle on the installed table's VIP sets, to change them while the
/// balancer runs. It does not own the table: the table (and the sets with
/// it) is deleted with [`HostRules`], and a change after that fails
/// without creating anything.
#[derive(Debug, Clone)]
pub struct VipSets {
    table: String,
}

impl VipSets {
    /// Adds `added` and deletes `removed`, all or none.
    pub fn change(&self, added: &[IpAddr], removed: &[IpAddr]) -> Result<(), HostRulesError> {
        let script = set_changes(&self.table, added, removed);
        if script.is_empty() {
            return Ok(());
        }
        nft(&script)
    }
}

impl VipSteering for VipSets {
    fn what(&self) -> &'static str {
        "nftables VIP sets"
    }

    /// All in one transaction; if nft refuses it, each VIP on its own, so
    /// that one VIP it refuses does not hold back the others.
    fn apply(&mut self, changes: &VipChanges) -> Vec<VipFailure> {
        if self.change(&changes.added, &changes.removed).is_ok() {
            return Vec::new();
        }
        let one = |added: &[IpAddr], removed: &[IpAddr], vip: IpAddr| {
            self.change(added, removed)
                .err()
                .map(|e| (vip, e.to_string()))
        };
        let added = changes.added.iter().filter_map(|&v| one(&[v], &[], v));
        let removed = changes.removed.iter().filter_map(|&v| one(&[], &[v], v));
        added.chain(removed).collect()
    }
}

/// Why the rules could not be installed or removed.
#[derive(Debug)]
pub struct HostRulesError(pub String);

impl std::fmt::Display for HostRulesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostRulesError {}

impl HostRules {
    /// Installs the rules for `interface` (see [`ruleset`]).
    pub fn install(
        interface: &str,
        lb: (Ipv4Addr, Option<Ipv6Addr>),
        vips: &[IpAddr],
    ) -> Result<Self, HostRulesError> {
        nft(&ruleset(interface, lb, vips))?;
        Ok(Self {
            table: table_name(interface),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A handle on the table's VIP sets.
    pub fn vip_sets(&self) -> VipSets {
        VipSets {
            table: self.table.clone(),
        }
    }

    /// Deletes the table now, reporting failure (drop does it silently).
    pub fn remove(mut self) -> Result<(), HostRulesError> {
        let table = std::mem::take(&mut self.table);
        nft(&format!("delete table inet {table}\n"))
    }
}

impl Drop for HostRules {
    fn drop(&mut self) {
        if !self.table.is_empty() {
            let _ = nft(&format!("delete table inet {}\n", self.table));
        }
    }
}

/// Runs an nft script from standard input.
fn nft(script: &str) -> Result<(), HostRulesError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            HostRulesError(format!(
                "cannot run nft ({e}): rusty_rail needs nftables (apt install nftables) to keep the kernel from answering the GRE it balances"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| HostRulesError(format!("writing to nft: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| HostRulesError(format!("waiting for nft: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(HostRulesError(format!(
            "nft refused the rules: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(table_name("eth0"), "rusty_rail_eth0");
        assert_eq!(table_name("veth-lb.10"), "rusty_rail_veth_lb_10");
    }

    #[test]
    fn the_ruleset_drops_gre_to_the_balancer_and_tcp_udp_to_the_vips_in_its_sets() {
        let vips: Vec<IpAddr> = vec![
            "10.9.0.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            "10.9.0.2".parse().unwrap(),
        ];
        let script = ruleset("eth0", (Ipv4Addr::new(10, 0, 2, 10), None), &vips);
        assert!(script
            .starts_with("table inet rusty_rail_eth0 {}\ndelete table inet rusty_rail_eth0\n"));
        assert!(script.contains("iifname \"eth0\" ip daddr 10.0.2.10 ip protocol gre counter drop"));
        assert!(script.contains(
            "\tset vips4 {\n\t\ttype ipv4_addr;\n\t\telements = { 10.9.0.1, 10.9.0.2 }\n\t}\n"
        ));
        assert!(script
            .contains("\tset vips6 {\n\t\ttype ipv6_addr;\n\t\telements = { 2001:db8::1 }\n\t}\n"));
        assert!(script
            .contains("iifname \"eth0\" ip daddr @vips4 meta l4proto { tcp, udp } counter drop"));
        assert!(script
            .contains("iifname \"eth0\" ip6 daddr @vips6 meta l4proto { tcp, udp } counter drop"));
    }

    #[test]
    fn without_vips_the_sets_are_empty_and_the_rules_still_there() {
        let script = ruleset("eth0", (Ipv4Addr::new(10, 0, 2, 10), None), &[]);
        assert!(
            script.contains("\tset vips4 {\n\t\ttype ipv4_addr;\n\t}\n"),
            "{script}"
        );
        assert!(
            script.contains("\tset vips6 {\n\t\ttype ipv6_addr;\n\t}\n"),
            "{script}"
        );
        assert!(!script.contains("elements"), "{script}");
        assert!(script.contains("ip daddr @vips4"), "{script}");
    }

    #[test]
    fn with_an_ipv6_address_gre_over_ipv6_to_it_is_dropped_too_and_only_then() {
        let lb4 = Ipv4Addr::new(10, 0, 2, 10);
        let lb6: Ipv6Addr = "fd00:2::10".parse().unwrap();
        let script = ruleset("eth0", (lb4, Some(lb6)), &[]);
        assert!(
            script.contains(
                "\t\tiifname \"eth0\" ip6 daddr fd00:2::10 ip6 nexthdr gre counter drop comment \"balanced by rusty_rail\"\n"
            ),
            "{script}"
        );
        assert!(
            script.contains("iifname \"eth0\" ip daddr 10.0.2.10 ip protocol gre counter drop"),
            "the IPv4 rule stays: {script}"
        );
        // In the one prerouting chain, so it goes with the table.
        let chain = script.find("chain prerouting").unwrap();
        assert!(script.find("ip6 nexthdr gre").unwrap() > chain, "{script}");
        assert_eq!(script.matches("table inet rusty_rail_eth0 {\n").count(), 1);
        let without = ruleset("eth0", (lb4, None), &[]);
        assert!(!without.contains("nexthdr"), "{without}");
        assert!(!without.contains("ip6 daddr fd00"), "{without}");
    }

    #[test]
    fn set_changes_add_and_delete_elements_per_family_in_one_script() {
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        let script = set_changes(
            "rusty_rail_eth0",
            &[ip("10.9.0.3"), ip("2001:db8::3"), ip("10.9.0.4")],
            &[ip("10.9.0.1")],
        );
        assert_eq!(
            script,
            "add element inet rusty_rail_eth0 vips4 { 10.9.0.3, 10.9.0.4 }\n\
             add element inet rusty_rail_eth0 vips6 { 2001:db8::3 }\n\
             delete element inet rusty_rail_eth0 vips4 { 10.9.0.1 }\n"
        );
        assert_eq!(set_changes("rusty_rail_eth0", &[], &[]), "");
    }
}
