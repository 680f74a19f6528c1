//! The interface the balancer runs on: its index, MAC, MTU, first IPv4
//! address and first global IPv6 address, read in the calling thread's network namespace (sysfs may show
//! another namespace's view). The index and addresses are read the same way
//! everywhere (`if_nametoindex`, `getifaddrs`); the MAC and MTU differ per
//! system: [`linux`] asks with ioctls, [`freebsd`] reads the interface's
//! link-level entry of `getifaddrs`.

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

#[cfg(target_os = "freebsd")]
use freebsd as link;
#[cfg(target_os = "linux")]
use linux as link;

/// What the balancer needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// The first IPv4 address on the interface, if any.
    pub ipv4: Option<Ipv4Addr>,
    /// The first IPv6 address on the interface the balancer can send GRE
    /// over IPv6 from (global or unique-local: not link-local), if any.
    pub ipv6: Option<Ipv6Addr>,
}

/// Why the interface could not be used.
#[derive(Debug)]
pub enum DeviceError {
    /// No interface of that name in this network namespace.
    NotFound { name: String, present: Vec<String> },
    /// The name cannot be an interface name.
    BadName(String),
    /// An ioctl or `getifaddrs` failed.
    Query {
        name: String,
        what: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { name, present } => write!(
                f,
                "RR_DEVICE: {name:?} is not an interface in this network namespace; expected one of: {}",
                present.join(", ")
            ),
            Self::BadName(name) => write!(
                f,
                "RR_DEVICE: {name:?} is not an interface name; expected 1 to 15 bytes without '/', ':', whitespace or NUL"
            ),
            Self::Query { name, what, source } => {
                write!(f, "reading the {what} of {name} failed: {source}")
            }
        }
    }
}

impl std::error::Error for DeviceError {}

impl Device {
    /// Looks `name` up in the calling thread's network namespace.
    pub fn lookup(name: &str) -> Result<Self, DeviceError> {
        if name.is_empty()
            || name.len() >= libc::IFNAMSIZ
            || name
                .bytes()
                .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
        {
            return Err(DeviceError::BadName(name.to_owned()));
        }
        let c_name = CString::new(name).map_err(|_| DeviceError::BadName(name.to_owned()))?;
        // SAFETY: c_name is a live NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            return Err(DeviceError::NotFound {
                name: name.to_owned(),
                present: interface_names(),
            });
        }
        let query = |what, source| DeviceError::Query {
            name: name.to_owned(),
            what,
            source,
        };
        let (mac, mtu) = link::mac_and_mtu(name).map_err(|(what, e)| query(what, e))?;
        let ipv4 = first_ipv4(name).map_err(|e| query("IPv4 addresses", e))?;
        let ipv6 = first_global_ipv6(name).map_err(|e| query("IPv6 addresses", e))?;
        Ok(Self {
            name: name.to_owned(),
            index,
            mac,
            mtu,
            ipv4,
            ipv6,
        })
    }
}

/// The name of interface `index`, or `?` when there is none.
pub fn name_of(index: u32) -> String {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname requires.
    let name = unsafe { libc::if_indextoname(index, buffer.as_mut_ptr()) };
    if name.is_null() {
        return "?".to_owned();
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The names of the interfaces in this namespace, for error messages.
pub fn interface_names() -> Vec<String> {
    // SAFETY: if_nameindex returns a list terminated by a zero entry, or null.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut entry = list;
    // SAFETY: entries up to the terminating one (index 0) are valid, and each
    // name is a NUL-terminated string owned by the list until it is freed.
    unsafe {
        while (*entry).if_index != 0 && !(*entry).if_name.is_null() {
            names.push(
                CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

/// The first IPv4 address `getifaddrs` lists for `name`.
fn first_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    // SAFETY: an entry of family AF_INET has an ifa_addr pointing at a
    // sockaddr_in. An unaligned read: the sockaddr pointer only promises
    // sockaddr's alignment.
    find_in_ifaddrs(name, libc::AF_INET, |ifa| unsafe {
        let addr = ifa.ifa_addr.cast::<libc::sockaddr_in>().read_unaligned();
        Some(Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)))
    })
}

/// The first IPv6 address `getifaddrs` lists for `name` that can be the
/// source of GRE over IPv6 (see [`crate::config::is_global_unicast`]):
/// link-local ones, which every interface has, cannot.
fn first_global_ipv6(name: &str) -> io::Result<Option<Ipv6Addr>> {
    // SAFETY: an entry of family AF_INET6 has an ifa_addr pointing at a
    // sockaddr_in6; read unaligned, as for IPv4.
    find_in_ifaddrs(name, libc::AF_INET6, |ifa| unsafe {
        let addr = ifa.ifa_addr.cast::<libc::sockaddr_in6>().read_unaligned();
        Some(Ipv6Addr::from(addr.sin6_addr.s6_addr))
            .filter(|a| crate::config::is_global_unicast(*a))
    })
}

/// What `read` makes of the first entry `getifaddrs` lists for `name` with
/// an address of `family` (whose `ifa_addr` is then non-null) for which it
/// makes something, read before the list is freed.
fn find_in_ifaddrs<T>(
    name: &str,
    family: libc::c_int,
    mut read: impl FnMut(&libc::ifaddrs) -> Option<T>,
) -> io::Result<Option<T>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&raw mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut entry = list;
    // SAFETY: the list is valid until freeifaddrs, and `read` cannot keep a
    // reference into it; each entry's name is a NUL-terminated string.
    unsafe {
        while !entry.is_null() {
            let ifa = &*entry;
            if !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == family
                && CStr::from_ptr(ifa.ifa_name).to_bytes() == name.as_bytes()
            {
                found = read(ifa);
                if found.is_some() {
                    break;
                }
            }
            entry = ifa.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_index_mtu_and_127_0_0_1() {
        // FreeBSD calls it lo0.
        let name = if cfg!(target_os = "linux") {
            "lo"
        } else {
            "lo0"
        };
        let lo = Device::lookup(name).expect("every namespace has a loopback");
        assert!(lo.index > 0);
        assert!(
            lo.mtu >= 1500,
            "lo's MTU is 65536 by default, got {}",
            lo.mtu
        );
        assert_eq!(lo.mac, [0; 6]);
        assert_eq!(lo.ipv4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(lo.ipv6, None, "::1 cannot be a source toward backends");
    }

    #[test]
    fn a_missing_interface_is_named_with_the_ones_present() {
        let error = Device::lookup("rrnosuch0").unwrap_err().to_string();
        assert!(
            error.starts_with("RR_DEVICE: \"rrnosuch0\" is not an interface"),
            "{error}"
        );
        assert!(error.contains("lo"), "{error}");
    }

    #[test]
    fn names_that_cannot_be_interfaces_are_refused() {
        for name in ["", "a/b", "has space", "sixteen_chars_xx"] {
            let error = Device::lookup(name).unwrap_err();
            assert!(
                matches!(error, DeviceError::BadName(_)),
                "{name:?}: {error}"
            );
        }
    }
}
