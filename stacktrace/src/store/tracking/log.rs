//! Request tracking: every HTTP request with its status and execution time, in a capped tree
//! of its own, apart from the crash events. The oldest entries go first when the tree holds
//! more entries or bytes than allowed; queries read newest first.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{QueryError, StoreError};
use crate::model::event::EventId;
use crate::model::time::to_us;
use crate::store::db::Store;
use crate::store::keys;
use crate::store::tracking::block::{self as block, EntryParts};

/// One tracked request, as stored (headers and bodies already redacted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackedRequest {
    /// Time-ordered id: the request's start in the high bits.
    pub id: EventId,
    /// When the request started, in microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, redacted; empty when there is none.
    pub query: String,
    /// The response status; `500` for a handler that panicked.
    pub status: u16,
    /// From the request's arrival to the response's head, in microseconds.
    pub duration_us: u64,
    /// The user, as `user_field` picks it; empty when unknown.
    pub user: String,
    /// The client's address, when known.
    pub client_addr: String,
    /// Request headers, redacted.
    pub headers: BTreeMap<String, String>,
    /// The first bytes of the request body, redacted; `None` when not kept.
    pub request_body: Option<String>,
    /// The request body was longer than what is kept.
    pub request_body_truncated: bool,
    /// The first bytes of the response body, redacted; `None` when not kept.
    pub response_body: Option<String>,
    /// The response body was longer than what is kept.
    pub response_body_truncated: bool,
    /// What the handler attached (redacted by field name).
    pub data: serde_json::Map<String, Value>,
}

impl TrackedRequest {
    /// The execution time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }
}

/// Entries of one block at most.
const BLOCK_ENTRIES: usize = 256;
/// Bytes of one block's entries at most (a block holds at least one entry): blocks stay well
/// under sled's blob threshold even when a node holds sixteen of them.
const BLOCK_BYTES: usize = 6 << 10;

