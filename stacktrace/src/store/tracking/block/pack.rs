//! Packing tracked requests into blocks, and cutting a block short.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::read::{parse_block, Packed, Parsed, Reader};
use crate::model::event::EventId;
#[cfg(test)]
use crate::store::tracking::log::TrackedRequest;

/// The version byte in front of a block as written now.
pub(crate) const BLOCK_VERSION: u8 = 3;
/// The version byte of blocks written before entries were delta-coded: still read and cut.
pub(crate) const BLOCK_V2: u8 = 2;

pub(super) const REQUEST_BODY: u8 = 1;
pub(super) const REQUEST_BODY_CUT: u8 = 2;
pub(super) const RESPONSE_BODY: u8 = 4;
pub(super) const RESPONSE_BODY_CUT: u8 = 8;
pub(super) const START_APART: u8 = 16;
/// The entry has the texts of the last entry before it that has texts of its own.
pub(super) const SAME_TEXTS: u8 = 32;
/// The flags that say which bodies an entry keeps.
pub(super) const BODY_FLAGS: u8 =
    REQUEST_BODY | REQUEST_BODY_CUT | RESPONSE_BODY | RESPONSE_BODY_CUT;

/// The fewest bytes of a packed entry of a version 2 block: id, duration, status, flags and
/// five texts.
pub(super) const V2_PACKED_MIN: usize = 16 + 1 + 1 + 1 + 5;
/// The fewest bytes of a packed entry: flags, the id's two deltas, duration and status.
pub(super) const PACKED_MIN: usize = 5;

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

pub(super) fn put_num(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn put_len(out: &mut Vec<u8>, n: usize) {
    put_num(out, n as u64);
}

/// A signed number as an unsigned one, small when it is near zero either way.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// The signed number [`zigzag`] made `n` of.
pub(super) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

pub(super) fn len_of_len(mut n: usize) -> usize {
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

/// Builds a block from entries given in id order, oldest first, knowing at each step the
/// exact size of the block so far; so a writer can close a block at a size.
#[derive(Default)]
pub(crate) struct BlockPacker {
    pub(super) texts: Texts,
    pub(super) packed: Vec<u8>,
    /// Where each packed entry ends in `packed`.
    ends: Vec<usize>,
    /// Bytes the entries' lengths take.
    lengths: usize,
    first: Option<EventId>,
    /// The id of the entry packed last, from which the next one's is counted.
    last: Option<EventId>,
    /// The texts of the last entry packed with texts of its own.
    source: Option<Source>,
    /// Blocks finished so far.
    finished: u64,
}

/// Where the texts of an entry are in [`BlockPacker::packed`], with the entry's body flags.
#[derive(Clone, Copy, Debug)]
struct Source {
    start: usize,
    end: usize,
    flags: u8,
}

/// How far a [`BlockPacker`] had come, to go back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PackerMark {
    finished: u64,
    texts: usize,
    packed: usize,
    entries: usize,
    lengths: usize,
    last: Option<EventId>,
    source: Option<Source>,
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
            last: self.last,
            source: self.source,
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
        self.last = mark.last;
        self.source = mark.source;
        if self.ends.is_empty() {
            self.first = None;
        }
    }

    /// Adds one entry from its parts, unless the block holds something already and would
    /// grow past `max_bytes`; says whether it was added. An entry whose texts, bodies and
    /// headers are those of the entry before is packed as a repeat of them, as
    /// [`push_repeat`](Self::push_repeat) packs it.
    pub(crate) fn push_parts(&mut self, e: &EntryParts<'_>, max_bytes: usize) -> bool {
        let mark = self.mark();
        let flags = body_flags(e);
        put_fixed(
            &mut self.packed,
            own_of(e),
            flags,
            self.last.unwrap_or(e.id),
        );
        let start = self.packed.len();
        pack_texts(e, &mut self.texts, &mut self.packed);
        match self.source {
            Some(s) if s.flags == flags && self.packed[s.start..s.end] == self.packed[start..] => {
                self.packed.truncate(start);
                self.packed[mark.packed] |= SAME_TEXTS;
            }
            _ => {
                self.source = Some(Source {
                    start,
                    end: self.packed.len(),
                    flags,
                });
            }
        }
        self.close_entry(mark, e.id, max_bytes)
    }

    /// Adds an entry with the texts, bodies and headers of the entry packed last and its own
    /// id, start, duration and status, unless the block holds no entry or would grow past
    /// `max_bytes`; says whether it was added. Requests of a busy endpoint often repeat the
    /// one before in all but these: such an entry is neither built nor packed again, and
    /// takes a few bytes.
    pub(crate) fn push_repeat(&mut self, own: Own, max_bytes: usize) -> bool {
        let (Some(source), Some(last)) = (self.source, self.last) else {
            return false;
        };
        let mark = self.mark();
        put_fixed(&mut self.packed, own, source.flags | SAME_TEXTS, last);
        self.close_entry(mark, own.id, max_bytes)
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
        self.last = Some(id);
        true
    }

    /// The block's bytes; the packer is left empty, ready for the next block.
    #[cfg(test)]
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(&mut out);
        out
    }

    /// Puts the block's bytes into `out` (emptied first), whose room is kept from one block
    /// to the next; the packer is left empty, ready for the next block.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        assemble_into(
            out,
            self.first.unwrap_or(EventId(0)),
            &self.texts.table,
            &self.packed,
            &self.ends,
        );
        self.clear();
        self.finished += 1;
    }

    /// Empties the block being packed.
    fn clear(&mut self) {
        self.texts.clear();
        self.packed.clear();
        self.ends.clear();
        self.lengths = 0;
        self.first = None;
        self.last = None;
        self.source = None;
    }
}

