//! Zeroed arrays on transparent huge pages, for the big per-worker tables.
//!
//! A 1 Mi-entry connection table spans 16 MiB: on 4 KiB pages a lookup at a
//! random bucket misses the TLB as well as the cache. Mapped on 2 MiB pages
//! (where the kernel allows, `madvise` mode included) the whole table needs
//! eight TLB entries. Anonymous memory comes zeroed and is faulted in lazily,
//! so nothing is written before the advice takes effect.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// Types for which all-zero bytes are a valid value (the empty entry).
///
/// # Safety
/// An implementor must be valid when every byte is zero and must not need
/// dropping.
pub unsafe trait Zeroable: Copy {}

const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length, zero-initialised slice in its own huge-page-aligned mapping.
pub struct HugeSlice<T: Zeroable> {
    data: NonNull<T>,
    len: usize,
    mapping: *mut libc::c_void,
    mapping_len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: HugeSlice owns its mapping exclusively, like a Box<[T]>.
unsafe impl<T: Zeroable + Send> Send for HugeSlice<T> {}
// SAFETY: shared access only hands out &[T], like a Box<[T]>.
unsafe impl<T: Zeroable + Sync> Sync for HugeSlice<T> {}

impl<T: Zeroable> HugeSlice<T> {
    /// `len` zeroed values. Fails only when the kernel refuses the memory.
    pub fn zeroed(len: usize) -> std::io::Result<Self> {
        let too_large = || std::io::Error::other("table size overflows the address space");
        // Checked throughout: a wrapped size would map less than `len` values
        // and hand out a slice over memory that is not ours.
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(too_large)?;
        // Room to align the start to a huge page, and whole huge pages after it.
        let mapping_len = bytes
            .checked_next_multiple_of(HUGE_PAGE)
            .and_then(|whole_pages| whole_pages.checked_add(HUGE_PAGE))
            .ok_or_else(too_large)?;
        // SAFETY: an anonymous private mapping with no address hint touches no
        // existing memory; the result is checked against MAP_FAILED.
        let mapping = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                mapping_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let offset = (mapping as usize).next_multiple_of(HUGE_PAGE) - mapping as usize;
        // SAFETY: offset < HUGE_PAGE and the mapping extends HUGE_PAGE beyond
        // `bytes`, so the aligned start and `bytes` after it are inside it.
        let start = unsafe { mapping.cast::<u8>().add(offset) };
        advise_huge_pages(start, bytes.next_multiple_of(HUGE_PAGE));
        let data = NonNull::new(start.cast::<T>())
            .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Self {
            data,
            len,
            mapping,
            mapping_len,
            _owns: PhantomData,
        })
    }
}

/// Asks Linux to back `len` bytes at `start` (both huge-page aligned, inside
/// a mapping of ours) with transparent huge pages, which `madvise` mode
/// grants only on request.
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, len: usize) {
    // SAFETY: the caller passes a range inside its own mapping. The advice is
    // a hint: a kernel without THP refuses it and 4 KiB pages serve as well.
    unsafe {
        libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE);
    }
}

/// Elsewhere (FreeBSD) there is no advice to give: the kernel promotes a
/// fully touched, superpage-aligned range of anonymous memory to a superpage
/// by itself (`vm.pmap.pg_ps_enabled`, on by default), and the range is
/// aligned already.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _len: usize) {}

impl<T: Zeroable> Deref for HugeSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `data` points to `len` initialised (zeroed, Zeroable) values
        // in a mapping we own for our whole life; the start is huge-page
        // aligned, so aligned for T.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, unmapped once, and no reference into it
        // outlives `self`.
        unsafe {
            libc::munmap(self.mapping, self.mapping_len);
        }
    }
}

impl<T: Zeroable + core::fmt::Debug> core::fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HugeSlice")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SAFETY: u64 is valid as all zeros and needs no drop.
    unsafe impl Zeroable for u64 {}

    #[test]
    fn starts_zeroed_aligned_and_writable() {
        let mut s = HugeSlice::<u64>::zeroed(3 << 20).unwrap();
        assert_eq!(s.len(), 3 << 20);
        assert_eq!(s.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(s.iter().all(|v| *v == 0));
        s[12345] = 7;
        let last = s.len() - 1;
        s[last] = 9;
        assert_eq!((s[12345], s[last]), (7, 9));
    }

    #[test]
    fn a_size_beyond_the_address_space_is_an_error_not_a_short_mapping() {
        // Both overflow the byte count's rounding, not the multiplication.
        for len in [usize::MAX / 8, (usize::MAX - HUGE_PAGE) / 8] {
            let error = HugeSlice::<u64>::zeroed(len).unwrap_err();
            assert!(error.to_string().contains("overflows"), "{error}");
        }
        assert!(HugeSlice::<u64>::zeroed(usize::MAX).is_err());
    }

    #[test]
    fn many_allocations_are_released() {
        for _ in 0..200 {
            let s = HugeSlice::<u64>::zeroed(1 << 20).unwrap();
            assert_eq!(s[0], 0);
        }
    }
}
