//! Indexing and grouping a stored batch, and completing a batch a write left halfway.
//!
//! A batch is stored in three writes: its events with their count (one transaction), their
//! index entries, then their groups. sled recovers a prefix of its log after a crash, so a
//! process that ends between them (an abort after a panic, `kill -9`) can leave events
//! stored without their index entries or group, which the journal's merge would then skip
//! as stored. So the first write also records a marker of the batch (its ids) in the meta
//! tree, and the transaction that counts the batch's groups removes it. The next open
//! completes every marked batch: its index entries again (adding ids that are there
//! already changes nothing) and its groups, which its marker says were not counted.

use crate::error::StoreError;
use crate::model::event::{CrashEvent, EventId};
use crate::store::db::{InsertOutcome, Store};
use crate::store::groups::group::{record_groups, GroupStatus};
use crate::store::index::postings::Additions;
use crate::store::keys::{self, Field};

/// The marker of a batch being stored: its key in the meta tree and the batch's ids.
pub(super) struct Marker {
    pub(super) key: Vec<u8>,
    pub(super) ids: Vec<u8>,
}

impl Marker {
    pub(super) fn of(store: &Store, events: &[CrashEvent]) -> Result<Marker, StoreError> {
        let mut key = keys::PENDING.to_vec();
        key.extend_from_slice(&store.db.generate_id()?.to_be_bytes());
        let mut ids = Vec::with_capacity(events.len() * 16);
        for e in events {
            ids.extend_from_slice(&e.id.to_bytes());
        }
        Ok(Marker { key, ids })
    }
}

impl Store {
    /// Indexes stored `events` and counts them in their groups, removing the batch's
    /// `marker` in the transaction that counts them; returns what happened to each group,
    /// in order of first occurrence. Called under the write lock.
    pub(super) fn index_and_group(
        &self,
        events: &[CrashEvent],
        marker: &[u8],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut additions = Additions::default();
        let mut by_group: Vec<(&str, Vec<&CrashEvent>)> = Vec::new();
        for e in events {
            index_event(&mut additions, e);
            match by_group.iter_mut().find(|(fp, _)| *fp == e.fingerprint) {
                Some((_, members)) => members.push(e),
                None => by_group.push((&e.fingerprint, vec![e])),
            }
        }
        additions.apply(&self.postings)?;
        #[cfg(test)]
        if torn_after(Stage::Postings) {
            return Ok(Vec::new());
        }
        let trees = (&self.groups, &self.postings.meta, &self.releases);
        let recorded = record_groups(trees, &by_group, marker)?;
        Ok(recorded
            .into_iter()
            .map(|(old, group)| InsertOutcome {
                new_group: old.is_none(),
                // Resolved in a release, an older build's event leaves it resolved.
                regressed: old.is_some_and(|g| g.status == GroupStatus::Resolved)
                    && group.status == GroupStatus::Unresolved,
                group,
            })
            .collect())
    }

