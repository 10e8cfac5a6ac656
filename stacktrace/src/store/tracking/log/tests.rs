//! The tracking log: writing, capping, reading and damage.

use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn capped_oldest_first_and_queried_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let base = 1_700_000_000_000_000;
    for i in 0..50u64 {
        let r = TrackedRequest::sample(base + i, if i % 2 == 0 { "/a" } else { "/b" }, 200, i * 10);
        log.append(&[r], 10, u64::MAX).unwrap();
    }
    let all = store.tracked().limit(1000).run().unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].timestamp_us, base + 49);
    assert_eq!(all[9].timestamp_us, base + 40);
    let slow = store
        .tracked()
        .slower_than(Duration::from_micros(460))
        .run()
        .unwrap();
    assert_eq!(
        slow.iter().map(|r| r.duration_us).collect::<Vec<_>>(),
        [490, 480, 470]
    );
    let b = store.tracked().path("/b").limit(2).run().unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|r| r.path == "/b"));
    let window = store
        .tracked()
        .since(crate::model::time::from_us(base + 42))
        .until(crate::model::time::from_us(base + 45))
        .run()
        .unwrap();
    assert_eq!(
        window
            .iter()
            .map(|r| r.timestamp_us - base)
            .collect::<Vec<_>>(),
        [45, 44, 43, 42]
    );
    assert!(store.tracked().status(404).run().unwrap().is_empty());
    // Reopening counts what is there, so the cap holds across restarts.
    let mut log = TrackingLog::open(&store).unwrap();
    assert_eq!(log.entries, 10);
    log.append(
        &[TrackedRequest::sample(base + 99, "/c", 404, 1)],
        10,
        u64::MAX,
    )
    .unwrap();
    assert_eq!(store.tracked().status(404).run().unwrap().len(), 1);
    assert_eq!(store.tracked().limit(100).run().unwrap().len(), 10);
}

/// A block sled refuses counts its entries as lost and reports the first error; the
/// writer goes on, and the log's counts do not include what was not stored.
#[test]
fn a_refused_block_counts_its_entries_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    // The tree is dropped under the log's handle: every insert through it now fails.
    assert!(store.db.drop_tree(keys::TRACKING).unwrap());
    let base = 1_700_000_000_000_000;
    let total = BLOCK_ENTRIES as u64 + 10;
    let mut open = OpenBlock::default();
    let mut writer = log.writer(&mut open);
    for i in 0..total {
        let r = TrackedRequest::sample(base + i, "/a", 200, 1);
        block::with_parts(&r, |parts| writer.push(parts));
    }
    let written = writer.finish(u64::MAX, u64::MAX);
    assert_eq!((written.stored, written.lost), (0, total));
    let error = written.error.expect("an error");
    assert!(
        matches!(&error, StoreError::Io(sled::Error::CollectionNotFound(_))),
        "{error:?}"
    );
    assert_eq!((log.entries, log.bytes), (0, 0));
}

#[test]
fn byte_cap_removes_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    for i in 0..20u64 {
        log.append(
            &[TrackedRequest::sample(1_000 + i, "/x", 200, 1)],
            1000,
            1000,
        )
        .unwrap();
    }
    assert!(log.bytes <= 1000);
    let rows = store.tracked().run().unwrap();
    assert!(!rows.is_empty() && rows.len() < 20);
    assert_eq!(rows[0].timestamp_us, 1_019);
}

fn keys_of(store: &Store) -> Vec<EventId> {
    let tree = store.db.open_tree(keys::TRACKING).unwrap();
    tree.iter()
        .keys()
        .map(|k| keys::id_of_event_key(&k.unwrap()).unwrap())
        .collect()
}

fn stamps(rows: &[TrackedRequest], base: u64) -> Vec<u64> {
    rows.iter().map(|r| r.timestamp_us - base).collect()
}

