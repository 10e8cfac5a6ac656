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
//! | id | 16 bytes, big-endian (the request's start, then random bits) |
//! | `duration_us`, status | a number each |
//! | flags | 1 byte: request body kept, cut; response body kept, cut; start apart |
//! | `timestamp_us` | 8 bytes, little-endian, only when it is not the id's start |
//! | method, path, query, user, client address | a text each |
//! | request body, response body | a text each, when kept |
//! | headers | a count, then a name and a value text each |
//! | data | the text of its JSON object, empty for none |
//!
//! A number is LEB128; a text is the number of its place among the block's texts; a
//! block's text is its length and its UTF-8 bytes. A value written as one JSON entry
//! (format version 1, one entry per key) reads as a block of one.
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
