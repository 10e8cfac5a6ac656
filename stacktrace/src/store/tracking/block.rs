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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use serde_json::Value;

use crate::model::event::EventId;
use crate::store::keys;
use crate::store::tracking::log::TrackedRequest;

/// The version byte in front of a block.
pub(crate) const BLOCK_VERSION: u8 = 2;

const REQUEST_BODY: u8 = 1;
const REQUEST_BODY_CUT: u8 = 2;
const RESPONSE_BODY: u8 = 4;
const RESPONSE_BODY_CUT: u8 = 8;
const START_APART: u8 = 16;

/// The fewest bytes of a packed entry: id, duration, status, flags and five texts.
const PACKED_MIN: usize = 16 + 1 + 1 + 1 + 5;

#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// The parts of one entry, borrowed from wherever they are.
#[derive(Debug)]
pub(crate) struct EntryParts<'a> {
    pub(crate) id: EventId,
    pub(crate) timestamp_us: u64,
    pub(crate) duration_us: u64,
    pub(crate) status: u16,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) user: &'a str,
    pub(crate) client_addr: &'a str,
    pub(crate) request_body: Option<(&'a str, bool)>,
    pub(crate) response_body: Option<(&'a str, bool)>,
    pub(crate) headers: &'a [(&'a str, Cow<'a, str>)],
    /// The JSON text of the attached data; empty for none.
    pub(crate) data: &'a str,
}

fn put_num(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_num(out, n as u64);
}

fn len_of_len(mut n: usize) -> usize {
    let mut bytes = 1;
    while n >= 0x80 {
        n >>= 7;
        bytes += 1;
    }
    bytes
}

#[cfg(test)]
/// Calls `use_it` with the parts of a stored request.
pub(crate) fn with_parts<R>(r: &TrackedRequest, use_it: impl FnOnce(&EntryParts<'_>) -> R) -> R {
    let headers: Vec<(&str, Cow<'_, str>)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
        .collect();
    let data = if r.data.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&r.data).unwrap_or_default()
    };
    use_it(&EntryParts {
        id: r.id,
        timestamp_us: r.timestamp_us,
        duration_us: r.duration_us,
        status: r.status,
        method: &r.method,
        path: &r.path,
        query: &r.query,
        user: &r.user,
        client_addr: &r.client_addr,
        request_body: r
            .request_body
            .as_deref()
            .map(|b| (b, r.request_body_truncated)),
        response_body: r
            .response_body
            .as_deref()
            .map(|b| (b, r.response_body_truncated)),
        headers: &headers,
        data: &data,
    })
}

/// The id a packed entry starts with.
fn id_of_entry(entry: &[u8]) -> EventId {
    let mut id = [0; 16];
    let n = entry.len().min(16);
    id[..n].copy_from_slice(&entry[..n]);
    EventId::from_bytes(id)
}

/// Builds a block from entries given in id order, oldest first, knowing at each step the
/// exact size of the block so far; so a writer can close a block at a size.
#[derive(Default)]
pub(crate) struct BlockPacker {
    texts: Texts,
    packed: Vec<u8>,
    /// Where each packed entry ends in `packed`.
    ends: Vec<usize>,
    /// Bytes the entries' lengths take.
    lengths: usize,
    first: Option<EventId>,
    /// Blocks finished so far.
    finished: u64,
}

/// How far a [`BlockPacker`] had come, to go back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PackerMark {
    finished: u64,
    texts: usize,
    packed: usize,
    entries: usize,
    lengths: usize,
}