#[test]
fn one_write_is_cut_into_blocks_and_read_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let base = 1_700_000_000_000_000;
    // Written out of order, as requests finish; stored sorted.
    let mut records: Vec<TrackedRequest> = (0..1000u64)
        .map(|i| TrackedRequest::sample(base + i, if i % 3 == 0 { "/a" } else { "/b" }, 200, i))
        .collect();
    records.reverse();
    log.append(&records, u64::MAX, u64::MAX).unwrap();
    let tree = store.db.open_tree(keys::TRACKING).unwrap();
    let mut counted = 0;
    let mut previous_max = None;
    for kv in tree.iter() {
        let (k, v) = kv.unwrap();
        let key = keys::id_of_event_key(&k).unwrap();
        let slots = block::block_entries(key, &v).unwrap();
        assert!(!slots.is_empty() && slots.len() <= BLOCK_ENTRIES);
        let ids: Vec<EventId> = slots.iter().map(|s| s.head().unwrap().id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted within a block");
        assert_eq!(*ids.last().unwrap(), key, "keyed by the newest entry");
        assert_eq!(block::block_head(key, &v).unwrap().min, ids[0]);
        if slots.len() > 1 {
            assert!(v.len() <= BLOCK_BYTES, "{} bytes", v.len());
        }
        assert!(
            previous_max.is_none_or(|m| m < ids[0]),
            "blocks do not overlap"
        );
        previous_max = Some(key);
        counted += slots.len();
    }
    assert_eq!(counted, 1000);
    assert!(keys_of(&store).len() > 1, "more than one block");
    assert_eq!(log.entries, 1000);
    assert_eq!(TrackingLog::open(&store).unwrap().entries, 1000);
    assert_eq!(TrackingLog::open(&store).unwrap().bytes, log.bytes);

    let all = store.tracked().limit(usize::MAX).run().unwrap();
    assert_eq!(stamps(&all, base), (0..1000).rev().collect::<Vec<_>>());
    // Every limit and every window reads across block boundaries as one sorted list.
    for limit in [1, 17, 255, 256, 257, 999] {
        let rows = store.tracked().limit(limit).run().unwrap();
        assert_eq!(
            stamps(&rows, base),
            (1000 - limit as u64..1000).rev().collect::<Vec<_>>()
        );
    }
    let window = store
        .tracked()
        .since(crate::model::time::from_us(base + 250))
        .until(crate::model::time::from_us(base + 520))
        .limit(usize::MAX)
        .run()
        .unwrap();
    assert_eq!(stamps(&window, base), (250..=520).rev().collect::<Vec<_>>());
    let a = store
        .tracked()
        .path("/a")
        .slower_than(Duration::from_micros(900))
        .run()
        .unwrap();
    assert_eq!(
        stamps(&a, base),
        (901..1000).rev().filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
}

#[test]
fn blocks_that_overlap_in_time_are_merged_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let r = |ts| TrackedRequest::sample(ts, "/x", 200, 1);
    // A slow request that started at 10 finishes after requests started at 20 and 30:
    // the later write holds the older entry.
    log.append(&[r(20), r(50)], u64::MAX, u64::MAX).unwrap();
    log.append(&[r(10), r(30)], u64::MAX, u64::MAX).unwrap();
    log.append(&[r(40)], u64::MAX, u64::MAX).unwrap();
    let ts = |q: TrackingQuery<'_>| stamps(&q.run().unwrap(), 0);
    assert_eq!(ts(store.tracked()), [50, 40, 30, 20, 10]);
    assert_eq!(ts(store.tracked().limit(1)), [50]);
    assert_eq!(ts(store.tracked().limit(2)), [50, 40]);
    assert_eq!(ts(store.tracked().limit(3)), [50, 40, 30]);
    assert_eq!(ts(store.tracked().limit(4)), [50, 40, 30, 20]);
    let until = |us| store.tracked().until(crate::model::time::from_us(us));
    assert_eq!(ts(until(45)), [40, 30, 20, 10]);
    assert_eq!(ts(until(25).limit(1)), [20]);
    assert_eq!(
        ts(store
            .tracked()
            .since(crate::model::time::from_us(15))
            .limit(10)),
        [50, 40, 30, 20]
    );
    assert!(ts(store.tracked().limit(0)).is_empty());
}