/// The tracking tree with its running counts, kept by the one thread that writes it.
#[derive(Debug)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct TrackingLog {
    tree: sled::Tree,
    entries: u64,
    bytes: u64,
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl TrackingLog {
    /// Opens the tree and counts what it holds from the blocks' heads (it is capped, so the
    /// scan is bounded). A block whose head cannot be read counts its bytes and no entries;
    /// it goes with the oldest.
    pub(crate) fn open(store: &Store) -> Result<TrackingLog, StoreError> {
        let tree = store.db.open_tree(keys::TRACKING)?;
        let (mut entries, mut bytes) = (0u64, 0u64);
        for kv in tree.iter() {
            let (k, v) = kv?;
            let key = keys::id_of_event_key(&k).unwrap_or(EventId(0));
            entries += block::block_head(key, &v).map_or(0, |h| h.count as u64);
            bytes += (k.len() + v.len()) as u64;
        }
        Ok(TrackingLog {
            tree,
            entries,
            bytes,
        })
    }

    /// Stores the records (in any order), then removes the oldest entries until at most
    /// `max_entries` entries and `max_bytes` bytes of keys and values remain.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        records: &[TrackedRequest],
        max_entries: u64,
        max_bytes: u64,
    ) -> Result<(), StoreError> {
        let mut sorted: Vec<&TrackedRequest> = records.iter().collect();
        sorted.sort_by_key(|r| r.id);
        let mut writer = self.writer();
        for r in sorted {
            block::with_parts(r, |parts| writer.push(parts));
        }
        writer.finish(max_entries, max_bytes).map_err(|(_, e)| e)
    }

    /// A writer of entries, block by block (see [`TrackingWriter`]).
    pub(crate) fn writer(&mut self) -> TrackingWriter<'_> {
        TrackingWriter {
            log: self,
            packer: block::BlockPacker::default(),
            newest: EventId(0),
            lost: 0,
            error: None,
        }
    }

    /// Stores a block under the id of its newest entry, and counts it.
    fn insert_block(
        &mut self,
        newest: EventId,
        value: Vec<u8>,
        count: u64,
    ) -> Result<(), StoreError> {
        let key = newest.to_bytes();
        let size = (key.len() + value.len()) as u64;
        // One insert a block, not a batch: sled writes out its log buffer before and after
        // every batch, which costs more than the blocks themselves. A block that is lost in
        // a crash takes only its own entries.
        let replaced = self.tree.insert(key, value)?;
        // Two writes whose newest entries share an id (the same request queued twice)
        // replace one another: the older block's count leaves the total.
        if let Some(old) = replaced {
            self.entries = self
                .entries
                .saturating_sub(block::block_head(newest, &old).map_or(0, |h| h.count as u64));
            self.bytes = self.bytes.saturating_sub((key.len() + old.len()) as u64);
        }
        self.entries += count;
        self.bytes += size;
        Ok(())
    }

    /// Removes the oldest entries when the tree holds more than `max_entries` entries or
    /// `max_bytes` bytes of keys and values.
    fn cap(&mut self, max_entries: u64, max_bytes: u64) -> Result<(), StoreError> {
        let max_entries = max_entries.max(1);
        if self.entries <= max_entries && self.bytes <= max_bytes {
            return Ok(());
        }
        // Trim to 1% under the caps, so that a full tree is not trimmed on every write.
        self.trim(max_entries - max_entries / 100, max_bytes - max_bytes / 100)
    }

    /// Removes the oldest blocks whole while that does not go under the targets, then the
    /// oldest entries of the next block, until both targets are met.
    fn trim(&mut self, keep_entries: u64, keep_bytes: u64) -> Result<(), StoreError> {
        // Blocks to remove (`None`) or to replace, applied once the scan is done.
        let mut trim: Vec<(sled::IVec, Option<Vec<u8>>)> = Vec::new();
        let (mut entries, mut bytes) = (self.entries, self.bytes);
        for kv in self.tree.iter() {
            if entries <= keep_entries && bytes <= keep_bytes {
                break;
            }
            let (k, v) = kv?;
            let key = keys::id_of_event_key(&k).unwrap_or(EventId(0));
            let size = (k.len() + v.len()) as u64;
            let count = match block::block_head(key, &v) {
                Ok(head) => head.count as u64,
                Err(_) => {
                    // A damaged block cannot be cut: it goes whole, counting no entries.
                    bytes = bytes.saturating_sub(size);
                    trim.push((k, None));
                    continue;
                }
            };
            let whole = entries.saturating_sub(count) >= keep_entries
                || bytes.saturating_sub(size) >= keep_bytes;
            if whole || count <= 1 {
                entries = entries.saturating_sub(count);
                bytes = bytes.saturating_sub(size);
                trim.push((k, None));
                continue;
            }
            // Part of this block is enough: drop its oldest entries until both targets hold.
            let rest = bytes.saturating_sub(size);
            let n = count as usize;
            // The block without its `cut` oldest entries, when it fits the byte target; a
            // block only shrinks as entries leave it.
            let fits = |cut: usize| -> Option<(usize, u64, Vec<u8>)> {
                let value = block::cut_block(&v, cut).ok()?;
                let size = (k.len() + value.len()) as u64;
                (rest + size <= keep_bytes).then_some((cut, size, value))
            };
            // The fewest oldest entries to drop: enough for the entry target, then the first
            // count whose block fits the bytes. Usually the entry target alone decides, so
            // that count is tried first.
            let lo = (entries.saturating_sub(keep_entries) as usize).min(n);
            let found = (lo < n).then(|| fits(lo)).flatten().or_else(|| {
                let (mut lo, mut hi) = (lo + 1, n);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match fits(mid) {
                        Some(_) => hi = mid,
                        None => lo = mid + 1,
                    }
                }
                (lo < n).then(|| fits(lo)).flatten()
            });
            match found {
                Some((cut, size, value)) => {
                    entries = entries.saturating_sub(cut as u64);
                    bytes = rest + size;
                    trim.push((k, Some(value)));
                }
                // Nothing of it fits, or it cannot be cut (damaged): it goes whole.
                None => {
                    entries = entries.saturating_sub(count);
                    bytes = rest;
                    trim.push((k, None));
                }
            }
        }
        // One operation each, for the reason `append_encoded` gives. The counts change once
        // all are done: a failure part way leaves them too high (the next write trims
        // again), never too low.
        for (k, value) in trim {
            match value {
                Some(v) => self.tree.insert(k, v).map(drop)?,
                None => self.tree.remove(k).map(drop)?,
            }
        }
        self.entries = entries;
        self.bytes = bytes;
        Ok(())
    }
}

