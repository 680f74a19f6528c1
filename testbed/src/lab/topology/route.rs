//! The words of a host's `routes` and `addresses` entries, typed:
//! `DEST [via GATEWAY] [dev IF]` and `ADDRESS[/LEN] [dev IF]`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 route: `default`, `A.B.C.D/LEN` or `A.B.C.D` (a /32), then `via
/// GATEWAY` and/or `dev IF`. Stored (state files) as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RouteSpec {
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub device: Option<String>,
}

/// What the route and address forms accept, for error messages.
pub const ROUTE_FORMS: &str = "\"default via 10.0.1.1\", \"10.9.0.0/16 via 10.0.2.10\", \
                               \"10.9.9.9 dev eth1\" (DEST [via GATEWAY] [dev IF], DEST \
                               being default, A.B.C.D/LEN or A.B.C.D)";
pub const ADDRESS_FORMS: &str =
    "\"10.9.9.9/32 dev lo\" or \"10.9.9.9\" (ADDRESS[/LEN] [dev IF]; /32 and lo by default)";

/// `A.B.C.D/LEN` with LEN from 0 to 32 and no host bits, or `A.B.C.D`.
fn destination(text: &str) -> Result<(Ipv4Addr, u8), String> {
    if text == "default" {
        return Ok((Ipv4Addr::UNSPECIFIED, 0));
    }
    let (address, len) = text.split_once('/').unwrap_or((text, "32"));
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|len| *len <= 32)
        .ok_or_else(|| format!("prefix length {len:?} is not 0 to 32"))?;
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    if u32::from(address) & !mask != 0 {
        return Err(format!(
            "{text:?} has host bits set (the subnet is {}/{len})",
            Ipv4Addr::from(u32::from(address) & mask)
        ));
    }
    Ok((address, len))
}

/// Interface names the kernel accepts: 1 to 15 characters, no `/`, `:` or
/// whitespace.
pub fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl FromStr for RouteSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let first = words.next().ok_or("the route is empty")?;
        let (destination, prefix_len) = destination(first)?;
        let mut route = Self {
            destination,
            prefix_len,
            gateway: None,
            device: None,
        };
        while let Some(key) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| format!("{key:?} needs a value"))?;
            match key {
                "via" if route.gateway.is_none() => {
                    route.gateway = Some(
                        value
                            .parse()
                            .map_err(|_| format!("gateway {value:?} is not an IPv4 address"))?,
                    );
                }
                "dev" if route.device.is_none() => {
                    if !is_interface_name(value) {
                        return Err(format!("{value:?} is not an interface name"));
                    }
                    route.device = Some(value.to_owned());
                }
                "via" | "dev" => return Err(format!("{key:?} is given twice")),
                _ => return Err(format!("unknown word {key:?} (expected via or dev)")),
            }
        }
        if route.gateway.is_none() && route.device.is_none() {
            return Err("give `via GATEWAY`, `dev IF` or both".into());
        }
        Ok(route)
    }
}

impl TryFrom<String> for RouteSpec {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<RouteSpec> for String {
    fn from(route: RouteSpec) -> Self {
        route.to_string()
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix_len == 0 {
            write!(f, "default")?;
        } else {
            write!(f, "{}/{}", self.destination, self.prefix_len)?;
        }
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(device) = &self.device {
            write!(f, " dev {device}")?;
        }
        Ok(())
    }
}

impl RouteSpec {
    /// Whether `address` is inside the route's destination.
    pub fn covers(&self, address: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(address) & mask == u32::from(self.destination)
    }
}

/// An extra address of a host: `ADDRESS[/LEN] [dev IF]`, e.g. a VIP on `lo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressSpec {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub device: String,
}

impl FromStr for AddressSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let device = match words.as_slice() {
            [_] => "lo",
            [_, "dev", device] if is_interface_name(device) => device,
            [_, "dev", device] => return Err(format!("{device:?} is not an interface name")),
            [] => return Err("the address is empty".into()),
            _ => return Err("expected ADDRESS[/LEN] [dev IF]".into()),
        };
        let (address, len) = words[0].split_once('/').unwrap_or((words[0], "32"));
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|len| (1..=32).contains(len))
            .ok_or_else(|| format!("prefix length {len:?} is not 1 to 32"))?;
        Ok(Self {
            address,
            prefix_len,
            device: device.to_owned(),
        })
    }
}

impl TryFrom<String> for AddressSpec {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<AddressSpec> for String {
    fn from(spec: AddressSpec) -> Self {
        spec.to_string()
    }
}

impl fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} dev {}",
            self.address, self.prefix_len, self.device
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_in_their_three_destination_forms_and_print_back() {
        for (text, shown) in [
            ("default via 10.0.1.1", "default via 10.0.1.1"),
            ("10.9.0.0/16 via 10.0.2.10", "10.9.0.0/16 via 10.0.2.10"),
            ("10.9.9.9 dev eth1", "10.9.9.9/32 dev eth1"),
            (
                "0.0.0.0/0  dev eth0 via 10.0.0.1",
                "default via 10.0.0.1 dev eth0",
            ),
        ] {
            assert_eq!(text.parse::<RouteSpec>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn routes_without_a_next_hop_or_with_bad_words_are_refused() {
        for (text, message) in [
            ("default", "give `via GATEWAY`, `dev IF` or both"),
            ("10.9.0.1/16 via 10.0.0.1", "host bits set"),
            ("10.9.0.0/33 via 10.0.0.1", "not 0 to 32"),
            ("default via x", "not an IPv4 address"),
            ("default via 10.0.0.1 via 10.0.0.2", "given twice"),
            ("default gw 10.0.0.1", "unknown word"),
            ("default via", "needs a value"),
            ("", "empty"),
        ] {
            let error = text.parse::<RouteSpec>().unwrap_err();
            assert!(error.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn a_route_covers_the_addresses_of_its_destination() {
        let route: RouteSpec = "10.9.0.0/16 via 10.0.0.1".parse().unwrap();
        assert!(route.covers(Ipv4Addr::new(10, 9, 200, 1)));
        assert!(!route.covers(Ipv4Addr::new(10, 8, 0, 1)));
        let default: RouteSpec = "default dev eth0".parse().unwrap();
        assert!(default.covers(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn addresses_default_to_a_host_address_on_lo() {
        let vip: AddressSpec = "10.9.9.9".parse().unwrap();
        assert_eq!(vip.to_string(), "10.9.9.9/32 dev lo");
        let other: AddressSpec = "10.9.9.9/24 dev eth1".parse().unwrap();
        assert_eq!((other.prefix_len, other.device.as_str()), (24, "eth1"));
        for bad in [
            "",
            "10.9.9.9 lo",
            "10.9.9.300",
            "10.9.9.9/0",
            "1.2.3.4 dev a/b",
        ] {
            assert!(bad.parse::<AddressSpec>().is_err(), "{bad}");
        }
    }
}
