//! `GET /metrics`: the counters in Prometheus text format.
//!
//! A fresh registry is built from a [`Snapshot`] on every scrape: the
//! workers own their counters, so there is nothing to keep registered
//! between scrapes, and a backend removed through the API simply stops
//! appearing. Every per-worker metric (`rr_worker_*`, label `worker`) has a
//! total without the label (`rr_*`), so dashboards need no `sum by`.
//!
//! prometheus-client writes `OpenMetrics`, served to scrapers that ask for it
//! (Prometheus does). Other clients (curl, `promtool check metrics`) get the
//! classic text format 0.0.4, derived from the same exposition: the two
//! differ, for the counters and gauges we expose, only in that a counter's
//! `HELP`/`TYPE` lines name it with its `_total` suffix and that there is
//! no `# EOF` line.

use std::fmt;
use std::sync::atomic::AtomicU64;

use dataplane::verdict::DropReason;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

mod services;

use crate::backends::{Backend, NamedServices};
use crate::stats::{CounterSnapshot, Snapshot};

/// Label pairs of one sample.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Counts are u64; so are gauges of them.
type U64Gauge = Gauge<u64, AtomicU64>;

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4.
    Text,
}

impl Format {
    /// `OpenMetrics` if the `Accept` header names it, else the text format.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The exposition of one scrape in `format`.
pub fn render_as(
    format: Format,
    snapshot: &Snapshot,
    backends: &[Backend],
    table_generation: u64,
    bgp: Option<&crate::bgp::BgpStatus>,
) -> Result<String, fmt::Error> {
    render_services_as(
        format,
        snapshot,
        backends,
        &NamedServices::default(),
        table_generation,
        bgp,
    )
}

/// [`render_as`] with the named services' metrics (`rr_service_*`).
pub fn render_services_as(
    format: Format,
    snapshot: &Snapshot,
    backends: &[Backend],
    services: &NamedServices,
    table_generation: u64,
    bgp: Option<&crate::bgp::BgpStatus>,
) -> Result<String, fmt::Error> {
    let openmetrics = render_all(snapshot, backends, services, table_generation, bgp)?;
    Ok(match format {
        Format::OpenMetrics => openmetrics,
        Format::Text => to_text_format(&openmetrics),
    })
}

/// The text-format 0.0.4 version of our `OpenMetrics` exposition: counter
/// families renamed to their sample name (`_total`), `# EOF` dropped.
fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        text += renamed.as_deref().unwrap_or(line);
        text.push('\n');
    }
    text
}

/// The `OpenMetrics` exposition of one scrape.
pub fn render(
    snapshot: &Snapshot,
    backends: &[Backend],
    table_generation: u64,
) -> Result<String, fmt::Error> {
    render_with(snapshot, backends, table_generation, None)
}

/// [`render`], with the BGP speaker's metrics (`rr_bgp_*`) when it runs.
pub fn render_with(
    snapshot: &Snapshot,
    backends: &[Backend],
    table_generation: u64,
    bgp: Option<&crate::bgp::BgpStatus>,
) -> Result<String, fmt::Error> {
    render_all(
        snapshot,
        backends,
        &NamedServices::default(),
        table_generation,
        bgp,
    )
}

