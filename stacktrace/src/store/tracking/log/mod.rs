//! Request tracking: every HTTP request with its status and execution time, in a capped tree
//! of its own, apart from the crash events. The oldest entries go first when the tree holds
//! more entries or bytes than allowed; queries read newest first.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;
use crate::model::event::EventId;
use crate::store::db::Store;
use crate::store::keys;
use crate::store::tracking::block;

mod query;
#[cfg(test)]
mod tests;
mod trim;
mod writer;

pub use query::TrackingQuery;
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use writer::OpenBlock;

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
const BLOCK_ENTRIES: usize = 1024;
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
        let mut open = OpenBlock::default();
        let mut writer = self.writer(&mut open);
        for r in sorted {
            block::with_parts(r, |parts| writer.push(parts));
        }
        match writer.finish(max_entries, max_bytes).error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stores a block under the id of its newest entry, and counts it.
    pub(super) fn insert_block(
        &mut self,
        newest: EventId,
        value: &[u8],
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
