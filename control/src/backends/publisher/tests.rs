//! Publishing: every change that alters the backends' specs becomes a new
//! table with the next generation; refused changes publish nothing.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

fn ip(last: u8) -> IpAddr {
    [10, 1, 0, last].into()
}

fn settings(table_size: u32) -> TableSettings {
    TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        lb_ipv6: None,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 7,
        table_size,
        mtu: 1500,
    }
}

/// A publisher over backends .1, .2, .3 (weight 1, resolved).
fn three_backends() -> Publisher {
    let mut set = BackendSet::default();
    for last in 1..=3 {
        set.add(ip(last), 1).unwrap();
        set.set_mac(ip(last), Some(MAC)).unwrap();
    }
    Publisher::new(settings(1009), set).unwrap()
}

/// How many Maglev entries each slot holds in the published table.
fn entries_per_slot(p: &Publisher) -> Vec<usize> {
    let table = p.handle().load();
    let mut counts = vec![0; table.backends().len()];
    for &slot in table.maglev.entries() {
        if let Some(c) = counts.get_mut(slot as usize) {
            *c += 1;
        }
    }
    counts
}

#[test]
fn the_first_table_is_generation_one_with_every_backend() {
    let p = three_backends();
    assert_eq!(p.generation(), 1);
    assert_eq!(p.handle().load().generation, 1);
    let counts = entries_per_slot(&p);
    assert_eq!(counts.len(), 3);
    assert!(counts.iter().all(|&c| c > 300), "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 1009);
}

#[test]
fn an_added_backend_is_published_in_a_new_slot_with_the_next_generation() {
    let p = three_backends();
    let mut changes = p.subscribe();
    let added = p.add(ip(4), 1).unwrap();
    assert_eq!(added.slot, 3);
    // Unresolved: in the table, but with no Maglev entries.
    assert_eq!(p.generation(), 2);
    assert_eq!(entries_per_slot(&p)[3], 0);
    assert!(!p.handle().load().backends()[3].usable);
    p.set_mac(ip(4), Some(MAC)).unwrap();
    assert_eq!(p.generation(), 3);
    assert!(entries_per_slot(&p)[3] > 200);
    assert!(p.handle().load().backends()[3].usable);
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 3);
}

#[test]
fn a_removed_backend_loses_its_entries_and_its_slot() {
    let p = three_backends();
    p.remove(ip(2)).unwrap();
    assert_eq!(p.generation(), 2);
    let table = p.handle().load();
    assert!(!table.backends()[1].usable);
    assert!(table.maglev.entries().iter().all(|&s| s != 1));
    assert!(p.backend(ip(2)).is_none());
    assert_eq!(p.spec().backends.len(), 2);
}

#[test]
fn a_drained_backend_keeps_its_slot_and_generation_but_gets_no_new_flows() {
    let p = three_backends();
    let before = p.handle().load().backends()[0];
    p.set_drain(ip(1), true).unwrap();
    let table = p.handle().load();
    assert_eq!(table.generation, 2);
    assert_eq!(entries_per_slot(&p)[0], 0);
    // Established flows still find it: same slot, same generation, usable.
    assert_eq!(table.backends()[0], before);
    assert!(table.backend(0, before.generation).is_some());
    p.set_drain(ip(1), false).unwrap();
    assert!(entries_per_slot(&p)[0] > 300);
}

#[test]
fn weights_shift_maglev_entries() {
    let p = three_backends();
    p.set_weight(ip(3), 4).unwrap();
    let counts = entries_per_slot(&p);
    assert!(counts[2] > 2 * counts[0], "{counts:?}");
}

#[test]
fn a_failed_backend_comes_back_as_a_new_incarnation() {
    let p = three_backends();
    assert_eq!(p.record_health(ip(1), false, 2, 2), Ok(None));
    assert_eq!(p.generation(), 1, "one failure changes nothing");
    assert_eq!(
        p.record_health(ip(1), false, 2, 2),
        Ok(Some(Transition::WentDown))
    );
    let table = p.handle().load();
    assert_eq!(table.generation, 2);
    assert_eq!(entries_per_slot(&p)[0], 0);
    assert!(
        table.backend(0, 0).is_none(),
        "flows pinned before the failure miss"
    );
    p.record_health(ip(1), true, 2, 2).unwrap();
    p.record_health(ip(1), true, 2, 2).unwrap();
    let table = p.handle().load();
    assert_eq!(table.generation, 3);
    assert_eq!(table.backends()[0].generation, 2);
    assert!(entries_per_slot(&p)[0] > 300);
}