impl BlockPacker {
    /// Entries packed so far.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The bytes of the block as it stands.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size_of(self.ends.len())
    }

    /// The bytes of the block with `count` entries and what is packed so far.
    fn size_of(&self, count: usize) -> usize {
        1 + len_of_len(count)
            + 16
            + len_of_len(self.texts.table.len())
            + self.texts.table_bytes
            + self.lengths
            + self.packed.len()
    }

    /// Where the packer stands now.
    pub(crate) fn mark(&self) -> PackerMark {
        PackerMark {
            finished: self.finished,
            texts: self.texts.table.len(),
            packed: self.packed.len(),
            entries: self.ends.len(),
            lengths: self.lengths,
        }
    }

    /// Takes back what was added since `mark`: the entries, their bytes and their texts.
    /// After a mark from before the last [`finish`](Self::finish), the block being packed
    /// holds only what came since, and all of it goes.
    pub(crate) fn rewind(&mut self, mark: PackerMark) {
        if mark.finished != self.finished {
            self.clear();
            return;
        }
        self.texts.truncate(mark.texts);
        self.packed.truncate(mark.packed);
        self.ends.truncate(mark.entries);
        self.lengths = mark.lengths;
        if self.ends.is_empty() {
            self.first = None;
        }
    }

    /// Adds one entry from its parts, unless the block holds something already and would
    /// grow past `max_bytes`; says whether it was added.
    pub(crate) fn push_parts(&mut self, e: &EntryParts<'_>, max_bytes: usize) -> bool {
        let mark = self.mark();
        pack_parts(e, &mut self.texts, &mut self.packed);
        self.close_entry(mark, e.id, max_bytes)
    }

    /// Keeps the entry packed since `mark` when the block stays within `max_bytes` (or held
    /// nothing before), else takes it back.
    fn close_entry(&mut self, mark: PackerMark, id: EventId, max_bytes: usize) -> bool {
        self.lengths += len_of_len(self.packed.len() - mark.packed);
        if !self.ends.is_empty() && self.size_of(self.ends.len() + 1) > max_bytes {
            self.rewind(mark);
            return false;
        }
        self.ends.push(self.packed.len());
        self.first.get_or_insert(id);
        true
    }

    /// The block's bytes; the packer is left empty, ready for the next block.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let out = assemble(
            self.first.unwrap_or(EventId(0)),
            &self.texts.table,
            &self.packed,
            &self.ends,
        );
        self.clear();
        self.finished += 1;
        out
    }

    /// Empties the block being packed.
    fn clear(&mut self) {
        self.texts.clear();
        self.packed.clear();
        self.ends.clear();
        self.lengths = 0;
        self.first = None;
    }
}

/// A block's bytes from its oldest id, its texts and its packed entries (each ending where
/// `ends` says).
fn assemble<T: AsRef<[u8]>>(first: EventId, table: &[T], packed: &[u8], ends: &[usize]) -> Vec<u8> {
    let table_len: usize = table
        .iter()
        .map(|t| len_of_len(t.as_ref().len()) + t.as_ref().len())
        .sum();
    let mut out = Vec::with_capacity(1 + 10 + 16 + 10 + table_len + packed.len() + 3 * ends.len());
    out.push(BLOCK_VERSION);
    put_len(&mut out, ends.len());
    out.extend_from_slice(&first.to_bytes());
    put_len(&mut out, table.len());
    for t in table {
        let t = t.as_ref();
        put_len(&mut out, t.len());
        out.extend_from_slice(t);
    }
    let mut start = 0;
    for &end in ends {
        put_len(&mut out, end - start);
        out.extend_from_slice(&packed[start..end]);
        start = end;
    }
    out
}

/// The flags of an entry: which bodies it keeps and which of them were cut.
fn body_flags(e: &EntryParts<'_>) -> u8 {
    let mut flags = 0;
    if let Some((_, cut)) = e.request_body {
        flags |= REQUEST_BODY | if cut { REQUEST_BODY_CUT } else { 0 };
    }
    if let Some((_, cut)) = e.response_body {
        flags |= RESPONSE_BODY | if cut { RESPONSE_BODY_CUT } else { 0 };
    }
    flags
}