    /// Completes the batches whose markers are left (see the module's notes); returns how
    /// many. A marker lives from a batch's first write to its last, so there are few, and
    /// this reads a few keys rather than every event.
    pub(super) fn complete_pending(&self) -> Result<usize, StoreError> {
        let _writing = self.writing()?;
        let markers = self
            .postings
            .meta
            .scan_prefix(keys::PENDING)
            .collect::<Result<Vec<_>, _>>()?;
        for (key, ids) in &markers {
            let mut events = Vec::new();
            for id in ids.chunks_exact(16) {
                let Ok(bytes) = <[u8; 16]>::try_from(id) else {
                    continue;
                };
                match self.get(EventId::from_bytes(bytes)) {
                    Ok(Some(e)) => events.push(e),
                    // Removed since, or unreadable: there is nothing to index or count.
                    Ok(None) | Err(StoreError::Undecodable { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            self.index_and_group(&events, key)?;
        }
        Ok(markers.len())
    }
}

/// Adds an event's index entries: its level, error type, request path, user, group and
/// words.
pub(super) fn index_event<'a>(additions: &mut Additions<'a>, e: &'a CrashEvent) {
    const LEVELS: [u8; 5] = [0, 1, 2, 3, 4];
    let level = usize::from(e.level.as_byte()).min(LEVELS.len() - 1);
    additions.add(Field::Level, &LEVELS[level..=level], e.id);
    additions.add(Field::ErrorType, e.error_type.as_bytes(), e.id);
    additions.add(Field::RequestPath, e.request_path.as_bytes(), e.id);
    additions.add(Field::User, e.user.as_bytes(), e.id);
    additions.add(Field::Fingerprint, e.fingerprint.as_bytes(), e.id);
    additions.add_text(&e.message, &e.error_type, e.id);
}

#[cfg(test)]
thread_local! {
    /// Where the next batch this thread stores stops, as if its process ended there.
    pub(super) static TEAR_AFTER: std::cell::Cell<Option<Stage>> =
        const { std::cell::Cell::new(None) };
}

/// The writes of a stored batch, in order.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// The events, with their count.
    Events,
    /// Their index entries.
    Postings,
}

/// Whether a test asked the batch being stored to stop after `stage`.
#[cfg(test)]
pub(super) fn torn_after(stage: Stage) -> bool {
    TEAR_AFTER.with(|t| t.get() == Some(stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::{CrashEvent, Level};
    use crate::store::db::Store;

    fn panic_event(id: u128, fingerprint: &str) -> CrashEvent {
        let mut e = CrashEvent::sample(id, &format!("panicked at {id}"));
        e.timestamp_us = id as u64;
        e.level = Level::Fatal;
        e.error_type = "panic".into();
        e.fingerprint = fingerprint.into();
        e
    }

    // Pins: insert_batch wrote the events (with their count), then the index entries, then
    // the groups, as separate sled writes. A process that ended between them (an abort
    // after a panic, while sled had persisted the first write) left an event that no query
    // by error type found and no group counted, and the merge of the panic journal at the
    // next open skipped it as already stored.
    #[test]
    fn a_batch_torn_after_its_events_is_indexed_and_grouped_once_at_the_next_open() {
        for stage in [Some(Stage::Events), Some(Stage::Postings), None] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("events.db");
            let earlier = panic_event(1_000, "fp-a");
            let torn = [panic_event(2_000, "fp-a"), panic_event(3_000, "fp-b")];
            {
                let store = Store::open(&db).unwrap();
                store.insert(&earlier).unwrap();
                // As the panic hook does: journaled, then stored.
                for e in &torn {
                    store.journal(e).unwrap();
                }
                TEAR_AFTER.with(|t| t.set(stage));
                let stored = store.insert_batch(&torn);
                TEAR_AFTER.with(|t| t.set(None));
                stored.unwrap();
                store.flush().unwrap();
            }
            // Opened twice: completed at the first, not counted again at the second.
            for open in 0..2 {
                let store = Store::open(&db).unwrap();
                let what = format!("torn after {stage:?}, open {open}");
                let found: Vec<_> = store
                    .query()
                    .error_type("panic")
                    .run()
                    .unwrap()
                    .events
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                assert_eq!(found, [torn[1].id, torn[0].id, earlier.id], "{what}");
                let fp_b: Vec<_> = store
                    .query()
                    .fingerprint("fp-b")
                    .run()
                    .unwrap()
                    .events
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                assert_eq!(fp_b, [torn[1].id], "{what}");
                let stats = store.stats().unwrap();
                assert_eq!((stats.events, stats.groups), (3, 2), "{what}");
                let count = |fp: &str| store.group(fp).unwrap().map(|g| g.count);
                assert_eq!((count("fp-a"), count("fp-b")), (Some(2), Some(1)), "{what}");
                let a = store.group("fp-a").unwrap().unwrap();
                assert_eq!(a.last_event, torn[0].id, "{what}");
            }
        }
    }
}
