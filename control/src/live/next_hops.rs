//! Backends' next hops over the balancer's life: resolved before the
//! workers start, then re-read every second (at once when the backend set
//! changes) on a thread of their own, each change handed to the publisher.
//! IPv4 backends' from the ARP table, IPv6 backends' from the NDP cache
//! (see [`Resolver::resolve_ip`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::neighbours::{NextHop, Resolver};
use crate::backends::Publisher;
use crate::config::MacAddr;

/// How often next hops are re-read from the neighbour table.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long start-up waits for backends' next hops before starting anyway
/// (unresolved backends stay out of the table until they resolve).
const RESOLVE_AT_START: Duration = Duration::from_secs(3);

/// The thread that keeps next hops current.
#[derive(Debug)]
pub struct NextHopKeeper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl NextHopKeeper {
    /// Starts keeping the next hops of `publisher`'s backends, except those
    /// pinned in `static_macs`.
    pub fn start(
        mut resolver: Resolver,
        publisher: Publisher,
        static_macs: BTreeMap<IpAddr, MacAddr>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("rr-neighbours".into())
            .spawn(move || keep_next_hops(&mut resolver, &publisher, &static_macs, &flag))?;
        Ok(Self { stop, thread })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Resolves next hops, waiting a little for the kernel to answer.
pub fn resolve_at_start(resolver: &mut Resolver, backends: &[IpAddr]) -> HashMap<IpAddr, NextHop> {
    let deadline = Instant::now() + RESOLVE_AT_START;
    loop {
        let hops = resolver.resolve_ip(backends).unwrap_or_default();
        let pending = hops.values().any(|h| matches!(h, NextHop::Pending { .. }));
        if !pending || Instant::now() >= deadline {
            return hops;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn report_next_hop(backend: IpAddr, is_static: bool, hop: Option<&NextHop>) {
    match (is_static, hop) {
        (true, _) => info!(%backend, "next hop from RR_BACKEND_MACS"),
        (false, Some(hop @ NextHop::Resolved(_))) => {
            info!(%backend, next_hop = %hop, "next hop resolved");
        }
        (false, Some(hop)) => warn!(%backend, "not used until its next hop resolves: {hop}"),
        (false, None) => warn!(%backend, "not used: its next hop could not be looked up"),
    }
}

/// Re-reads next hops every second (at once when the backend set changes)
/// until `stop`, and tells the publisher when a backend's MAC changes,
/// appears or goes away.
fn keep_next_hops(
    resolver: &mut Resolver,
    publisher: &Publisher,
    static_macs: &BTreeMap<IpAddr, MacAddr>,
    stop: &AtomicBool,
) {
    let mut last_error = None;
    let mut seen_generation = publisher.generation();
    while !stop.load(Ordering::Relaxed) {
        let slice = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < RESOLVE_INTERVAL
            && !stop.load(Ordering::Relaxed)
            && publisher.generation() == seen_generation
        {
            std::thread::sleep(slice);
            waited += slice;
        }
        seen_generation = publisher.generation();
        let backends = publisher.backends();
        let unresolved: Vec<IpAddr> = backends
            .iter()
            .map(|b| b.addr)
            .filter(|a| !static_macs.contains_key(a))
            .collect();
        let hops = match resolver.resolve_ip(&unresolved) {
            Ok(hops) => hops,
            Err(e) => {
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    warn!("reading the neighbour table: {text}");
                    last_error = Some(text);
                }
                continue;
            }
        };
        for backend in &backends {
            let Some(hop) = hops.get(&backend.addr) else {
                continue;
            };
            let mac = hop.mac();
            if mac == backend.mac {
                continue;
            }
            if mac.is_some() {
                info!(backend = %backend.addr, next_hop = %hop, "next hop resolved");
            } else {
                warn!(backend = %backend.addr, "out of service: {hop}");
            }
            if let Err(e) = publisher.set_mac(backend.addr, mac) {
                warn!(backend = %backend.addr, "publishing its next hop: {e}");
            }
        }
        seen_generation = publisher.generation();
    }
}
