//! Many services on one balancer (issue "services"): the pipeline's cost per
//! packet with 1,000 services next to the one-service balancer, both in the
//! same run, and the cost of publishing a change to one service among 1,000
//! next to building all 1,000 tables afresh.
//!
//! The frames are the `pipeline` bench's: GRE-encapsulated TCP to one VIP,
//! which in the 1,000-service table is one service among them (the lookup
//! is a binary search, the same depth for any of them). Established flows
//! (`hot`) never look a service up; new flows (`new_flows`) look one up
//! for every packet.

use std::hint::black_box;
use std::time::Duration;

use benches::batch::{one_batch, BATCH};
use benches::traffic::{balancer_table, FlowFrames, LB, VIP};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataplane::forwarding::{
    BackendSpec, ForwardingSpec, ForwardingTable, HashFields, ServiceCounter, ServiceSpec,
};
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::pipeline::{WorkerConfig, WorkerState};

const SERVICES: u16 = 1000;
/// Backends per service: 8,000 in all.
const PER_SERVICE: u16 = 8;
/// A small service's table: a prime over 100 times its backends.
const SERVICE_TABLE: u32 = 1009;

/// Service `i`: TCP port 80 of a VIP in 198.18.0.0/16, except that service
/// `SERVICES / 2` is the bench traffic's VIP.
fn service(i: u16, weight: u32) -> ServiceSpec {
    let vip = if i == SERVICES / 2 {
        VIP
    } else {
        core::net::Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8)
    };
    ServiceSpec {
        name: format!("service-{i}"),
        vip: vip.into(),
        protocol: Some(6),
        port: Some(80),
        backends: (0..PER_SERVICE)
            .map(|n| {
                let slot = i * PER_SERVICE + n;
                BackendSpec {
                    slot,
                    addr: core::net::Ipv4Addr::new(10, 2, (slot >> 8) as u8, slot as u8).into(),
                    weight,
                    mac: Some([2, 0, 0, 2, (slot >> 8) as u8, slot as u8]),
                    generation: 0,
                }
            })
            .collect(),
        table_size: SERVICE_TABLE,
        hash: HashFields::FiveTuple,
        counter: ServiceCounter {
            id: i,
            generation: 0,
        },
    }
}

fn services() -> Vec<ServiceSpec> {
    (0..SERVICES).map(|i| service(i, 1)).collect()
}

/// The bench balancer without default backends or VIPs.
fn bare_spec() -> ForwardingSpec {
    ForwardingSpec {
        lb_ipv4: LB,
        lb_ipv6: None,
        lb_mac: [0x02, 0, 0, 0, 0, 1],
        vips: vec![],
        backends: vec![],
        seed: 0x5eed,
        table_size: 65537,
        mtu: 1500,
        generation: 1,
    }
}

fn services_table() -> ForwardingTable {
    ForwardingTable::build_with_services(&bare_spec(), &services(), None)
        .expect("a valid bench table")
}

fn run_case(
    c: &mut Criterion,
    id: &str,
    table: &ForwardingTable,
    mut frames: FlowFrames,
    warm: bool,
) {
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut io = MemoryIo::new(MemoryIoConfig::default()).expect("default rings");
    if warm {
        for _ in 0..frames.len().div_ceil(BATCH) {
            one_batch(&mut io, &mut frames, table, &mut state);
        }
    }
    let mut group = c.benchmark_group("services");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                timed += one_batch(&mut io, &mut frames, table, &mut state);
            }
            timed
        });
    });
    group.finish();
    // Every frame must have been forwarded, or the figure measures drops.
    let dropped = state.counters.dropped.packets.get();
    assert_eq!(dropped, 0, "{id}: {dropped} frames dropped");
}

fn pipeline(c: &mut Criterion) {
    let one = balancer_table(100);
    let many = services_table();
    for (name, table) in [("1_service", &one), ("1000_services", &many)] {
        run_case(
            c,
            &format!("hot_{name}"),
            table,
            FlowFrames::gre_tcp(64 * 1024),
            true,
        );
        run_case(
            c,
            &format!("new_flows_{name}"),
            table,
            FlowFrames::gre_tcp_never_repeating(),
            false,
        );
    }
}

/// Publishing a weight change of one service among 1,000: the new table
/// shares the other 999 Maglev tables. The peer builds all 1,000 afresh.
fn rebuild(c: &mut Criterion) {
    let before = services_table();
    let mut changed = services();
    changed[7] = service(7, 2);
    let mut group = c.benchmark_group("services_rebuild");
    group.sample_size(10);
    group.bench_function("one_of_1000_changed", |b| {
        b.iter_batched(
            || changed.clone(),
            |specs| {
                ForwardingTable::build_with_services(&bare_spec(), &specs, Some(&before)).unwrap()
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("all_1000_built", |b| {
        b.iter_batched(
            || changed.clone(),
            |specs| ForwardingTable::build_with_services(&bare_spec(), &specs, None).unwrap(),
            BatchSize::LargeInput,
        );
    });
    group.finish();
    black_box(before);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = pipeline, rebuild
}
criterion_main!(benches);
