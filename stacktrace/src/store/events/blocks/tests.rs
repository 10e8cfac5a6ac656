//! Tests of the event blocks: batches packed and read back, damaged blocks, the earlier layout, writers taking turns, and a property test against a map.

use proptest::prelude::*;

use super::*;

fn event(id: u128, message: &str) -> CrashEvent {
    CrashEvent::sample(id, message)
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    (dir, store)
}

fn write(store: &Store, events: &[CrashEvent]) {
    let mut batch = sled::Batch::default();
    store
        .write_events(&Encoded::new(events), &mut batch)
        .unwrap();
    store.events.apply_batch(batch).unwrap();
}

fn stored(store: &Store) -> Vec<(u128, String)> {
    let mut out = Vec::new();
    store
        .visit_events(EventId(0)..EventId(u128::MAX), false, |b, i| {
            out.push((b.id(i).0, b.event(i)?.message));
            Ok(true)
        })
        .unwrap();
    out
}

/// Every block checks, and no two blocks' spans overlap.
fn assert_blocks_sound(store: &Store) {
    let mut previous: Option<EventId> = None;
    for item in store.events.iter() {
        let (k, v) = item.unwrap();
        let b = Block::parse(&k, v).unwrap();
        assert!(b.len() <= MAX_EVENTS);
        // At most the byte limit, unless one event alone is larger.
        let bytes: usize = (0..b.len()).map(|i| b.json(i).len()).sum();
        assert!(b.len() == 1 || bytes <= MAX_BYTES);
        if let Some(p) = previous {
            assert!(p < b.first(), "blocks overlap");
        }
        previous = Some(b.last());
    }
}

#[test]
fn a_batch_is_written_as_few_blocks_and_read_back() {
    let (_dir, store) = store();
    let events: Vec<_> = (1..=300).map(|i| event(i * 10, &format!("m{i}"))).collect();
    write(&store, &events);
    let blocks = store.events.len();
    assert!((2..=30).contains(&blocks), "300 events in {blocks} blocks");
    assert_eq!(store.event_count().unwrap(), 300);
    for e in &events {
        assert_eq!(store.get(e.id).unwrap().as_ref(), Some(e));
    }
    assert_eq!(store.get(EventId(15)).unwrap(), None);
    assert_eq!(store.get(EventId(10_000)).unwrap(), None);
    assert_eq!(store.nth_newest(0).unwrap(), Some(EventId(3000)));
    assert_eq!(store.nth_newest(299).unwrap(), Some(EventId(10)));
    assert_eq!(store.nth_newest(300).unwrap(), None);
    assert_eq!(store.id_span().unwrap(), Some((EventId(10), EventId(3000))));
}

#[test]
fn damaged_blocks_are_errors_naming_them() {
    let (_dir, store) = store();
    let key = EventId(7).to_bytes();
    let mut good = sled::Batch::default();
    store
        .write_events(&Encoded::new(&[event(5, "a"), event(7, "b")]), &mut good)
        .unwrap();
    store.events.apply_batch(good).unwrap();
    let value = store.events.get(key).unwrap().unwrap().to_vec();
    let damaged: Vec<Vec<u8>> = vec![
        vec![],
        vec![BLOCK_FORMAT],
        vec![BLOCK_FORMAT, 0, 0, 0, 0],
        vec![BLOCK_FORMAT, 255, 255, 255, 255],
        value[..value.len() - 3].to_vec(),
        {
            // Ids swapped: out of order.
            let mut v = value.clone();
            v[HEAD..HEAD + 16].copy_from_slice(&EventId(9).to_bytes());
            v
        },
        vec![9, 1, 2],
    ];
    for bytes in damaged {
        store.events.insert(key, bytes.clone()).unwrap();
        let err = store.get(EventId(7)).unwrap_err().to_string();
        assert!(err.contains(&EventId(7).to_string()), "{err} for {bytes:?}");
    }
}

