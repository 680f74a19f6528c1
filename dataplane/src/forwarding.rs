//! The forwarding table: the immutable snapshot control publishes and every
//! worker re-reads once per batch.
//!
//! Address families: the balancer has an IPv4 address (GRE over IPv4 to it
//! is balanced) and optionally an IPv6 one (GRE over IPv6 to it is balanced,
//! and it is the outer source toward IPv6 backends). A backend is IPv4 or
//! IPv6; its family decides the outer header a packet leaves with, whatever
//! the outer header it came in (see `pipeline::gre_mode`). An IPv6 backend
//! needs the balancer's IPv6 address: a table with one and without the
//! other is refused when it is built.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::alloc::{self, Layout};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::flow::{FlowHasher, FlowKey};
use crate::maglev::{MaglevError, MaglevTable};
use crate::verdict::DropReason;

mod services;

use services::MaglevInput;
pub use services::{
    is_valid_name, HashFields, Ingress, Service, ServiceAddress, ServiceCounter, ServiceError,
    ServiceSpec, Services,
};

/// Why a new flow got no backend, and the named service it belongs to
/// (`None`: the default service, or no service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: DropReason,
    pub service: Option<ServiceCounter>,
}

/// One backend as control describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSpec {
    /// Stable index of this backend: connection-table entries and per-backend
    /// counters refer to it, so it must not change while the backend exists.
    pub slot: u16,
    /// Where GRE is sent: the outer destination, IPv4 or IPv6 (the outer
    /// header toward the backend is of its family).
    pub addr: IpAddr,
    /// Maglev weight; 0 drains (established flows stay, no new ones).
    pub weight: u32,
    /// Ethernet address of the next hop toward `addr`; `None` while unresolved,
    /// which keeps the backend out of service.
    pub mac: Option<[u8; 6]>,
    /// Incarnation of the slot: bumped when the backend is removed or fails,
    /// so the connection-table entries that point at it become misses.
    pub generation: u16,
}

/// Everything a forwarding table is built from.
#[derive(Debug, Clone)]
pub struct ForwardingSpec {
    /// The balancer's own IPv4 address: GRE sent here is ours.
    pub lb_ipv4: Ipv4Addr,
    /// The balancer's own IPv6 address, if it has one: GRE over IPv6 sent
    /// here is ours, and it is the outer source toward IPv6 backends.
    pub lb_ipv6: Option<Ipv6Addr>,
    /// The balancer's Ethernet address (source of forwarded frames).
    pub lb_mac: [u8; 6],
    /// Addresses whose plain IP packets are encapsulated (VIP mode).
    pub vips: Vec<IpAddr>,
    pub backends: Vec<BackendSpec>,
    /// Cluster-wide hash seed.
    pub seed: u64,
    /// Maglev table size, a prime.
    pub table_size: u32,
    /// Largest outer IPv4 packet the balancer may send.
    pub mtu: u16,
    /// Increases with every table control publishes (for metrics and logs).
    pub generation: u64,
}

/// Why a forwarding table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardingError {
    Maglev(MaglevError),
    /// A service (or the set of them) is inconsistent.
    Service(ServiceError),
    /// The MTU cannot carry an outer IPv4 + GRE header and anything inside.
    MtuTooSmall(u16),
    /// An IPv6 backend, but the balancer has no IPv6 address to send from.
    Ipv6BackendWithoutLbIpv6(Ipv6Addr),
}

impl fmt::Display for ForwardingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Maglev(e) => write!(f, "{e}"),
            Self::Service(e) => write!(f, "{e}"),
            Self::MtuTooSmall(mtu) => write!(
                f,
                "MTU {mtu} is too small: it must hold a 20-byte IPv4 and a 4-byte GRE header around a packet; use 68 or more (1500 on Ethernet)"
            ),
            Self::Ipv6BackendWithoutLbIpv6(addr) => write!(
                f,
                "backend {addr} is IPv6 but the balancer has no IPv6 address to send GRE over IPv6 from; \
                 give the balancer's device a global IPv6 address, or use IPv4 backends"
            ),
        }
    }
}

impl std::error::Error for ForwardingError {}

impl From<ServiceError> for ForwardingError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl From<MaglevError> for ForwardingError {
    fn from(e: MaglevError) -> Self {
        Self::Maglev(e)
    }
}