/// Writes entries into the tracking tree as they come, oldest first, packing them into
/// blocks: a block is stored once it is full, the last one by [`finish`](Self::finish), which
/// then holds the tree to its caps. Made by [`TrackingLog::writer`].
#[must_use = "the last block is stored by `finish`"]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct TrackingWriter<'l> {
    log: &'l mut TrackingLog,
    packer: block::BlockPacker,
    /// The id of the newest entry packed.
    newest: EventId,
    /// Entries that could not be stored, and the first error met.
    lost: u64,
    error: Option<StoreError>,
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl TrackingWriter<'_> {
    /// Adds an entry, no older than the entries before it.
    pub(crate) fn push(&mut self, e: &EntryParts<'_>) {
        debug_assert!(e.id >= self.newest || self.packer.len() == 0);
        if self.packer.len() == BLOCK_ENTRIES {
            self.store_block();
        }
        if !self.packer.push_parts(e, BLOCK_BYTES) {
            self.store_block();
            // An empty block takes any entry.
            self.packer.push_parts(e, BLOCK_BYTES);
        }
        self.newest = e.id;
    }

    /// Where the writer stands, to [`rewind`](Self::rewind) to when building an entry fails
    /// part way.
    pub(crate) fn mark(&self) -> block::PackerMark {
        self.packer.mark()
    }

    /// Takes back the entries added since `mark` that are not stored yet.
    pub(crate) fn rewind(&mut self, mark: block::PackerMark) {
        self.packer.rewind(mark);
    }

    fn store_block(&mut self) {
        let count = self.packer.len() as u64;
        if count == 0 {
            return;
        }
        let value = self.packer.finish();
        if let Err(e) = self.log.insert_block(self.newest, value, count) {
            self.lost += count;
            self.error.get_or_insert(e);
        }
    }

    /// Stores the last block, then removes the oldest entries until at most `max_entries`
    /// entries and `max_bytes` bytes of keys and values remain. `Err` gives the number of
    /// entries not stored, with the first error.
    pub(crate) fn finish(
        mut self,
        max_entries: u64,
        max_bytes: u64,
    ) -> Result<(), (u64, StoreError)> {
        self.store_block();
        let capped = self.log.cap(max_entries, max_bytes);
        match (self.error, capped) {
            (Some(e), _) => Err((self.lost, e)),
            (None, Err(e)) => Err((0, e)),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// A query over tracked requests, newest first. Build it with [`Store::tracked`]:
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = stacktrace::Store::open(dir.path().join("db")).unwrap();
/// use std::time::{Duration, SystemTime};
///
/// let slow = store
///     .tracked()
///     .slower_than(Duration::from_secs(1))
///     .since(SystemTime::now() - Duration::from_secs(3600))
///     .limit(20)
///     .run()?;
/// for r in &slow {
///     println!("{} {} {} {:?}", r.method, r.path, r.status, r.duration());
/// }
/// let errors = store.tracked().path("/checkout").status(500).run()?;
/// # assert!(slow.is_empty() && errors.is_empty());
/// # Ok::<(), stacktrace::QueryError>(())
/// ```
///
/// The tree is capped, so a query reads it from the newest entry back, within the time
/// range, and keeps the rows the other filters accept.
#[derive(Clone, Debug)]
#[must_use = "a query does nothing until `run`"]
pub struct TrackingQuery<'s> {
    store: &'s Store,
    slower_than_us: Option<u64>,
    since_us: Option<u64>,
    until_us: Option<u64>,
    path: Option<String>,
    status: Option<u16>,
    limit: usize,
}

/// Rows returned when no limit is set.
const DEFAULT_LIMIT: usize = 100;

impl Store {
    /// A query over the tracked requests (see the `http` feature's request tracking).
    pub fn tracked(&self) -> TrackingQuery<'_> {
        TrackingQuery {
            store: self,
            slower_than_us: None,
            since_us: None,
            until_us: None,
            path: None,
            status: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl TrackingQuery<'_> {
    /// Requests that took longer than `d`.
    pub fn slower_than(mut self, d: Duration) -> Self {
        self.slower_than_us = Some(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self
    }
    /// Requests that started at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since_us = Some(to_us(t));
        self
    }
    /// Requests that started at or before `t` (both ends of the range are inclusive, as
    /// in [`Query::until`](crate::Query::until)).
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until_us = Some(to_us(t));
        self
    }
    /// Requests for exactly this path (without query).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    /// Requests answered with this status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// At most this many rows (100 unless set).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// The matching requests, newest first. A stored block that cannot be decoded is an
    /// error naming it; [`run_skipping_damaged`](Self::run_skipping_damaged) reads past it.
    pub fn run(self) -> Result<Vec<TrackedRequest>, QueryError> {
        let (rows, damaged) = self.run_skipping_damaged()?;
        match damaged.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(rows),
        }
    }

    /// The matching requests, newest first, read past stored blocks that cannot be decoded;
    /// with an error naming each block skipped.
    pub fn run_skipping_damaged(
        self,
    ) -> Result<(Vec<TrackedRequest>, Vec<StoreError>), QueryError> {
        let since = self.since_us.unwrap_or(0);
        let until = self.until_us.unwrap_or(u64::MAX);
        if since > until {
            return Err(QueryError::BadRange {
                since_us: since,
                until_us: until,
            });
        }
        let tree = self
            .store
            .db
            .open_tree(keys::TRACKING)
            .map_err(StoreError::from)?;
        let lo = EventId::floor(since);
        let mut out: Vec<TrackedRequest> = Vec::new();
        let mut damaged = Vec::new();
        if self.limit == 0 {
            return Ok((out, damaged));
        }
        // Blocks are keyed by their newest entry, so they come newest first by that; an
        // older block may still hold entries newer than some of a newer one. Once `limit`
        // rows are held, a block whose newest entry is older than the last of them can add
        // nothing, nor can any after it.
        for kv in tree.range(lo.to_bytes()..).rev() {
            let (k, v) = kv.map_err(StoreError::from)?;
            let key = keys::id_of_event_key(&k).unwrap_or(EventId(0));
            if out.len() >= self.limit {
                out.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
                out.truncate(self.limit);
                if out.last().is_some_and(|last| key < last.id) {
                    break;
                }
            }
            let corrupt = |reason: String| StoreError::Undecodable {
                what: format!("{}/{key}", keys::TRACKING),
                reason,
            };
            match block::block_head(key, &v) {
                Ok(head) if head.min.timestamp_us() > until => continue,
                Ok(_) => {}
                Err(reason) => {
                    damaged.push(corrupt(reason));
                    continue;
                }
            }
            let slots = match block::block_entries(key, &v) {
                Ok(slots) => slots,
                Err(reason) => {
                    damaged.push(corrupt(reason));
                    continue;
                }
            };
            let mut rows = Vec::new();
            let mut bad = None;
            for slot in slots.into_iter().rev() {
                let keep = match slot.head() {
                    Ok(h) => {
                        h.id >= lo
                            && h.id.timestamp_us() <= until
                            && !(self.slower_than_us.is_some_and(|min| h.duration_us <= min)
                                || self.path.as_ref().is_some_and(|p| p != h.path)
                                || self.status.is_some_and(|s| s != h.status))
                    }
                    Err(reason) => {
                        bad = Some(reason);
                        break;
                    }
                };
                if keep {
                    match slot.request() {
                        Ok(r) => rows.push(r),
                        Err(reason) => {
                            bad = Some(reason);
                            break;
                        }
                    }
                }
            }
            // A block is read whole or skipped whole.
            match bad {
                Some(reason) => damaged.push(corrupt(reason)),
                None => out.extend(rows),
            }
        }
        out.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        out.truncate(self.limit);
        Ok((out, damaged))
    }
}

