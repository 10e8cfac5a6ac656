//! The server refusing us as a whole (401, 403, 404, 407), told apart from a refusal of
//! one event (400, 413).

use std::time::Duration;

use super::{bench, event, pause_of, Act, Additions, Backoff, Delivery, Step};

// Regression: a 401, 403 or 404 (a rotated key, a project gone, a proxy or load balancer
// in maintenance) failed each event it answered, so the whole outbox was given up within
// seconds. They pause the forwarder with their own growing back-off and keep the events
// (until `give_up_after`), counted as refused; a 400 still fails its one event only.
#[test]
fn a_401_403_or_404_pauses_and_keeps_the_events_a_400_fails_one() {
    for status in [401u16, 403, 404, 407] {
        let b = bench(vec![
            Act::Answer(status, vec![], "refused"),
            Act::Answer(status, vec![], "refused"),
            Act::Answer(status, vec![], "refused"),
        ]);
        for n in 1..=3 {
            b.store.insert(&event(n)).unwrap();
        }
        let config = b
            .config
            .clone()
            .refusal_backoff(Duration::from_millis(200), Duration::from_millis(500));
        let mut backoff = Backoff::new(&config);
        let delivery = Delivery {
            store: &b.store,
            sender: &b.sender,
            additions: &Additions::default(),
            give_up_after: Duration::from_secs(3600),
        };
        let mut waits = Vec::new();
        for _ in 0..3 {
            let (id, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
            waits.push(pause_of(delivery.forward(id, &unsent, &mut backoff)));
        }
        // Growing from 200 ms, capped at 500 ms, each drawn in [half, all].
        for (w, full) in waits.iter().zip([200u64, 400, 500]) {
            let full = Duration::from_millis(full);
            assert!(*w >= full / 2 && *w <= full, "{status}: {waits:?}");
        }
        let counts = b.store.forward_counts().unwrap();
        assert_eq!(
            (counts.pending, counts.failed_total(), counts.refused),
            (3, 0, 3),
            "{status}"
        );
        let (_, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
        assert_eq!(unsent.attempts, 3);
        assert!(
            unsent.last_error.starts_with(&status.to_string()),
            "{unsent:?}"
        );
        // The server takes them again: every event goes out, none failed.
        for _ in 0..3 {
            let (id, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
            assert_eq!(delivery.forward(id, &unsent, &mut backoff), Step::Next);
        }
        let counts = b.store.forward_counts().unwrap();
        assert_eq!(
            (counts.pending, counts.sent, counts.failed_total()),
            (0, 3, 0),
            "{status}"
        );
    }

    // A refusal past the give-up age gives the event up, as a failing one is.
    let b = bench(vec![Act::Answer(403, vec![], "key revoked")]);
    let (id, step) = b.forward_failing_since_long_ago();
    assert_eq!(step, Step::Next);
    assert_eq!(
        b.store.forward_refusal(id).unwrap().unwrap(),
        crate::store::Refusal {
            reason: "gave_up".into(),
            answer: "403 key revoked".into()
        }
    );

    // Control: a 400 fails its event alone, and the next goes out.
    let b = bench(vec![Act::Answer(400, vec![], "bad event")]);
    assert_eq!(b.store_and_forward(event(1)), Step::Next);
    assert_eq!(b.store_and_forward(event(2)), Step::Next);
    let counts = b.store.forward_counts().unwrap();
    assert_eq!(
        (counts.sent, counts.refused, counts.failed["status_400"]),
        (1, 0, 1)
    );
}