/// Appends the packed form of one entry from its parts.
fn pack_parts(e: &EntryParts<'_>, texts: &mut Texts, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.id.to_bytes());
    put_num(out, e.duration_us);
    put_num(out, u64::from(e.status));
    let apart = e.timestamp_us != e.id.timestamp_us();
    out.push(body_flags(e) | if apart { START_APART } else { 0 });
    if apart {
        out.extend_from_slice(&e.timestamp_us.to_le_bytes());
    }
    for (slot, t) in [e.method, e.path, e.query, e.user, e.client_addr]
        .into_iter()
        .enumerate()
    {
        texts.put(slot, t.as_bytes(), out);
    }
    if let Some((b, _)) = e.request_body {
        texts.put(5, b.as_bytes(), out);
    }
    if let Some((b, _)) = e.response_body {
        texts.put(6, b.as_bytes(), out);
    }
    put_len(out, e.headers.len());
    for (i, (name, value)) in e.headers.iter().enumerate() {
        texts.put(8 + 2 * i, name.as_bytes(), out);
        texts.put(9 + 2 * i, value.as_bytes(), out);
    }
    texts.put(7, e.data.as_bytes(), out);
}

/// Copies a packed entry to `out` with each of its text places replaced by `map`'s.
fn remap_entry(
    entry: &[u8],
    map: &mut impl FnMut(u64) -> Result<u64, String>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut r = Reader {
        bytes: entry,
        at: 0,
    };
    r.take(16)?;
    r.num()?;
    r.num()?;
    let flags = r.take(1)?[0];
    if flags & START_APART != 0 {
        r.take(8)?;
    }
    out.extend_from_slice(&entry[..r.at]);
    let bodies = usize::from(flags & REQUEST_BODY != 0) + usize::from(flags & RESPONSE_BODY != 0);
    for _ in 0..5 + bodies {
        put_num(out, map(r.num()?)?);
    }
    let count = r.len()?;
    put_len(out, count);
    for _ in 0..count {
        put_num(out, map(r.num()?)?);
        put_num(out, map(r.num()?)?);
    }
    put_num(out, map(r.num()?)?);
    r.done()
}

/// A block of [`BLOCK_VERSION`] without its `cut` oldest entries, and without the texts only
/// they used; `Err` when the block cannot be read or `cut` leaves nothing.
pub(crate) fn cut_block(value: &[u8], cut: usize) -> Result<Vec<u8>, String> {
    if value.first() != Some(&BLOCK_VERSION) {
        return Err("only a block of packed entries can be cut".into());
    }
    let (BlockHead { count, .. }, mut r) = read_head(value)?;
    if cut >= count {
        return Err(format!("cutting {cut} of {count} entries leaves none"));
    }
    let n_texts = r.len()?;
    let mut table = Vec::with_capacity(n_texts);
    for _ in 0..n_texts {
        let n = r.len()?;
        table.push(r.take(n)?);
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let n = r.len()?;
        entries.push(r.take(n)?);
    }
    r.done()?;
    let mut places = vec![u64::MAX; table.len()];
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut packed = Vec::with_capacity(value.len());
    let mut ends = Vec::with_capacity(count - cut);
    let mut map = |n: u64| -> Result<u64, String> {
        let i = usize::try_from(n)
            .ok()
            .filter(|&i| i < table.len())
            .ok_or_else(|| format!("text {n} of {}", table.len()))?;
        if places[i] == u64::MAX {
            std::str::from_utf8(table[i]).map_err(|e| format!("text {i}: {e}"))?;
            places[i] = kept.len() as u64;
            kept.push(table[i]);
        }
        Ok(places[i])
    };
    for e in &entries[cut..] {
        remap_entry(e, &mut map, &mut packed)?;
        ends.push(packed.len());
    }
    Ok(assemble(id_of_entry(entries[cut]), &kept, &packed, &ends))
}

/// A block's distinct texts in the order first met, with their places. Each is copied once
/// when first met, so that entries can be packed from parts that do not outlive them.
#[derive(Default)]
struct Texts {
    places: HashMap<Rc<[u8]>, usize, BuildHasherDefault<Fnv>>,
    table: Vec<Rc<[u8]>>,
    /// Bytes the table takes in the block: each text's length and bytes.
    table_bytes: usize,
    /// The place of the text last put in each field (method, path, ..., each header's name
    /// and value): most fields repeat the entry before, and are found without hashing.
    last: Vec<Option<usize>>,
}

