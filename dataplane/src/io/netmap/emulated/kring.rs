//! The kernel's private state of one ring (netmap's `struct netmap_kring`)
//! and the checks every sync starts and ends with, as `netmap.c` does them
//! (`nm_txsync_prologue`, `nm_rxsync_prologue`, `netmap_ring_reinit`,
//! `nm_sync_finalize`).
//!
//! `hwcur` is the first slot the kernel has not yet taken back from the
//! user (TX: not yet sent; RX: not yet released), `hwtail` the first slot it
//! still owns. `rhead`, `rcur`, `rtail` are the user's `head`, `cur` and the
//! `tail` last shown, as of the last sync: the prologue checks the user's
//! new `head` and `cur` against them, and a ring that fails is reinitialised
//! instead of synced.

use netmap_sys::netmap_slot;

use crate::io::netmap::region::RingView;

/// The first buffer index a ring may hold: netmap reserves buffers 0 and 1
/// (`netmap_mem2.c`), and reads index 0 as "no buffer".
pub(super) const FIRST_BUFFER: u32 = 2;

/// One ring's kernel-side positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kring {
    pub num_slots: u32,
    pub hwcur: u32,
    pub hwtail: u32,
    pub rhead: u32,
    pub rcur: u32,
    pub rtail: u32,
    /// The port's largest packet offset (`NETMAP_REQ_OPT_OFFSETS`'s
    /// `nro_max_offset`; 0 without the option).
    pub max_offset: usize,
}

impl Kring {
    /// A TX ring as registration leaves it: every slot but one free for the
    /// user (`tail = num_slots - 1`).
    pub fn tx(num_slots: u32) -> Self {
        let lim = num_slots - 1;
        Self {
            num_slots,
            hwcur: 0,
            hwtail: lim,
            rhead: 0,
            rcur: 0,
            rtail: lim,
            max_offset: 0,
        }
    }

    /// An RX ring as registration leaves it: empty.
    pub fn rx(num_slots: u32) -> Self {
        Self {
            num_slots,
            hwcur: 0,
            hwtail: 0,
            rhead: 0,
            rcur: 0,
            rtail: 0,
            max_offset: 0,
        }
    }

    /// Where the packet of slot `i` starts, as the kernel reads it: the
    /// slot's offset cropped to the port's largest (`nm_get_offset`).
    pub fn packet_offset(&self, ring: &RingView<'_>, i: u32) -> usize {
        ring.slot_offset(i).min(self.max_offset)
    }

    /// `nm_prev`: the slot before `i`.
    pub fn prev(&self, i: u32) -> u32 {
        if i == 0 {
            self.num_slots - 1
        } else {
            i - 1
        }
    }

    /// `nm_txsync_prologue`: the user's new `head` if `head` and `cur` are
    /// where the user may have put them, `None` otherwise. The user may
    /// only move them forward, from `rhead` up to `rtail`:
    /// `rhead <= head <= cur <= rtail`, modulo the ring.
    pub fn txsync_prologue(&mut self, ring: &RingView<'_>) -> Option<u32> {
        let head = ring.head();
        let cur = ring.cur();
        let (rhead, rtail) = (self.rhead, self.rtail);
        let bad = if rtail >= rhead {
            head < rhead || head > rtail || cur < head || cur > rtail
        } else if head > rtail && head < rhead {
            true
        } else if head <= rtail {
            cur < head || cur > rtail
        } else {
            cur > rtail && cur < head
        };
        self.restore_tail(ring);
        if bad || head >= self.num_slots {
            return None;
        }
        self.rhead = head;
        self.rcur = cur;
        Some(head)
    }

    /// `nm_rxsync_prologue`: the user's new `head` if
    /// `hwcur <= head <= cur <= hwtail`, modulo the ring; `None` otherwise.
    pub fn rxsync_prologue(&mut self, ring: &RingView<'_>) -> Option<u32> {
        let cur = ring.cur();
        let head = ring.head();
        self.rcur = cur;
        self.rhead = head;
        let (hwcur, hwtail) = (self.hwcur, self.hwtail);
        let bad = if hwtail >= hwcur {
            head < hwcur || head > hwtail || cur < head || cur > hwtail
        } else if head < hwcur && head > hwtail {
            true
        } else if head <= hwtail {
            cur < head || cur > hwtail
        } else {
            cur < head && cur > hwtail
        };
        self.restore_tail(ring);
        if bad || head >= self.num_slots {
            return None;
        }
        Some(head)
    }

    /// A `tail` the user overwrote is put back.
    fn restore_tail(&self, ring: &RingView<'_>) {
        if ring.tail() != self.rtail {
            ring.set_tail(self.rtail);
        }
    }

    /// `netmap_ring_reinit`: zeroes every slot whose buffer index is
    /// reserved or outside the pool (the buffer is lost to the ring, as in
    /// netmap) and every length longer than a buffer; when `head`, `cur` or
    /// `tail` is out of range, puts the ring back where the kernel left it.
    /// Returns whether the pointers were reset.
    pub fn reinit(&mut self, ring: &RingView<'_>) -> bool {
        let region = ring.region();
        let (head, cur, tail) = (ring.head(), ring.cur(), ring.tail());
        self.rhead = head;
        self.rcur = cur;
        self.rtail = tail;
        for i in 0..self.num_slots {
            let slot = ring.slot(i);
            if slot.buf_idx < FIRST_BUFFER || slot.buf_idx >= region.buf_count() {
                ring.set_slot(
                    i,
                    netmap_slot {
                        buf_idx: 0,
                        len: 0,
                        ..slot
                    },
                );
            } else if u32::from(slot.len) > region.buf_size() {
                ring.set_len_flags(i, 0, slot.flags);
            }
        }
        let lim = self.num_slots - 1;
        let reset = head > lim || cur > lim || tail > lim;
        if reset {
            self.rhead = self.hwcur;
            self.rcur = self.hwcur;
            self.rtail = self.hwtail;
            ring.publish(self.hwcur);
            ring.set_tail(self.hwtail);
        }
        reset
    }

    /// `nm_sync_finalize`: shows the user the kernel's `hwtail`.
    pub fn finalize(&mut self, ring: &RingView<'_>) {
        self.rtail = self.hwtail;
        ring.set_tail(self.hwtail);
    }
}
