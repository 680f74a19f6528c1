//! `RR_TARGET_IPS`: the backends and their Maglev weights.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

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
    pub addr: Ipv4Addr,
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
/// whitespace around entries and empty entries ignored. IPv4 only, weight
/// 0..=65535 (default 1), each address once, at most [`MAX_TARGETS`].
pub fn parse_targets(s: &str) -> Result<Vec<TargetSpec>, ConfigError> {
    let invalid = |value: &str, problem| ConfigError::invalid(Setting::TargetIps, value, problem);
    let mut targets: Vec<TargetSpec> = Vec::new();
    let mut seen = HashSet::new();
    for entry in list_entries(s) {
        let target = parse_target(entry).map_err(|problem| invalid(entry, problem))?;
        if !seen.insert(target.addr) {
            return Err(invalid(entry, Problem::Duplicate(target.addr.into())));
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
    // Checked first: an IPv6 address is full of ':' and would otherwise be
    // misread as ip:weight.
    if entry.parse::<Ipv6Addr>().is_ok() || entry.starts_with('[') {
        return Err(Problem::Ipv6NotAccepted);
    }
    let (addr, weight) = match entry.split_once(':') {
        Some((addr, weight)) => (addr, Some(weight)),
        None => (entry, None),
    };
    let addr = addr.trim().parse().map_err(|_| Problem::NotIpv4)?;
    let weight = match weight.map(str::trim) {
        None => DEFAULT_WEIGHT,
        Some(w) => w
            .parse::<u16>()
            .map(u32::from)
            .map_err(|_| Problem::BadWeight(w.to_owned()))?,
    };
    Ok(TargetSpec { addr, weight })
}

/// `parse_targets` for clap.
pub(super) fn parse_targets_arg(s: &str) -> Result<Targets, ConfigError> {
    parse_targets(s).map(Targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(addr: [u8; 4], weight: u32) -> TargetSpec {
        TargetSpec {
            addr: Ipv4Addr::from(addr),
            weight,
        }
    }

    fn message(s: &str) -> String {
        parse_targets(s).unwrap_err().to_string()
    }

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
    fn a_bad_weight_is_named_with_its_entry() {
        assert_eq!(
            message("10.1.0.1:x"),
            "RR_TARGET_IPS: \"10.1.0.1:x\" has weight \"x\"; expected ip or ip:weight \
             with weight 0..=65535, ';'-separated (IPv4, each backend once, at most 65535 backends)"
        );
        assert!(message("10.1.0.1:65536").contains("has weight \"65536\""));
        assert!(message("10.1.0.1:-1").contains("has weight \"-1\""));
        assert!(message("10.1.0.1:").contains("has weight \"\""));
    }

    #[test]
    fn a_bad_address_is_named() {
        let m = message("10.1.0.1;not-an-ip");
        assert!(
            m.starts_with("RR_TARGET_IPS: \"not-an-ip\" is not an IPv4 address"),
            "{m}"
        );
        assert!(message("10.1.0.256").contains("\"10.1.0.256\" is not an IPv4 address"));
    }

    #[test]
    fn ipv6_backends_are_refused_because_the_outer_header_is_ipv4() {
        for entry in ["2001:db8::1", "::1", "[2001:db8::1]:3"] {
            let m = message(entry);
            assert!(m.contains("is IPv6"), "{m}");
            assert!(m.contains(entry), "{m}");
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let m = message("10.0.0.1;10.0.0.2:3;10.0.0.1:2");
        assert!(
            m.contains("\"10.0.0.1:2\" lists 10.0.0.1 more than once"),
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
            "RR_TARGET_IPS: 65536 backends given; expected ip or ip:weight with weight \
             0..=65535, ';'-separated (IPv4, each backend once, at most 65535 backends)"
        );
    }
}
