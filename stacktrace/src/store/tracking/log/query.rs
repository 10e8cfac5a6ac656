//! Queries over tracked requests, newest first, read across blocks.

use std::time::{Duration, SystemTime};

use super::TrackedRequest;
use crate::error::{QueryError, StoreError};
use crate::model::event::EventId;
use crate::model::time::to_us;
use crate::store::db::Store;
use crate::store::keys;
use crate::store::tracking::block;

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
