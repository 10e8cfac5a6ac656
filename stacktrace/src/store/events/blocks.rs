//! Events stored in blocks: one sled value holds several events of a writer batch, up to
//! [`MAX_EVENTS`] of them or [`MAX_BYTES`] of encoded events.
//!
//! A sled insert costs about the same whatever the value's size up to a few kilobytes, so
//! storing a batch as a few values instead of one value per event makes sustained storage
//! several times cheaper. Blocks stay small enough that a sled leaf (up to 17 values) is
//! written inline in sled's log: sled writes an item over a quarter of a segment (128 KiB by
//! default) as a blob file of its own.
//!
//! # Layout
//!
//! A block is stored under the id of its newest event (16 big-endian bytes). Its value:
//!
//! ```text
//! BLOCK_FORMAT (1 byte) | n: u32 BE | n × (id: 16 bytes, end: u32 BE) | events' JSON, in id order
//! ```
//!
//! Event `i`'s JSON runs from the previous entry's `end` (0 for the first) to its own `end`,
//! relative to where the JSON starts. Ids are strictly ascending, and the last is the key.
//!
//! A value that starts with [`FORMAT_VERSION`] instead is one event of an earlier layout,
//! stored under its own id; it reads as a block of one.
//!
//! # Blocks never overlap
//!
//! Each block covers the ids from its oldest to its newest, and no two blocks' spans
//! overlap. So the block holding an id is the first block whose key is at or after it, and
//! a range of ids is a range of keys. An event older than what is already stored either
//! falls between two blocks and is written as (part of) a new block there, or falls inside
//! a block's span and that block is rewritten with it.

use std::ops::Range;
use std::sync::atomic::Ordering;

use sled::IVec;

use crate::error::StoreError;
use crate::model::event::{CrashEvent, EventId};
use crate::store::db::Store;
use crate::store::keys::FORMAT_VERSION;

/// The first byte of a block.
pub(crate) const BLOCK_FORMAT: u8 = 2;
/// The most events in one block.
const MAX_EVENTS: usize = 128;
/// The most bytes of events' JSON in a block, unless one event alone is larger: a sled leaf
/// of 17 such blocks, with their keys and headers, stays under sled's inline limit.
const MAX_BYTES: usize = 6 << 10;
/// Bytes before the entries: the format byte and the count.
const HEAD: usize = 5;
/// Bytes of one entry: the id and the end offset.
const ENTRY: usize = 20;

/// One stored value, checked, read in place.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    key: [u8; 16],
    value: IVec,
    /// How many events it holds.
    n: usize,
    /// Where the events' JSON starts in the value.
    data: usize,
}

fn corrupt(key: &[u8], reason: impl Into<String>) -> StoreError {
    let what = match <[u8; 16]>::try_from(key) {
        Ok(k) => format!("events/{}", EventId::from_bytes(k)),
        Err(_) => format!("events/(a key of {} bytes)", key.len()),
    };
    StoreError::Undecodable {
        what,
        reason: reason.into(),
    }
}

/// The id a key names, when it is 16 bytes.
fn key_id(key: &[u8]) -> Option<EventId> {
    <[u8; 16]>::try_from(key).ok().map(EventId::from_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b) as usize
}

