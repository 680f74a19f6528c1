//! The `bpf(2)` calls the backend makes, on `libc` alone: create the
//! `XSKMAP` and the VIP sets, load the steering program (with the verifier's log when it is
//! refused), attach it through a BPF link, put sockets in the map, and run
//! the program on a test frame (`BPF_PROG_TEST_RUN`).
//!
//! Each command's `union bpf_attr` member is its own `#[repr(C)]` struct
//! with the kernel's field order; the kernel takes a shorter `attr` than its
//! own and treats the rest as zero.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::asm::Insn;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`'s `BPF_XDP`.
const BPF_XDP: u32 = 37;

/// `XDP_FLAGS_SKB_MODE`: the generic hook, after the driver built an skb.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: the driver's own hook, before any skb.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Bytes of verifier log kept when a program is refused.
const LOG_BYTES: usize = 64 * 1024;

#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapUpdate {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// `bpf(cmd, attr, sizeof attr)`; a descriptor or 0 on success.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` struct laid out as
    // the command's member of `union bpf_attr`, and its size is passed with
    // it; the kernel reads it and writes back only fields inside it. Any
    // pointers in it point at live buffers of the sizes given (callers').
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A descriptor as `bpf_attr` holds it (descriptors are never negative).
fn fd_u32(fd: RawFd) -> u32 {
    u32::try_from(fd).unwrap_or(u32::MAX)
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// An `XSKMAP`: receive queue index -> XDP socket.
#[derive(Debug)]
pub struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// A map with room for queues `0..entries`.
    pub fn create(entries: u32) -> io::Result<Self> {
        let mut attr = MapCreate {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries.max(1),
            map_name: name16("rr_xsks"),
            ..MapCreate::default()
        };
        Ok(Self {
            fd: owned(bpf(BPF_MAP_CREATE, &mut attr)?),
        })
    }

    /// Puts socket `xsk` at `queue`: frames the program redirects from that
    /// receive queue go to it.
    pub fn insert(&self, queue: u32, xsk: RawFd) -> io::Result<()> {
        let value = fd_u32(xsk);
        let mut attr = MapUpdate {
            map_fd: fd_u32(self.fd.as_raw_fd()),
            key: std::ptr::from_ref(&queue) as u64,
            value: std::ptr::from_ref(&value) as u64,
            ..MapUpdate::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A `BPF_MAP_TYPE_HASH` used as a set: keys of a fixed size (an address),
/// each with a one-byte value nobody reads. The program asks whether a key
/// is present; userspace adds and removes keys while it runs, each change
/// atomic for the program (an element is there or not).
#[derive(Debug)]
pub struct KeySet {
    fd: OwnedFd,
    key_size: usize,
}

impl KeySet {
    /// A set of at most `entries` keys of `key_size` bytes, named `name`
    /// (15 bytes are kept) in `bpftool map`.
    pub fn create(name: &str, key_size: u32, entries: u32) -> io::Result<Self> {
        let mut attr = MapCreate {
            map_type: BPF_MAP_TYPE_HASH,
            key_size,
            value_size: 1,
            max_entries: entries.max(1),
            map_name: name16(name),
            ..MapCreate::default()
        };
        Ok(Self {
            fd: owned(bpf(BPF_MAP_CREATE, &mut attr)?),
            key_size: key_size as usize,
        })
    }

    /// The attr of a command on `key` (its size checked), with `value`.
    fn attr(&self, key: &[u8], value: &mut u8) -> io::Result<MapUpdate> {
        if key.len() != self.key_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a key of {} bytes for a map of {}-byte keys",
                    key.len(),
                    self.key_size
                ),
            ));
        }
        Ok(MapUpdate {
            map_fd: fd_u32(self.fd.as_raw_fd()),
            key: key.as_ptr() as u64,
            value: std::ptr::from_mut(value) as u64,
            ..MapUpdate::default()
        })
    }

    /// Adds `key` (present already: no change). A full set answers `E2BIG`.
    pub fn insert(&self, key: &[u8]) -> io::Result<()> {
        let mut value = 1u8;
        bpf(BPF_MAP_UPDATE_ELEM, &mut self.attr(key, &mut value)?).map(drop)
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&self, key: &[u8]) -> io::Result<bool> {
        let mut value = 0u8;
        // The kernel refuses a delete whose attr has anything after the key.
        let mut attr = MapUpdate {
            value: 0,
            ..self.attr(key, &mut value)?
        };
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &[u8]) -> io::Result<bool> {
        let mut value = 0u8;
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut self.attr(key, &mut value)?) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A second handle on the same map (a duplicated descriptor), for
    /// another thread to change it while the program runs.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
            key_size: self.key_size,
        })
    }
}

