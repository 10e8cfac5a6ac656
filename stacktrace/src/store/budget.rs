//! The disk budget: the database held to a size by removing the oldest events of the
//! groups with the most stored events first, never a group's first or latest event.
//!
//! sled's own size ([`sled::Db::size_on_disk`]) lags behind removals and counts space it
//! has not reclaimed yet, so a budget held on it would remove far more than needed. The
//! budget is held on an estimate kept exact at every write instead: the bytes of the stored
//! event blocks (see the event_count module) times [`SIZE_PER_EVENT_BYTE`], which leaves
//! room for their indexes, the groups, and the space sled reclaims later.
//!
//! Groups are records of their own: their counts, first and last seen stay as they were.
//! A removed event's index entries go with it; the removal boundary of retention moves past
//! it first, as retention's does, so that the manifest expects fewer events and readers
//! look up the ids below it.

use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::error::StoreError;
use crate::model::event::{CrashEvent, EventId};
use crate::store::db::Store;
use crate::store::event_count::from_transaction;
use crate::store::events::blocks::{BlockWriter, Written};
use crate::store::groups::group::Group;
use crate::store::index::postings::Additions;
use crate::store::keys::{self, Field};
use crate::store::pending::index_event;

/// The estimated size per byte of stored event blocks: the indexes, the groups and the
/// space sled has not reclaimed yet come on top of the events.
pub(crate) const SIZE_PER_EVENT_BYTE: u64 = 2;

/// What the budget is brought down to once it is exceeded, in percent of it: room for new
/// events before the next removal.
pub(crate) const LOW_WATER_PERCENT: u64 = 90;

/// Events taken out in one write, at most: the write lock is held that long.
pub(crate) const SLICE: usize = 512;

/// What a removal for the budget did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Events removed.
    pub events: u64,
    /// Bytes of event blocks freed.
    pub bytes: u64,
}

impl Store {
    /// The database's size as the disk budget holds it: the bytes of the stored events,
    /// kept exact at every write, doubled for their indexes, the groups and the space sled
    /// reclaims later. sled's [`Stats::size_on_disk`](crate::Stats::size_on_disk) lags
    /// behind removals and moves with its own housekeeping.
    pub fn estimated_size(&self) -> u64 {
        self.stored_bytes
            .load(Ordering::SeqCst)
            .saturating_mul(SIZE_PER_EVENT_BYTE)
    }

    /// The disk budget recorded by the program that writes the database; 0 when none.
    pub fn disk_budget(&self) -> Result<u64, StoreError> {
        self.meta_u64(keys::DISK_BUDGET)
    }

    /// The events removed to hold the disk budget, and the bytes of event blocks that
    /// freed, since the database was made.
    pub fn budget_removed(&self) -> Result<Trimmed, StoreError> {
        Ok(Trimmed {
            events: self.meta_u64(keys::BUDGET_REMOVED)?,
            bytes: self.meta_u64(keys::BUDGET_REMOVED_BYTES)?,
        })
    }

    /// Records the disk budget the program holds the database to, for readers to show.
    pub(crate) fn record_disk_budget(&self, bytes: u64) -> Result<(), StoreError> {
        if self.disk_budget()? != bytes {
            self.postings
                .meta
                .insert(keys::DISK_BUDGET, &bytes.to_be_bytes())?;
        }
        Ok(())
    }

