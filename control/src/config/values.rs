//! Parsers for the single-valued settings and the VIP list.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::{ConfigError, Problem, Setting};
use super::list_entries;
use super::primes::{is_prime, nearest_primes};

/// The Maglev table sizes accepted: primes up to the largest below 2^24.
pub const TABLE_SIZE_RANGE: RangeInclusive<u64> = 3..=16_777_213;

/// An IPv4 address, telling an IPv6 one apart so the message can say why.
pub(super) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, Problem> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        if s.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<Ipv6Addr>()
            .is_ok()
        {
            Problem::Ipv6NotAccepted
        } else {
            Problem::NotIpv4
        }
    })
}

/// `--lb-ip` for clap.
pub(super) fn parse_lb_ip(s: &str) -> Result<Ipv4Addr, ConfigError> {
    parse_ipv4(s.trim()).map_err(|p| ConfigError::invalid(Setting::LbIp, s, p))
}

/// `--lb-ipv6` for clap: an address the balancer can send GRE over IPv6
/// from.
pub(super) fn parse_lb_ipv6(s: &str) -> Result<Ipv6Addr, ConfigError> {
    let invalid = |p| ConfigError::invalid(Setting::LbIpv6, s, p);
    let trimmed = s.trim().trim_start_matches('[').trim_end_matches(']');
    let addr = trimmed
        .parse::<Ipv6Addr>()
        .map_err(|_| invalid(Problem::NotIpv6))?;
    if !is_global_unicast(addr) {
        return Err(invalid(Problem::NotGlobalIpv6));
    }
    Ok(addr)
}

/// Whether `addr` can be the balancer's own IPv6 address, the source of
/// GRE over IPv6 across routers: unicast beyond the link (global or
/// unique-local), not loopback, unspecified, multicast, link-local or an
/// IPv4-mapped address.
pub fn is_global_unicast(addr: Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || first & 0xffc0 == 0xfe80
        || addr.to_ipv4_mapped().is_some())
}

/// The addresses served in VIP mode, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vips(pub Vec<IpAddr>);

impl Vips {
    pub fn as_slice(&self) -> &[IpAddr] {
        &self.0
    }
}

/// Parses IPv4 or IPv6 addresses separated by `;` (or `,`); empty means none
/// (GRE mode only).
pub fn parse_vips(s: &str) -> Result<Vips, ConfigError> {
    let mut vips = Vec::new();
    let mut seen = HashSet::new();
    for entry in list_entries(s) {
        let invalid = |problem| ConfigError::invalid(Setting::Vips, entry, problem);
        let vip: IpAddr = entry.parse().map_err(|_| invalid(Problem::NotIp))?;
        if !seen.insert(vip) {
            return Err(invalid(Problem::Duplicate(vip)));
        }
        vips.push(vip);
    }
    Ok(Vips(vips))
}

/// A decimal or `0x`-hex u64 (hex because seeds are usually written so).
pub fn parse_seed(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| ConfigError::invalid(Setting::Seed, s, Problem::NotNumber))
}

/// A whole number in `range`, for `setting`.
pub(super) fn parse_number(
    setting: Setting,
    s: &str,
    range: RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(setting, s, Problem::NotNumber))?;
    if !range.contains(&n) {
        return Err(ConfigError::invalid(setting, s, Problem::OutOfRange));
    }
    Ok(n)
}

/// A prime Maglev table size in [`TABLE_SIZE_RANGE`].
pub fn parse_table_size(s: &str) -> Result<u32, ConfigError> {
    let n = parse_number(Setting::TableSize, s, TABLE_SIZE_RANGE)?;
    if !is_prime(n) {
        let (below, above) = nearest_primes(n, *TABLE_SIZE_RANGE.end());
        let below = below.filter(|b| TABLE_SIZE_RANGE.contains(b));
        return Err(ConfigError::invalid(
            Setting::TableSize,
            s,
            Problem::NotPrime { below, above },
        ));
    }
    Ok(n as u32)
}

/// Entries per worker, the connection table's own range (it rounds up to a
/// power of two).
pub(super) fn parse_conntrack_capacity(s: &str) -> Result<usize, ConfigError> {
    use dataplane::conntrack::{MAX_CAPACITY, MIN_CAPACITY};
    parse_number(
        Setting::ConntrackCapacity,
        s,
        MIN_CAPACITY as u64..=MAX_CAPACITY as u64,
    )
    .map(|n| n as usize)
}

