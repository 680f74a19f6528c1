//! Reading and turning off an interface's offloads (checksum, segmentation,
//! receive coalescing) through `SIOCETHTOOL`, without the `ethtool` binary.
//!
//! A forwarder that reads frames with a packet socket and writes them out
//! again needs some offloads off: a frame the local stack sent with TX
//! checksum offload carries an unfinished checksum (`CHECKSUM_PARTIAL`), GSO,
//! TSO and GRO hand over super-frames larger than the MTU, and LRO merges
//! what it should forward one by one. [`disable`] turns the chosen ones off
//! (and [`set`] sets them either way) and returns an [`OffloadGuard`] that
//! puts them back.
//!
//! # Why the legacy commands
//!
//! Each offload here has its own legacy command (`ETHTOOL_GTXCSUM`/
//! `ETHTOOL_STXCSUM`, ..., LRO as a bit of `ETHTOOL_GFLAGS`/`ETHTOOL_SFLAGS`)
//! taking one `ethtool_value`. Current kernels implement them on top of the
//! same feature bits as `ETHTOOL_SFEATURES`, and refuse with `EOPNOTSUPP`
//! exactly the settings the device cannot change, one setting per call, which
//! is the per-setting report we want. The features API would first need the
//! `ETH_SS_FEATURES` string set to find each feature's bit by name, and
//! answers a refused change with a bitmap to decode: more code for the same
//! seven switches.
//!
//! # Namespaces
//!
//! The calls act on the interface of that name in the network namespace of
//! the calling thread (the namespace the ioctl socket is opened in). An
//! [`OffloadGuard`] keeps its socket, so it restores the interface it changed
//! whichever thread drops it. That socket also keeps the namespace alive:
//! drop guards before expecting a deleted namespace's interfaces to go away.

mod error;
mod ethtool;

use std::fmt;

pub use error::OffloadError;
use ethtool::{command, EthtoolSocket};

/// One offload setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Offload {
    /// The device verifies receive checksums.
    RxChecksum,
    /// The device (or, for a veth, the receiver) fills in transmit checksums.
    TxChecksum,
    /// Scatter-gather: frames sent from several buffers.
    ScatterGather,
    /// TCP segmentation offload.
    Tso,
    /// Generic segmentation offload (in software, just before the driver).
    Gso,
    /// Generic receive offload (software coalescing of received segments).
    Gro,
    /// Large receive offload (coalescing in the device).
    Lro,
}

impl Offload {
    /// Every offload, in the order they are changed and restored: the
    /// settings others depend on (checksums, scatter-gather) first, so that
    /// turning TSO back on follows turning its checksum back on.
    pub const ALL: [Offload; 7] = [
        Offload::RxChecksum,
        Offload::TxChecksum,
        Offload::ScatterGather,
        Offload::Tso,
        Offload::Gso,
        Offload::Gro,
        Offload::Lro,
    ];

    /// The short name used in messages (as `ethtool -K` abbreviates them).
    pub fn name(self) -> &'static str {
        match self {
            Offload::RxChecksum => "rx-checksum",
            Offload::TxChecksum => "tx-checksum",
            Offload::ScatterGather => "sg",
            Offload::Tso => "tso",
            Offload::Gso => "gso",
            Offload::Gro => "gro",
            Offload::Lro => "lro",
        }
    }
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An interface's offloads; `None` where the device cannot report one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    pub rx_checksum: Option<bool>,
    pub tx_checksum: Option<bool>,
    pub scatter_gather: Option<bool>,
    pub tso: Option<bool>,
    pub gso: Option<bool>,
    pub gro: Option<bool>,
    pub lro: Option<bool>,
}

impl Offloads {
    /// The value of one offload.
    pub fn get(&self, offload: Offload) -> Option<bool> {
        match offload {
            Offload::RxChecksum => self.rx_checksum,
            Offload::TxChecksum => self.tx_checksum,
            Offload::ScatterGather => self.scatter_gather,
            Offload::Tso => self.tso,
            Offload::Gso => self.gso,
            Offload::Gro => self.gro,
            Offload::Lro => self.lro,
        }
    }

