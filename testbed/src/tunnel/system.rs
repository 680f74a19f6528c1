//! One-time interface setup through iproute2: bring the tun up with an MTU,
//! route VIPs into it (router side) or put VIPs on it (server side), and
//! loosen reverse-path filtering on it.
//!
//! Why `ip` and not a netlink crate: these are a handful of calls at start,
//! off the packet path; the testbed's labs already depend on iproute2; and
//! it keeps the crate free of another dependency tree. Each call is built
//! from parsed, typed values (no shell, no string pasting of user text) and a
//! failure reports the command line with `ip`'s own message. The child runs
//! in the calling thread's network namespace, so an endpoint started on a
//! thread that entered a namespace configures that namespace.
//!
//! Nothing here needs undoing: addresses and routes go away with the tun
//! device, and the `rp_filter` setting is the device's own.

use std::fmt;
use std::process::Command;

use super::prefix::Prefix;

/// A setup step that failed.
#[derive(Debug)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn ip(args: &[&str]) -> Result<(), SetupError> {
    let line = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| SetupError(format!("{line}: cannot run `ip` (install iproute2): {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SetupError(format!(
            "{line}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Sets the device's MTU and brings it up.
pub fn link_up(device: &str, mtu: u16) -> Result<(), SetupError> {
    ip(&["link", "set", "dev", device, "mtu", &mtu.to_string(), "up"])
}

/// Routes `prefix` into the device. `add`, not `replace`: an existing route
/// for the prefix is someone else's, and replacing it would lose it for good
/// when our device goes; the error says so instead.
pub fn route_into(device: &str, prefix: &Prefix) -> Result<(), SetupError> {
    ip(&["route", "add", &prefix.to_string(), "dev", device])
}

/// Puts `prefix` as an address on the device (IPv6 without duplicate
/// address detection, which would keep it unusable for a second or two).
pub fn address_on(device: &str, prefix: &Prefix) -> Result<(), SetupError> {
    let text = prefix.to_string();
    if prefix.address().is_ipv6() {
        ip(&["addr", "add", &text, "dev", device, "nodad"])
    } else {
        ip(&["addr", "add", &text, "dev", device])
    }
}

/// Sets the device's `rp_filter` to loose (2). Decapsulated packets arrive on
/// the tun from a client whose route points elsewhere; strict filtering
/// would drop them. The kernel uses the larger of `all` and the device's
/// value, so loose here wins over strict `all` without touching `all`.
pub fn loose_rp_filter(device: &str) -> Result<(), SetupError> {
    let path = format!("/proc/sys/net/ipv4/conf/{device}/rp_filter");
    std::fs::write(&path, "2").map_err(|e| SetupError(format!("write 2 to {path}: {e}")))
}

/// Turns IPv6 off on the device, so the kernel does not send router
/// solicitations and MLD reports into the tunnel when no VIP is IPv6.
pub fn disable_ipv6(device: &str) -> Result<(), SetupError> {
    let path = format!("/proc/sys/net/ipv6/conf/{device}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Ok(()) => Ok(()),
        // A kernel without IPv6 has nothing to turn off.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SetupError(format!("write 1 to {path}: {e}"))),
    }
}