/// A damaged block among good ones: the count, the span and retention by count still
/// work, counting it as one event.
#[test]
fn counts_span_and_retention_read_past_a_damaged_block() {
    let (_dir, store) = store();
    write(&store, &[event(10, "a"), event(20, "b")]);
    write(&store, &[event(30, "c"), event(40, "d")]);
    write(&store, &[event(50, "e")]);
    store
        .events
        .insert(EventId(40).to_bytes(), vec![BLOCK_FORMAT, 9])
        .unwrap();
    assert_eq!(store.event_count().unwrap(), 4);
    assert_eq!(store.id_span().unwrap(), Some((EventId(10), EventId(50))));
    assert_eq!(store.nth_newest(1).unwrap(), Some(EventId(40)));
    assert_eq!(store.nth_newest(2).unwrap(), Some(EventId(20)));
    assert_eq!(store.keep_latest(2).unwrap(), 2);
    assert_eq!(store.event_count().unwrap(), 2);
    assert!(store.get(EventId(50)).unwrap().is_some());
}

#[test]
fn a_value_of_the_earlier_layout_reads_as_one_event() {
    let (_dir, store) = store();
    let e = event(42, "old");
    store
        .events
        .insert(e.id.to_bytes(), crate::store::keys::encode(&e))
        .unwrap();
    write(&store, &[event(41, "before"), event(43, "after")]);
    assert_eq!(store.get(e.id).unwrap().as_ref(), Some(&e));
    let messages: Vec<_> = stored(&store).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages, ["before", "old", "after"]);
    assert_blocks_sound(&store);
}

/// Writers on several threads at once, their ids interleaved in time: every event is
/// stored once, readable, and the blocks never overlap (each write reads what is stored
/// before it writes, so writes take turns).
#[test]
fn concurrent_writers_take_turns() {
    let (_dir, store) = store();
    std::thread::scope(|s| {
        for t in 0..4u128 {
            let store = &store;
            s.spawn(move || {
                for b in 0..25u128 {
                    let events: Vec<_> = (0..20u128)
                        .map(|i| event((b * 20 + i) * 4 + t + 1, &format!("t{t}")))
                        .collect();
                    store.insert_batch(&events).unwrap();
                }
            });
        }
    });
    assert_blocks_sound(&store);
    assert_eq!(store.event_count().unwrap(), 2000);
    for id in 1..=2000u128 {
        assert!(store.contains_event(EventId(id)).unwrap(), "{id}");
    }
    assert_eq!(store.query().text("t2").count().unwrap(), 500);
}

#[test]
fn a_thread_holding_the_write_lock_is_refused_another_not_made_to_wait_for_itself() {
    let (_dir, store) = store();
    let held = store.writing().unwrap();
    assert!(matches!(store.writing(), Err(StoreError::WriteReentered)));
    assert!(matches!(
        store.insert_batch(&[event(1, "a")]),
        Err(StoreError::WriteReentered)
    ));
    drop(held);
    store.insert_batch(&[event(1, "a")]).unwrap();
    assert!(store.contains_event(EventId(1)).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Batches in any order, overlapping what is stored, with repeated ids, then a
    /// removal: what is read is what a map of id to latest event says, and the blocks
    /// stay sound.
    #[test]
    fn blocks_agree_with_a_map(
        batches in prop::collection::vec(
            prop::collection::vec(0u128..2_000, 1..200), 1..8),
        boundary in 0u128..2_100,
    ) {
        let (_dir, store) = store();
        let mut model = std::collections::BTreeMap::new();
        for (b, ids) in batches.iter().enumerate() {
            let events: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(k, id)| event(*id, &format!("b{b}e{k}")))
                .collect();
            for e in &events {
                model.insert(e.id.0, e.message.clone());
            }
            write(&store, &events);
            assert_blocks_sound(&store);
        }
        let want: Vec<_> = model.clone().into_iter().collect();
        prop_assert_eq!(stored(&store), want);
        prop_assert_eq!(store.event_count().unwrap(), model.len() as u64);
        for (id, message) in &model {
            prop_assert_eq!(&store.get(EventId(*id)).unwrap().unwrap().message, message);
        }
        // Newest first over a middle range.
        let mut got = Vec::new();
        store.visit_events(EventId(500)..EventId(1500), true, |b, i| {
            got.push(b.id(i).0);
            Ok(true)
        }).unwrap();
        let want: Vec<_> = model.keys().rev().copied().filter(|i| (500..1500).contains(i)).collect();
        prop_assert_eq!(got, want);

        let removed = store.remove_events_below(EventId(boundary)).unwrap();
        let below = model.keys().filter(|i| **i < boundary).count() as u64;
        prop_assert_eq!(removed, below);
        model.retain(|i, _| *i >= boundary);
        assert_blocks_sound(&store);
        let want: Vec<_> = model.into_iter().collect();
        prop_assert_eq!(stored(&store), want);
    }
}