/// What the packet path knows about one backend slot, a cache line each:
/// aligned to 64 bytes so that finding slot `i` is a shift, not a multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct BackendSlot {
    /// The forwarded frame's Ethernet destination (`mac`) and source (the
    /// balancer's): one 12-byte copy instead of two 6-byte ones from two places.
    pub(crate) ethernet: [u8; 12],
    /// The outer IPv4 source (the balancer's address) and destination
    /// (`addr`) of a forwarded frame, adjacent as in the header: one copy.
    pub(crate) outer_addresses: [u8; 8],
    /// The IPv4 backend's address (zeros for an IPv6 backend).
    pub addr: [u8; 4],
    pub mac: [u8; 6],
    pub generation: u16,
    /// False for empty slots and backends without a next-hop MAC.
    pub usable: bool,
    /// The backend is IPv6: the outer header toward it is IPv6, to `addr_v6`
    /// (the fast path, which writes IPv4 outer headers only, leaves such a
    /// backend's packets to the general path).
    pub is_ipv6: bool,
    /// `generation` with bit 16 set if `usable`: what [`ForwardingTable::backend`]
    /// compares, one comparison for both conditions.
    usable_generation: u32,
    /// The constant part of the fast path's checksum update for this backend
    /// (see `fast_path::rewrite`): `addr` as a native-order 32-bit word plus
    /// `0xFFFE` (the TTL's decrement) plus `0xFFFF` and `0xFFFF_FFFF` (from
    /// which the old checksum and source are subtracted, which is complementing them).
    pub(crate) checksum_base: u64,
    /// The IPv6 backend's address (zeros for an IPv4 backend): in the 16
    /// bytes the IPv4 fields leave free in the slot's cache line.
    pub addr_v6: [u8; 16],
}

// One cache line per slot, IPv6 address included.
const _: () = assert!(size_of::<BackendSlot>() == 64);

/// The bit of `usable_generation` that says the backend is usable.
const USABLE: u32 = 1 << 16;

impl BackendSlot {
    /// All zeros: the zero-allocated slots of [`EverySlot`] are this.
    const EMPTY: Self = Self {
        ethernet: [0; 12],
        outer_addresses: [0; 8],
        addr: [0; 4],
        mac: [0; 6],
        generation: 0,
        usable: false,
        is_ipv6: false,
        usable_generation: 0,
        checksum_base: 0,
        addr_v6: [0; 16],
    };

    /// A backend at `addr` with next hop `mac` (unusable while `None`),
    /// forwarded to from a balancer at `lb_ipv4` and `lb_mac`.
    pub(crate) fn new(
        addr: IpAddr,
        mac: Option<[u8; 6]>,
        generation: u16,
        (lb_ipv4, lb_mac): ([u8; 4], [u8; 6]),
    ) -> Self {
        let (addr, addr_v6, is_ipv6) = match addr {
            IpAddr::V4(a) => (a.octets(), [0; 16], false),
            IpAddr::V6(a) => ([0; 4], a.octets(), true),
        };
        let usable = mac.is_some();
        let mac = mac.unwrap_or([0; 6]);
        let mut ethernet = [0; 12];
        ethernet[..6].copy_from_slice(&mac);
        ethernet[6..].copy_from_slice(&lb_mac);
        let mut outer_addresses = [0; 8];
        outer_addresses[..4].copy_from_slice(&lb_ipv4);
        outer_addresses[4..].copy_from_slice(&addr);
        Self {
            ethernet,
            outer_addresses,
            addr,
            mac,
            generation,
            usable,
            is_ipv6,
            usable_generation: u32::from(generation) | if usable { USABLE } else { 0 },
            checksum_base: u64::from(u32::from_ne_bytes(addr)) + 0xFFFE + 0xFFFF + 0xFFFF_FFFF,
            addr_v6,
        }
    }

    /// The backend's address.
    pub fn ip(&self) -> IpAddr {
        if self.is_ipv6 {
            IpAddr::from(self.addr_v6)
        } else {
            IpAddr::from(self.addr)
        }
    }
}

/// Slots a [`EverySlot`] holds: every `u16`.
const EVERY_SLOT: usize = 1 << 16;

/// The backends again, one entry for every `u16` slot (empty past the last
/// backend): indexed by a slot, it needs no bounds check on the packet path.
/// Allocated zeroed, so only the pages of slots in use are ever touched.
struct EverySlot(Box<[BackendSlot; EVERY_SLOT]>);

