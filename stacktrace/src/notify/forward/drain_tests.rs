//! The drain at the guard's drop: it sends on the dropping thread, whatever the forwarder's
//! thread gets of the cores, and honours a wait the server asked for.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::tests::{config_for, event, outbox_in, FaultServer};
use super::*;

/// A store that lives for the test's process (the forwarder's thread holds it), with
/// `n` events in its outbox.
fn outbox_of(n: u128) -> &'static Store {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let store: &'static Store = Box::leak(Box::new(outbox_in(dir)));
    for i in 1..=n {
        store.insert(&event(i)).unwrap();
    }
    assert_eq!(store.unsent_count(), n as usize);
    store
}

fn config_of(server: &FaultServer, drain: Duration) -> ForwardConfig {
    config_for(server)
        .timeout(Duration::from_secs(5))
        .drain_timeout(drain)
}

/// A forwarder whose thread never gets a core: none is started.
fn starved(config: &ForwardConfig, store: &'static Store) -> Forwarder {
    Forwarder {
        shared: Arc::new(Shared::default()),
        store,
        drain_config: config.clone(),
        additions: Additions::default(),
    }
}

fn wait_for(mut done: impl FnMut() -> bool, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

// Regression: the forwarder's thread runs at the lowest priority, and a drain that only
// waited for it left the outbox full on a busy machine. The drain sends on its own thread.
#[test]
fn a_drain_sends_the_outbox_though_the_forwarder_thread_never_runs() {
    let server = FaultServer::start(vec![]);
    let store = outbox_of(3);
    let forwarder = starved(&config_of(&server, Duration::from_secs(10)), store);
    assert!(forwarder.drain_on_exit());
    assert_eq!(server.received().len(), 3);
    assert_eq!(store.unsent_count(), 0);
    assert_eq!(store.forward_counts().unwrap().sent, 3);
}

#[test]
fn a_drain_honours_a_wait_the_server_asked_for() {
    // A wait past the drain's end: nothing is sent, the outbox is kept for the next start.
    let server = FaultServer::start(vec![]);
    let store = outbox_of(2);
    let forwarder = starved(&config_of(&server, Duration::from_millis(500)), store);
    *crate::sync::lock(&forwarder.shared.paused_until) =
        Some(Instant::now() + Duration::from_secs(60));
    let started = Instant::now();
    assert!(!forwarder.drain_on_exit());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(server.received().is_empty());
    assert_eq!(store.unsent_count(), 2);
    // A wait that ends within the drain is waited out, then all is sent (the control).
    let forwarder = starved(&config_of(&server, Duration::from_secs(10)), store);
    let until = Instant::now() + Duration::from_millis(400);
    *crate::sync::lock(&forwarder.shared.paused_until) = Some(until);
    assert!(forwarder.drain_on_exit());
    assert!(Instant::now() >= until);
    assert_eq!(server.received().len(), 2);
}

// The thread sends nothing while a drain holds the outbox, and takes over again after it,
// for a program that goes on past the guard's drop.
#[test]
fn the_forwarder_thread_waits_while_handed_over_and_takes_over_after() {
    let server = FaultServer::start(vec![]);
    let store = outbox_of(0);
    let config = config_of(&server, Duration::from_secs(10));
    let mut errors = Vec::new();
    let forwarder = Forwarder::start(&config, store, &mut errors).expect("a forwarder");
    assert!(errors.is_empty(), "{errors:?}");
    forwarder.shared.handed_over.store(true, Ordering::SeqCst);
    for i in 1..=3 {
        store.insert(&event(i)).unwrap();
    }
    forwarder.wake();
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.received().is_empty(), "sent while handed over");
    forwarder.shared.handed_over.store(false, Ordering::SeqCst);
    forwarder.wake();
    // The thread runs at the lowest priority: on a machine busy with other tests it may
    // wait long for a core, hence the generous bound (the wait ends as soon as all came).
    assert!(
        wait_for(|| server.received().len() == 3, Duration::from_secs(60)),
        "{} sent after the hand-back",
        server.received().len()
    );
    // And a drain with the thread running still ends with the outbox empty.
    store.insert(&event(4)).unwrap();
    assert!(forwarder.drain_on_exit());
    assert!(wait_for(
        || server.received().len() == 4,
        Duration::from_secs(5)
    ));
}
