//! The shared memory of a packet socket: one mapping holding the RX ring then
//! the TX ring, each an array of fixed-size frame slots that start with a
//! `tpacket2_hdr`.
//!
//! Ownership of a slot is its header's `tp_status` word: the kernel hands an
//! RX slot over by setting `TP_STATUS_USER`, we hand it back with
//! `TP_STATUS_KERNEL`; a TX slot is ours while `TP_STATUS_AVAILABLE` and the
//! kernel's once we set `TP_STATUS_SEND_REQUEST`. The word is read with
//! acquire and written with release ordering, so the frame bytes behind it
//! are complete whichever side looks.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// An `mmap` of a packet socket's rings, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of the rings of socket `fd` (which must have them set up).
    pub(super) fn new(fd: libc::c_int, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint), so no
        // existing memory is affected; the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
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
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned, and every view
        // into the mapping (`Ring`, frame slices) borrows the owner of this
        // mapping, so none outlives it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The fields of a `tpacket2_hdr` a receiver reads, taken once the slot is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RxHeader {
    pub status: u32,
    /// Length of the frame on the wire.
    pub len: u32,
    /// Bytes of it in the slot (less than `len` when the slot was too small).
    pub snaplen: u32,
    /// Offset of the Ethernet header from the slot's start.
    pub mac: u16,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
}

/// One ring of `frames` slots of `frame_size` bytes inside a [`Mapping`].
///
/// Slots are contiguous: the ring's memory blocks are a multiple of the frame
/// size, so slot `i` starts at `i * frame_size`.
#[derive(Debug)]
pub(super) struct Ring {
    base: NonNull<u8>,
    frame_size: usize,
    mask: u32,
}

impl Ring {
    /// # Safety
    /// `base` must point at `frames * frame_size` bytes of a live ring mapping
    /// that outlives the `Ring`, `frames` must be a power of two, and
    /// `frame_size` a multiple of 16 of at least `SLOT_DATA_START`.
    pub(super) unsafe fn new(base: NonNull<u8>, frames: u32, frame_size: usize) -> Self {
        Self {
            base,
            frame_size,
            mask: frames - 1,
        }
    }

    /// Slot index of free-running position `pos`.
    #[inline]
    pub(super) fn index(&self, pos: u32) -> usize {
        (pos & self.mask) as usize
    }

    #[inline]
    fn slot_ptr(&self, pos: u32) -> *mut u8 {
        // SAFETY: the index is masked to the ring, so the offset stays inside
        // the mapping given to `new`.
        unsafe { self.base.as_ptr().add(self.index(pos) * self.frame_size) }
    }

    /// The `tpacket2_hdr` at the start of slot `pos`.
    #[inline]
    // The mapping is page-aligned and slots are a power of two of at least
    // 2048 bytes apart, so every header is 16-byte aligned.
    #[allow(clippy::cast_ptr_alignment)]
    fn header_ptr(&self, pos: u32) -> *mut libc::tpacket2_hdr {
        self.slot_ptr(pos).cast::<libc::tpacket2_hdr>()
    }

    #[inline]
    fn status_word(&self, pos: u32) -> &AtomicU32 {
        let header = self.header_ptr(pos);
        // SAFETY: tp_status is an aligned u32 inside the slot's header, shared
        // with the kernel; the mapping lives as long as `self`. Accessing it
        // atomically is how both sides synchronise.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*header).tp_status)) }
    }

    /// The slot's status word (acquire: frame bytes written before it are visible).
    #[inline]
    pub(super) fn status(&self, pos: u32) -> u32 {
        self.status_word(pos).load(Ordering::Acquire)
    }

    /// Hands the slot over (release: our writes to it are visible first).
    #[inline]
    pub(super) fn set_status(&self, pos: u32, status: u32) {
        self.status_word(pos).store(status, Ordering::Release);
    }

    /// Reads the header of an RX slot the kernel has handed to us.
    #[inline]
    pub(super) fn rx_header(&self, pos: u32) -> RxHeader {
        // SAFETY: the slot starts with a tpacket2_hdr (aligned, inside the
        // mapping); it is ours (status USER), so the kernel does not write it
        // while we read. read_volatile: the kernel wrote it behind our back.
        let header = unsafe { self.header_ptr(pos).read_volatile() };
        RxHeader {
            status: header.tp_status,
            len: header.tp_len,
            snaplen: header.tp_snaplen,
            mac: header.tp_mac,
            vlan_tci: header.tp_vlan_tci,
            vlan_tpid: header.tp_vlan_tpid,
        }
    }

    /// Overwrites `tp_mac` and `tp_snaplen` of an RX slot we own, to record
    /// where the frame sits after normalising it (the kernel rewrites the
    /// whole header when it fills the slot again).
    #[inline]
    pub(super) fn set_rx_view(&self, pos: u32, mac: u16, snaplen: u32) {
        let header = self.header_ptr(pos);
        // SAFETY: inside the slot's header, which is ours (status USER).
        unsafe {
            std::ptr::addr_of_mut!((*header).tp_mac).write_volatile(mac);
            std::ptr::addr_of_mut!((*header).tp_snaplen).write_volatile(snaplen);
        }
    }

    /// Sets `tp_len` of a TX slot we own (before handing it over).
    #[inline]
    pub(super) fn set_tx_len(&self, pos: u32, len: u32) {
        let header = self.header_ptr(pos);
        // SAFETY: inside the slot's header, which is ours (status AVAILABLE).
        unsafe { std::ptr::addr_of_mut!((*header).tp_len).write_volatile(len) };
    }

    /// The bytes of slot `pos` from `start` to its end.
    ///
    /// Takes `&self` so that a batch can hold the slices of several slots at
    /// once: the bytes live in the kernel's mapping, behind a raw pointer,
    /// not in `self`, and each slot's exclusivity is the caller's to keep.
    ///
    /// # Safety
    /// The slot must be ours (RX: status USER; TX: status AVAILABLE) for the
    /// lifetime of the slice, and no other slice of the same slot may be alive.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slot_bytes(&self, pos: u32, start: usize) -> &mut [u8] {
        let start = start.min(self.frame_size);
        // SAFETY: the range lies inside the slot, inside the mapping; the
        // caller guarantees exclusive use of the slot.
        unsafe {
            std::slice::from_raw_parts_mut(self.slot_ptr(pos).add(start), self.frame_size - start)
        }
    }
}
