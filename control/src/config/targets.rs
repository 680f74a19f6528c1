//! `RR_TARGET_IPS`: the backends and their Maglev weights.
//!
//! A backend is IPv4 or IPv6 (GRE toward it goes over its family). An IPv6
//! address is full of `:`, so one with a weight is written in brackets,
//! as in a URL: `[2001:db8::1]:3`; a bare one (`2001:db8::1`) has the
//! default weight.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use super::error::{ConfigError, Problem, Setting};
use super::list_entries;

/// Most backends a table can name: backend indices are 16-bit.
pub const MAX_TARGETS: usize = 65_535;

/// Weight of a backend given without `:weight`.
pub const DEFAULT_WEIGHT: u32 = 1;

/// One backend: where GRE is sent, and its share of the Maglev table
/// (0 drains it: no new flows, existing ones stay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    pub addr: IpAddr,
    pub weight: u32,
}

/// The parsed `--target-ips` list, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets(pub Vec<TargetSpec>);

impl Targets {
    pub fn as_slice(&self) -> &[TargetSpec] {
        &self.0
    }
}

/// Parses `ip` or `ip:weight` entries separated by `;` (or `,`), with
/// whitespace around entries and empty entries ignored. IPv4 or IPv6 (an
/// IPv6 address with a weight in brackets: `[2001:db8::1]:3`), weight
/// 0..=65535 (default 1), each address once, at most [`MAX_TARGETS`].
pub fn parse_targets(s: &str) -> Result<Vec<TargetSpec>, ConfigError> {
    let invalid = |value: &str, problem| ConfigError::invalid(Setting::TargetIps, value, problem);
    let mut targets: Vec<TargetSpec> = Vec::new();
    let mut seen = HashSet::new();
    for entry in list_entries(s) {
        let target = parse_target(entry).map_err(|problem| invalid(entry, problem))?;
        if !seen.insert(target.addr) {
            return Err(invalid(entry, Problem::Duplicate(target.addr)));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err(invalid(s, Problem::Empty));
    }
    if targets.len() > MAX_TARGETS {
        return Err(ConfigError::TooManyTargets {
            count: targets.len(),
        });
    }
    Ok(targets)
}

fn parse_target(entry: &str) -> Result<TargetSpec, Problem> {
    let (addr, weight) = split_weight(entry)?;
    let weight = match weight.map(str::trim) {
        None => DEFAULT_WEIGHT,
        Some(w) => w
            .parse::<u16>()
            .map(u32::from)
            .map_err(|_| Problem::BadWeight(w.to_owned()))?,
    };
    Ok(TargetSpec { addr, weight })
}

/// The address of an entry and its `:weight` part, if any: `ip`,
/// `ipv4:weight`, `[ipv6]` or `[ipv6]:weight`, or a bare IPv6 address
/// (all of whose colons are the address's).
fn split_weight(entry: &str) -> Result<(IpAddr, Option<&str>), Problem> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(Problem::NotIp)?;
        let addr = inside
            .trim()
            .parse::<Ipv6Addr>()
            .map_err(|_| Problem::NotIp)?;
        let weight = match after.trim_start() {
            "" => None,
            tail => Some(tail.strip_prefix(':').ok_or(Problem::NotIp)?),
        };
        return Ok((IpAddr::V6(addr), weight));
    }
    if let Ok(addr) = entry.parse::<Ipv6Addr>() {
        return Ok((IpAddr::V6(addr), None));
    }
    let (addr, weight) = match entry.split_once(':') {
        Some((addr, weight)) => (addr, Some(weight)),
        None => (entry, None),
    };
    let addr = addr.trim();
    match addr.parse::<std::net::Ipv4Addr>() {
        Ok(v4) => Ok((IpAddr::V4(v4), weight)),
        // `2001:db8::1:x`: an IPv6 address given a weight without brackets.
        Err(_) if entry.matches(':').count() > 1 => Err(Problem::Ipv6WeightNeedsBrackets),
        Err(_) => Err(Problem::NotIp),
    }
}