impl Texts {
    /// Writes the place of `t`, met in field `slot`, adding it when new.
    fn put(&mut self, slot: usize, t: &[u8], out: &mut Vec<u8>) {
        if self.last.len() <= slot {
            self.last.resize(slot + 1, None);
        }
        let n = match self.last[slot] {
            Some(n) if same(&self.table[n], t) => n,
            _ => {
                let n = match self.places.get(t) {
                    Some(&n) => n,
                    None => {
                        let text: Rc<[u8]> = Rc::from(t);
                        let n = self.table.len();
                        self.places.insert(text.clone(), n);
                        self.table.push(text);
                        self.table_bytes += len_of_len(t.len()) + t.len();
                        n
                    }
                };
                self.last[slot] = Some(n);
                n
            }
        };
        put_len(out, n);
    }

    /// Forgets the texts from place `len` on.
    fn truncate(&mut self, len: usize) {
        for t in self.table.drain(len.min(self.table.len())..) {
            self.places.remove(&*t);
            self.table_bytes -= len_of_len(t.len()) + t.len();
        }
        for last in &mut self.last {
            if last.is_some_and(|n| n >= len) {
                *last = None;
            }
        }
    }

    fn clear(&mut self) {
        self.places.clear();
        self.table.clear();
        self.table_bytes = 0;
        self.last.clear();
    }
}

/// Whether two texts are the same bytes; short ones are compared in place, without the
/// call a slice comparison makes (most texts of an entry are short, and the same as the
/// entry before).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= 32 {
            a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a == b
        }
}

/// FNV-1a: the texts of one block are few and short.
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Reads a block's parts in order; every read checks the bounds.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "needs {n} bytes at offset {} of {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self) -> Result<usize, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= self.bytes.len())
                    .ok_or_else(|| format!("length {n} is past the end"));
            }
        }
        Err("a length runs past 64 bits".into())
    }

    /// A LEB128 number of up to 64 bits.
    fn num(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number runs past 64 bits".into())
    }

    /// A text of the block's table, by its place.
    fn text_of(&mut self, table: &[&'a str]) -> Result<&'a str, String> {
        let n = self.num()?;
        usize::try_from(n)
            .ok()
            .and_then(|n| table.get(n))
            .copied()
            .ok_or_else(|| format!("text {n} of {}", table.len()))
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|e| format!("text at offset {at}: {e}"))
    }

    fn done(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes left over at offset {}",
                self.bytes.len() - self.at,
                self.at
            ))
        }
    }
}

/// A block's count and oldest id, read without its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHead {
    pub(crate) count: usize,
    pub(crate) min: EventId,
}

/// Reads the head of a value of [`BLOCK_VERSION`]; the reader is left at its texts.
fn read_head(value: &[u8]) -> Result<(BlockHead, Reader<'_>), String> {
    let mut r = Reader {
        bytes: value,
        at: 1,
    };
    let count = r.len()?;
    let min = EventId::from_bytes(r.array()?);
    Ok((BlockHead { count, min }, r))
}

/// A block's head; a value of format version 1 is one entry under its own id.
pub(crate) fn block_head(key: EventId, value: &[u8]) -> Result<BlockHead, String> {
    match value.first() {
        Some(&BLOCK_VERSION) => read_head(value).map(|(head, _)| head),
        Some(&keys::FORMAT_VERSION) => Ok(BlockHead { count: 1, min: key }),
        Some(v) => Err(format!(
            "format version {v}, this build reads {} and {BLOCK_VERSION}",
            keys::FORMAT_VERSION
        )),
        None => Err("empty value".into()),
    }
}

/// One entry of a block, decoded as far as asked.
#[derive(Debug)]
pub(crate) enum Slot<'a> {
    /// A packed entry, with its block's texts.
    Packed {
        entry: &'a [u8],
        texts: Rc<[&'a str]>,
    },
    /// A value of format version 1, decoded.
    Json(Box<TrackedRequest>),
}

