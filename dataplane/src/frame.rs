//! A view of one backend-owned packet buffer, mutated in place.

/// One frame in a buffer owned by a packet I/O backend.
///
/// The packet occupies `buf[head..head + len]`. Bytes before `head` are
/// headroom that encapsulation can grow into without moving the packet;
/// bytes after the packet are tailroom. The pipeline never allocates and
/// never copies payload: it edits these bytes and moves `head`/`len`.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// A frame whose packet is `buf[head..head + len]`.
    ///
    /// Out-of-range `head`/`len` are clamped to the buffer, so a backend bug
    /// can shorten a frame but never make the pipeline read outside it.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Self {
        let head = head.min(buf.len());
        let len = len.min(buf.len() - head);
        Self { buf, head, len }
    }

    /// A frame that fills the whole buffer, with no headroom.
    pub fn whole(buf: &'a mut [u8]) -> Self {
        let len = buf.len();
        Self::new(buf, 0, len)
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        debug_assert!(self.head + self.len <= self.buf.len());
        // SAFETY: `head + len <= buf.len()` always holds: `new` clamps both,
        // and `push_front`, `pull_front` and `set_len` keep it. The packet
        // path reads this several times per frame; unchecked, the compiler
        // need not prove it again each time.
        unsafe { self.buf.get_unchecked(self.head..self.head + self.len) }
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.head + self.len <= self.buf.len());
        // SAFETY: as in `data`.
        unsafe { self.buf.get_unchecked_mut(self.head..self.head + self.len) }
    }

    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the frame carries no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the packet's first byte in the buffer.
    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Bytes free in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes free behind the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Grows the packet by `n` bytes at the front, using headroom if there is
    /// enough, else moving the packet back into the tailroom. The new front
    /// bytes are left as they were. Returns false (and changes nothing) when
    /// the buffer cannot hold the longer packet.
    pub fn push_front(&mut self, n: usize) -> bool {
        if n <= self.head {
            self.head -= n;
            self.len += n;
            return true;
        }
        // Compared without adding to `n`, which may be anything: a wrapped
        // `len + n` would pass and break the invariant `data` relies on.
        if n > self.buf.len() - self.len {
            return false;
        }
        // Not enough headroom: slide the packet so that it ends at the buffer's
        // end, which frees the most room in front, then take `n` of it.
        let new_head = self.buf.len() - self.len;
        self.buf
            .copy_within(self.head..self.head + self.len, new_head);
        self.head = new_head - n;
        self.len += n;
        true
    }

    /// Drops `n` bytes from the front of the packet (clamped to its length).
    pub fn pull_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head += n;
        self.len -= n;
    }

    /// Sets the packet length; returns false when it would overrun the buffer.
    pub fn set_len(&mut self, len: usize) -> bool {
        // `buf.len() - head` cannot wrap (`head <= buf.len()`); `head + len` could.
        if len > self.buf.len() - self.head {
            return false;
        }
        self.len = len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_front_uses_headroom_without_moving_the_packet() {
        let mut buf = [0u8; 16];
        buf[8..12].copy_from_slice(b"abcd");
        let mut frame = Frame::new(&mut buf, 8, 4);
        assert!(frame.push_front(4));
        assert_eq!(frame.head(), 4);
        assert_eq!(&frame.data()[4..], b"abcd");
    }

    #[test]
    fn push_front_moves_the_packet_when_headroom_is_short() {
        let mut buf = [0u8; 16];
        buf[2..6].copy_from_slice(b"abcd");
        let mut frame = Frame::new(&mut buf, 2, 4);
        assert!(frame.push_front(6));
        assert_eq!(frame.len(), 10);
        assert_eq!(&frame.data()[6..], b"abcd");
    }

    #[test]
    fn lengths_that_would_wrap_the_arithmetic_are_refused() {
        let mut buf = [7u8; 16];
        let mut frame = Frame::new(&mut buf, 4, 8);
        for n in [
            usize::MAX,
            usize::MAX - 3,
            usize::MAX - 8,
            usize::MAX / 2 + 1,
        ] {
            assert!(!frame.push_front(n), "push_front({n})");
            assert!(!frame.set_len(n), "set_len({n})");
            assert_eq!((frame.head(), frame.len()), (4, 8));
        }
        frame.pull_front(usize::MAX);
        assert_eq!((frame.head(), frame.len()), (12, 0));
        assert!(!frame.set_len(usize::MAX - 11));
        assert!(frame.set_len(4));
        assert_eq!(frame.data(), &[7; 4]);
        let whole = Frame::new(&mut buf, usize::MAX, usize::MAX);
        assert_eq!((whole.head(), whole.len()), (16, 0));
    }

    #[test]
    fn push_front_refuses_when_the_buffer_is_too_small() {
        let mut buf = [7u8; 8];
        let mut frame = Frame::new(&mut buf, 2, 4);
        assert!(!frame.push_front(5));
        assert_eq!((frame.head(), frame.len()), (2, 4));
    }

    #[test]
    fn new_clamps_out_of_range_views() {
        let mut buf = [0u8; 8];
        let frame = Frame::new(&mut buf, 6, 100);
        assert_eq!((frame.head(), frame.len()), (6, 2));
        let mut buf = [0u8; 8];
        let frame = Frame::new(&mut buf, 100, 1);
        assert_eq!((frame.head(), frame.len()), (8, 0));
    }
}