impl Block {
    /// Checks a stored key and value; a damaged one is an error naming it, never a panic.
    pub(crate) fn parse(key: &[u8], value: IVec) -> Result<Block, StoreError> {
        let key16: [u8; 16] = key
            .try_into()
            .map_err(|_| corrupt(key, format!("a key of {} bytes, not 16", key.len())))?;
        match value.first() {
            Some(&FORMAT_VERSION) => Ok(Block {
                key: key16,
                value,
                n: 1,
                data: 1,
            }),
            Some(&BLOCK_FORMAT) => {
                if value.len() < HEAD {
                    return Err(corrupt(key, "a block cut short in its header"));
                }
                let n = u32_at(&value, 1);
                let data = n
                    .checked_mul(ENTRY)
                    .and_then(|e| e.checked_add(HEAD))
                    .filter(|d| *d <= value.len() && n > 0)
                    .ok_or_else(|| corrupt(key, format!("a block of {n} events cut short")))?;
                let block = Block {
                    key: key16,
                    value,
                    n,
                    data,
                };
                let len = block.value.len() - data;
                let mut end = 0;
                let mut last: Option<EventId> = None;
                for i in 0..n {
                    let id = block.id(i);
                    let e = u32_at(&block.value, HEAD + i * ENTRY + 16);
                    if e < end || e > len {
                        return Err(corrupt(key, format!("event {i} of a block out of bounds")));
                    }
                    if last.is_some_and(|l| l >= id) {
                        return Err(corrupt(key, "a block's ids out of order"));
                    }
                    end = e;
                    last = Some(id);
                }
                if last.map(EventId::to_bytes) != Some(key16) {
                    return Err(corrupt(key, "a block not stored under its newest id"));
                }
                Ok(block)
            }
            Some(v) => Err(corrupt(
                key,
                format!("format version {v}, this build reads {FORMAT_VERSION} and {BLOCK_FORMAT}"),
            )),
            None => Err(corrupt(key, "an empty value")),
        }
    }

    /// Bytes of its stored value.
    pub(crate) fn size(&self) -> u64 {
        self.value.len() as u64
    }

    /// How many events it holds.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The id of its `i`-th event, oldest first.
    pub(crate) fn id(&self, i: usize) -> EventId {
        if self.value[0] == FORMAT_VERSION {
            return EventId::from_bytes(self.key);
        }
        let at = HEAD + i * ENTRY;
        let mut b = [0; 16];
        b.copy_from_slice(&self.value[at..at + 16]);
        EventId::from_bytes(b)
    }

    /// Its oldest event's id.
    pub(crate) fn first(&self) -> EventId {
        self.id(0)
    }

    /// Its newest event's id: its key.
    pub(crate) fn last(&self) -> EventId {
        EventId::from_bytes(self.key)
    }

    fn span(&self, i: usize) -> Range<usize> {
        if self.value[0] == FORMAT_VERSION {
            return 1..self.value.len();
        }
        let end = |j: usize| self.data + u32_at(&self.value, HEAD + j * ENTRY + 16);
        let start = if i == 0 { self.data } else { end(i - 1) };
        start..end(i)
    }

    /// The JSON of its `i`-th event.
    pub(crate) fn json(&self, i: usize) -> &[u8] {
        &self.value[self.span(i)]
    }

    /// Where `id` is in it, if it holds it.
    pub(crate) fn find(&self, id: EventId) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id(mid).cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Its `i`-th event.
    pub(crate) fn event(&self, i: usize) -> Result<CrashEvent, StoreError> {
        serde_json::from_slice(self.json(i)).map_err(|e| StoreError::Undecodable {
            what: format!("events/{}", self.id(i)),
            reason: e.to_string(),
        })
    }
}

/// Reads events by id, keeping the last block it read: the ids an index gives come in
/// order, and neighbours are mostly in one block.
pub(crate) struct EventReader<'a> {
    store: &'a Store,
    last: Option<Block>,
}

impl<'a> EventReader<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        EventReader { store, last: None }
    }

    /// The event with this id, if it is stored.
    pub(crate) fn get(&mut self, id: EventId) -> Result<Option<CrashEvent>, StoreError> {
        let cached = self
            .last
            .as_ref()
            .is_some_and(|b| b.first() <= id && id <= b.last());
        if !cached {
            self.last = self.store.block_at_or_after(id)?;
        }
        match &self.last {
            Some(b) => b.find(id).map(|i| b.event(i)).transpose(),
            None => Ok(None),
        }
    }
}

/// Builds block values from events in id order, copying each event's JSON once.
#[derive(Default)]
pub(crate) struct BlockWriter<'a> {
    events: Vec<(EventId, &'a [u8])>,
    bytes: usize,
    /// Bytes of the block values finished so far.
    written: u64,
}

