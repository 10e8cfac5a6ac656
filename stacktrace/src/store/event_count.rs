//! The number of events stored and the bytes of their blocks, kept in the `meta` tree and
//! changed in the same sled transaction as the events they count, so that opening a
//! database reads two keys instead of every block (the manifest check needs the count at
//! each open, the disk budget the bytes).

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::db::Store;
use super::keys;
use crate::error::StoreError;

#[cfg(test)]
thread_local! {
    /// How many times this thread counted the events block by block.
    pub(super) static FULL_COUNTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The error of a transaction whose closure never aborts.
pub(super) fn from_transaction(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Io(e),
        TransactionError::Abort(()) => StoreError::Io(sled::Error::ReportableBug(
            "a transaction that cannot abort aborted".into(),
        )),
    }
}

impl Store {
    /// Applies `batch` to the events tree and records `count` as the number of events
    /// stored and `bytes` as their blocks' size, all or nothing.
    pub(super) fn apply_counted(
        &self,
        batch: &sled::Batch,
        count: u64,
        bytes: u64,
    ) -> Result<(), StoreError> {
        self.apply_counted_marked(batch, (count, bytes), None, None)
    }

    /// Like [`Store::apply_counted`], writing `marker` (a key and value of the meta tree)
    /// and `outbox` (the unsent marks of the events, see the outbox module) in the same
    /// transaction: an event is never stored without its unsent mark.
    pub(super) fn apply_counted_marked(
        &self,
        batch: &sled::Batch,
        (count, bytes): (u64, u64),
        marker: Option<(&[u8], &[u8])>,
        outbox: Option<&sled::Batch>,
    ) -> Result<(), StoreError> {
        let meta = &self.postings.meta;
        let write = |events: &TransactionalTree, meta: &TransactionalTree| {
            events.apply_batch(batch)?;
            meta.insert(keys::EVENT_COUNT, &count.to_be_bytes())?;
            meta.insert(keys::EVENT_BYTES, &bytes.to_be_bytes())?;
            if let Some((key, value)) = marker {
                meta.insert(key, value)?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        };
        match outbox {
            Some(unsent) => {
                (&self.events, meta, &self.outbox).transaction(|(events, meta, out)| {
                    write(events, meta)?;
                    out.apply_batch(unsent)?;
                    Ok(())
                })
            }
            None => (&self.events, meta).transaction(|(events, meta)| write(events, meta)),
        }
        .map_err(from_transaction)
    }

    /// The number of events recorded with the last write; `None` in a database written by
    /// a version that did not keep it, or one whose data was lost.
    pub(super) fn recorded_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .postings
            .meta
            .get(keys::EVENT_COUNT)?
            .map(|v| keys::u64_of(&v)))
    }

    /// The bytes of the event blocks recorded with the last write; `None` in a database
    /// written by a version that did not keep them.
    pub(super) fn recorded_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .postings
            .meta
            .get(keys::EVENT_BYTES)?
            .map(|v| keys::u64_of(&v)))
    }

    /// Records `bytes` as the size of the event blocks, after reading them block by block.
    pub(super) fn record_bytes(&self, bytes: u64) -> Result<(), StoreError> {
        self.postings
            .meta
            .insert(keys::EVENT_BYTES, &bytes.to_be_bytes())?;
        Ok(())
    }

    /// Records `count` as the number of events stored, after counting them block by block.
    pub(super) fn record_count(&self, count: u64) -> Result<(), StoreError> {
        self.postings
            .meta
            .insert(keys::EVENT_COUNT, &count.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::model::event::{CrashEvent, EventId};
    use crate::store::manifest::Manifest;

    fn events(ids: std::ops::Range<u128>) -> Vec<CrashEvent> {
        ids.map(|i| CrashEvent::sample(i * 1000, &format!("event {i}")))
            .collect()
    }

    fn full_counts() -> usize {
        FULL_COUNTS.with(std::cell::Cell::get)
    }

    // Pins: every open counted the events block by block, reading the whole database at
    // each install, to compare the count with the manifest.
    #[test]
    fn opening_reads_the_kept_count_instead_of_counting_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        {
            let store = Store::open(&db).unwrap();
            store.insert_batch(&events(1..51)).unwrap();
            store.flush().unwrap();
        }
        let before = full_counts();
        let store = Store::open(&db).unwrap();
        assert_eq!(full_counts(), before, "the open counted every event");
        assert_eq!(store.recorded_count().unwrap(), Some(50));
        assert_eq!(store.event_count().unwrap(), 50);

        // A database of a version that kept no count is counted once, and keeps it after.
        store.postings.meta.remove(keys::EVENT_COUNT).unwrap();
        store.flush().unwrap();
        drop(store);
        let before = full_counts();
        let store = Store::open(&db).unwrap();
        assert_eq!(full_counts(), before + 1);
        assert_eq!(store.recorded_count().unwrap(), Some(50));
        drop(store);
        let before = full_counts();
        drop(Store::open(&db).unwrap());
        assert_eq!(full_counts(), before);
    }

    // Pins: with the count kept rather than counted, a count off after retention, a
    // replaced event or a merge of spooled events would make a sound database read as
    // damaged (or a damaged one as sound) at the next open.
    #[test]
    fn the_kept_count_follows_replacements_removals_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let check = |store: &Store| {
            let counted = store.event_count().unwrap();
            assert_eq!(store.recorded_count().unwrap(), Some(counted));
            store.flush().unwrap();
            assert_eq!(Manifest::read(&db).map(|m| m.events), Some(counted));
            counted
        };
        let store = Store::open(&db).unwrap();
        store.insert_batch(&events(1..31)).unwrap();
        assert_eq!(check(&store), 30);
        // The same id again replaces the event; one between two stored ones adds one.
        let mut again = events(5..6);
        again[0].message = "replaced".into();
        again.push(CrashEvent::sample(5500, "between"));
        store.insert_batch(&again).unwrap();
        assert_eq!(check(&store), 31);
        // Retention, with its boundary inside a block.
        assert_eq!(store.remove_below(EventId(10_500)).unwrap(), 11);
        assert_eq!(check(&store), 20);
        drop(store);

        // Spooled events, one of them already stored, merged at the next open.
        let spool = crate::store::spool::spool_dir(&db);
        std::fs::create_dir_all(&spool).unwrap();
        let lines: String = [20_000, 40_000, 41_000]
            .iter()
            .map(|&id| {
                let e = CrashEvent::sample(id, "spooled");
                format!("{}\n", serde_json::to_string(&e).unwrap())
            })
            .collect();
        std::fs::write(spool.join("1-0.jsonl"), lines).unwrap();
        let store = Store::open(&db).unwrap();
        assert_eq!(check(&store), 22);
        drop(store);
        let store = Store::open(&db).unwrap();
        assert_eq!(check(&store), 22);
    }

    // Pins: a count left low (a version that kept none wrote events since) read as fewer
    // events than the manifest recorded, and the sound database as damaged.
    #[test]
    fn a_count_left_low_is_counted_again_before_the_database_is_called_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        {
            let store = Store::open(&db).unwrap();
            store.insert_batch(&events(1..11)).unwrap();
            store.flush().unwrap();
            store.record_count(4).unwrap();
            store.postings.meta.flush().unwrap();
        }
        let store = Store::open(&db).unwrap();
        assert_eq!(store.recorded_count().unwrap(), Some(10));
        assert_eq!(store.query().count().unwrap(), 10);
    }

    // Pins: Store::flush took the write lock with a blocking lock() to update the manifest,
    // so the panic hook's fallback flush waited for another thread's write.
    #[test]
    fn flush_does_not_wait_for_a_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let store = Store::open(&db).unwrap();
        store.insert_batch(&events(1..4)).unwrap();
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::scope(|s| {
            let store = &store;
            s.spawn(move || {
                let _writing = store.writing().unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
            });
            held_rx.recv().unwrap();
            s.spawn(move || done_tx.send(store.flush().is_ok()).unwrap());
            let finished = done_rx.recv_timeout(Duration::from_secs(20));
            release_tx.send(()).unwrap();
            assert_eq!(finished, Ok(true), "the flush waited for the write lock");
        });
        // Busy, it left the manifest as it was; free, it updates it.
        assert_eq!(Manifest::read(&db).map(|m| m.events), Some(0));
        store.flush().unwrap();
        assert_eq!(Manifest::read(&db).map(|m| m.events), Some(3));
    }
}