    pub(crate) fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .postings
            .meta
            .get(key)?
            .map(|v| keys::u64_of(&v))
            .unwrap_or(0))
    }

    /// Holds the database to `budget` bytes of [`Store::estimated_size`]: when over it,
    /// removes the oldest events of the groups with the most stored events until the
    /// estimate is at 90% of it, keeping each group's first and latest event. Returns what
    /// was removed. Stops early when only first and latest events are left.
    pub fn enforce_disk_budget(&self, budget: u64) -> Result<Trimmed, StoreError> {
        let mut total = Trimmed::default();
        if budget == 0 || self.estimated_size() <= budget {
            return Ok(total);
        }
        let target = low_water(budget);
        loop {
            let plan = self.budget_plan(target)?;
            let mut progress = false;
            for slice in plan.chunks(SLICE) {
                let done = self.remove_for_budget(slice)?;
                total.events += done.events;
                total.bytes += done.bytes;
                progress |= done.events > 0;
                if self.estimated_size() <= target {
                    return Ok(total);
                }
            }
            if !progress {
                return Ok(total);
            }
        }
    }

    /// The events to remove to bring the estimate down to `target`, in the order they go:
    /// one at a time from the group with the most stored events, its oldest first, never
    /// its first or latest. About as many as the bytes to free take at the average event's
    /// size, and a margin.
    pub(crate) fn budget_plan(&self, target: u64) -> Result<Vec<EventId>, StoreError> {
        let over = self.estimated_size().saturating_sub(target) / SIZE_PER_EVENT_BYTE;
        if over == 0 {
            return Ok(Vec::new());
        }
        let events = self.stored.load(Ordering::SeqCst).max(1);
        let average = (self.stored_bytes.load(Ordering::SeqCst) / events).max(1);
        let wanted =
            usize::try_from(over / average + over / average / 4 + 16).unwrap_or(usize::MAX);
        let purged_below = self.purged_below()?;
        // Per group: its removable ids, oldest first, and how many it stores.
        let mut groups: Vec<(Vec<EventId>, usize)> = Vec::new();
        for item in self.groups.iter() {
            let (key, value) = item?;
            let latest = keys::decode::<Group>(&value, || "groups".into())
                .map(|g| g.last_event)
                .ok();
            let mut ids: Vec<EventId> = Vec::new();
            for id in
                self.postings
                    .descending(Field::Fingerprint, &key, EventId(0), EventId(u128::MAX))
            {
                ids.push(id?);
            }
            ids.reverse();
            // Retention leaves index entries of removed events below its boundary: the
            // first event is the oldest still stored.
            let mut first = 0;
            while first < ids.len()
                && ids[first] < purged_below
                && !self.contains_event(ids[first])?
            {
                first += 1;
            }
            let ids = &ids[first..];
            if ids.len() < 3 {
                continue;
            }
            let removable: Vec<EventId> = ids[1..ids.len() - 1]
                .iter()
                .copied()
                .filter(|id| Some(*id) != latest)
                .collect();
            groups.push((removable, ids.len()));
        }
        // The group with the most stored events gives its oldest, until it has no more
        // than the next; ties go to the group whose candidate is older.
        let mut heap: BinaryHeap<(usize, std::cmp::Reverse<EventId>, usize)> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (ids, n))| ids.first().map(|id| (*n, std::cmp::Reverse(*id), g)))
            .collect();
        let mut next = vec![0usize; groups.len()];
        let mut plan = Vec::with_capacity(wanted.min(1 << 20));
        while plan.len() < wanted {
            let Some((n, _, g)) = heap.pop() else {
                break;
            };
            let (ids, _) = &groups[g];
            plan.push(ids[next[g]]);
            next[g] += 1;
            if let Some(id) = ids.get(next[g]) {
                heap.push((n - 1, std::cmp::Reverse(*id), g));
            }
        }
        Ok(plan)
    }

    /// Removes the events `ids` (any order; those not stored are passed over) with their
    /// index entries, and counts them as removed for the budget in the same write.
    pub(crate) fn remove_for_budget(&self, ids: &[EventId]) -> Result<Trimmed, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let Some(&newest) = ids.last() else {
            return Ok(Trimmed::default());
        };
        let _writing = self.writing()?;
        // The boundary first, as retention's: the manifest then expects fewer events.
        self.postings
            .set_purged_below(EventId(newest.0.saturating_add(1)))?;
        let mut batch = sled::Batch::default();
        let mut written = Written::default();
        let mut gone: Vec<CrashEvent> = Vec::new();
        let mut i = 0;
        while i < ids.len() {
            let block = match self.block_at_or_after(ids[i]) {
                Ok(Some(block)) => block,
                Ok(None) => break,
                // A damaged block is left as it is: what it holds cannot be told.
                Err(StoreError::Undecodable { .. }) => {
                    i += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let end = i + ids[i..].partition_point(|id| *id <= block.last());
            let in_block = &ids[i..end];
            i = end;
            let mut out = BlockWriter::default();
            let mut removed = 0;
            for k in 0..block.len() {
                let id = block.id(k);
                if in_block.binary_search(&id).is_ok() {
                    removed += 1;
                    // An event that cannot be read has no index entries to take out.
                    if let Ok(e) = block.event(k) {
                        gone.push(e);
                    }
                } else {
                    out.push(id, block.json(k));
                }
            }
            if removed == 0 {
                continue;
            }
            written.events += removed;
            written.bytes_out += block.size();
            // The block is stored under its newest id: gone with it, or kept under it.
            batch.remove(&block.last().to_bytes()[..]);
            out.finish(&mut batch);
            written.bytes_in += out.written();
        }
        if written.events == 0 {
            return Ok(Trimmed::default());
        }
        let count = self
            .stored
            .load(Ordering::SeqCst)
            .saturating_sub(written.events);
        let bytes = written.bytes_after(self.stored_bytes.load(Ordering::SeqCst));
        let trimmed = Trimmed {
            events: written.events,
            bytes: written.bytes_out.saturating_sub(written.bytes_in),
        };
        let meta = &self.postings.meta;
        (&self.events, meta)
            .transaction(|(events, meta): &(TransactionalTree, TransactionalTree)| {
                events.apply_batch(&batch)?;
                meta.insert(keys::EVENT_COUNT, &count.to_be_bytes())?;
                meta.insert(keys::EVENT_BYTES, &bytes.to_be_bytes())?;
                let add = |key: &[u8], n: u64| {
                    let old = meta.get(key)?.map(|v| keys::u64_of(&v)).unwrap_or(0);
                    meta.insert(key, &old.saturating_add(n).to_be_bytes())?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                };
                add(keys::BUDGET_REMOVED, trimmed.events)?;
                add(keys::BUDGET_REMOVED_BYTES, trimmed.bytes)?;
                Ok(())
            })
            .map_err(from_transaction)?;
        self.stored.store(count, Ordering::SeqCst);
        self.stored_bytes.store(bytes, Ordering::SeqCst);
        // Index entries left by a failure here lead to no event: readers pass them over.
        let mut additions = Additions::default();
        for e in &gone {
            index_event(&mut additions, e);
        }
        additions.remove(&self.postings)?;
        Ok(trimmed)
    }
}

/// What an exceeded budget is brought down to.
pub(crate) fn low_water(budget: u64) -> u64 {
    budget / 100 * LOW_WATER_PERCENT
}

#[cfg(test)]
mod tests;