#[test]
fn the_cap_holds_at_block_granularity_and_cuts_the_oldest_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let base = 1_000_000;
    for w in 0..10u64 {
        let records: Vec<TrackedRequest> = (0..100)
            .map(|i| TrackedRequest::sample(base + w * 100 + i, "/x", 200, 1))
            .collect();
        log.append(&records, 250, u64::MAX).unwrap();
        assert!(log.entries <= 250);
        let rows = store.tracked().limit(usize::MAX).run().unwrap();
        assert_eq!(rows.len() as u64, log.entries);
        // The newest are kept: a contiguous run ending with the latest write.
        let newest = w * 100 + 99;
        let n = rows.len() as u64;
        assert_eq!(
            stamps(&rows, base),
            (newest + 1 - n..=newest).rev().collect::<Vec<_>>()
        );
    }
    // Trimmed to 1% under the cap, so the oldest block was cut, not dropped whole.
    assert_eq!(log.entries, 248);
    assert_eq!(TrackingLog::open(&store).unwrap().entries, 248);
    assert_eq!(TrackingLog::open(&store).unwrap().bytes, log.bytes);

    // A byte cap: blocks go whole while that is enough, then part of the next one.
    let bytes_cap = log.bytes / 2;
    log.append(
        &[TrackedRequest::sample(base + 5_000, "/y", 200, 1)],
        u64::MAX,
        bytes_cap,
    )
    .unwrap();
    assert!(log.bytes <= bytes_cap);
    let reopened = TrackingLog::open(&store).unwrap();
    assert_eq!((reopened.entries, reopened.bytes), (log.entries, log.bytes));
    let rows = store.tracked().limit(usize::MAX).run().unwrap();
    assert_eq!(rows.len() as u64, log.entries);
    assert_eq!(rows[0].timestamp_us, base + 5_000);
    assert_eq!(rows[1].timestamp_us, base + 999);
    assert_eq!(rows.last().unwrap().timestamp_us, base + 1001 - log.entries);
}

#[test]
fn a_damaged_block_is_skipped_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let r = |ts| TrackedRequest::sample(ts, "/x", 200, 1);
    log.append(&[r(10), r(20)], u64::MAX, u64::MAX).unwrap();
    log.append(&[r(30), r(40)], u64::MAX, u64::MAX).unwrap();
    log.append(&[r(50), r(60)], u64::MAX, u64::MAX).unwrap();
    let tree = store.db.open_tree(keys::TRACKING).unwrap();
    let middle = keys_of(&store)[1];
    let mut value = tree.get(middle.to_bytes()).unwrap().unwrap().to_vec();
    let cut = value.len() - 3;
    value.truncate(cut);
    tree.insert(middle.to_bytes(), value).unwrap();

    let err = store.tracked().run().unwrap_err().to_string();
    assert!(err.contains(&format!("tracking/{middle}")), "{err}");
    let (rows, damaged) = store.tracked().run_skipping_damaged().unwrap();
    assert_eq!(stamps(&rows, 0), [60, 50, 20, 10]);
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0]
        .to_string()
        .contains(&format!("tracking/{middle}")));
    // A value of an unknown format, and an empty one, are skipped the same way.
    tree.insert(EventId::new(35).to_bytes(), vec![9, 1, 2])
        .unwrap();
    tree.insert(EventId::new(36).to_bytes(), Vec::new())
        .unwrap();
    let (rows, damaged) = store.tracked().run_skipping_damaged().unwrap();
    assert_eq!(stamps(&rows, 0), [60, 50, 20, 10]);
    assert_eq!(damaged.len(), 3);
    assert!(damaged.iter().any(|e| e.to_string().contains("version 9")));

    // The writer counts around them and trims them away with the oldest.
    let mut log = TrackingLog::open(&store).unwrap();
    assert_eq!(log.entries, 4 + 2);
    log.append(&[r(70)], 2, u64::MAX).unwrap();
    assert_eq!(keys_of(&store).len(), 2);
    let (rows, damaged) = store.tracked().run_skipping_damaged().unwrap();
    assert_eq!(stamps(&rows, 0), [70, 60]);
    assert!(damaged.is_empty());
}

