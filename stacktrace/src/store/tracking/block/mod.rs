//! The values of the tracking tree: blocks of tracked requests in a compact binary form.
//!
//! A block holds the entries of one write, sorted by id (oldest first), under the id of its
//! newest entry; so the tree in key order is the blocks in order of their newest entry, and
//! a block never holds an entry newer than its key. A block starts with its version byte,
//! its entry count and the id of its oldest entry, so the count and the time span are read
//! without decoding an entry. Then come the block's distinct texts, each once (methods,
//! paths, header names and values repeat from request to request), and the entries, each
//! as its length and its bytes:
//!
//! | field | encoding |
//! |---|---|
//! | flags | 1 byte: request body kept, cut; response body kept, cut; start apart; same texts |
//! | id | two numbers: its start's distance from the entry before's (for the first entry, the block's oldest id's), and its random half's (signed, zig-zag) |
//! | `duration_us`, status | a number each |
//! | `timestamp_us` | 8 bytes, little-endian, only when it is not the id's start |
//! | method, path, query, user, client address | a text each |
//! | request body, response body | a text each, when kept |
//! | headers | a count, then a name and a value text each |
//! | data | the text of its JSON object, empty for none |
//!
//! An entry flagged "same texts" ends after `timestamp_us`: its texts, bodies and headers are
//! those of the last entry before it that has its own. A request that repeats the one
//! before but for its start, duration and status (a busy endpoint's usual case) so takes
//! about eight bytes. A number is LEB128; a text is the number of its place among the
//! block's texts; a block's text is its length and its UTF-8 bytes.
//!
//! Blocks of version 2 are read and cut as before; their entries begin with the whole id
//! (16 bytes, big-endian), the duration, the status, then the flags without "same texts".
//! A value written as one JSON entry (format version 1, one entry per key) reads as a block
//! of one; a cut block is always written in the current version.
//!
//! The writer hands entries over one by one as their parts, which are packed at once.

mod pack;
mod read;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use pack::with_parts;
pub(crate) use pack::{cut_block, BlockPacker, EntryParts, Fnv, Own, PackerMark};
pub(crate) use read::{block_entries, block_head};
