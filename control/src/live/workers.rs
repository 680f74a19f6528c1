//! Starting and stopping the pinned dataplane workers on the opened
//! packet I/O ([`super::packet_io`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;
use dataplane::conntrack::ConnTableError;
use dataplane::counters::WorkerCounters;
use dataplane::forwarding::TableHandle;
use dataplane::io::af_packet::{AfPacketConfig, MAX_FRAME_SIZE, MIN_FRAME_SIZE, SLOT_DATA_START};
use dataplane::io::af_xdp::XdpAttachment;
use dataplane::io::PacketIo;
use dataplane::pipeline::{WorkerConfig, WorkerState};
use dataplane::worker::Worker;

use super::packet_io::OpenedIo;

/// An Ethernet header with one 802.1Q tag.
const ETHERNET_VLAN_HEADER: u32 = 18;

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// Each worker's counters, in worker order (what metrics read).
    pub counters: Vec<Arc<CachePadded<WorkerCounters>>>,
    /// The XDP program, detached when the workers have stopped.
    attachment: Option<XdpAttachment>,
}

/// Room in front of each frame for VIP mode's outer IPv4 + GRE header.
const HEADROOM: u32 = 128;
/// Slots a worker's RX ring has with standard 2 KiB slots; rings of larger
/// slots get proportionally fewer, so that a worker's rings take the same
/// memory (8 MiB each way) whatever the MTU.
const RING_BYTES: u32 = 4096 * MIN_FRAME_SIZE;

/// How each worker opens the interface: slots large enough for the largest
/// packet the interface can carry or the balancer may send (`largest_packet`,
/// the larger of the device's MTU and `RR_MTU`), plus a VLAN-tagged Ethernet
/// header and the headroom. A slot too small would cut such frames short:
/// they would be left to the kernel, which drops the GRE among them.
pub fn af_packet_config(
    interface: &str,
    workers: usize,
    largest_packet: u32,
) -> Result<AfPacketConfig, String> {
    let mut config = AfPacketConfig::new(interface);
    config.headroom = HEADROOM;
    let needed = SLOT_DATA_START as u32 + HEADROOM + ETHERNET_VLAN_HEADER + largest_packet;
    config.frame_size = needed.next_power_of_two().max(MIN_FRAME_SIZE);
    if config.frame_size > MAX_FRAME_SIZE {
        return Err(format!(
            "{interface}: packets of {largest_packet} bytes (the larger of its MTU and RR_MTU) \
             need {needed}-byte AF_PACKET slots, beyond the largest, {MAX_FRAME_SIZE}; lower the \
             interface's MTU (ip link set {interface} mtu 9000)"
        ));
    }
    config.ring_frames = RING_BYTES / config.frame_size;
    if workers > 1 {
        // Fanout ids are per network namespace; the process id keeps two
        // balancers in one namespace apart.
        config.fanout = Some(std::process::id() as u16);
    }
    Ok(config)
}

/// Every worker's tables, allocated before the balancer changes anything on
/// the host: the connection tables are its largest allocations, and a
/// machine without the memory refuses the start here, with nothing to undo.
pub fn allocate_states(
    worker_config: WorkerConfig,
    workers: usize,
) -> Result<Vec<WorkerState>, ConnTableError> {
    (0..workers)
        .map(|_| WorkerState::try_new(worker_config))
        .collect()
}

impl Workers {
    /// Starts one worker per opened socket, with its state from
    /// [`allocate_states`], pinned to its core.
    pub fn start(
        opened: OpenedIo,
        states: Vec<WorkerState>,
        cores: &[usize],
        table: &TableHandle,
    ) -> Result<Self, String> {
        let mut workers = Self {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(cores.len()),
            counters: Vec::with_capacity(cores.len()),
            attachment: None,
        };
        match opened {
            OpenedIo::AfPacket(sockets) => workers.spawn_all(sockets, states, cores, table)?,
            OpenedIo::AfXdp {
                attachment,
                sockets,
            } => {
                workers.attachment = Some(attachment);
                workers.spawn_all(sockets, states, cores, table)?;
            }
            OpenedIo::Netmap(ports) => workers.spawn_all(ports, states, cores, table)?,
            OpenedIo::NetmapEmulated(ports) => workers.spawn_all(ports, states, cores, table)?,
        }
        Ok(workers)
    }

    fn spawn_all<Io: PacketIo + Send + 'static>(
        &mut self,
        sockets: Vec<Io>,
        states: Vec<WorkerState>,
        cores: &[usize],
        table: &TableHandle,
    ) -> Result<(), String> {
        for (index, ((io, state), &core)) in sockets.into_iter().zip(states).zip(cores).enumerate()
        {
            self.counters.push(Arc::clone(&state.counters));
            let worker =
                Worker::new(io, state, table.clone(), Arc::clone(&self.stop)).pinned_to(core);
            let thread = std::thread::Builder::new()
                .name(format!("rr-worker-{index}"))
                .spawn(move || worker.run().map(drop))
                .map_err(|e| format!("starting worker {index}: {e}"))?;
            self.threads.push(thread);
        }
        Ok(())
    }

    /// True while every worker runs (a worker stops early only on an I/O error).
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops every worker and waits for it; returns the errors they ended with.
    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for (index, thread) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("worker {index}: {e}")),
                Err(_) => errors.push(format!("worker {index} panicked")),
            }
        }
        // Only now that no worker uses its socket: the program goes.
        drop(self.attachment.take());
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u32 = 4096;

    #[test]
    fn slots_hold_the_largest_packet_with_its_headers_and_headroom() {
        for (largest, frame_size) in [(1500, 2048), (1900, 4096), (9000, 16384), (9216, 16384)] {
            let config = af_packet_config("eth0", 1, largest).unwrap();
            assert_eq!(config.frame_size, frame_size, "{largest}");
            assert!(config.validate(PAGE).is_ok(), "{largest}: {config:?}");
            let room = config.frame_size - SLOT_DATA_START as u32 - config.headroom;
            assert!(room >= largest + 18, "{largest}: {room}");
        }
    }

    #[test]
    fn rings_take_the_same_memory_whatever_the_slot_size() {
        for largest in [1500, 9216, 60_000] {
            let config = af_packet_config("eth0", 2, largest).unwrap();
            assert_eq!(config.ring_frames * config.frame_size, RING_BYTES);
            assert!(config.fanout.is_some());
        }
    }

    #[test]
    fn an_mtu_beyond_the_largest_slot_is_refused_with_the_reason() {
        let error = af_packet_config("veth0", 1, 65_535).unwrap_err();
        assert!(error.contains("65535 bytes"), "{error}");
        assert!(error.contains("lower the interface's MTU"), "{error}");
    }
}
