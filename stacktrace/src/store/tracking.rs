//! Request tracking: every HTTP request with its status and execution time, in a capped tree
//! of its own, apart from the crash events. The oldest entries go first when the tree holds
//! more entries or bytes than allowed; queries read newest first.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::db::Store;
use super::keys;
use crate::error::{QueryError, StoreError};
use crate::event::{to_us, EventId};

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
    /// Opens the tree and counts what it holds (it is capped, so the scan is bounded).
    pub(crate) fn open(store: &Store) -> Result<TrackingLog, StoreError> {
        let tree = store.db.open_tree(keys::TRACKING)?;
        let (mut entries, mut bytes) = (0u64, 0u64);
        for kv in tree.iter() {
            let (k, v) = kv?;
            entries += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok(TrackingLog {
            tree,
            entries,
            bytes,
        })
    }

    /// Stores the records in one batch, then removes the oldest entries until at most
    /// `max_entries` entries and `max_bytes` bytes of keys and values remain.
    pub(crate) fn append(
        &mut self,
        records: &[TrackedRequest],
        max_entries: u64,
        max_bytes: u64,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for r in records {
            let value = keys::encode(r);
            self.entries += 1;
            self.bytes += (16 + value.len()) as u64;
            batch.insert(&r.id.to_bytes(), value);
        }
        self.tree.apply_batch(batch)?;
        let max_entries = max_entries.max(1);
        if self.entries <= max_entries && self.bytes <= max_bytes {
            return Ok(());
        }
        // Trim to 1% under the caps in one batch, so that a full tree is not trimmed one
        // entry per insert.
        let (keep_entries, keep_bytes) =
            (max_entries - max_entries / 100, max_bytes - max_bytes / 100);
        let mut trim = sled::Batch::default();
        let (mut entries, mut bytes) = (self.entries, self.bytes);
        for kv in self.tree.iter() {
            if entries <= keep_entries && bytes <= keep_bytes {
                break;
            }
            let (k, v) = kv?;
            entries = entries.saturating_sub(1);
            bytes = bytes.saturating_sub((k.len() + v.len()) as u64);
            trim.remove(k);
        }
        self.tree.apply_batch(trim)?;
        self.entries = entries;
        self.bytes = bytes;
        Ok(())
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
    /// Requests that started before `t`.
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

    /// The matching requests, newest first.
    pub fn run(self) -> Result<Vec<TrackedRequest>, QueryError> {
        let since = self.since_us.unwrap_or(0);
        let until = self.until_us.unwrap_or(u64::MAX);
        if since >= until {
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
        let lo = EventId::floor(since).to_bytes();
        let hi = EventId::floor(until).to_bytes();
        let mut out = Vec::new();
        for kv in tree.range(lo..hi).rev() {
            if out.len() >= self.limit {
                break;
            }
            let (k, v) = kv.map_err(StoreError::from)?;
            let r: TrackedRequest = keys::decode(&v, || {
                format!(
                    "{}/{}",
                    keys::TRACKING,
                    keys::id_of_event_key(&k)
                        .map(|id| id.to_string())
                        .unwrap_or_default()
                )
            })?;
            if self.slower_than_us.is_some_and(|min| r.duration_us <= min)
                || self.path.as_ref().is_some_and(|p| *p != r.path)
                || self.status.is_some_and(|s| s != r.status)
            {
                continue;
            }
            out.push(r);
        }
        Ok(out)
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
            .since(crate::event::from_us(base + 42))
            .until(crate::event::from_us(base + 45))
            .run()
            .unwrap();
        assert_eq!(
            window
                .iter()
                .map(|r| r.timestamp_us - base)
                .collect::<Vec<_>>(),
            [44, 43, 42]
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

    #[test]
    fn inverted_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let t = SystemTime::now();
        assert!(store.tracked().since(t).until(t).run().is_err());
    }
}
