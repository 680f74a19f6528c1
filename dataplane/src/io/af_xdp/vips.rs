//! The VIPs the steering program redirects: two BPF hash sets, IPv4 and
//! IPv6 destinations, that the program looks each frame's destination up
//! in. They are maps, not constants in the program's instructions, so that
//! a VIP a reload adds or removes is steered at once: one element added or
//! deleted, seen by the program from its next frame, with no reload and no
//! re-attach (which would open a moment with no program on the interface).

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

use super::bpf::KeySet;

/// VIPs of each family the maps hold (preallocated by the kernel: about
/// 80 bytes each); an insert beyond it fails with `E2BIG`.
pub const MAX_VIPS_PER_FAMILY: u32 = 8192;

/// The two sets. Dropping every handle (and the program) frees them.
#[derive(Debug)]
pub struct VipMaps {
    v4: KeySet,
    v6: KeySet,
}

impl VipMaps {
    /// Two empty sets.
    pub fn create() -> io::Result<Self> {
        Ok(Self {
            v4: KeySet::create("rr_vips4", 4, MAX_VIPS_PER_FAMILY)?,
            v6: KeySet::create("rr_vips6", 16, MAX_VIPS_PER_FAMILY)?,
        })
    }

    /// Steers `vip` to the sockets (already steered: no change).
    pub fn insert(&self, vip: IpAddr) -> io::Result<()> {
        match vip {
            IpAddr::V4(a) => self.v4.insert(&a.octets()),
            IpAddr::V6(a) => self.v6.insert(&a.octets()),
        }
    }

    /// Leaves `vip` to the kernel again; false when it was not steered.
    pub fn remove(&self, vip: IpAddr) -> io::Result<bool> {
        match vip {
            IpAddr::V4(a) => self.v4.remove(&a.octets()),
            IpAddr::V6(a) => self.v6.remove(&a.octets()),
        }
    }

    /// Whether `vip` is steered.
    pub fn contains(&self, vip: IpAddr) -> io::Result<bool> {
        match vip {
            IpAddr::V4(a) => self.v4.contains(&a.octets()),
            IpAddr::V6(a) => self.v6.contains(&a.octets()),
        }
    }

    /// A second handle on the same sets, for the thread that follows the
    /// services while the workers run.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            v4: self.v4.try_clone()?,
            v6: self.v6.try_clone()?,
        })
    }

    /// The descriptors the program names: IPv4 set, IPv6 set.
    pub fn fds(&self) -> (RawFd, RawFd) {
        (self.v4.fd(), self.v6.fd())
    }
}
