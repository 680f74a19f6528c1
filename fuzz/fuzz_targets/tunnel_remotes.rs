//! Any bytes as the tunnel's remotes file (`testbed tunnel encap
//! --remotes-file`, rewritten by whatever withdraws balancers): the known
//! balancers it lists, in order and once each, or a reason.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use testbed::tunnel::ecmp_group;

const KNOWN: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 0, 1),
    Ipv4Addr::new(10, 0, 0, 2),
    Ipv4Addr::new(10, 0, 0, 3),
];

fuzz_target!(|data: &[u8]| {
    match ecmp_group::parse(&String::from_utf8_lossy(data), &KNOWN) {
        Ok(active) => {
            assert!(!active.is_empty());
            assert!(active.windows(2).all(|w| w[0] < w[1]));
            assert!(active.iter().all(|&i| i < KNOWN.len()));
        }
        Err(error) => assert!(!error.trim().is_empty()),
    }
});