impl EverySlot {
    fn new(backends: &[BackendSlot]) -> Self {
        // `Box::new_zeroed` is newer than the workspace's MSRV: the same by hand.
        let layout = Layout::new::<[BackendSlot; EVERY_SLOT]>();
        // SAFETY: the layout is that of a non-empty array.
        let zeroed = unsafe { alloc::alloc_zeroed(layout) };
        if zeroed.is_null() {
            alloc::handle_alloc_error(layout);
        }
        // SAFETY: `zeroed` is a live allocation of the global allocator with
        // the array's layout, which the Box now owns and frees with that
        // layout. A BackendSlot is integers, byte arrays and a bool, for all
        // of which all-zero bytes are a valid value, so the array is
        // initialised: every slot is `EMPTY` (a test checks it).
        // The cast is aligned: the allocation has the array's layout.
        #[allow(clippy::cast_ptr_alignment)]
        let mut slots = unsafe { Box::from_raw(zeroed.cast::<[BackendSlot; EVERY_SLOT]>()) };
        slots[..backends.len()].copy_from_slice(backends);
        Self(slots)
    }

    #[inline(always)]
    fn get(&self, slot: u16) -> &BackendSlot {
        &self.0[usize::from(slot)]
    }
}

impl fmt::Debug for EverySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EverySlot").finish_non_exhaustive()
    }
}

/// An immutable snapshot of everything the pipeline needs to forward.
#[derive(Debug)]
pub struct ForwardingTable {
    pub generation: u64,
    pub lb_ipv4: [u8; 4],
    /// The balancer's IPv6 address, if it has one.
    pub lb_ipv6: Option<[u8; 16]>,
    pub lb_mac: [u8; 6],
    pub vips_v4: Box<[[u8; 4]]>,
    pub vips_v6: Box<[[u8; 16]]>,
    /// Every slot, indexed by slot: the backends, then empty slots.
    every_slot: EverySlot,
    /// Slots up to the highest a backend uses.
    slot_count: usize,
    /// The default service's table (the environment form's backends):
    /// shared with the next table while its input stays the same.
    pub maglev: Arc<MaglevTable>,
    default_input: Arc<MaglevInput>,
    /// Whether GRE packets no named service takes go to the default
    /// service: when it has backends, or when there are no named services
    /// (the one-service form, where every GRE packet is balanced).
    default_takes_gre: bool,
    /// The named services.
    pub services: Services,
    /// Whether IPv6 frames may be ours (GRE to `lb_ipv6`, or a VIP): when
    /// not, they go to the host without a look at their addresses.
    takes_ipv6: bool,
    pub hasher: FlowHasher,
    pub mtu: u16,
}

/// Smallest MTU that carries outer IPv4 + GRE around a minimal IPv4 packet.
const MIN_MTU: u16 = 68;

impl ForwardingTable {
    /// Builds the snapshot: backends without a MAC or with weight 0 get no
    /// Maglev entries; slots keep their numbers.
    pub fn build(spec: &ForwardingSpec) -> Result<Self, ForwardingError> {
        Self::build_with_services(spec, &[], None)
    }

