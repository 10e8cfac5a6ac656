//! Bursts that overflow the writer's queue: every distinct failure keeps a stored copy, and
//! the repeats that found no room are counted into their groups.

mod support;

use stacktrace::{DropReason, GroupOrder, Interval, Store, Window};
use support::cli::cli_json;
use support::scenario::{db_dir, scenario};

// Pins: a full queue dropped every event it had no room for, repeats and first copies
// alike, so a burst of 10,000 errors from ten failures left groups counting the 1,100 to
// 1,700 events that happened to fit (their sum far below 10,000), and a failure first
// seen while the queue was full could be lost entirely.
#[test]
fn a_burst_of_ten_thousand_from_ten_failures_leaves_ten_groups_summing_to_ten_thousand() {
    let (_dir, db) = db_dir();
    let run = scenario("burst", &db, "10000");
    assert_eq!(run.code, Some(0), "{run:?}");
    let store = Store::open(&db).unwrap();
    let groups = store.groups(GroupOrder::Count).unwrap();
    let counts: Vec<u64> = groups.iter().map(|g| g.count).collect();
    assert_eq!(groups.len(), 10, "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 10_000, "{counts:?}");
    // Each failure is counted exactly, not merely in total.
    assert!(counts.iter().all(|n| *n == 1_000), "{counts:?}");
    let stats = store.stats().unwrap();
    // The control: the burst overflowed the queue, so most full copies were not stored.
    assert!(stats.events < 10_000, "{stats:?}");
    assert_eq!(stats.events + stats.repeats_counted, 10_000, "{stats:?}");
    assert_eq!(store.dropped().unwrap()[&DropReason::QueueFull], 0);
}

// Pins: trends were counted from the stored events alone, so after a burst that overflowed
// the queue a group's trend showed the few copies stored, not its occurrences.
#[test]
fn after_a_burst_trends_count_every_occurrence() {
    let (_dir, db) = db_dir();
    let run = scenario("burst", &db, "3000");
    assert_eq!(run.code, Some(0), "{run:?}");
    let store = Store::open(&db).unwrap();
    // Two hours, in case the burst crossed into a new one.
    let window = Window::last(Interval::Hour, 2);
    assert_eq!(store.trend(window).unwrap().total(), 3_000);
    let groups = store.groups(GroupOrder::Count).unwrap();
    assert_eq!(groups.len(), 10);
    for g in groups {
        assert_eq!(
            store.group_trend(&g.fingerprint, window).unwrap().total(),
            300
        );
    }
    // The control: the queue overflowed.
    assert!(store.stats().unwrap().repeats_counted > 0);
}

// Pins: `stacktrace stats` had no line for occurrences counted without their events.
#[test]
fn stats_show_the_repeats_counted_and_not_stored() {
    let (_dir, db) = db_dir();
    let run = scenario("burst", &db, "5000");
    assert_eq!(run.code, Some(0), "{run:?}");
    let stats = cli_json(&db, &["stats"]);
    let events = stats["events"].as_u64().unwrap();
    let repeats = stats["repeats_counted"].as_u64().unwrap();
    assert!(repeats > 0, "{stats}");
    assert_eq!(events + repeats, 5_000, "{stats}");
    let table = support::cli::cli(&db, &["stats"]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.contains("repeats counted, not stored") && l.contains(&repeats.to_string())),
        "{table:?}"
    );
}

// Pins: captures that found the counters' lock taken by another capture dropped the event
// after a few spins, so a burst from several threads lost occurrences of known failures.
#[test]
fn a_burst_from_four_threads_is_counted_exactly() {
    let (_dir, db) = db_dir();
    let run = scenario("burst", &db, "2500/4");
    assert_eq!(run.code, Some(0), "{run:?}");
    let store = Store::open(&db).unwrap();
    let counts: Vec<u64> = store
        .groups(GroupOrder::Count)
        .unwrap()
        .iter()
        .map(|g| g.count)
        .collect();
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 10_000, "{counts:?}");
    let stats = store.stats().unwrap();
    assert!(stats.events < 10_000, "{stats:?}");
    assert_eq!(store.dropped().unwrap()[&DropReason::QueueFull], 0);
}
