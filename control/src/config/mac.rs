//! MAC addresses: the balancer's own, the next hop's, and per-backend
//! overrides (`RR_BACKEND_MACS`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::error::{ConfigError, Problem, Setting};
use super::list_entries;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, octet) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{octet:02x}")?;
        }
        Ok(())
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`), refusing group (multicast,
/// broadcast) and all-zero addresses: frames are sent from and to it.
fn parse_unicast_mac(s: &str) -> Result<MacAddr, Problem> {
    let mut octets = [0u8; 6];
    let mut groups = s.split([':', '-']);
    for octet in &mut octets {
        let group = groups.next().ok_or(Problem::NotMac)?;
        if group.len() != 2 {
            return Err(Problem::NotMac);
        }
        *octet = u8::from_str_radix(group, 16).map_err(|_| Problem::NotMac)?;
    }
    if groups.next().is_some() {
        return Err(Problem::NotMac);
    }
    if octets[0] & 1 == 1 {
        return Err(Problem::GroupMac);
    }
    if octets == [0; 6] {
        return Err(Problem::ZeroMac);
    }
    Ok(MacAddr(octets))
}

/// `--lb-mac` for clap.
pub(super) fn parse_lb_mac(s: &str) -> Result<MacAddr, ConfigError> {
    parse_unicast_mac(s.trim()).map_err(|p| ConfigError::invalid(Setting::LbMac, s, p))
}

/// `--nexthop-mac` for clap.
pub(super) fn parse_nexthop_mac(s: &str) -> Result<MacAddr, ConfigError> {
    parse_unicast_mac(s.trim()).map_err(|p| ConfigError::invalid(Setting::NexthopMac, s, p))
}

/// Per-backend next-hop MACs, overriding `--nexthop-mac`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendMacs(pub BTreeMap<IpAddr, MacAddr>);

impl BackendMacs {
    /// The MAC to send `backend`'s frames to: its override, else `nexthop`.
    pub fn mac_for(&self, backend: IpAddr, nexthop: MacAddr) -> MacAddr {
        self.0.get(&backend).copied().unwrap_or(nexthop)
    }
}

/// Parses `ip=mac` entries separated by `;` (or `,`), the address IPv4 or
/// IPv6 (in brackets or not); empty means none.
pub fn parse_backend_macs(s: &str) -> Result<BackendMacs, ConfigError> {
    let mut macs = BTreeMap::new();
    for entry in list_entries(s) {
        let invalid = |problem| ConfigError::invalid(Setting::BackendMacs, entry, problem);
        let (ip, mac) = entry
            .split_once('=')
            .ok_or_else(|| invalid(Problem::MissingEquals))?;
        let ip = ip
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| invalid(Problem::NotIp))?;
        let mac = parse_unicast_mac(mac.trim()).map_err(invalid)?;
        if macs.insert(ip, mac).is_some() {
            return Err(invalid(Problem::Duplicate(ip)));
        }
    }
    Ok(BackendMacs(macs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_with_colons_or_dashes_in_either_case() {
        let mac = MacAddr([0x02, 0xAB, 0, 0x10, 0xFF, 0x01]);
        assert_eq!(parse_lb_mac("02:ab:00:10:ff:01").unwrap(), mac);
        assert_eq!(parse_lb_mac("02-AB-00-10-FF-01").unwrap(), mac);
        assert_eq!(mac.to_string(), "02:ab:00:10:ff:01");
    }

    #[test]
    fn malformed_macs_are_named() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:0:0:0:0:1",
            "02:00:00:00:00:zz",
            "020000000001",
        ] {
            let m = parse_nexthop_mac(bad).unwrap_err().to_string();
            assert_eq!(
                m,
                format!(
                    "RR_NEXTHOP_MAC: {bad:?} is not a MAC address; expected a unicast MAC \
                     such as 02:00:00:00:00:01"
                )
            );
        }
    }

    #[test]
    fn group_and_zero_macs_are_refused() {
        let m = parse_lb_mac("ff:ff:ff:ff:ff:ff").unwrap_err().to_string();
        assert!(
            m.starts_with("RR_LB_MAC: \"ff:ff:ff:ff:ff:ff\" is a multicast or broadcast MAC"),
            "{m}"
        );
        assert!(parse_lb_mac("01:00:5e:00:00:01").is_err());
        let m = parse_lb_mac("00:00:00:00:00:00").unwrap_err().to_string();
        assert!(m.contains("all-zero"), "{m}");
    }

    #[test]
    fn backend_macs_map_addresses_of_either_family_to_macs() {
        let macs = parse_backend_macs(
            "10.1.0.1=02:00:00:00:01:01; 10.1.0.2 = 02:00:00:00:01:02,\
             2001:db8::1=02:00:00:00:01:03;[2001:db8::2]=02:00:00:00:01:04",
        )
        .unwrap();
        let nexthop = MacAddr([2, 0, 0, 0, 0, 2]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            macs.mac_for(ip("10.1.0.2"), nexthop),
            MacAddr([2, 0, 0, 0, 1, 2])
        );
        assert_eq!(
            macs.mac_for(ip("2001:db8::1"), nexthop),
            MacAddr([2, 0, 0, 0, 1, 3])
        );
        assert_eq!(
            macs.mac_for(ip("2001:db8::2"), nexthop),
            MacAddr([2, 0, 0, 0, 1, 4])
        );
        assert_eq!(macs.mac_for(ip("10.1.0.9"), nexthop), nexthop);
        assert_eq!(parse_backend_macs("").unwrap(), BackendMacs::default());
    }

    #[test]
    fn bad_backend_mac_entries_are_named() {
        let m = |s| parse_backend_macs(s).unwrap_err().to_string();
        assert_eq!(
            m("10.1.0.1=02:00:00:00:01:01;10.1.0.2"),
            "RR_BACKEND_MACS: \"10.1.0.2\" has no '=' between address and MAC; expected \
             ip=mac entries such as 10.1.0.1=02:00:00:00:01:01 or \
             2001:db8::1=02:00:00:00:01:02, ';'-separated (unicast MACs, each ip once)"
        );
        assert!(m("10.1.0.x=02:00:00:00:01:01")
            .contains("\"10.1.0.x=02:00:00:00:01:01\" is not an IPv4 or IPv6 address"));
        assert!(m("2001:db8::x=02:00:00:00:01:01").contains("is not an IPv4 or IPv6 address"));
        assert!(m("10.1.0.1=02:00:00:00:01").contains("is not a MAC address"));
        assert!(m("10.1.0.1=02:00:00:00:01:01;10.1.0.1=02:00:00:00:01:02")
            .contains("lists 10.1.0.1 more than once"));
        assert!(
            m("2001:db8::1=02:00:00:00:01:01;[2001:db8::1]=02:00:00:00:01:02")
                .contains("lists 2001:db8::1 more than once")
        );
    }
}