#[test]
fn changes_that_alter_no_spec_publish_nothing() {
    let p = three_backends();
    p.set_weight(ip(1), 1).unwrap();
    p.set_mac(ip(1), Some(MAC)).unwrap();
    p.record_health(ip(1), true, 2, 3).unwrap();
    assert_eq!(p.generation(), 1);
}

#[test]
fn a_refused_change_leaves_set_and_table_alone() {
    // A 5-entry table holds at most 4 backends.
    let mut set = BackendSet::default();
    for last in 1..=4 {
        set.add(ip(last), 1).unwrap();
    }
    let p = Publisher::new(settings(5), set).unwrap();
    let err = p.add(ip(5), 1).unwrap_err();
    assert!(matches!(err, BackendError::Table(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("the forwarding table cannot be built: "),
        "{err}"
    );
    assert!(p.backend(ip(5)).is_none());
    assert_eq!(p.generation(), 1);
    assert_eq!(p.add(ip(1), 1).unwrap_err(), BackendError::Exists(ip(1)));
}

#[test]
fn readers_never_wait_for_a_change_in_progress() {
    let p = three_backends();
    let (entered, in_change) = std::sync::mpsc::channel();
    let (finish, until_finished) = std::sync::mpsc::channel::<()>();
    let writer = {
        let p = p.clone();
        std::thread::spawn(move || {
            p.update(|set| {
                // Holds the publisher's lock, as a long Maglev build would.
                entered.send(()).unwrap();
                until_finished.recv().unwrap();
                set.remove(ip(3))
            })
        })
    };
    in_change.recv().unwrap();
    let (read, reads_done) = std::sync::mpsc::channel();
    let reader = p.clone();
    std::thread::spawn(move || {
        let seen = (
            reader.backends().len(),
            reader.backend(ip(1)).is_some(),
            reader.generation(),
            reader.spec().backends.len(),
        );
        read.send(seen).unwrap();
    });
    let seen = reads_done
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the reads waited for the change");
    assert_eq!(seen, (3, true, 1, 3), "the last published set");
    finish.send(()).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(p.backends().len(), 2);
    assert_eq!(p.generation(), 2);
    assert!(p.backend(ip(3)).is_none());
}

#[test]
fn a_replaced_table_is_freed_by_the_publisher_not_by_the_worker_that_read_it_last() {
    let p = three_backends();
    let handle = p.handle();
    let (loaded, table_loaded) = std::sync::mpsc::channel();
    let (published, after_publication) = std::sync::mpsc::channel::<()>();
    // A worker in the middle of a batch: it holds the table it loaded
    // while control publishes, and lets go of it afterwards.
    let worker = std::thread::spawn(move || {
        let table = handle.load();
        loaded.send(Arc::downgrade(&*table)).unwrap();
        after_publication.recv().unwrap();
        drop(table);
        std::thread::current().id()
    });
    let old = table_loaded.recv().unwrap();
    p.set_drain(ip(1), true).unwrap();
    published.send(()).unwrap();
    let worker_thread = worker.join().unwrap();
    assert_ne!(worker_thread, std::thread::current().id());
    assert!(
        old.upgrade().is_some(),
        "the worker's reference was the last: the table was freed on the worker"
    );
    assert_eq!(p.free_retired_tables(), 0, "no worker reads it any more");
    assert!(old.upgrade().is_none(), "freed here, by the publisher");
}

#[test]
fn a_replaced_table_no_worker_holds_is_freed_at_the_next_publication() {
    let p = three_backends();
    let first = Arc::downgrade(&*p.handle().load());
    p.set_drain(ip(1), true).unwrap();
    assert!(first.upgrade().is_none());
}

#[test]
fn a_health_result_that_completes_no_transition_leaves_the_published_snapshot_alone() {
    let p = three_backends();
    let before = p.inner.view.load_full();
    assert_eq!(p.record_health(ip(1), false, 2, 3), Ok(None));
    assert_eq!(p.record_health(ip(1), true, 2, 3), Ok(None));
    assert!(
        Arc::ptr_eq(&before, &p.inner.view.load_full()),
        "no copy of the set was published"
    );
    assert_eq!(p.set_health(ip(1), true), Ok(None));
    assert!(Arc::ptr_eq(&before, &p.inner.view.load_full()));
    assert_eq!(p.generation(), 1);
    assert_eq!(p.set_health(ip(1), false), Ok(Some(Transition::WentDown)));
    assert_eq!(p.generation(), 2);
    assert!(!p.backend(ip(1)).unwrap().health.is_up());
    assert_eq!(entries_per_slot(&p)[0], 0);
}