    fn slot_mut(&mut self, offload: Offload) -> &mut Option<bool> {
        match offload {
            Offload::RxChecksum => &mut self.rx_checksum,
            Offload::TxChecksum => &mut self.tx_checksum,
            Offload::ScatterGather => &mut self.scatter_gather,
            Offload::Tso => &mut self.tso,
            Offload::Gso => &mut self.gso,
            Offload::Gro => &mut self.gro,
            Offload::Lro => &mut self.lro,
        }
    }
}

/// One offload [`disable`] or [`set`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadChange {
    pub interface: String,
    pub offload: Offload,
    pub from: bool,
    pub to: bool,
    /// False when the kernel changed it as a consequence of a requested
    /// change (TSO goes off with TX checksums).
    pub requested: bool,
}

impl fmt::Display for OffloadChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |on| if on { "on" } else { "off" };
        write!(
            f,
            "{}: {} {} -> {}",
            self.interface,
            self.offload,
            word(self.from),
            word(self.to)
        )?;
        if !self.requested {
            f.write_str(" (follows another change)")?;
        }
        Ok(())
    }
}

/// Checks that `interface` can be an interface name, as the kernel accepts.
fn check_name(interface: &str) -> Result<(), OffloadError> {
    let usable = (1..libc::IFNAMSIZ).contains(&interface.len())
        && !interface.bytes().any(|b| b == 0 || b == b'/');
    if usable {
        Ok(())
    } else {
        Err(OffloadError::InterfaceName(interface.to_owned()))
    }
}

fn open(interface: &str) -> Result<EthtoolSocket, OffloadError> {
    check_name(interface)?;
    EthtoolSocket::open(interface).map_err(|source| OffloadError::Socket {
        interface: interface.to_owned(),
        source,
    })
}

/// Reads every offload; a setting the device cannot report (`EOPNOTSUPP`)
/// is `None`, any other failure is an error.
fn read_with(socket: &EthtoolSocket, interface: &str) -> Result<Offloads, OffloadError> {
    let mut offloads = Offloads::default();
    for offload in Offload::ALL {
        let command = command(offload);
        *offloads.slot_mut(offload) = match socket.get(&command) {
            Ok(on) => Some(on),
            Err(source) if error::is_unsupported(&source) => None,
            Err(source) => {
                return Err(OffloadError::from_call(
                    interface,
                    offload,
                    command.get_name,
                    source,
                ))
            }
        };
    }
    Ok(offloads)
}

/// Reads the offloads of `interface` in the calling thread's network
/// namespace (needs no privileges).
pub fn read(interface: &str) -> Result<Offloads, OffloadError> {
    let socket = open(interface)?;
    read_with(&socket, interface)
}

/// Turns off each offload in `which` that is on, in the order of
/// [`Offload::ALL`], and returns a guard that turns them back on.
///
/// A setting the device cannot report or change (`EOPNOTSUPP`), or that
/// stays on after the change (tied to another setting), does not stop the
/// others: it is listed in [`OffloadGuard::refused`]. Any other failure
/// (no such interface, no `CAP_NET_ADMIN`) puts back what was already
/// changed and is returned. Settings the kernel changes as a consequence
/// (TSO and GSO following TX checksums or scatter-gather) are recorded too,
/// so that restoring returns the interface to exactly what it was.
pub fn disable(interface: &str, which: &[Offload]) -> Result<OffloadGuard, OffloadError> {
    let wanted: Vec<(Offload, bool)> = which.iter().map(|&offload| (offload, false)).collect();
    set(interface, &wanted)
}

