//! Client targeting (beyond Toxiproxy): a toxic's `clients` list of address ranges
//! (`10.0.0.0/24`, `::1/128`, or a bare address); the toxic applies only to
//! connections whose source is in one of them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR range of client addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRange {
    network: IpAddr,
    prefix: u8,
}

/// Why a `clients` entry is not a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRangeError(String);

impl fmt::Display for ClientRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client range {:?} is not ADDRESS or ADDRESS/PREFIX (e.g. 10.0.0.0/24, ::1/128)",
            super::error::shown(&self.0)
        )
    }
}

impl std::error::Error for ClientRangeError {}

impl FromStr for ClientRange {
    type Err = ClientRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ClientRangeError(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| error())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| error())?,
            None => width,
        };
        if prefix > width {
            return Err(error());
        }
        Ok(ClientRange { network, prefix })
    }
}

impl fmt::Display for ClientRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_bits(value: u128, width: u32, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value >> (width - u32::from(prefix))
    }
}

impl ClientRange {
    /// Whether `source` is in the range; IPv4 peers seen on an IPv6 socket
    /// (`::ffff:a.b.c.d`) match IPv4 ranges.
    pub fn contains(&self, source: IpAddr) -> bool {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            IpAddr::V4(_) => source,
        };
        match (self.network, source) {
            (IpAddr::V4(network), IpAddr::V4(source)) => {
                mask_bits(u32::from(network).into(), 32, self.prefix)
                    == mask_bits(u32::from(source).into(), 32, self.prefix)
            }
            (IpAddr::V6(network), IpAddr::V6(source)) => {
                mask_bits(u128::from(network), 128, self.prefix)
                    == mask_bits(u128::from(source), 128, self.prefix)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_contains_exactly_its_prefix() {
        let range: ClientRange = "10.0.0.0/24".parse().unwrap();
        assert!(range.contains("10.0.0.200".parse().unwrap()));
        assert!(!range.contains("10.0.1.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.0.0.9".parse().unwrap()));
        let single: ClientRange = "127.0.0.2".parse().unwrap();
        assert!(single.contains("127.0.0.2".parse().unwrap()));
        assert!(!single.contains("127.0.0.1".parse().unwrap()));
        let all: ClientRange = "::/0".parse().unwrap();
        assert!(all.contains("::1".parse().unwrap()));
    }

    #[test]
    fn malformed_ranges_are_refused_with_the_text() {
        for bad in ["10.0.0.0/33", "ten", "10.0.0.0/x", "::1/129"] {
            let error = bad.parse::<ClientRange>().unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
    }
}