/// What a query filters on, read without the rest of the entry.
#[derive(Debug)]
pub(crate) struct EntryHead<'a> {
    pub(crate) id: EventId,
    pub(crate) duration_us: u64,
    pub(crate) status: u16,
    pub(crate) path: &'a str,
}

/// A packed entry's fields up to its path.
fn packed_head<'a>(
    r: &mut Reader<'a>,
    texts: &[&'a str],
) -> Result<(EntryHead<'a>, u64, u8, &'a str), String> {
    let id = EventId::from_bytes(r.array()?);
    let duration_us = r.num()?;
    let status = u16::try_from(r.num()?).map_err(|_| "status past 65535".to_owned())?;
    let flags = r.take(1)?[0];
    let timestamp_us = if flags & START_APART != 0 {
        u64::from_le_bytes(r.array()?)
    } else {
        id.timestamp_us()
    };
    let method = r.text_of(texts)?;
    let path = r.text_of(texts)?;
    Ok((
        EntryHead {
            id,
            duration_us,
            status,
            path,
        },
        timestamp_us,
        flags,
        method,
    ))
}

impl Slot<'_> {
    pub(crate) fn head(&self) -> Result<EntryHead<'_>, String> {
        match self {
            Slot::Json(r) => Ok(EntryHead {
                id: r.id,
                duration_us: r.duration_us,
                status: r.status,
                path: &r.path,
            }),
            Slot::Packed { entry, texts } => {
                let mut r = Reader {
                    bytes: entry,
                    at: 0,
                };
                packed_head(&mut r, texts).map(|(head, ..)| head)
            }
        }
    }

    /// The whole entry.
    pub(crate) fn request(self) -> Result<TrackedRequest, String> {
        match self {
            Slot::Json(r) => Ok(*r),
            Slot::Packed { entry, texts } => decode_packed(entry, &texts),
        }
    }
}

fn decode_packed(bytes: &[u8], texts: &[&str]) -> Result<TrackedRequest, String> {
    let mut r = Reader { bytes, at: 0 };
    let (head, timestamp_us, flags, method) = packed_head(&mut r, texts)?;
    let query = r.text_of(texts)?.to_owned();
    let user = r.text_of(texts)?.to_owned();
    let client_addr = r.text_of(texts)?.to_owned();
    let request_body = if flags & REQUEST_BODY != 0 {
        Some(r.text_of(texts)?.to_owned())
    } else {
        None
    };
    let response_body = if flags & RESPONSE_BODY != 0 {
        Some(r.text_of(texts)?.to_owned())
    } else {
        None
    };
    let mut headers = BTreeMap::new();
    for _ in 0..r.len()? {
        let name = r.text_of(texts)?.to_owned();
        headers.insert(name, r.text_of(texts)?.to_owned());
    }
    let data_text = r.text_of(texts)?;
    let data = if data_text.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str(data_text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("data is not a JSON object".into()),
            Err(e) => return Err(format!("data: {e}")),
        }
    };
    r.done()?;
    Ok(TrackedRequest {
        id: head.id,
        timestamp_us,
        method: method.to_owned(),
        path: head.path.to_owned(),
        query,
        status: head.status,
        duration_us: head.duration_us,
        user,
        client_addr,
        headers,
        request_body,
        request_body_truncated: flags & REQUEST_BODY_CUT != 0,
        response_body,
        response_body_truncated: flags & RESPONSE_BODY_CUT != 0,
        data,
    })
}