/// Sets each offload in `wanted` that differs, as [`disable`] does (same
/// order, same handling of refused settings and failures), and returns a
/// guard that puts the changed ones back. When `wanted` names an offload
/// twice, the last value counts.
pub fn set(interface: &str, wanted: &[(Offload, bool)]) -> Result<OffloadGuard, OffloadError> {
    let socket = open(interface)?;
    let before = read_with(&socket, interface)?;
    let mut guard = OffloadGuard {
        interface: interface.to_owned(),
        socket,
        changes: Vec::new(),
        refused: Vec::new(),
    };
    let requested: Vec<(Offload, bool)> = Offload::ALL
        .into_iter()
        .filter_map(|offload| {
            let value = wanted.iter().rev().find(|(o, _)| *o == offload)?.1;
            Some((offload, value))
        })
        .collect();
    let names: Vec<Offload> = requested.iter().map(|&(offload, _)| offload).collect();
    for &(offload, on) in &requested {
        let command = command(offload);
        match before.get(offload) {
            Some(current) if current == on => {}
            None => guard.refused.push(OffloadError::Call {
                interface: interface.to_owned(),
                offload,
                call: command.get_name,
                source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
            }),
            Some(_) => match guard.socket.set(&command, on) {
                Ok(()) => {}
                Err(source) if error::is_unsupported(&source) => {
                    guard.refused.push(OffloadError::Call {
                        interface: interface.to_owned(),
                        offload,
                        call: command.set_name,
                        source,
                    });
                }
                Err(source) => {
                    let error =
                        OffloadError::from_call(interface, offload, command.set_name, source);
                    guard.undo_after_failure(before, &names);
                    return Err(error);
                }
            },
        }
    }
    let after = match read_with(&guard.socket, interface) {
        Ok(after) => after,
        Err(error) => {
            guard.undo_after_failure(before, &names);
            return Err(error);
        }
    };
    guard.record_changes(before, after, &names);
    for &(offload, on) in &requested {
        let refused_already = guard.refused.iter().any(|e| match e {
            OffloadError::Call { offload: o, .. } => *o == offload,
            _ => false,
        });
        if after.get(offload) == Some(!on) && !refused_already {
            guard.refused.push(OffloadError::Unchanged {
                interface: interface.to_owned(),
                offload,
                wanted: on,
            });
        }
    }
    Ok(guard)
}

/// Offloads [`disable`] or [`set`] changed, put back by [`restore`] or when
/// dropped.
///
/// [`restore`]: OffloadGuard::restore
#[derive(Debug)]
pub struct OffloadGuard {
    interface: String,
    socket: EthtoolSocket,
    changes: Vec<OffloadChange>,
    refused: Vec<OffloadError>,
}

impl OffloadGuard {
    /// The interface the guard changed.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// What was changed and is still to be restored, one line each when
    /// displayed (`eth0: gro on -> off`).
    pub fn changes(&self) -> &[OffloadChange] {
        &self.changes
    }

    /// The requested offloads the device could not report or change
    /// (each [`OffloadError::is_unsupported`]).
    pub fn refused(&self) -> &[OffloadError] {
        &self.refused
    }

    /// Keeps the changes: nothing is restored, now or on drop (for settings
    /// that should outlive the caller, such as a lab's links).
    pub fn keep(mut self) {
        self.changes.clear();
    }

    /// Puts every changed offload back, in the order of [`Offload::ALL`],
    /// then checks each. Changes restored are forgotten, so a failed restore
    /// can be retried; the first failure is returned after trying all.
    pub fn restore(&mut self) -> Result<(), OffloadError> {
        let mut first_error = None;
        for change in &self.changes {
            let command = command(change.offload);
            let current = self.socket.get(&command);
            if matches!(current, Ok(on) if on == change.from) {
                // Already back: the kernel restored it with the setting it
                // depends on.
                continue;
            }
            if let Err(source) = self.socket.set(&command, change.from) {
                first_error.get_or_insert(OffloadError::from_call(
                    &self.interface,
                    change.offload,
                    command.set_name,
                    source,
                ));
            }
        }
        let mut still_changed = Vec::new();
        for change in self.changes.drain(..) {
            let command = command(change.offload);
            match self.socket.get(&command) {
                Ok(on) if on == change.from => {}
                Ok(_) => {
                    first_error.get_or_insert(OffloadError::Unchanged {
                        interface: self.interface.clone(),
                        offload: change.offload,
                        wanted: change.from,
                    });
                    still_changed.push(change);
                }
                Err(source) => {
                    first_error.get_or_insert(OffloadError::from_call(
                        &self.interface,
                        change.offload,
                        command.get_name,
                        source,
                    ));
                    still_changed.push(change);
                }
            }
        }
        self.changes = still_changed;
        first_error.map_or(Ok(()), Err)
    }