/// What a write does to the events tree: the events it adds (not replacing one of the same
/// id), and the bytes of block values it writes and takes away (see the event_count module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) events: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl Written {
    /// The bytes stored after the write, from `stored` before it.
    pub(crate) fn bytes_after(&self, stored: u64) -> u64 {
        stored
            .saturating_add(self.bytes_in)
            .saturating_sub(self.bytes_out)
    }
}

impl<'a> BlockWriter<'a> {
    pub(crate) fn push(&mut self, id: EventId, json: &'a [u8]) {
        self.events.push((id, json));
        self.bytes += json.len();
    }

    /// Whether `json` would not fit: a block holds at least one event.
    fn no_room_for(&self, json: &[u8]) -> bool {
        !self.events.is_empty()
            && (self.events.len() >= MAX_EVENTS || self.bytes + json.len() > MAX_BYTES)
    }

    /// Bytes of the block values finished so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Adds the finished block to `batch`, and starts an empty one.
    pub(crate) fn finish(&mut self, batch: &mut sled::Batch) {
        let Some(&(last, _)) = self.events.last() else {
            return;
        };
        let n = self.events.len();
        let mut value = Vec::with_capacity(HEAD + n * ENTRY + self.bytes);
        value.push(BLOCK_FORMAT);
        // At most MAX_EVENTS events, and a block is closed at MAX_BYTES: both fit in u32.
        value.extend_from_slice(&(n as u32).to_be_bytes());
        let mut end = 0usize;
        for (id, json) in &self.events {
            end += json.len();
            value.extend_from_slice(&id.to_bytes());
            value.extend_from_slice(&u32::try_from(end).unwrap_or(u32::MAX).to_be_bytes());
        }
        for (_, json) in &self.events {
            value.extend_from_slice(json);
        }
        self.written += value.len() as u64;
        batch.insert(&last.to_bytes()[..], value);
        self.events.clear();
        self.bytes = 0;
    }

    /// Adds an event, closing the block first when the event would not fit in it.
    pub(crate) fn push_closing(&mut self, id: EventId, json: &'a [u8], batch: &mut sled::Batch) {
        if self.no_room_for(json) {
            self.finish(batch);
        }
        self.push(id, json);
    }
}

/// Events encoded for storing, in id order, one per id (the last given wins).
pub(crate) struct Encoded {
    data: Vec<u8>,
    spans: Vec<(EventId, Range<usize>)>,
}

impl Encoded {
    pub(crate) fn new(events: &[CrashEvent]) -> Encoded {
        let mut data = Vec::with_capacity(events.len() * 768);
        let mut spans = Vec::with_capacity(events.len());
        for e in events {
            let start = data.len();
            // Serialising our own types to a Vec cannot fail: no maps with non-string keys.
            if serde_json::to_writer(&mut data, e).is_err() {
                data.truncate(start);
                continue;
            }
            spans.push((e.id, start..data.len()));
        }
        // Stable, so that of two events with one id the later given comes last; it takes
        // the place of the earlier.
        spans.sort_by_key(|(id, _)| *id);
        spans.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 = later.1.clone();
            }
            same
        });
        Encoded { data, spans }
    }

    fn json(&self, i: usize) -> &[u8] {
        &self.data[self.spans[i].1.clone()]
    }
}

