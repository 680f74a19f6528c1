//! The memory a netmap region lives in: the kernel's, mapped from
//! `/dev/netmap`, or anonymous memory the emulated kernel lays out itself.

use std::io;
use std::ptr::NonNull;

/// An `mmap`, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `len` bytes of zeroed, private anonymous memory (the emulated
    /// kernel's region), page-aligned.
    pub(super) fn anonymous(len: usize) -> io::Result<Self> {
        Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
    }

    /// The `len` bytes of the region the netmap file descriptor `fd` was
    /// registered with, shared with the kernel.
    pub(super) fn shared(fd: libc::c_int, len: usize) -> io::Result<Self> {
        Self::map(len, libc::MAP_SHARED, fd)
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a netmap region of 0 bytes cannot be mapped",
            ));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses (null
        // hint): no existing memory is affected. The result is checked
        // against MAP_FAILED before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap: null"))?;
        Ok(Self { base, len })
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are what mmap returned. Every view into
        // the mapping (a `NetmapRegion`, its rings and buffer slices)
        // borrows the port that owns this mapping, so none outlives it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is plain memory owned by this value; moving the owner
// to another thread moves the only handle to it.
unsafe impl Send for Mapping {}

// SAFETY: a `Mapping` itself reads and writes nothing (it hands out its
// base and length, and unmaps on drop, which `Arc` runs once). The
// registrations of one port that share it (one per worker) bind disjoint
// rings, and each reads and writes only its rings and the buffers in their
// slots, through its own `NetmapRegion`.
unsafe impl Sync for Mapping {}
