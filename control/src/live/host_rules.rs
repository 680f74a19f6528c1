//! The nftables rules that keep the kernel out of what the balancer handles.
//!
//! With `AF_PACKET` the kernel receives its own copy of every frame. Left
//! alone it would answer GRE sent to the balancer's address with ICMP
//! protocol-unreachable (no GRE device here) and, in VIP mode, forward or
//! answer VIP traffic a second time. One table, named for the interface,
//! drops those copies before routing; the balancer's own copies are taken
//! by `AF_PACKET` before netfilter runs, so they are unaffected. The table is
//! deleted when the guard drops.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

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

/// The ruleset for a balancer at `lb` on `interface` serving `vips`. A
/// leftover table of the same name (a previous run killed with -9) is
/// replaced in the same transaction.
pub fn ruleset(interface: &str, lb: Ipv4Addr, vips: &[IpAddr]) -> String {
    let table = table_name(interface);
    let mut script = format!(
        "table inet {table} {{}}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname \"{interface}\" ip daddr {lb} ip protocol gre counter drop comment \"balanced by rusty_rail\"\n"
    );
    for vip in vips {
        let family = if vip.is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(
            script,
            "\t\tiifname \"{interface}\" {family} daddr {vip} meta l4proto {{ tcp, udp }} counter drop comment \"VIP balanced by rusty_rail\""
        );
    }
    script.push_str("\t}\n}\n");
    script
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
    /// Installs the rules for `interface`.
    pub fn install(interface: &str, lb: Ipv4Addr, vips: &[IpAddr]) -> Result<Self, HostRulesError> {
        nft(&ruleset(interface, lb, vips))?;
        Ok(Self {
            table: table_name(interface),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
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
    fn the_ruleset_drops_gre_to_the_balancer_and_tcp_udp_to_each_vip() {
        let vips: Vec<IpAddr> = vec!["10.9.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let script = ruleset("eth0", Ipv4Addr::new(10, 0, 2, 10), &vips);
        assert!(script
            .starts_with("table inet rusty_rail_eth0 {}\ndelete table inet rusty_rail_eth0\n"));
        assert!(script.contains("iifname \"eth0\" ip daddr 10.0.2.10 ip protocol gre counter drop"));
        assert!(script
            .contains("iifname \"eth0\" ip daddr 10.9.0.1 meta l4proto { tcp, udp } counter drop"));
        assert!(script.contains(
            "iifname \"eth0\" ip6 daddr 2001:db8::1 meta l4proto { tcp, udp } counter drop"
        ));
    }
}
