//! An IP prefix (`ADDRESS/LEN`, or a bare address meaning a host prefix): the
//! VIPs a tunnel endpoint serves.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// `address/len` with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    address: IpAddr,
    len: u8,
}

/// Why text is not a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError(String);

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrefixError {}

impl Prefix {
    /// The prefix `address/len`, host bits cleared; `None` when `len` exceeds
    /// the family's width.
    pub fn new(address: IpAddr, len: u8) -> Option<Self> {
        let width = width(address);
        if len > width {
            return None;
        }
        let bits = bits(address) & mask(width, len);
        let address = match address {
            IpAddr::V4(_) => IpAddr::from((bits as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(bits.to_be_bytes()),
        };
        Some(Self { address, len })
    }

    /// The single address `address` (a /32 or /128).
    pub fn host(address: IpAddr) -> Self {
        Self {
            address,
            len: width(address),
        }
    }

    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for a /32 or /128.
    pub fn is_host(&self) -> bool {
        self.len == width(self.address)
    }

    /// Whether `address` (same family) lies inside the prefix.
    pub fn contains(&self, address: IpAddr) -> bool {
        if address.is_ipv4() != self.address.is_ipv4() {
            return false;
        }
        bits(address) & mask(width(address), self.len) == bits(self.address)
    }

    /// Whether the raw address bytes of an IPv4 header lie inside the prefix.
    /// Used on the packet path: no conversion through `IpAddr` needed by the caller.
    #[inline]
    pub fn contains_v4(&self, address: [u8; 4]) -> bool {
        self.contains(IpAddr::from(address))
    }

    /// As [`contains_v4`](Self::contains_v4) for IPv6 header bytes.
    #[inline]
    pub fn contains_v6(&self, address: [u8; 16]) -> bool {
        self.contains(IpAddr::from(address))
    }
}

fn width(address: IpAddr) -> u8 {
    if address.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(width: u8, len: u8) -> u128 {
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    if len == 0 {
        0
    } else {
        all & !((1u128 << (width - len)) - 1)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            PrefixError(format!(
                "`{text}` is not an address or prefix: expected e.g. 192.0.2.1, 192.0.2.0/24 or 2001:db8::/64"
            ))
        };
        match text.split_once('/') {
            None => Ok(Self::host(text.parse().map_err(|_| bad())?)),
            Some((address, len)) => {
                let address: IpAddr = address.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                Self::new(address, len).ok_or_else(|| {
                    PrefixError(format!(
                        "`{text}`: the prefix length must be at most {}",
                        width(address)
                    ))
                })
            }
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_is_a_host_prefix() {
        let p: Prefix = "192.0.2.1".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.1/32");
        assert!(p.is_host());
        let p: Prefix = "2001:db8::1".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8::1/128");
    }

    #[test]
    fn host_bits_are_cleared_and_membership_follows_the_length() {
        let p: Prefix = "192.0.2.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.0/24");
        assert!(p.contains("192.0.2.255".parse().unwrap()));
        assert!(!p.contains("192.0.3.0".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        assert!(p.contains_v4([192, 0, 2, 9]));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains_v4([10, 1, 2, 3]));
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_text_and_what_is_accepted() {
        let e = "192.0.2.1/33".parse::<Prefix>().unwrap_err().to_string();
        assert!(
            e.contains("192.0.2.1/33") && e.contains("at most 32"),
            "{e}"
        );
        let e = "vip".parse::<Prefix>().unwrap_err().to_string();
        assert!(e.contains("`vip`") && e.contains("192.0.2.0/24"), "{e}");
    }
}