    /// Builds the snapshot with named `services` beside the default
    /// service that `spec` describes. Every Maglev table whose input is
    /// the same as in `previous` (the default's, or a service's of the
    /// same name) is that table's, shared rather than rebuilt.
    pub fn build_with_services(
        spec: &ForwardingSpec,
        service_specs: &[ServiceSpec],
        previous: Option<&Self>,
    ) -> Result<Self, ForwardingError> {
        if spec.mtu < MIN_MTU {
            return Err(ForwardingError::MtuTooSmall(spec.mtu));
        }
        if spec.lb_ipv6.is_none() {
            let named = service_specs.iter().flat_map(|s| &s.backends);
            if let Some(IpAddr::V6(addr)) = spec
                .backends
                .iter()
                .chain(named)
                .map(|b| b.addr)
                .find(IpAddr::is_ipv6)
            {
                return Err(ForwardingError::Ipv6BackendWithoutLbIpv6(addr));
            }
        }
        let mut taken = vec![false; EVERY_SLOT];
        for b in &spec.backends {
            taken[usize::from(b.slot)] = true;
        }
        let (default_input, maglev) = MaglevInput::of(&spec.backends, spec.table_size, spec.seed)
            .build(previous.map(|p| (&*p.default_input, &p.maglev)))?;
        let services = Services::build(
            service_specs,
            spec.seed,
            previous.map(|p| &p.services),
            &mut taken,
        )?;
        let every_backend = || {
            let named = service_specs.iter().flat_map(|s| &s.backends);
            spec.backends.iter().chain(named)
        };
        let slots = every_backend().map(|b| usize::from(b.slot) + 1).max();
        let mut backends = vec![BackendSlot::EMPTY; slots.unwrap_or(0)].into_boxed_slice();
        let lb = (spec.lb_ipv4.octets(), spec.lb_mac);
        for b in every_backend() {
            backends[usize::from(b.slot)] = BackendSlot::new(b.addr, b.mac, b.generation, lb);
        }
        let (vips_v4, vips_v6) = split_vips(&spec.vips);
        let takes_ipv6 = spec.lb_ipv6.is_some() || !vips_v6.is_empty() || services.has_ipv6();
        let (every_slot, slot_count) = (EverySlot::new(&backends), backends.len());
        Ok(Self {
            generation: spec.generation,
            lb_ipv4: spec.lb_ipv4.octets(),
            lb_ipv6: spec.lb_ipv6.map(|a| a.octets()),
            lb_mac: spec.lb_mac,
            vips_v4,
            vips_v6,
            every_slot,
            slot_count,
            maglev,
            default_input,
            default_takes_gre: !spec.backends.is_empty() || services.is_empty(),
            takes_ipv6,
            services,
            hasher: FlowHasher::new(spec.seed),
            mtu: spec.mtu,
        })
    }

    /// The backend slots, indexed by slot, up to the highest a backend uses
    /// (slots between backends are empty).
    pub fn backends(&self) -> &[BackendSlot] {
        &self.every_slot.0[..self.slot_count]
    }

    /// The slot's backend if it is usable and still the same incarnation.
    #[inline]
    pub fn backend(&self, slot: u16, generation: u16) -> Option<&BackendSlot> {
        let backend = self.every_slot.get(slot);
        // `usable && generation == generation`, as one comparison.
        (backend.usable_generation == u32::from(generation) | USABLE).then_some(backend)
    }

    /// The backend Maglev assigns to a new flow with this hash.
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<(u16, &BackendSlot)> {
        let slot = self.maglev.lookup(hash)?;
        let backend = self.every_slot.get(slot);
        backend.usable.then_some((slot, backend))
    }

    /// The backend for a new flow `key` with 5-tuple hash `hash` that came
    /// in through `ingress`: its service's Maglev table, indexed by the
    /// hash of the service's hash fields. A flow no service takes is
    /// `NoService`; a service without a usable backend, `NoBackend`.
    #[inline]
    pub fn pick_new(
        &self,
        key: &FlowKey,
        hash: u64,
        ingress: Ingress,
    ) -> Result<(u16, &BackendSlot), DropReason> {
        self.pick_in_service(key, hash, ingress)
            .map_err(|refused| refused.reason)
    }

    /// [`Self::pick_new`], saying on a refusal which named service refused
    /// (so that the drop is counted to it).
    #[inline]
    pub fn pick_in_service(
        &self,
        key: &FlowKey,
        hash: u64,
        ingress: Ingress,
    ) -> Result<(u16, &BackendSlot), Refused> {
        let (maglev, fields, service) = match self.service_of(key, ingress) {
            Some(Some(service)) => (&*service.maglev, service.hash, Some(service.counter)),
            Some(None) => (&*self.maglev, HashFields::FiveTuple, None),
            None => {
                return Err(Refused {
                    reason: DropReason::NoService,
                    service: None,
                })
            }
        };
        let hash = match fields {
            HashFields::FiveTuple => hash,
            HashFields::SourceAddress => self.hasher.source(key),
        };
        let no_backend = Refused {
            reason: DropReason::NoBackend,
            service,
        };
        let slot = maglev.lookup(hash).ok_or(no_backend)?;
        let backend = self.every_slot.get(slot);
        backend.usable.then_some((slot, backend)).ok_or(no_backend)
    }