#[test]
fn entries_of_the_one_per_key_format_are_read_and_capped_with_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let tree = store.db.open_tree(keys::TRACKING).unwrap();
    for ts in [10, 20, 30] {
        let r = TrackedRequest::sample(ts, "/old", 200, ts);
        tree.insert(r.id.to_bytes(), keys::encode(&r)).unwrap();
    }
    let mut log = TrackingLog::open(&store).unwrap();
    assert_eq!(log.entries, 3);
    log.append(
        &[TrackedRequest::sample(25, "/new", 200, 1)],
        u64::MAX,
        u64::MAX,
    )
    .unwrap();
    let rows = store.tracked().run().unwrap();
    assert_eq!(stamps(&rows, 0), [30, 25, 20, 10]);
    assert_eq!(rows[0].path, "/old");
    assert_eq!(rows[0].duration_us, 30);
    log.append(&[TrackedRequest::sample(40, "/new", 200, 1)], 3, u64::MAX)
        .unwrap();
    assert_eq!(stamps(&store.tracked().run().unwrap(), 0), [40, 30, 25]);
}

#[test]
fn inverted_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let t = SystemTime::now();
    assert!(store
        .tracked()
        .since(t + Duration::from_micros(1))
        .until(t)
        .run()
        .is_err());
}

#[test]
fn until_is_inclusive_as_in_event_queries() {
    // Regression: a tracking query's `until` left out the requests that started at that
    // very instant, while an event query's `until` keeps the events of that instant.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let r = |ts| TrackedRequest::sample(ts, "/x", 200, 1);
    log.append(&[r(10), r(20), r(30)], u64::MAX, u64::MAX)
        .unwrap();
    let at = crate::model::time::from_us;
    let ts = |q: TrackingQuery<'_>| stamps(&q.run().unwrap(), 0);
    assert_eq!(ts(store.tracked().until(at(20))), [20, 10]);
    assert_eq!(ts(store.tracked().since(at(20)).until(at(20))), [20]);
    assert_eq!(ts(store.tracked().since(at(11)).until(at(29))), [20]);
}

/// A writer that pauses leaves its open block for the next writer, which fills it: the
/// entries of two slices go in one block, stored by the `finish` of the second.
#[test]
fn a_paused_writer_leaves_its_block_open_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    let mut log = TrackingLog::open(&store).unwrap();
    let base = 1_700_000_000_000_000;
    let mut open = OpenBlock::default();
    let mut writer = log.writer(&mut open);
    for i in 0..10 {
        let r = TrackedRequest::sample(base + i, "/a", 200, 1);
        block::with_parts(&r, |parts| writer.push(parts));
    }
    let paused = writer.pause();
    assert_eq!((paused.stored, paused.lost, paused.trimmed), (0, 0, 0));
    assert!(keys_of(&store).is_empty(), "nothing stored while paused");
    let mut writer = log.writer(&mut open);
    for i in 10..20 {
        let r = TrackedRequest::sample(base + i, "/b", 200, 1);
        block::with_parts(&r, |parts| writer.push(parts));
    }
    let written = writer.finish(u64::MAX, u64::MAX);
    assert_eq!((written.stored, written.lost), (20, 0));
    assert_eq!(keys_of(&store).len(), 1, "one block holds both slices");
    let rows = store.tracked().limit(100).run().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0].path, "/b");
    assert_eq!(rows[19].path, "/a");
    assert_eq!(log.entries, 20);
}
