//! Offloads read, turned off and restored on a veth pair between two fresh
//! namespaces (needs root; prints `skipped: <reason>` otherwise). Each test
//! owns the prefix `rrofN-`.

mod af_packet_lab;

use af_packet_lab::{in_namespace, VethLab};
use host::offloads::{self, Offload, OffloadError, Offloads};

/// Reads `a0`'s offloads inside the lab's namespace `a`.
fn read_a0(lab: &VethLab) -> Offloads {
    in_namespace(&lab.ns_a(), || offloads::read("a0")).unwrap()
}

#[test]
fn disabled_offloads_read_back_off_and_restore_to_the_original() {
    let Some(lab) = VethLab::start("rrof1-") else {
        return;
    };
    let original = read_a0(&lab);
    assert_eq!(
        original.tx_checksum,
        Some(true),
        "veth default: {original:?}"
    );

    let (gro_on, changed, lines, restored, after_outer) = in_namespace(&lab.ns_a(), || {
        // A veth's GRO is off by default on current kernels: turn it on
        // first (with its own guard) so that turning it off is a change.
        let mut outer = offloads::set("a0", &[(Offload::Gro, true)]).unwrap();
        let gro_on = offloads::read("a0").unwrap();
        let mut guard = offloads::disable("a0", &[Offload::TxChecksum, Offload::Gro]).unwrap();
        let lines: Vec<String> = guard.changes().iter().map(ToString::to_string).collect();
        let changed = offloads::read("a0").unwrap();
        guard.restore().unwrap();
        assert!(guard.changes().is_empty(), "restored changes are forgotten");
        let restored = offloads::read("a0").unwrap();
        outer.restore().unwrap();
        (
            gro_on,
            changed,
            lines,
            restored,
            offloads::read("a0").unwrap(),
        )
    });
    assert_eq!(gro_on.gro, Some(true));
    assert_eq!(changed.tx_checksum, Some(false));
    assert_eq!(changed.gro, Some(false));
    assert!(
        lines.contains(&"a0: tx-checksum on -> off".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"a0: gro on -> off".to_owned()), "{lines:?}");
    // Without TX checksums the kernel turns TSO off too; it is recorded as
    // following the change, and restored with the rest.
    if original.tso == Some(true) {
        assert_eq!(changed.tso, Some(false));
        assert!(
            lines.contains(&"a0: tso on -> off (follows another change)".to_owned()),
            "{lines:?}"
        );
    }
    assert_eq!(restored, gro_on);
    assert_eq!(after_outer, original);
}

#[test]
fn a_dropped_guard_restores_and_the_peer_is_untouched() {
    let Some(lab) = VethLab::start("rrof2-") else {
        return;
    };
    let original = read_a0(&lab);
    let peer_before = in_namespace(&lab.ns_b(), || offloads::read("b0")).unwrap();
    let during = in_namespace(&lab.ns_a(), || {
        let guard =
            offloads::disable("a0", &[Offload::TxChecksum, Offload::Gso, Offload::Tso]).unwrap();
        assert!(guard.refused().is_empty(), "{:?}", guard.refused());
        let during = offloads::read("a0").unwrap();
        drop(guard);
        during
    });
    assert_eq!(
        (during.tx_checksum, during.gso, during.tso),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(read_a0(&lab), original);
    let peer_after = in_namespace(&lab.ns_b(), || offloads::read("b0")).unwrap();
    assert_eq!(peer_after, peer_before);
}

#[test]
fn an_interface_of_another_namespace_is_unknown_and_named() {
    let Some(lab) = VethLab::start("rrof3-") else {
        return;
    };
    // `b0` exists, but in namespace b: from namespace a it is unknown.
    let (read_error, disable_error) = in_namespace(&lab.ns_a(), || {
        (
            offloads::read("b0").unwrap_err(),
            offloads::disable("b0", &[Offload::Gro]).unwrap_err(),
        )
    });
    for error in [read_error, disable_error] {
        assert!(
            matches!(&error, OffloadError::NoSuchInterface { interface, .. } if interface == "b0"),
            "{error:?}"
        );
        assert!(error.to_string().contains("\"b0\""), "{error}");
    }
    // Turning off what is already off changes nothing and needs no restore.
    let changes = in_namespace(&lab.ns_a(), || {
        let first = offloads::disable("a0", &[Offload::Lro]).unwrap();
        first.changes().len()
    });
    assert_eq!(changes, 0, "veths have no LRO to turn off");
}
