//! The writer of tracked requests: entries packed into blocks as they come.

use super::{TrackingLog, BLOCK_BYTES, BLOCK_ENTRIES};
use crate::error::StoreError;
use crate::model::event::EventId;
use crate::store::tracking::block::{self as block, EntryParts};

/// The block being packed, kept from one writer to the next: a writer that stops part way
/// through what it was given ([`TrackingWriter::pause`]) leaves it for the next, so that
/// blocks fill up whatever slices their entries are written in.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct OpenBlock {
    packer: block::BlockPacker,
    /// The id of the newest entry packed.
    newest: EventId,
    /// Where a full block's bytes are put together before the database copies them.
    bytes: Vec<u8>,
}

impl Default for OpenBlock {
    fn default() -> Self {
        OpenBlock {
            packer: block::BlockPacker::default(),
            newest: EventId(0),
            bytes: Vec::new(),
        }
    }
}

/// Writes entries into the tracking tree as they come, oldest first, packing them into
/// blocks: a block is stored once it is full, the last one by [`finish`](Self::finish), which
/// then holds the tree to its caps. Made by [`TrackingLog::writer`].
#[must_use = "the last block is stored by `finish`"]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct TrackingWriter<'l> {
    log: &'l mut TrackingLog,
    open: &'l mut OpenBlock,
    /// Entries stored, entries that could not be, and the first error met.
    stored: u64,
    lost: u64,
    error: Option<StoreError>,
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl TrackingLog {
    /// A writer of entries, block by block, that goes on packing `open` (see
    /// [`TrackingWriter`]).
    pub(crate) fn writer<'l>(&'l mut self, open: &'l mut OpenBlock) -> TrackingWriter<'l> {
        TrackingWriter {
            log: self,
            open,
            stored: 0,
            lost: 0,
            error: None,
        }
    }
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl TrackingWriter<'_> {
    /// Adds an entry, no older than the entries before it.
    pub(crate) fn push(&mut self, e: &EntryParts<'_>) {
        debug_assert!(e.id >= self.open.newest || self.open.packer.len() == 0);
        if self.open.packer.len() == BLOCK_ENTRIES {
            self.store_block();
        }
        if !self.open.packer.push_parts(e, BLOCK_BYTES) {
            self.store_block();
            // An empty block takes any entry.
            self.open.packer.push_parts(e, BLOCK_BYTES);
        }
        self.open.newest = e.id;
    }

    /// Adds an entry like the one added last but for its id, start, duration and status
    /// (see [`BlockPacker::push_repeat`](block::BlockPacker::push_repeat)); `false`, with
    /// nothing added, when the block being packed holds no entry to repeat: the entry is
    /// then built and [`push`](Self::push)ed in full.
    pub(crate) fn push_repeat(&mut self, own: block::Own) -> bool {
        debug_assert!(own.id >= self.open.newest || self.open.packer.len() == 0);
        if self.open.packer.len() == BLOCK_ENTRIES
            || !self.open.packer.push_repeat(own, BLOCK_BYTES)
        {
            self.store_block();
            return false;
        }
        self.open.newest = own.id;
        true
    }

    /// Where the writer stands, to [`rewind`](Self::rewind) to when building an entry fails
    /// part way.
    pub(crate) fn mark(&self) -> block::PackerMark {
        self.open.packer.mark()
    }

    /// Takes back the entries added since `mark` that are not stored yet.
    pub(crate) fn rewind(&mut self, mark: block::PackerMark) {
        self.open.packer.rewind(mark);
    }

    fn store_block(&mut self) {
        let count = self.open.packer.len() as u64;
        if count == 0 {
            return;
        }
        let open = &mut *self.open;
        open.packer.finish_into(&mut open.bytes);
        match self.log.insert_block(open.newest, &open.bytes, count) {
            Ok(()) => self.stored += count,
            Err(e) => {
                self.lost += count;
                self.error.get_or_insert(e);
            }
        }
    }

    /// Stores nothing more: the block being packed stays open for the next writer, and the
    /// caps are left for the [`finish`](Self::finish) of a later one. Says what was stored.
    pub(crate) fn pause(self) -> Written {
        Written {
            stored: self.stored,
            trimmed: 0,
            lost: self.lost,
            error: self.error,
        }
    }

    /// Stores the last block, then removes the oldest entries until at most `max_entries`
    /// entries and `max_bytes` bytes of keys and values remain; says how many entries were
    /// stored, trimmed and lost, with the first error.
    pub(crate) fn finish(mut self, max_entries: u64, max_bytes: u64) -> Written {
        self.store_block();
        let before = self.log.entries;
        let capped = self.log.cap(max_entries, max_bytes);
        let trimmed = before.saturating_sub(self.log.entries);
        Written {
            stored: self.stored,
            trimmed,
            lost: self.lost,
            error: self.error.or(capped.err()),
        }
    }
}

/// What a [`TrackingWriter`] did.
#[derive(Debug)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct Written {
    /// Entries stored.
    pub(crate) stored: u64,
    /// Entries removed to hold the tree to its caps, stored by this writer or before.
    pub(crate) trimmed: u64,
    /// Entries that could not be stored.
    pub(crate) lost: u64,
    /// The first error met, storing or trimming.
    pub(crate) error: Option<StoreError>,
}