pub(super) fn parse_max_new_flows(s: &str) -> Result<u64, ConfigError> {
    parse_number(Setting::MaxNewFlows, s, 1..=u64::MAX)
}

pub(super) fn parse_fragment_hold_capacity(s: &str) -> Result<usize, ConfigError> {
    parse_number(Setting::FragmentHoldCapacity, s, 0..=65_536).map(|n| n as usize)
}

pub(super) fn parse_mtu(s: &str) -> Result<u16, ConfigError> {
    parse_number(Setting::Mtu, s, 576..=9216).map(|n| n as u16)
}

/// A duration such as `300s`, `5m`, `1h 30m`, `100ms`, or a bare number of
/// seconds.
pub fn parse_duration(setting: Setting, s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| ConfigError::invalid(setting, s, Problem::OutOfRange));
    }
    humantime::parse_duration(t)
        .map_err(|e| ConfigError::invalid(setting, s, Problem::NotDuration(e.to_string())))
}

fn parse_timeout(setting: Setting, s: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(setting, s)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(setting, s, Problem::Zero));
    }
    Ok(d)
}

pub(super) fn parse_tcp_timeout(s: &str) -> Result<Duration, ConfigError> {
    parse_timeout(Setting::TcpTimeout, s)
}

pub(super) fn parse_udp_timeout(s: &str) -> Result<Duration, ConfigError> {
    parse_timeout(Setting::UdpTimeout, s)
}