/// Why the kernel refused a program: the error and the verifier's log.
#[derive(Debug)]
pub struct LoadError {
    pub error: io::Error,
    pub log: String,
}

/// A loaded XDP program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Loads `insns` as an XDP program. A refusal is retried with the
    /// verifier's log on, which the error then carries.
    pub fn load(insns: &[Insn]) -> Result<Self, LoadError> {
        Self::load_logged(insns, 0, &mut []).or_else(|first| {
            let mut log = vec![0u8; LOG_BYTES];
            match Self::load_logged(insns, 1, &mut log) {
                Ok(program) => Ok(program),
                Err(error) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let log = String::from_utf8_lossy(&log[..end]).into_owned();
                    // The first error is the one without log-buffer trouble.
                    let error = if log.is_empty() { first } else { error };
                    Err(LoadError { error, log })
                }
            }
        })
    }

    fn load_logged(insns: &[Insn], log_level: u32, log: &mut [u8]) -> io::Result<Self> {
        static LICENSE: &[u8] = b"GPL\0";
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level,
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            prog_name: name16("rr_steer"),
            expected_attach_type: BPF_XDP,
            ..ProgLoad::default()
        };
        Ok(Self {
            fd: owned(bpf(BPF_PROG_LOAD, &mut attr)?),
        })
    }

    /// Attaches the program to interface `ifindex` with `mode`
    /// ([`XDP_FLAGS_DRV_MODE`] or [`XDP_FLAGS_SKB_MODE`]) through a BPF
    /// link: the program stays attached while the link's descriptor is open,
    /// so it goes when the process goes, however it ends.
    pub fn attach(&self, ifindex: u32, mode: u32) -> io::Result<Link> {
        let mut attr = LinkCreate {
            prog_fd: fd_u32(self.fd.as_raw_fd()),
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: mode,
        };
        Ok(Link {
            _fd: owned(bpf(BPF_LINK_CREATE, &mut attr)?),
        })
    }

    /// Runs the program once on `frame` (`BPF_PROG_TEST_RUN`), without an
    /// interface or a socket; returns its verdict (`XDP_*`).
    pub fn test_run(&self, frame: &[u8]) -> io::Result<u32> {
        self.test_run_repeated(frame, 1).map(|(verdict, _)| verdict)
    }

    /// Runs the program `repeat` times on `frame` in the kernel; returns
    /// its verdict and the kernel's mean time per run in nanoseconds (what
    /// the program costs, without the system call's).
    pub fn test_run_repeated(&self, frame: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
        let mut out = vec![0u8; frame.len() + 512];
        let mut attr = TestRun {
            prog_fd: fd_u32(self.fd.as_raw_fd()),
            data_size_in: frame.len() as u32,
            data_size_out: out.len() as u32,
            data_in: frame.as_ptr() as u64,
            data_out: out.as_mut_ptr() as u64,
            repeat: repeat.max(1),
            ..TestRun::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok((attr.retval, attr.duration))
    }
}

/// An attached program; dropping it (or the process ending) detaches it.
#[derive(Debug)]
pub struct Link {
    _fd: OwnedFd,
}
