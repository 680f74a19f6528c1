//! Coverage-guided fuzzing of the packet pipeline: any bytes as a frame,
//! through GRE mode, VIP mode and passthrough. The pipeline must never
//! panic, and a forwarded frame must carry a valid outer IPv4 header to a
//! configured backend. Run with `cargo fuzz run pipeline` (nightly).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use dataplane::forwarding::{BackendSpec, ForwardingSpec, ForwardingTable};
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};
use dataplane::wire::checksum;
use dataplane::{Frame, Verdict};
use libfuzzer_sys::fuzz_target;

const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

fn table() -> &'static ForwardingTable {
    static TABLE: OnceLock<ForwardingTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let backends = (0..3)
            .map(|i| BackendSpec {
                slot: i,
                addr: Ipv4Addr::new(10, 1, 0, i as u8 + 1).into(),
                weight: 1,
                mac: Some([2, 0, 0, 0, 1, i as u8]),
                generation: 0,
            })
            .collect();
        ForwardingTable::build(&ForwardingSpec {
            lb_ipv4: LB,
            lb_ipv6: None,
            lb_mac: [2, 0, 0, 0, 0, 1],
            vips: vec![
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)),
                "2001:db8::80".parse().unwrap(),
            ],
            backends,
            seed: 1,
            table_size: 251,
            mtu: 1500,
            generation: 1,
        })
        .expect("a valid table")
    })
}

thread_local! {
    // One worker's state for the whole run, as in the balancer: inputs meet
    // the connection and fragment tables that earlier inputs filled.
    static STATE: std::cell::RefCell<WorkerState> = std::cell::RefCell::new(WorkerState::new(WorkerConfig {
        conntrack: dataplane::conntrack::ConnTableConfig { capacity: 1024, ..Default::default() },
        ..Default::default()
    }));
}

fuzz_target!(|data: &[u8]| {
    STATE.with_borrow_mut(|state| run(data, state));
});

fn run(data: &[u8], state: &mut WorkerState) {
    let mut buf = vec![0u8; 128 + data.len()];
    buf[128..].copy_from_slice(data);
    let mut frame = Frame::new(&mut buf, 128, data.len());
    if Pipeline::process(&mut frame, table(), state) == Verdict::ToWire {
        let out = frame.data();
        let l2 = if out[12..14] == [0x81, 0x00] { 18 } else { 14 };
        let header_len = usize::from(out[l2] & 0x0f) * 4;
        assert_eq!(checksum::checksum(&out[l2..l2 + header_len]), 0);
        assert_eq!(&out[l2 + 12..l2 + 16], &LB.octets());
        assert_eq!(out[l2 + 9], 47);
    }
    Pipeline::release_held(table(), state, |_| true);
}
