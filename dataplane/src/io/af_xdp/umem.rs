//! The UMEM: one anonymous mapping of equal frames (2 KiB chunks) shared
//! with the kernel, which receives into them and sends from them. Which
//! side owns a frame is told by the rings (see `ring.rs`); this type only
//! maps addresses to bytes.

use std::io;
use std::ptr::NonNull;

/// `frames` chunks of `frame_size` bytes, unmapped on drop.
#[derive(Debug)]
pub(super) struct Umem {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
}

impl Umem {
    /// Maps `frames * frame_size` zeroed bytes, populated at once (no page
    /// faults on the packet path).
    pub(super) fn new(frames: u32, frame_size: u32) -> io::Result<Self> {
        let len = frames as usize * frame_size as usize;
        // SAFETY: a fresh private anonymous mapping chosen by the kernel;
        // the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap: null"))?;
        Ok(Self {
            base,
            len,
            frame_size,
        })
    }

    /// The registration the socket is given (`XDP_UMEM_REG`).
    pub(super) fn registration(&self) -> libc::xdp_umem_reg {
        libc::xdp_umem_reg {
            addr: self.base.as_ptr() as u64,
            len: self.len as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        }
    }

    /// The start of the chunk holding UMEM address `addr` (aligned mode: the
    /// kernel hands out addresses inside chunks, offset by its headroom).
    pub(super) fn chunk_of(&self, addr: u64) -> u64 {
        addr & !u64::from(self.frame_size - 1)
    }

    /// The bytes of the chunk starting at `chunk`, or `None` for an address
    /// outside the UMEM (which the kernel never hands out).
    ///
    /// # Safety
    /// The chunk must be ours (see the ownership protocol in `ring.rs`) for
    /// the slice's lifetime, and no other slice of it may be alive.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn chunk(&self, chunk: u64) -> Option<&mut [u8]> {
        let start = usize::try_from(chunk).ok()?;
        // Checked: the address comes from a ring the kernel writes, and a
        // wrapped end would pass the bound.
        if start.checked_add(self.frame_size as usize)? > self.len {
            return None;
        }
        // SAFETY: the range lies inside the mapping; exclusive use of the
        // chunk is the caller's promise.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.base.as_ptr().add(start), self.frame_size as usize)
        })
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: exactly what mmap returned. The socket that registered it
        // is closed first (field order in `AfXdpIo`), so the kernel holds no
        // pages of it; slices of it borrow the owner.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