/// `parse_targets` for clap.
pub(super) fn parse_targets_arg(s: &str) -> Result<Targets, ConfigError> {
    parse_targets(s).map(Targets)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn t(addr: [u8; 4], weight: u32) -> TargetSpec {
        TargetSpec {
            addr: IpAddr::from(addr),
            weight,
        }
    }

    fn t6(addr: &str, weight: u32) -> TargetSpec {
        TargetSpec {
            addr: addr.parse().unwrap(),
            weight,
        }
    }

    fn message(s: &str) -> String {
        parse_targets(s).unwrap_err().to_string()
    }

    const ACCEPTED: &str = "expected ip or ip:weight with weight 0..=65535, ';'-separated \
        (IPv4 or IPv6, an IPv6 address with a weight in brackets such as [2001:db8::1]:3; \
        each backend once, at most 65535 backends)";

    #[test]
    fn addresses_with_and_without_weights_parse_in_order() {
        assert_eq!(
            parse_targets("10.1.0.1;10.1.0.2:5;10.1.0.3:0").unwrap(),
            [
                t([10, 1, 0, 1], 1),
                t([10, 1, 0, 2], 5),
                t([10, 1, 0, 3], 0)
            ]
        );
    }

    #[test]
    fn commas_whitespace_and_empty_entries_are_accepted() {
        assert_eq!(
            parse_targets(" 10.0.0.1 , 10.0.0.2 : 65535;; 10.0.0.3;").unwrap(),
            [
                t([10, 0, 0, 1], 1),
                t([10, 0, 0, 2], 65_535),
                t([10, 0, 0, 3], 1)
            ]
        );
    }

    #[test]
    fn ipv6_backends_are_bare_or_in_brackets_with_a_weight() {
        assert_eq!(
            parse_targets(
                "2001:db8::1; [2001:db8::2]:3; [2001:db8::3] ; 10.0.0.1:2;[2001:db8::4]:0"
            )
            .unwrap(),
            [
                t6("2001:db8::1", 1),
                t6("2001:db8::2", 3),
                t6("2001:db8::3", 1),
                t([10, 0, 0, 1], 2),
                t6("2001:db8::4", 0),
            ]
        );
        // All colons of a bare address are the address's: this is
        // 2001:db8::1:3 with weight 1, not 2001:db8::1 with weight 3.
        assert_eq!(
            parse_targets("2001:db8::1:3").unwrap(),
            [t6("2001:db8::1:3", 1)]
        );
    }

    #[test]
    fn a_bad_weight_is_named_with_its_entry() {
        assert_eq!(
            message("10.1.0.1:x"),
            format!("RR_TARGET_IPS: \"10.1.0.1:x\" has weight \"x\"; {ACCEPTED}")
        );
        assert!(message("10.1.0.1:65536").contains("has weight \"65536\""));
        assert!(message("10.1.0.1:-1").contains("has weight \"-1\""));
        assert!(message("10.1.0.1:").contains("has weight \"\""));
        assert!(
            message("[2001:db8::1]:65536").contains("\"[2001:db8::1]:65536\" has weight \"65536\"")
        );
        assert!(message("[2001:db8::1]:").contains("has weight \"\""));
    }

    #[test]
    fn a_bad_address_is_named() {
        let m = message("10.1.0.1;not-an-ip");
        assert_eq!(
            m,
            format!("RR_TARGET_IPS: \"not-an-ip\" is not an IPv4 or IPv6 address; {ACCEPTED}")
        );
        for bad in [
            "10.1.0.256",
            "[2001:db8::1",
            "[10.0.0.1]:3",
            "[2001:db8::1]3",
            "[2001:db8::zz]:3",
        ] {
            let m = message(bad);
            assert!(
                m.contains(&format!("{bad:?} is not an IPv4 or IPv6 address")),
                "{m}"
            );
        }
    }

    #[test]
    fn an_ipv6_address_given_a_weight_without_brackets_is_explained() {
        let m = message("2001:db8::1:x");
        assert!(
            m.starts_with("RR_TARGET_IPS: \"2001:db8::1:x\" is not an address: an IPv6 backend with a weight is written in brackets, such as [2001:db8::1]:3"),
            "{m}"
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let m = message("10.0.0.1;10.0.0.2:3;10.0.0.1:2");
        assert!(
            m.contains("\"10.0.0.1:2\" lists 10.0.0.1 more than once"),
            "{m}"
        );
        let m = message("2001:db8::1;[2001:db8:0::1]:2");
        assert!(
            m.contains("\"[2001:db8:0::1]:2\" lists 2001:db8::1 more than once"),
            "{m}"
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(message("").contains("\"\" has no entries"));
        assert!(message(" ; ,").contains("has no entries"));
    }

    #[test]
    fn at_most_65535_backends_are_accepted() {
        let list = |n: u32| {
            (0..n)
                .map(|i| Ipv4Addr::from(0x0A00_0000 + i).to_string())
                .collect::<Vec<_>>()
                .join(";")
        };
        assert_eq!(parse_targets(&list(65_535)).unwrap().len(), 65_535);
        assert_eq!(
            message(&list(65_536)),
            format!("RR_TARGET_IPS: 65536 backends given; {ACCEPTED}")
        );
    }
}
