//! The netmap backend on an emulated port over an in-memory device, with
//! the emulated kernel's syncs timed apart from the backend's own work
//! (`netmap_ring` bench, `netmap_loop` example).

use std::io;
use std::time::{Duration, Instant};

use dataplane::io::netmap::emulated::{EmulatedPort, EmulatedPortConfig, MemoryDevice};
use dataplane::io::netmap::{NetmapIo, NetmapPort, NetmapRegion};

/// A port whose syncs are timed. The syncs are never inlined, so that
/// callgrind counts them as functions of their own (`TimedPort::rxsync`,
/// `TimedPort::txsync`, inclusive).
#[derive(Debug)]
pub struct TimedPort<P> {
    inner: P,
    in_syncs: Duration,
}

impl<P> TimedPort<P> {
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            in_syncs: Duration::ZERO,
        }
    }

    /// Time spent inside the port's `txsync` and `rxsync` so far.
    pub fn in_syncs(&self) -> Duration {
        self.in_syncs
    }

    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl<P: NetmapPort> NetmapPort for TimedPort<P> {
    fn region(&self) -> &NetmapRegion {
        self.inner.region()
    }

    fn max_offset(&self) -> usize {
        self.inner.max_offset()
    }

    #[inline(never)]
    fn txsync(&mut self) -> io::Result<()> {
        let start = Instant::now();
        let result = self.inner.txsync();
        self.in_syncs += start.elapsed();
        result
    }

    #[inline(never)]
    fn rxsync(&mut self) -> io::Result<()> {
        let start = Instant::now();
        let result = self.inner.rxsync();
        self.in_syncs += start.elapsed();
        result
    }

    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        self.inner.poll(timeout)
    }
}

/// The netmap backend over an emulated port with netmap's generic
/// adapter's defaults (1024-slot rings of 2048-byte buffers), 128 bytes of
/// headroom by slot offsets, and an in-memory device.
pub type EmulatedMemoryIo = NetmapIo<TimedPort<EmulatedPort<MemoryDevice>>>;

pub fn emulated_memory_io() -> EmulatedMemoryIo {
    // The live balancer's headroom (control's netmap_port::HEADROOM): VIP
    // mode grows frames into it instead of moving them.
    let config = EmulatedPortConfig {
        offset: 128,
        ..EmulatedPortConfig::new("bench0")
    };
    let buf_size = config.buf_size as usize;
    let port = EmulatedPort::open(&config, MemoryDevice::new(buf_size))
        .expect("an emulated port of the default size");
    NetmapIo::new(TimedPort::new(port)).expect("a netmap backend over the emulated port")
}

/// The in-memory device behind `io`.
pub fn device(io: &mut EmulatedMemoryIo) -> &mut MemoryDevice {
    io.port_mut().inner_mut().device_mut()
}