#[cfg(all(test, feature = "dashboard"))]
impl Store {
    /// The raw tracking tree, for tests that damage it.
    pub(crate) fn tracking_tree(&self) -> sled::Tree {
        self.db.open_tree(keys::TRACKING).unwrap()
    }
}

#[cfg(test)]
impl TrackedRequest {
    /// A plain `GET` entry, for tests.
    pub(crate) fn sample(ts: u64, path: &str, status: u16, duration_us: u64) -> TrackedRequest {
        TrackedRequest {
            id: EventId::new(ts),
            timestamp_us: ts,
            method: "GET".into(),
            path: path.into(),
            status,
            duration_us,
            query: String::new(),
            user: String::new(),
            client_addr: String::new(),
            headers: BTreeMap::new(),
            request_body: None,
            request_body_truncated: false,
            response_body: None,
            response_body_truncated: false,
            data: serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_oldest_first_and_queried_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let mut log = TrackingLog::open(&store).unwrap();
        let base = 1_700_000_000_000_000;
        for i in 0..50u64 {
            let r =
                TrackedRequest::sample(base + i, if i % 2 == 0 { "/a" } else { "/b" }, 200, i * 10);
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
        let mut writer = log.writer();
        for i in 0..total {
            let r = TrackedRequest::sample(base + i, "/a", 200, 1);
            block::with_parts(&r, |parts| writer.push(parts));
        }
        let (lost, error) = writer.finish(u64::MAX, u64::MAX).unwrap_err();
        assert_eq!(lost, total);
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
}