    /// Which service a new flow belongs to: `Some(Some(named))`,
    /// `Some(None)` for the default service, `None` for no service.
    #[inline]
    pub fn service_of(&self, key: &FlowKey, ingress: Ingress) -> Option<Option<&Service>> {
        if let Some(service) = self.services.find(key) {
            return Some(Some(service));
        }
        let default = match ingress {
            Ingress::Gre => self.default_takes_gre,
            // With no named services every VIP is the default's.
            Ingress::Vip if self.services.is_empty() => true,
            Ingress::Vip if key.is_ipv6 => self.vips_v6.contains(&key.dst),
            Ingress::Vip => {
                let [a, b, c, d, ..] = key.dst;
                self.vips_v4.contains(&[a, b, c, d])
            }
        };
        default.then_some(None)
    }

    /// Whether plain IPv4 packets to `addr` are balanced (VIP mode): a
    /// default VIP or a service's.
    #[inline]
    pub fn is_vip_v4(&self, addr: [u8; 4]) -> bool {
        self.vips_v4.contains(&addr) || self.services.has_vip_v4(addr)
    }

    /// [`Self::is_vip_v4`] for IPv6.
    #[inline]
    pub fn is_vip_v6(&self, addr: &[u8; 16]) -> bool {
        self.vips_v6.contains(addr) || self.services.has_vip_v6(addr)
    }

    /// Whether any IPv6 address is a VIP.
    #[inline]
    pub fn has_ipv6_vips(&self) -> bool {
        !self.vips_v6.is_empty() || self.services.has_ipv6()
    }

    /// Whether an IPv6 frame may be ours: the balancer has an IPv6 address
    /// or an IPv6 VIP.
    #[inline]
    pub fn takes_ipv6(&self) -> bool {
        self.takes_ipv6
    }
}

/// VIPs split by family, as the packet path compares them.
type VipsByFamily = (Box<[[u8; 4]]>, Box<[[u8; 16]]>);

fn split_vips(vips: &[IpAddr]) -> VipsByFamily {
    let v4 = vips
        .iter()
        .filter_map(|v| match v {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6 = vips
        .iter()
        .filter_map(|v| match v {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        })
        .collect();
    (v4, v6)
}

/// Where control publishes tables and workers pick them up: one atomic
/// pointer swap per publication, one load per batch, no lock on either side.
#[derive(Debug, Clone)]
pub struct TableHandle(Arc<ArcSwap<ForwardingTable>>);

impl TableHandle {
    pub fn new(table: ForwardingTable) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(table)))
    }

    /// Replaces the table; workers see it from their next batch. The old
    /// table is freed by whoever drops the last reference to it, often a
    /// worker finishing its batch: a publisher that runs beside live workers
    /// uses [`replace`](Self::replace) instead.
    pub fn publish(&self, table: ForwardingTable) {
        self.0.store(Arc::new(table));
    }

    /// Replaces the table and hands the old one to `retired`, which keeps it
    /// until no worker reads it, so that its memory (megabytes: the slots and
    /// the Maglev lookup) is freed on the publisher's thread and never on
    /// the packet path.
    pub fn replace(&self, table: ForwardingTable, retired: &mut RetiredTables) {
        retired.retire(self.0.swap(Arc::new(table)));
    }

    /// The current table (a worker calls this once per batch).
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<ForwardingTable>> {
        self.0.load()
    }
}

/// Tables replaced by [`TableHandle::replace`], each kept until only this
/// list holds it.
///
/// A worker holds the table it loaded until the end of its batch. Without
/// this list, a worker whose batch spans a publication drops the last
/// reference to the old table and frees it between two batches. Here, that
/// worker's reference is never the last: [`free_unused`](Self::free_unused),
/// called by the publisher, frees the tables no worker holds any more.
/// (`ArcSwap` turns every outstanding load of the old table into a counted
/// reference when it is swapped out, so the strong count is exact.)
#[derive(Debug, Default)]
pub struct RetiredTables(Vec<Arc<ForwardingTable>>);

impl RetiredTables {
    /// Keeps `table` until no one else holds it; frees the others that
    /// became unused meanwhile.
    pub fn retire(&mut self, table: Arc<ForwardingTable>) {
        self.0.push(table);
        self.free_unused();
    }

    /// Frees, on the caller's thread, the tables only this list still holds;
    /// returns how many remain (held by a worker's batch).
    pub fn free_unused(&mut self) -> usize {
        self.0.retain(|table| Arc::strong_count(table) > 1);
        self.0.len()
    }

    /// Tables kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests;