/// A block's entries, oldest first.
pub(crate) fn block_entries(key: EventId, value: &[u8]) -> Result<Vec<Slot<'_>>, String> {
    match value.first() {
        Some(&BLOCK_VERSION) => {
            let (BlockHead { count, .. }, mut r) = read_head(value)?;
            // Every entry and every text takes at least its length byte, and an entry its
            // fixed part: nothing is reserved for counts the bytes cannot hold.
            if count > value.len() / (PACKED_MIN + 1) {
                return Err(format!(
                    "{count} entries cannot fit in {} bytes",
                    value.len()
                ));
            }
            let n_texts = r.len()?;
            let mut texts = Vec::with_capacity(n_texts);
            for _ in 0..n_texts {
                texts.push(r.text()?);
            }
            let texts: Rc<[&str]> = texts.into();
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let n = r.len()?;
                out.push(Slot::Packed {
                    entry: r.take(n)?,
                    texts: texts.clone(),
                });
            }
            r.done()?;
            Ok(out)
        }
        Some(&keys::FORMAT_VERSION) => {
            let r: TrackedRequest =
                keys::decode(value, || key.to_string()).map_err(|e| match e {
                    crate::error::StoreError::Undecodable { reason, .. } => reason,
                    other => other.to_string(),
                })?;
            Ok(vec![Slot::Json(Box::new(r))])
        }
        _ => block_head(key, value).map(|_| Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(ts: u64) -> TrackedRequest {
        let mut r = TrackedRequest::sample(ts, "/p", 201, 42);
        r.method = "POST".into();
        r.query = "a=1&é=2".into();
        r.user = "ann".into();
        r.client_addr = "10.0.0.1".into();
        r.headers.insert("host".into(), "example.test".into());
        r.headers.insert("x-long".into(), "v".repeat(300));
        r.request_body = Some("body ✓".into());
        r.request_body_truncated = true;
        r.response_body = Some(String::new());
        r.data.insert("n".into(), Value::from(3));
        r
    }

    /// The block these requests make, packed in the order given.
    fn block_of(requests: &[TrackedRequest]) -> Vec<u8> {
        let mut packer = BlockPacker::default();
        for r in requests {
            assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
        }
        packer.finish()
    }

    #[test]
    fn entries_round_trip_through_a_block() {
        let a = full(10);
        let b = TrackedRequest::sample(20, "/q", 404, 7);
        let block = block_of(&[a.clone(), b.clone()]);
        let head = block_head(b.id, &block).unwrap();
        assert_eq!(
            head,
            BlockHead {
                count: 2,
                min: a.id
            }
        );
        let slots = block_entries(b.id, &block).unwrap();
        let h = slots[0].head().unwrap();
        assert_eq!(
            (h.id, h.duration_us, h.status, h.path),
            (a.id, 42, 201, "/p")
        );
        let back: Vec<TrackedRequest> = slots.into_iter().map(|s| s.request().unwrap()).collect();
        assert_eq!(back, [a.clone(), b]);

        // A start that is not the id's own is kept apart.
        let mut apart = full(30);
        apart.timestamp_us = 29;
        apart.duration_us = u64::MAX;
        assert_eq!(
            decode_block(&block_of(std::slice::from_ref(&apart))),
            [apart]
        );
    }

    #[test]
    fn repeated_texts_are_stored_once_per_block() {
        let requests: Vec<TrackedRequest> = (0..100u64)
            .map(|i| {
                let mut r = full(i);
                r.headers.insert("x-n".into(), i.to_string());
                r
            })
            .collect();
        let block = block_of(&requests);
        // The 300-byte header value and the other texts once, then about 30 bytes an entry.
        assert!(block.len() < 400 + 100 * 40, "{} bytes", block.len());
        let key = requests[99].id;
        let back: Vec<TrackedRequest> = block_entries(key, &block)
            .unwrap()
            .into_iter()
            .map(|s| s.request().unwrap())
            .collect();
        assert_eq!(back.len(), 100);
        assert_eq!(back[42].headers["x-n"], "42");
        let mut expected = full(42);
        expected.id = back[42].id;
        expected.headers.insert("x-n".into(), "42".into());
        assert_eq!(back[42], expected);
    }

    #[test]
    fn a_version_one_value_reads_as_a_block_of_one() {
        let r = full(5);
        let value = keys::encode(&r);
        assert_eq!(
            block_head(r.id, &value).unwrap(),
            BlockHead {
                count: 1,
                min: r.id
            }
        );
        let slots = block_entries(r.id, &value).unwrap();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].head().unwrap().path, "/p");
        assert_eq!(slots.into_iter().next().unwrap().request().unwrap(), r);
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let r = full(5);
        let block = block_of(std::slice::from_ref(&r));
        // Every cut and every single-byte change is either read or refused, never a panic.
        for cut in 0..block.len() {
            let _ = block_entries(r.id, &block[..cut]).and_then(|s| {
                s.into_iter()
                    .map(Slot::request)
                    .collect::<Result<Vec<_>, _>>()
            });
            let _ = block_head(r.id, &block[..cut]);
        }
        for at in 0..block.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = block.clone();
                bad[at] ^= flip;
                if let Ok(slots) = block_entries(r.id, &bad) {
                    for s in slots {
                        let _ = s.head();
                        let _ = s.request();
                    }
                }
            }
        }
        assert!(block_entries(r.id, &block[..block.len() - 1]).is_err());
        let mut longer = block.clone();
        longer.push(0);
        assert!(block_entries(r.id, &longer)
            .unwrap_err()
            .contains("left over"));
        let mut newer = block.clone();
        newer[0] = 9;
        assert!(block_head(r.id, &newer).unwrap_err().contains("version 9"));
        assert!(block_entries(r.id, &newer).is_err());
        assert!(block_head(r.id, &[]).is_err());
        // A count larger than the bytes could hold is refused before anything is reserved.
        let mut huge = vec![BLOCK_VERSION];
        put_len(&mut huge, usize::MAX >> 8);
        huge.extend_from_slice(&[0; 16]);
        assert!(block_entries(r.id, &huge).is_err());
    }

    fn decode_block(value: &[u8]) -> Vec<TrackedRequest> {
        let key = EventId(u128::MAX);
        block_entries(key, value)
            .unwrap()
            .into_iter()
            .map(|s| s.request().unwrap())
            .collect()
    }

    /// A request made of a few repeated texts and a few of its own.
    fn varied(ts: u64, pick: &[u8]) -> TrackedRequest {
        let texts = ["", "a", "/p", "x=1", "é✓", "GET", "10.0.0.1"];
        let t = |i: usize| texts[pick.get(i).copied().unwrap_or(0) as usize % texts.len()];
        let mut r = TrackedRequest::sample(ts, t(0), 200 + u16::from(pick[0]), u64::from(pick[1]));
        r.method = t(1).into();
        r.query = t(2).into();
        r.user = format!("{}{}", t(3), pick.len());
        r.client_addr = t(4).into();
        if pick[0].is_multiple_of(2) {
            r.request_body = Some(t(5).repeat(pick[1] as usize % 40));
            r.request_body_truncated = pick[1].is_multiple_of(3);
        }
        if pick[1].is_multiple_of(2) {
            r.response_body = Some(t(6).into());
        }
        for (i, &p) in pick.iter().enumerate().skip(2) {
            r.headers
                .insert(format!("h{}", p % 5), format!("{}{i}", t(i)));
        }
        if pick[0].is_multiple_of(5) {
            r.data.insert("n".into(), Value::from(pick[1]));
        }
        r
    }

    /// Up to `most` requests' worth of picks for [`varied`].
    fn picks(most: usize) -> impl proptest::strategy::Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(0u8..=255, 2..8), 1..most)
    }

    /// The requests of these picks, a microsecond apart.
    fn requests_of(picks: &[Vec<u8>]) -> Vec<TrackedRequest> {
        picks
            .iter()
            .enumerate()
            .map(|(i, p)| varied(1_000 + i as u64, p))
            .collect()
    }

    proptest::proptest! {
        /// Packed from their parts greedily under a size, every block is as big as the
        /// packer said, stays under the size unless it holds one entry, leaves no trace of
        /// an entry it refused, and reads back the entries given; a cut block reads back
        /// the rest and keeps no text only the cut entries used.
        #[test]
        fn packed_blocks_are_the_size_announced_and_cut_cleanly(
            picks in picks(60),
            max in 40usize..3000,
            cut_at in 0usize..1000,
        ) {
            let requests = requests_of(&picks);
            let mut packer = BlockPacker::default();
            let mut blocks = Vec::new();
            let mut next = 0;
            while next < requests.len() {
                let mut taken = Vec::new();
                while next < requests.len()
                    && with_parts(&requests[next], |p| packer.push_parts(p, max))
                {
                    taken.push(next);
                    next += 1;
                }
                proptest::prop_assert!(!taken.is_empty(), "an empty block takes its first entry");
                let size = packer.size();
                let value = packer.finish();
                proptest::prop_assert_eq!(value.len(), size);
                if taken.len() > 1 {
                    proptest::prop_assert!(value.len() <= max, "{} > {}", value.len(), max);
                }
                // A refused entry left the block as if it had never been offered.
                let alone: Vec<TrackedRequest> =
                    taken.iter().map(|&i| requests[i].clone()).collect();
                proptest::prop_assert_eq!(&value, &block_of(&alone));
                blocks.push((taken, value));
            }
            let mut back = Vec::new();
            for (taken, value) in &blocks {
                let head = block_head(EventId(0), value).unwrap();
                proptest::prop_assert_eq!(head.count, taken.len());
                proptest::prop_assert_eq!(head.min, requests[taken[0]].id);
                back.extend(decode_block(value));
            }
            proptest::prop_assert_eq!(&back, &requests);

            let whole = block_of(&requests);
            let cut = cut_at % requests.len();
            let kept = cut_block(&whole, cut).unwrap();
            proptest::prop_assert_eq!(decode_block(&kept), requests[cut..].to_vec());
            // The very block the remaining entries make on their own.
            proptest::prop_assert_eq!(&kept, &block_of(&requests[cut..]));
            proptest::prop_assert!(cut_block(&whole, requests.len()).is_err());
        }

        /// Rewound to a mark, a packer holds what it held at the mark: the entries, their
        /// bytes and their texts, as if nothing had been added since.
        #[test]
        fn a_rewound_packer_is_the_packer_at_its_mark(picks in picks(30), at in 0usize..30) {
            let requests = requests_of(&picks);
            let at = at % requests.len();
            let mut packer = BlockPacker::default();
            for r in &requests[..at] {
                proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
            }
            let mark = packer.mark();
            for r in &requests[at..] {
                proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
            }
            packer.rewind(mark);
            // A mark from before a finished block takes back the whole block being packed,
            // part of an entry included.
            let stale = packer.mark();
            let _ = packer.finish();
            with_parts(&requests[0], |p| pack_parts(p, &mut packer.texts, &mut packer.packed));
            packer.rewind(stale);
            proptest::prop_assert_eq!(packer.len(), 0);
            proptest::prop_assert!(packer.packed.is_empty() && packer.texts.table.is_empty());
            for r in &requests[..at] {
                proptest::prop_assert!(with_parts(r, |p| packer.push_parts(p, usize::MAX)));
            }
            // Packed on after the rewind, the block is the one the entries make in one go.
            let last = &requests[requests.len() - 1];
            proptest::prop_assert!(with_parts(last, |p| packer.push_parts(p, usize::MAX)));
            let mut expected = requests[..at].to_vec();
            expected.push(last.clone());
            proptest::prop_assert_eq!(packer.finish(), block_of(&expected));
        }
    }

    #[test]
    fn a_damaged_block_is_refused_by_the_cut_never_a_panic() {
        let block = block_of(&[full(0), full(1), full(2)]);
        for cut in 0..block.len() {
            assert!(cut_block(&block[..cut], 1).is_err());
        }
        for at in 0..block.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = block.clone();
                bad[at] ^= flip;
                if let Ok(kept) = cut_block(&bad, 1) {
                    // Whatever is read is read whole, or refused.
                    if let Ok(slots) = block_entries(EventId(0), &kept) {
                        for s in slots {
                            let _ = s.request();
                        }
                    }
                }
            }
        }
        // A text that is not UTF-8 is refused when it is kept.
        let mut bad = block.clone();
        let at = bad.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        bad[at + 1] = b'(';
        assert!(cut_block(&bad, 1).unwrap_err().contains("text"));
        assert!(cut_block(&keys::encode(&full(1)), 0).is_err());
    }
}