fn render_all(
    snapshot: &Snapshot,
    backends: &[Backend],
    services: &NamedServices,
    table_generation: u64,
    bgp: Option<&crate::bgp::BgpStatus>,
) -> Result<String, fmt::Error> {
    let mut r = Registry::default();
    if let Some(status) = bgp {
        crate::bgp::metrics::register(&mut r, status);
    }
    services::register(&mut r, snapshot, backends, services);
    let workers: Vec<(Labels, &CounterSnapshot)> = snapshot
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| (vec![("worker", i.to_string())], w))
        .collect();
    let total = [(Labels::new(), &snapshot.total)];

    for (prefix, set) in [("rr", &total[..]), ("rr_worker", &workers[..])] {
        let per_verdict = |bytes: bool| {
            set.iter().flat_map(move |(labels, s)| {
                s.verdicts.labelled().map(|(verdict, t)| {
                    let v = if bytes { t.bytes } else { t.packets };
                    (with(labels, "verdict", verdict), v)
                })
            })
        };
        counter(
            &mut r,
            prefix,
            "packets",
            "Frames by verdict: to_wire (to a backend), to_host (to the kernel), dropped, held",
            per_verdict(false),
        );
        counter(
            &mut r,
            prefix,
            "bytes",
            "Frame bytes by verdict",
            per_verdict(true),
        );
        counter(
            &mut r,
            prefix,
            "drops",
            "Dropped frames by reason",
            set.iter().flat_map(|(labels, s)| {
                DropReason::ALL.iter().map(move |&reason| {
                    (
                        with(labels, "reason", reason.name()),
                        s.drops[reason as usize],
                    )
                })
            }),
        );
        counter(
            &mut r,
            prefix,
            "backend_packets",
            "Frames sent to each backend",
            set.iter().flat_map(|(labels, s)| {
                backends.iter().map(move |b| {
                    (
                        with(labels, "backend", &b.addr.to_string()),
                        s.packets_to(b),
                    )
                })
            }),
        );
        let conntrack = |pick: fn(&CounterSnapshot) -> u64| {
            set.iter().map(move |(labels, s)| (labels.clone(), pick(s)))
        };
        gauge(
            &mut r,
            prefix,
            "conntrack_entries",
            "Live connection-table entries as of the last full sweep",
            conntrack(|s| s.conntrack.entries),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_evictions",
            "Live connection-table entries of flows not yet established, pushed out by new flows",
            conntrack(|s| s.conntrack.evictions),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_full",
            "New flows balanced but not tracked (their bucket held only established flows, which are never evicted)",
            conntrack(|s| s.conntrack.full),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_hits",
            "Connection-table lookups that found the flow",
            conntrack(|s| s.conntrack.hits),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_misses",
            "Connection-table lookups that did not find the flow",
            conntrack(|s| s.conntrack.misses),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_inserts",
            "Flows pinned to a backend in the connection table",
            conntrack(|s| s.conntrack.inserts),
        );
        counter(
            &mut r,
            prefix,
            "conntrack_rate_limited",
            "New flows balanced but not tracked (over the new-flow rate cap)",
            conntrack(|s| s.conntrack.rate_limited),
        );
        counter(
            &mut r,
            prefix,
            "icmp_too_big",
            "VIP packets too big to wrap, answered with ICMP fragmentation needed or packet too big",
            conntrack(|s| s.icmp_too_big),
        );
        counter(
            &mut r,
            prefix,
            "batches",
            "Batches the workers ran",
            conntrack(|s| s.batches),
        );
    }
    gauge(
        &mut r,
        "rr_worker",
        "table_generation",
        "Forwarding-table generation the worker's last batch used",
        workers
            .iter()
            .map(|(labels, s)| (labels.clone(), s.table_generation)),
    );
    gauge(
        &mut r,
        "rr",
        "table_generation",
        "Generation of the forwarding table control published last",
        [(Labels::new(), table_generation)],
    );
    let per_backend = |value: fn(&Backend) -> u64| {
        backends
            .iter()
            .map(move |b| (vec![("backend", b.addr.to_string())], value(b)))
    };
    gauge(
        &mut r,
        "rr",
        "backend_up",
        "1 while the backend passes its health checks (always 1 without checks)",
        per_backend(|b| b.health.is_up().into()),
    );
    gauge(
        &mut r,
        "rr",
        "backend_weight",
        "Configured Maglev weight of the backend",
        per_backend(|b| b.weight.into()),
    );
    gauge(
        &mut r,
        "rr",
        "backend_draining",
        "1 while the backend is draining (no new flows)",
        per_backend(|b| b.drain.into()),
    );
    gauge(
        &mut r,
        "rr",
        "backend_in_rotation",
        "1 while new flows can go to the backend (up, undrained, weight > 0, MAC known)",
        per_backend(|b| b.in_rotation().into()),
    );

    let mut text = String::new();
    encode(&mut text, &r)?;
    Ok(text)
}

/// `labels` plus one more pair.
fn with(labels: &Labels, key: &'static str, value: &str) -> Labels {
    let mut l = labels.clone();
    l.push((key, value.to_owned()));
    l
}

/// Registers counter `{prefix}_{name}` (exposed with `_total`) with the samples.
pub(crate) fn counter(
    r: &mut Registry,
    prefix: &str,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) {
    let name = format!("{prefix}_{name}");
    let samples: Vec<_> = samples.into_iter().collect();
    if let [(labels, v)] = &samples[..] {
        if labels.is_empty() {
            // A family would print an empty `{}`; a bare counter does not.
            let c = Counter::<u64>::default();
            c.inc_by(*v);
            r.register(name, help, c);
            return;
        }
    }
    let family = Family::<Labels, Counter>::default();
    for (labels, v) in samples {
        family.get_or_create(&labels).inc_by(v);
    }
    r.register(name, help, family);
}

/// Registers gauge `{prefix}_{name}` with the samples.
pub(crate) fn gauge(
    r: &mut Registry,
    prefix: &str,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) {
    let name = format!("{prefix}_{name}");
    let samples: Vec<_> = samples.into_iter().collect();
    if let [(labels, v)] = &samples[..] {
        if labels.is_empty() {
            let g = U64Gauge::default();
            g.set(*v);
            r.register(name, help, g);
            return;
        }
    }
    let family = Family::<Labels, U64Gauge>::default();
    for (labels, v) in samples {
        family.get_or_create(&labels).set(v);
    }
    r.register(name, help, family);
}

#[cfg(test)]
mod tests;