pub(super) fn parse_fragment_hold(s: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(Setting::FragmentHold, s)?;
    if d > Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            Setting::FragmentHold,
            s,
            Problem::OutOfRange,
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, ConfigError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn the_lb_ip_is_ipv4() {
        assert_eq!(
            parse_lb_ip("192.0.2.10").unwrap(),
            Ipv4Addr::new(192, 0, 2, 10)
        );
        assert_eq!(
            err(parse_lb_ip("192.0.2")),
            "RR_LB_IP: \"192.0.2\" is not an IPv4 address; expected an IPv4 address such as 192.0.2.10"
        );
        assert!(err(parse_lb_ip("2001:db8::10")).contains("\"2001:db8::10\" is IPv6"));
    }

    #[test]
    fn the_lb_ipv6_is_an_address_the_balancer_can_send_from() {
        let ula: Ipv6Addr = "fd00:195::10".parse().unwrap();
        assert_eq!(parse_lb_ipv6("fd00:195::10").unwrap(), ula);
        assert_eq!(parse_lb_ipv6(" [fd00:195::10] ").unwrap(), ula);
        assert_eq!(
            err(parse_lb_ipv6("192.0.2.10")),
            "RR_LB_IPV6: \"192.0.2.10\" is not an IPv6 address; expected a global IPv6 \
             address such as 2001:db8::10"
        );
        for own_link_or_none in ["fe80::1", "::1", "::", "ff02::1", "::ffff:192.0.2.10"] {
            let m = err(parse_lb_ipv6(own_link_or_none));
            assert!(
                m.contains(&format!(
                    "{own_link_or_none:?} is not an address the balancer can send from"
                )),
                "{m}"
            );
        }
    }

    #[test]
    fn vips_may_mix_families() {
        let vips = parse_vips("192.0.2.1; 2001:db8::1,198.51.100.7").unwrap();
        assert_eq!(
            vips.as_slice(),
            [
                IpAddr::from([192, 0, 2, 1]),
                "2001:db8::1".parse::<IpAddr>().unwrap(),
                IpAddr::from([198, 51, 100, 7]),
            ]
        );
        assert!(parse_vips("").unwrap().as_slice().is_empty());
    }

    #[test]
    fn bad_vips_are_named() {
        assert_eq!(
            err(parse_vips("192.0.2.1;vip")),
            "RR_VIPS: \"vip\" is not an IPv4 or IPv6 address; expected IPv4 or IPv6 \
             addresses, ';'-separated, each once"
        );
        assert!(
            err(parse_vips("2001:db8::1;2001:DB8::1")).contains("lists 2001:db8::1 more than once")
        );
    }

    #[test]
    fn seeds_are_decimal_or_hex() {
        assert_eq!(parse_seed("42").unwrap(), 42);
        assert_eq!(parse_seed("0xdeadBEEF").unwrap(), 0xDEAD_BEEF);
        assert_eq!(parse_seed("0XFFFFFFFFFFFFFFFF").unwrap(), u64::MAX);
        for bad in ["", "0x", "-1", "0x1_0", "18446744073709551616", "seed"] {
            assert_eq!(
                err(parse_seed(bad)),
                format!(
                    "RR_SEED: {bad:?} is not a whole number; expected a 64-bit number, decimal or 0x-hex"
                )
            );
        }
    }

    #[test]
    fn table_sizes_must_be_prime_and_get_suggestions() {
        assert_eq!(parse_table_size("65537").unwrap(), 65_537);
        assert_eq!(parse_table_size("3").unwrap(), 3);
        assert_eq!(
            err(parse_table_size("65536")),
            "RR_TABLE_SIZE: \"65536\" is not a prime (nearest primes: 65521 below, 65537 above); \
             expected a prime from 3 to 16777213"
        );
        assert!(err(parse_table_size("4")).contains("(nearest primes: 3 below, 5 above)"));
        assert!(err(parse_table_size("16777212"))
            .contains("(nearest primes: 16777199 below, 16777213 above)"));
    }

    #[test]
    fn table_sizes_outside_the_range_are_refused() {
        assert_eq!(
            err(parse_table_size("16777259")),
            "RR_TABLE_SIZE: \"16777259\" is out of range; expected a prime from 3 to 16777213"
        );
        assert!(err(parse_table_size("2")).contains("is out of range"));
        assert!(err(parse_table_size("big")).contains("\"big\" is not a whole number"));
    }

    #[test]
    fn counts_are_range_checked() {
        assert_eq!(parse_conntrack_capacity("1048576").unwrap(), 1 << 20);
        assert!(err(parse_conntrack_capacity("0"))
            .starts_with("RR_CONNTRACK_CAPACITY: \"0\" is out of range"));
        // The accepted range is the table's own: nothing is clamped.
        let (min, max) = (
            dataplane::conntrack::MIN_CAPACITY,
            dataplane::conntrack::MAX_CAPACITY,
        );
        assert_eq!(parse_conntrack_capacity(&min.to_string()).unwrap(), min);
        assert_eq!(parse_conntrack_capacity(&max.to_string()).unwrap(), max);
        for refused in [min - 1, max + 1] {
            assert!(err(parse_conntrack_capacity(&refused.to_string())).contains(
                "is out of range; expected a number of connections per worker from 32 to 268435456"
            ));
        }
        assert_eq!(parse_max_new_flows("1000000").unwrap(), 1_000_000);
        assert!(
            err(parse_max_new_flows("0")).starts_with("RR_MAX_NEW_FLOWS: \"0\" is out of range")
        );
        assert_eq!(parse_fragment_hold_capacity("0").unwrap(), 0);
        assert!(err(parse_fragment_hold_capacity("1e3")).contains("is not a whole number"));
        assert_eq!(parse_mtu("9000").unwrap(), 9000);
        assert_eq!(
            err(parse_mtu("70000")),
            "RR_MTU: \"70000\" is out of range; expected bytes from 576 to 9216"
        );
    }

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_tcp_timeout("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_tcp_timeout("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_udp_timeout("30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_udp_timeout("1h 30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_fragment_hold("100ms").unwrap(),
            Duration::from_millis(100)
        );
        assert_eq!(parse_fragment_hold("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations_are_named() {
        let m = err(parse_tcp_timeout("5 minutes please"));
        assert!(
            m.starts_with("RR_TCP_TIMEOUT: \"5 minutes please\" is not a duration ("),
            "{m}"
        );
        assert!(
            m.ends_with("expected a duration above zero such as 300s, 5m or 30 (seconds)"),
            "{m}"
        );
        assert!(err(parse_udp_timeout("0s")).starts_with("RR_UDP_TIMEOUT: \"0s\" is zero"));
        assert!(err(parse_tcp_timeout("")).contains("is not a duration"));
        assert!(
            err(parse_fragment_hold("2m")).starts_with("RR_FRAGMENT_HOLD: \"2m\" is out of range")
        );
    }
}
