//! Holding the tracking tree to its caps: the oldest blocks go whole, the next one is cut.

use super::TrackingLog;
use crate::error::StoreError;
use crate::model::event::EventId;
use crate::store::keys;
use crate::store::tracking::block;

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl TrackingLog {
    /// Removes the oldest entries when the tree holds more than `max_entries` entries or
    /// `max_bytes` bytes of keys and values.
    pub(super) fn cap(&mut self, max_entries: u64, max_bytes: u64) -> Result<(), StoreError> {
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
