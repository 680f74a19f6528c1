//! Which rings one worker's backend serves: the NIC ring pair and the host
//! ring pair bound to its port.
//!
//! A NIC with several queues spreads received frames over its RX rings (RSS),
//! so every RX ring needs a worker, and two threads must never sync one
//! ring. Each worker therefore registers its own rings: NIC ring pair `i`
//! with `NR_REG_ONE_NIC` (`nr_ringid = i`) and host ring pair `i` with
//! `NR_REG_ONE_SW`, the port asked for as many host ring pairs as NIC ring
//! pairs (`nr_host_tx_rings`, `nr_host_rx_rings`). The host stack's frames
//! are spread over the host RX rings by their transmit queue
//! (`netmap_transmit`), and any host TX ring passes frames up, so each
//! worker bridges its NIC rings and its host rings exactly as one worker
//! did with all of them: no frame crosses between workers, no buffer
//! either. A port registered `NR_REG_NIC_SW` on a one-queue NIC binds one
//! ring of each kind too, and is served the same way.
//!
//! The backend reads what the port bound from its region (rings not bound
//! have no view) and refuses a port that binds none or several rings of a
//! kind, saying how to register one.

use std::fmt;

use super::region::{NetmapRegion, RingKind};

/// The index of the one ring of each kind a worker serves. A NIC may have
/// fewer TX than RX rings (netmap then binds TX ring 0 for a higher
/// `nr_ringid`), so the indices of a pair may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedRings {
    pub nic_rx: u32,
    pub nic_tx: u32,
    pub host_rx: u32,
    pub host_tx: u32,
}

/// Why a port cannot be served by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServedRingsError {
    /// No ring of `kind` is bound to the port.
    NoRing { kind: RingKind },
    /// `bound` rings of `kind` are bound to the port; a worker serves one.
    SeveralRings { kind: RingKind, bound: u32 },
}

impl fmt::Display for ServedRingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRing { kind } => write!(
                f,
                "the netmap port binds no {kind} ring; a worker needs one NIC ring pair \
                 (NR_REG_ONE_NIC) and one host ring pair (NR_REG_ONE_SW)"
            ),
            Self::SeveralRings { kind, bound } => write!(
                f,
                "the netmap port binds {bound} {kind} rings and a worker serves one: \
                 register each NIC ring pair for its own worker (NR_REG_ONE_NIC, \
                 nr_ringid = the worker) with its host ring pair (NR_REG_ONE_SW)"
            ),
        }
    }
}

impl std::error::Error for ServedRingsError {}

impl ServedRings {
    /// The one bound ring of each kind in `region`.
    pub fn of(region: &NetmapRegion) -> Result<Self, ServedRingsError> {
        let one = |kind| {
            let mut bound = (0..region.ring_counts().of(kind))
                .filter(|&index| region.ring(kind, index).is_some());
            match (bound.next(), bound.count()) {
                (Some(index), 0) => Ok(index),
                (None, _) => Err(ServedRingsError::NoRing { kind }),
                (Some(_), more) => Err(ServedRingsError::SeveralRings {
                    kind,
                    bound: u32::try_from(more + 1).unwrap_or(u32::MAX),
                }),
            }
        };
        Ok(Self {
            nic_rx: one(RingKind::NicRx)?,
            nic_tx: one(RingKind::NicTx)?,
            host_rx: one(RingKind::HostRx)?,
            host_tx: one(RingKind::HostTx)?,
        })
    }

    /// The index served of `kind`.
    pub fn index(self, kind: RingKind) -> u32 {
        match kind {
            RingKind::NicRx => self.nic_rx,
            RingKind::NicTx => self.nic_tx,
            RingKind::HostRx => self.host_rx,
            RingKind::HostTx => self.host_tx,
        }
    }
}
