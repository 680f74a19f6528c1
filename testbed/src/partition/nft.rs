//! A grudge as nftables rules: one table per namespace holding the sources
//! that namespace drops, replaced atomically (one `nft -f` transaction per
//! namespace, not one command per pair) and deleted to heal.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The table partitions own in each namespace.
pub const TABLE: &str = "testbed_partition";

/// The ruleset that makes a namespace drop packets from `sources` (and
/// nothing else), replacing whatever partition it had.
pub fn drop_from(sources: &[IpAddr]) -> String {
    let mut text = heal();
    let _ = writeln!(text, "table inet {TABLE} {{");
    let _ = writeln!(text, "  chain input {{");
    let _ = writeln!(
        text,
        "    type filter hook input priority -10; policy accept;"
    );
    let list = |want_v6: bool| {
        sources
            .iter()
            .filter(|a| a.is_ipv6() == want_v6)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (v4, v6) = (list(false), list(true));
    if !v4.is_empty() {
        let _ = writeln!(text, "    ip saddr {{ {v4} }} drop");
    }
    if !v6.is_empty() {
        let _ = writeln!(text, "    ip6 saddr {{ {v6} }} drop");
    }
    text.push_str("  }\n}\n");
    text
}

/// The ruleset that removes a namespace's partition (harmless when none).
pub fn heal() -> String {
    // Declaring the table first makes the delete succeed when it is absent.
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

/// Loads `ruleset` in network namespace `namespace` in one transaction.
pub fn load(namespace: &str, ruleset: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("namespace {namespace}: cannot run nft: {e} (apt-get install nftables)")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("namespace {namespace}: writing to nft: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("namespace {namespace}: nft: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "namespace {namespace}: nft refused the partition: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_replaces_atomically_and_lists_each_family() {
        let rules = drop_from(&[
            "10.0.0.2".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        ]);
        assert!(rules
            .starts_with("table inet testbed_partition\ndelete table inet testbed_partition\n"));
        assert!(rules.contains("ip saddr { 10.0.0.2, 10.0.0.3 } drop"));
        assert!(rules.contains("ip6 saddr { fd00::2 } drop"));
        let none = drop_from(&[]);
        assert!(!none.contains("saddr"));
    }
}