impl Store {
    /// The block holding `id` if it is stored: the first block at or after it.
    pub(crate) fn block_at_or_after(&self, id: EventId) -> Result<Option<Block>, StoreError> {
        match self.events.range(id.to_bytes()..).next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some(Block::parse(&k, v)?))
            }
            None => Ok(None),
        }
    }

    /// Whether an event with this id is stored.
    pub(crate) fn contains_event(&self, id: EventId) -> Result<bool, StoreError> {
        Ok(self
            .block_at_or_after(id)?
            .is_some_and(|b| b.find(id).is_some()))
    }

    /// Adds the writes that store `new` to `batch`: new blocks, and rewrites of the blocks
    /// whose spans the new events fall in. Returns how many events the batch adds: those
    /// that do not replace a stored one of the same id, and the bytes written and replaced.
    pub(crate) fn write_events(
        &self,
        new: &Encoded,
        batch: &mut sled::Batch,
    ) -> Result<Written, StoreError> {
        let spans = &new.spans;
        let mut replaced = 0;
        let mut written = Written::default();
        let mut i = 0;
        while i < spans.len() {
            match self.block_at_or_after(spans[i].0)? {
                // Newer than everything stored: the usual case, one lookup per batch.
                None => {
                    let mut out = BlockWriter::default();
                    for (j, (id, _)) in spans.iter().enumerate().skip(i) {
                        out.push_closing(*id, new.json(j), batch);
                    }
                    out.finish(batch);
                    written.bytes_in += out.written();
                    i = spans.len();
                }
                // Between two blocks: new blocks there, up to the next one.
                Some(next) if spans[i].0 < next.first() => {
                    let mut out = BlockWriter::default();
                    while i < spans.len() && spans[i].0 < next.first() {
                        out.push_closing(spans[i].0, new.json(i), batch);
                        i += 1;
                    }
                    out.finish(batch);
                    written.bytes_in += out.written();
                }
                // Inside a block's span: the block is rewritten with them.
                Some(block) => {
                    batch.remove(&block.key[..]);
                    written.bytes_out += block.value.len() as u64;
                    let mut out = BlockWriter::default();
                    let mut k = 0;
                    while k < block.len() || (i < spans.len() && spans[i].0 <= block.last()) {
                        let old = (k < block.len()).then(|| block.id(k));
                        let new_id =
                            (i < spans.len() && spans[i].0 <= block.last()).then(|| spans[i].0);
                        match (old, new_id) {
                            (Some(o), Some(n)) if n <= o => {
                                out.push_closing(n, new.json(i), batch);
                                i += 1;
                                // The new event replaces a stored one of the same id.
                                k += usize::from(n == o);
                                replaced += u64::from(n == o);
                            }
                            (Some(o), _) => {
                                out.push_closing(o, block.json(k), batch);
                                k += 1;
                            }
                            (None, Some(n)) => {
                                out.push_closing(n, new.json(i), batch);
                                i += 1;
                            }
                            (None, None) => break,
                        }
                    }
                    out.finish(batch);
                    written.bytes_in += out.written();
                }
            }
        }
        written.events = spans.len() as u64 - replaced;
        Ok(written)
    }

    /// Visits the stored events with ids in `range`, as their blocks and positions, newest
    /// first or oldest first, until `visit` says stop.
    pub(crate) fn visit_events(
        &self,
        range: Range<EventId>,
        newest_first: bool,
        mut visit: impl FnMut(&Block, usize) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if range.start >= range.end {
            return Ok(());
        }
        let lower = range.start.to_bytes();
        // The blocks from the one holding the range's start to the one holding its end.
        let upper = match self.block_at_or_after(range.end)? {
            Some(b) => std::ops::Bound::Included(b.key),
            None => std::ops::Bound::Unbounded,
        };
        let blocks = self.events.range::<&[u8], _>((
            std::ops::Bound::Included(&lower[..]),
            upper.as_ref().map(|k| &k[..]),
        ));
        let mut step = |item: sled::Result<(IVec, IVec)>| -> Result<bool, StoreError> {
            let (k, v) = item?;
            let block = Block::parse(&k, v)?;
            let n = block.len();
            for j in 0..n {
                let i = if newest_first { n - 1 - j } else { j };
                let id = block.id(i);
                if range.contains(&id) && !visit(&block, i)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        if newest_first {
            for item in blocks.rev() {
                if !step(item)? {
                    break;
                }
            }
        } else {
            for item in blocks {
                if !step(item)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// How many events are stored.
    /// A damaged block counts as one event, as its removal does: the count stays readable.
    pub(crate) fn event_count(&self) -> Result<u64, StoreError> {
        #[cfg(test)]
        crate::store::event_count::FULL_COUNTS.with(|n| n.set(n.get() + 1));
        let mut n = 0;
        for item in self.events.iter() {
            let (k, v) = item?;
            n += Block::parse(&k, v).map_or(1, |b| b.len() as u64);
        }
        Ok(n)
    }

    /// The bytes of every stored block value, read block by block.
    pub(crate) fn event_bytes(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.events.iter() {
            n += item?.1.len() as u64;
        }
        Ok(n)
    }

    /// The id of the `n`-th newest event (0 is the newest), if there are more than `n`.
    pub(crate) fn nth_newest(&self, n: usize) -> Result<Option<EventId>, StoreError> {
        let mut seen = 0;
        for item in self.events.iter().rev() {
            let (k, v) = item?;
            match Block::parse(&k, v) {
                Ok(block) => {
                    if seen + block.len() > n {
                        return Ok(Some(block.id(block.len() - 1 - (n - seen))));
                    }
                    seen += block.len();
                }
                // A damaged block counts as one event, its key's, as in `event_count`.
                Err(_) => {
                    if seen == n {
                        return Ok(key_id(&k));
                    }
                    seen += 1;
                }
            }
        }
        Ok(None)
    }

    /// The ids of the oldest and the newest stored event.
    pub(crate) fn id_span(&self) -> Result<Option<(EventId, EventId)>, StoreError> {
        let (Some((fk, fv)), Some((lk, _))) = (self.events.first()?, self.events.last()?) else {
            return Ok(None);
        };
        // A damaged first block is taken as starting at its key.
        let first = Block::parse(&fk, fv)
            .map(|b| b.first())
            .ok()
            .or_else(|| key_id(&fk));
        Ok(first.zip(key_id(&lk)))
    }

    /// Removes the events with ids below `boundary` from the events tree; returns how many.
    pub(crate) fn remove_events_below(&self, boundary: EventId) -> Result<u64, StoreError> {
        let stored = self.stored.load(Ordering::SeqCst);
        let bytes = self.stored_bytes.load(Ordering::SeqCst);
        let apply = |batch: sled::Batch, removed: u64, written: Written| {
            let count = stored.saturating_sub(removed);
            let bytes = written.bytes_after(bytes);
            self.apply_counted(&batch, count, bytes)?;
            self.stored.store(count, Ordering::SeqCst);
            self.stored_bytes.store(bytes, Ordering::SeqCst);
            Ok::<_, StoreError>(())
        };
        let mut written = Written::default();
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in self.events.range(..boundary.to_bytes()) {
            let (k, v) = item?;
            // A damaged block below the boundary goes as well: it is counted as one.
            written.bytes_out += v.len() as u64;
            removed += Block::parse(&k, v).map_or(1, |b| b.len() as u64);
            batch.remove(k);
            in_batch += 1;
            if in_batch == 4096 {
                apply(std::mem::take(&mut batch), removed, written)?;
                in_batch = 0;
            }
        }
        // The block the boundary falls in keeps its events from the boundary on. A damaged
        // one cannot be cut: it stays, as it is stored under an id after the boundary.
        let at_boundary = match self.block_at_or_after(boundary) {
            Err(StoreError::Undecodable { .. }) => None,
            other => other?,
        };
        if let Some(block) = at_boundary {
            if block.first() < boundary {
                let mut out = BlockWriter::default();
                for i in 0..block.len() {
                    if block.id(i) >= boundary {
                        out.push(block.id(i), block.json(i));
                    } else {
                        removed += 1;
                    }
                }
                // Under the same key: its newest event stays.
                out.finish(&mut batch);
                written.bytes_out += block.value.len() as u64;
                written.bytes_in += out.written();
            }
        }
        apply(batch, removed, written)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
