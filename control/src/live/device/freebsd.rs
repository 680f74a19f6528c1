//! FreeBSD: the MAC and MTU from the interface's link-level (`AF_LINK`)
//! entry of `getifaddrs`, whose address is a `sockaddr_dl` holding the MAC
//! and whose data is the interface's `struct if_data` holding the MTU. This
//! is how `ifconfig` itself reads them, and needs no socket.

use std::io;

/// Where `sdl_data` starts in a `sockaddr_dl` (`<net/if_dl.h>`): length,
/// family, index (2), type, name length, address length, selector length.
const SDL_DATA_OFFSET: usize = 8;

/// The MAC and MTU of `name`; an error names what was being read.
pub(super) fn mac_and_mtu(name: &str) -> Result<([u8; 6], u32), (&'static str, io::Error)> {
    // SAFETY: an AF_LINK entry's ifa_addr points at a sockaddr_dl of sdl_len
    // bytes, and its non-null ifa_data at the interface's struct if_data
    // (getifaddrs(3)).
    let found = super::find_in_ifaddrs(name, libc::AF_LINK, |ifa| unsafe {
        let link = ifa.ifa_addr.cast::<u8>();
        let length = usize::from(*link);
        // A length shorter than the header is no address at all.
        let bytes: &[u8] = if length >= SDL_DATA_OFFSET {
            std::slice::from_raw_parts(link, length)
        } else {
            &[]
        };
        let mtu = if ifa.ifa_data.is_null() {
            None
        } else {
            Some(
                ifa.ifa_data
                    .cast::<libc::if_data>()
                    .read_unaligned()
                    .ifi_mtu,
            )
        };
        Some((mac_of_link_address(bytes), mtu))
    })
    .map_err(|e| ("MAC address", e))?;
    match found {
        Some((mac, Some(mtu))) => Ok((mac, mtu)),
        Some((_, None)) => Err((
            "MTU",
            io::Error::other("getifaddrs gave its link-level entry no interface data"),
        )),
        None => Err((
            "MAC address",
            io::Error::new(
                io::ErrorKind::NotFound,
                "getifaddrs lists no link-level entry",
            ),
        )),
    }
}

/// The Ethernet address in a `sockaddr_dl` (`LLADDR`: after the name), or
/// all zeros when the link has none of six bytes (loopback, tunnels), as
/// Linux reports them. Every length is checked against the bytes given.
fn mac_of_link_address(sockaddr_dl: &[u8]) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let (Some(&name_len), Some(&address_len)) = (sockaddr_dl.get(5), sockaddr_dl.get(6)) else {
        return mac;
    };
    let start = SDL_DATA_OFFSET + usize::from(name_len);
    if address_len == 6 {
        if let Some(address) = sockaddr_dl.get(start..start + 6) {
            mac.copy_from_slice(address);
        }
    }
    mac
}
