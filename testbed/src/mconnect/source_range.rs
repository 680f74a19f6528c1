//! `--srccidr`: a range of source addresses, one picked at random for each connection.
//!
//! The range is expected to be routed to the client host (for example assigned to `lo`,
//! which makes every address in it local), and the client binds with `IP_FREEBIND` so
//! that `net.ipv4.ip_nonlocal_bind` is not even required on Linux.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use rand::Rng;

/// An address prefix such as `10.0.0.0/24` or `fd00::/64`; host bits are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    network: IpAddr,
    prefix_len: u8,
}

/// Why a `--srccidr` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRangeError {
    MissingPrefixLength(String),
    BadAddress(String),
    BadPrefixLength { value: String, max: u8 },
}

impl fmt::Display for SourceRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPrefixLength(value) => {
                write!(f, "`{value}` has no prefix length; expected ADDRESS/LENGTH, e.g. 10.0.0.0/24 or fd00::/64")
            }
            Self::BadAddress(value) => {
                write!(f, "`{value}` is not an IPv4 or IPv6 address")
            }
            Self::BadPrefixLength { value, max } => {
                write!(f, "prefix length `{value}` is not a number from 0 to {max}")
            }
        }
    }
}

impl std::error::Error for SourceRangeError {}

impl FromStr for SourceRange {
    type Err = SourceRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, length) = text
            .split_once('/')
            .ok_or_else(|| SourceRangeError::MissingPrefixLength(text.to_owned()))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| SourceRangeError::BadAddress(address.to_owned()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = length
            .parse::<u8>()
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| SourceRangeError::BadPrefixLength {
                value: length.to_owned(),
                max,
            })?;
        Ok(Self::new(address, prefix_len))
    }
}

impl fmt::Display for SourceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl SourceRange {
    /// The prefix of `address` with `prefix_len` bits (clamped to the family's width).
    pub fn new(address: IpAddr, prefix_len: u8) -> Self {
        match address {
            IpAddr::V4(v4) => {
                let prefix_len = prefix_len.min(32);
                let bits = u32::from(v4) & mask_u32(prefix_len);
                Self {
                    network: IpAddr::V4(Ipv4Addr::from(bits)),
                    prefix_len,
                }
            }
            IpAddr::V6(v6) => {
                let prefix_len = prefix_len.min(128);
                let bits = u128::from(v6) & mask_u128(prefix_len);
                Self {
                    network: IpAddr::V6(Ipv6Addr::from(bits)),
                    prefix_len,
                }
            }
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                u32::from(a) & mask_u32(self.prefix_len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask_u128(self.prefix_len) == u128::from(net)
            }
            _ => false,
        }
    }

    /// A random address of the range. In ranges of four addresses or more the
    /// all-zeros host (the network, or IPv6's subnet-router anycast) is never picked,
    /// nor IPv4's all-ones broadcast: peers drop packets from those.
    pub fn pick(&self, rng: &mut impl Rng) -> IpAddr {
        match self.network {
            IpAddr::V4(net) => {
                let host_bits = 32 - u32::from(self.prefix_len);
                let host = match host_bits {
                    0 => 0,
                    1 => rng.gen_range(0..=1),
                    bits => rng.gen_range(1..(1u32 << bits) - 1),
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(net) | host))
            }
            IpAddr::V6(net) => {
                let host_bits = 128 - u32::from(self.prefix_len);
                let host = match host_bits {
                    0 => 0,
                    1 => rng.gen_range(0..=1),
                    128 => rng.gen_range(1..=u128::MAX),
                    bits => rng.gen_range(1..(1u128 << bits)),
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(net) | host))
            }
        }
    }
}

fn mask_u32(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn mask_u128(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_prefixes_and_masks_host_bits() {
        assert_eq!(
            "10.1.2.3/24".parse::<SourceRange>().unwrap().to_string(),
            "10.1.2.0/24"
        );
        assert_eq!(
            "fd00::1:2/64".parse::<SourceRange>().unwrap().to_string(),
            "fd00::/64"
        );
        assert_eq!(
            "0.0.0.0/0".parse::<SourceRange>().unwrap().to_string(),
            "0.0.0.0/0"
        );
    }

    #[test]
    fn refuses_values_that_are_not_prefixes_naming_the_bad_part() {
        assert_eq!(
            "10.0.0.0".parse::<SourceRange>(),
            Err(SourceRangeError::MissingPrefixLength("10.0.0.0".into()))
        );
        assert_eq!(
            "ten/8".parse::<SourceRange>(),
            Err(SourceRangeError::BadAddress("ten".into()))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<SourceRange>(),
            Err(SourceRangeError::BadPrefixLength {
                value: "33".into(),
                max: 32
            })
        );
        assert_eq!(
            "fd00::/129".parse::<SourceRange>(),
            Err(SourceRangeError::BadPrefixLength {
                value: "129".into(),
                max: 128
            })
        );
    }

    #[test]
    fn picked_addresses_stay_in_the_range_and_skip_network_and_broadcast() {
        let range: SourceRange = "10.9.8.0/29".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let picked: std::collections::BTreeSet<IpAddr> =
            (0..500).map(|_| range.pick(&mut rng)).collect();
        let expected: std::collections::BTreeSet<IpAddr> = (1..=6)
            .map(|host| IpAddr::V4(Ipv4Addr::new(10, 9, 8, host)))
            .collect();
        assert_eq!(picked, expected);
    }

    #[test]
    fn ipv6_picks_stay_in_the_range() {
        let range: SourceRange = "fd00:201:7::/64".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let address = range.pick(&mut rng);
            assert!(range.contains(address), "{address} outside {range}");
            assert_ne!(address, "fd00:201:7::".parse::<IpAddr>().unwrap());
        }
    }

    #[test]
    fn the_same_seed_picks_the_same_addresses() {
        let range: SourceRange = "10.0.0.0/16".parse().unwrap();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| range.pick(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn single_address_ranges_always_pick_that_address() {
        let range: SourceRange = "10.0.0.5/32".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(range.pick(&mut rng), "10.0.0.5".parse::<IpAddr>().unwrap());
        assert!(!range.contains("fd00::5".parse().unwrap()));
    }
}
