//! The fast path must decide exactly as the general path does.

use core::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::{fast_path, Pipeline, WorkerConfig, WorkerState};
use crate::forwarding::{BackendSpec, ForwardingSpec, ForwardingTable};
use crate::frame::Frame;
use crate::synth::{ClientFlow, Transport, Tunnel};
use crate::Verdict;

const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

fn table() -> ForwardingTable {
    let backends = (0..3)
        .map(|i| BackendSpec {
            slot: i,
            addr: Ipv4Addr::new(10, 1, 0, i as u8 + 1),
            weight: 1,
            mac: Some([2, 0, 0, 0, 1, i as u8]),
            generation: 0,
        })
        .collect();
    ForwardingTable::build(&ForwardingSpec {
        lb_ipv4: LB,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: vec![],
        backends,
        seed: 9,
        table_size: 251,
        mtu: 1500,
        generation: 1,
    })
    .unwrap()
}

fn run(frame: &[u8], table: &ForwardingTable, general: bool) -> (Verdict, Vec<u8>) {
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut buf = frame.to_vec();
    let mut f = Frame::whole(&mut buf);
    let verdict = if general {
        Pipeline::decide_general(&mut f, table, &mut state)
    } else {
        Pipeline::decide(&mut f, table, &mut state)
    };
    (verdict, f.data().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_fast_path_decides_every_frame_as_the_general_path_does(
        udp in any::<bool>(),
        client in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        damage in proptest::collection::vec((0usize..80, any::<u8>()), 0..3),
        cut in 0usize..8,
    ) {
        let flow = ClientFlow {
            src: IpAddr::V4(client.into()),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            transport: if udp { Transport::Udp } else { Transport::Tcp },
            src_port: ports.0,
            dst_port: ports.1,
        };
        let mut frame = Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(&payload));
        for (at, value) in damage {
            if at < frame.len() {
                frame[at] = value;
            }
        }
        frame.truncate(frame.len() - cut.min(frame.len()));
        let table = table();
        let fast = run(&frame, &table, false);
        let general = run(&frame, &table, true);
        prop_assert_eq!(&fast, &general);
        if fast_path::classify(&frame, &table).is_some() {
            prop_assert_eq!(fast.0, Verdict::ToWire);
        }
    }
}

#[test]
fn undamaged_gre_tcp_and_udp_take_the_fast_path() {
    let table = table();
    for transport in [Transport::Tcp, Transport::Udp] {
        let flow = ClientFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            transport,
            src_port: 1,
            dst_port: 2,
        };
        let frame = Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(b"x"));
        assert!(
            fast_path::classify(&frame, &table).is_some(),
            "{transport:?}"
        );
    }
}