/// A block's bytes from its oldest id, its texts and its packed entries (each ending where
/// `ends` says).
pub(super) fn assemble<T: AsRef<[u8]>>(
    first: EventId,
    table: &[T],
    packed: &[u8],
    ends: &[usize],
) -> Vec<u8> {
    let mut out = Vec::new();
    assemble_into(&mut out, first, table, packed, ends);
    out
}

/// As [`assemble`], into `out` (emptied first).
fn assemble_into<T: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    first: EventId,
    table: &[T],
    packed: &[u8],
    ends: &[usize],
) {
    let table_len: usize = table
        .iter()
        .map(|t| len_of_len(t.as_ref().len()) + t.as_ref().len())
        .sum();
    out.clear();
    out.reserve(1 + 10 + 16 + 10 + table_len + packed.len() + 3 * ends.len());
    out.push(BLOCK_VERSION);
    put_len(out, ends.len());
    out.extend_from_slice(&first.to_bytes());
    put_len(out, table.len());
    for t in table {
        let t = t.as_ref();
        put_len(out, t.len());
        out.extend_from_slice(t);
    }
    let mut start = 0;
    for &end in ends {
        put_len(out, end - start);
        out.extend_from_slice(&packed[start..end]);
        start = end;
    }
}

/// The flags of an entry: which bodies it keeps and which of them were cut.
pub(super) fn body_flags(e: &EntryParts<'_>) -> u8 {
    let mut flags = 0;
    if let Some((_, cut)) = e.request_body {
        flags |= REQUEST_BODY | if cut { REQUEST_BODY_CUT } else { 0 };
    }
    if let Some((_, cut)) = e.response_body {
        flags |= RESPONSE_BODY | if cut { RESPONSE_BODY_CUT } else { 0 };
    }
    flags
}

/// What an entry has of its own when it repeats the texts of the entry before (see
/// [`BlockPacker::push_repeat`]): the fields packed before its texts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Own {
    pub(crate) id: EventId,
    pub(crate) timestamp_us: u64,
    pub(crate) duration_us: u64,
    pub(crate) status: u16,
}

/// What an entry has of its own, taken from its parts.
fn own_of(e: &EntryParts<'_>) -> Own {
    Own {
        id: e.id,
        timestamp_us: e.timestamp_us,
        duration_us: e.duration_us,
        status: e.status,
    }
}

/// Appends the fields of an entry that come before its texts: the flags (`flags`, to which
/// `START_APART` is added when the start is not the id's), the id as its two halves'
/// distances from `before`'s (the entry before, or the entry itself when it comes first),
/// the duration, the status, and the start when apart.
pub(super) fn put_fixed(out: &mut Vec<u8>, own: Own, flags: u8, before: EventId) {
    let apart = own.timestamp_us != own.id.timestamp_us();
    out.push(flags | if apart { START_APART } else { 0 });
    put_num(
        out,
        own.id.timestamp_us().wrapping_sub(before.timestamp_us()),
    );
    put_num(
        out,
        zigzag((own.id.0 as u64).wrapping_sub(before.0 as u64) as i64),
    );
    put_num(out, own.duration_us);
    put_num(out, u64::from(own.status));
    if apart {
        out.extend_from_slice(&own.timestamp_us.to_le_bytes());
    }
}

/// Appends the texts of one entry from its parts, each as its place among the block's.
pub(super) fn pack_texts(e: &EntryParts<'_>, texts: &mut Texts, out: &mut Vec<u8>) {
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

/// Copies the texts of a packed entry (whose body flags are `flags`) to `out` with each
/// text place replaced by `map`'s.
fn remap_texts(
    texts: &[u8],
    flags: u8,
    map: &mut impl FnMut(u64) -> Result<u64, String>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut r = Reader {
        bytes: texts,
        at: 0,
    };
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

/// A block without its `cut` oldest entries, and without the texts only they used, as a
/// block of [`BLOCK_VERSION`]; `Err` when the block cannot be read or `cut` leaves nothing.
/// The first entry kept gets the texts it repeated back.
pub(crate) fn cut_block(value: &[u8], cut: usize) -> Result<Vec<u8>, String> {
    if !matches!(value.first(), Some(&(BLOCK_VERSION | BLOCK_V2))) {
        return Err("only a block of packed entries can be cut".into());
    }
    let Parsed { table, entries } = parse_block(value)?;
    let count = entries.len();
    if cut >= count {
        return Err(format!("cutting {cut} of {count} entries leaves none"));
    }
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
    let first = entries[cut].own.id;
    let mut before = first;
    for (j, Packed { own, flags, texts }) in entries[cut..].iter().enumerate() {
        let same = flags & SAME_TEXTS != 0 && j > 0;
        let bodies = flags & BODY_FLAGS;
        put_fixed(
            &mut packed,
            *own,
            bodies | if same { SAME_TEXTS } else { 0 },
            before,
        );
        if !same {
            remap_texts(texts, bodies, &mut map, &mut packed)?;
        }
        ends.push(packed.len());
        before = own.id;
    }
    Ok(assemble(first, &kept, &packed, &ends))
}

/// A block's distinct texts in the order first met, with their places. Each is copied once
/// when first met, so that entries can be packed from parts that do not outlive them.
#[derive(Default)]
pub(super) struct Texts {
    places: HashMap<Arc<[u8]>, usize, BuildHasherDefault<Fnv>>,
    pub(super) table: Vec<Arc<[u8]>>,
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
                        let text: Arc<[u8]> = Arc::from(t);
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
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
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