    /// Records every offload that differs between `before` and `after`.
    fn record_changes(&mut self, before: Offloads, after: Offloads, requested: &[Offload]) {
        for offload in Offload::ALL {
            if let (Some(from), Some(to)) = (before.get(offload), after.get(offload)) {
                if from != to {
                    self.changes.push(OffloadChange {
                        interface: self.interface.clone(),
                        offload,
                        from,
                        to,
                        requested: requested.contains(&offload),
                    });
                }
            }
        }
    }

    /// After a fatal error half-way: restores whatever already changed, as
    /// far as the interface can still be read.
    fn undo_after_failure(&mut self, before: Offloads, requested: &[Offload]) {
        if let Ok(now) = read_with(&self.socket, &self.interface) {
            self.record_changes(before, now, requested);
        }
        // The original error is the one to report; this is best effort.
        let _ = self.restore();
        self.changes.clear();
    }
}

impl Drop for OffloadGuard {
    /// Restores what is left to restore. An interface that is gone needs
    /// nothing; any other failure is printed, as a drop cannot return it.
    fn drop(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        match self.restore() {
            Ok(()) | Err(OffloadError::NoSuchInterface { .. }) => {}
            Err(error) => eprintln!("warning: offloads not restored: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_cannot_hold_are_refused_before_any_call() {
        for name in ["", "sixteen-bytes-xx", "a\0b", "a/b"] {
            let error = read(name).unwrap_err();
            assert!(
                matches!(&error, OffloadError::InterfaceName(n) if n == name),
                "{name:?}: {error}"
            );
        }
    }

    #[test]
    fn an_unknown_interface_is_an_error_naming_it() {
        let error = read("rrof-none0").unwrap_err();
        assert!(
            matches!(&error, OffloadError::NoSuchInterface { interface, .. } if interface == "rrof-none0"),
            "{error:?}"
        );
        assert!(error.to_string().contains("\"rrof-none0\""), "{error}");
        let error = disable("rrof-none0", &[Offload::Gro]).unwrap_err();
        assert_eq!(error.interface(), "rrof-none0");
    }

    #[test]
    fn the_loopback_interface_reports_every_offload() {
        let offloads = read("lo").unwrap();
        for offload in Offload::ALL {
            assert!(offloads.get(offload).is_some(), "{offload}: {offloads:?}");
        }
    }

    #[test]
    fn a_change_reads_like_an_ethtool_line() {
        let mut change = OffloadChange {
            interface: "eth0".into(),
            offload: Offload::Gro,
            from: true,
            to: false,
            requested: true,
        };
        assert_eq!(change.to_string(), "eth0: gro on -> off");
        change.offload = Offload::Tso;
        change.requested = false;
        assert_eq!(
            change.to_string(),
            "eth0: tso on -> off (follows another change)"
        );
    }

    #[test]
    fn a_refused_setting_names_the_interface_the_offload_and_the_call() {
        let error = OffloadError::Call {
            interface: "eth0".into(),
            offload: Offload::Lro,
            call: "ETHTOOL_SFLAGS",
            source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert!(error.is_unsupported());
        let text = error.to_string();
        for part in ["eth0", "lro", "ETHTOOL_SFLAGS", "cannot report or change"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
