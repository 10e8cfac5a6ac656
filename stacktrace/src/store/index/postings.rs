//! Posting lists: the secondary indexes, as runs of event ids.
//!
//! Every indexed value (a level, an error type, a request path, a user, a group's
//! fingerprint, a word of the message) keeps its events' ids in runs: one sled entry holds
//! a run of ids in ascending order, keyed by the value and the run's greatest id. A batch of
//! stored events adds one run per value it touches (or extends the value's last run while
//! that is short), so indexing costs a few sled writes per batch instead of one per event
//! and field.
//!
//! Key: field tag, value length (u16, big-endian), value (at most [`MAX_VALUE`] bytes),
//! then the run's greatest id (16 bytes, big-endian). The length makes a value's keys
//! exactly those starting with its prefix. Value: the ids, 16 big-endian bytes each.
//!
//! The runs of one value never overlap: an id at or below the greatest id already indexed
//! (an event captured earlier but stored later) goes into the run that covers it. So a
//! descending read is a walk over the runs, newest first, with no merging.
//!
//! Removal is lazy. Retention removes events oldest first; it deletes the runs made only of
//! removed ids and records the boundary ([`Postings::purged_below`]); a reader checks ids
//! below it against the events tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::model::event::EventId;
use crate::store::keys::Field;

/// Bytes of a value that are indexed; longer values share the key of their first bytes
/// (readers compare the whole value on the event).
pub(crate) const MAX_VALUE: usize = 512;

/// A value's last run shorter than this takes the next batch's ids instead of a new run
/// starting, so a value that gets one event per batch still has runs of many ids.
const SHORT_RUN: usize = 128;

/// The most ids in one run (4 KiB): a sled leaf of up to 17 runs stays under sled's
/// inline limit (a quarter of a 512 KiB segment); a larger node is written as a blob file
/// of its own.
const MAX_RUN: usize = 256;

/// Words longer than this are not indexed; the event is indexed under [`OVERFLOW`] instead.
pub(crate) const MAX_WORD: usize = 48;

/// Words with a digit longer than this (ids, hashes, UUID parts) are not indexed either:
/// each would be a word of its own in the vocabulary and a run of one event.
const MAX_ID_WORD: usize = 12;

/// Distinct words indexed per event; an event with more is indexed under [`OVERFLOW`] too.
pub(crate) const MAX_WORDS: usize = 96;

/// The word under which events whose words are not all indexed are listed: a text search
/// always reads them.
pub(crate) const OVERFLOW: &str = "\u{0}overflow";

/// Words remembered as already in the vocabulary, at most.
const KNOWN_WORDS: usize = 100_000;

/// The key prefix of a value's runs.
pub(crate) fn prefix(field: Field, value: &[u8]) -> Vec<u8> {
    let v = &value[..value.len().min(MAX_VALUE)];
    let mut k = Vec::with_capacity(v.len() + 19);
    k.push(field.tag());
    k.extend_from_slice(&(v.len() as u16).to_be_bytes());
    k.extend_from_slice(v);
    k
}

fn run_key(prefix: &[u8], max: EventId) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 16);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&max.to_bytes());
    k
}

/// The greatest id of a run, from its key, when the key is one of this prefix's.
fn max_of(prefix: &[u8], key: &[u8]) -> Option<EventId> {
    if key.len() != prefix.len() + 16 || !key.starts_with(prefix) {
        return None;
    }
    id_at_end(key)
}

fn id_at_end(key: &[u8]) -> Option<EventId> {
    let tail = key.get(key.len().checked_sub(16)?..)?;
    let bytes: [u8; 16] = tail.try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

fn decode_ids(bytes: &[u8]) -> Vec<EventId> {
    bytes
        .chunks_exact(16)
        .filter_map(|c| c.try_into().ok().map(EventId::from_bytes))
        .collect()
}

/// Adds sorted `ids` as runs of at most [`MAX_RUN`] ids, each under its greatest id.
fn put_runs(batch: &mut sled::Batch, prefix: &[u8], ids: &[EventId]) {
    for run in ids.chunks(MAX_RUN) {
        if let Some(max) = run.last() {
            batch.insert(run_key(prefix, *max), encode_ids(run));
        }
    }
}

fn encode_ids(ids: &[EventId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 16);
    for id in ids {
        out.extend_from_slice(&id.to_bytes());
    }
    out
}

/// Sorted union of two sorted id lists, without duplicates.
fn union(a: &[EventId], b: &[EventId]) -> Vec<EventId> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x < y => {
                i += 1;
                *x
            }
            (Some(x), Some(y)) if y < x => {
                j += 1;
                *y
            }
            (Some(x), Some(_)) => {
                i += 1;
                j += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (None, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// The lower-case words of a text: its runs of alphanumeric characters.
pub(crate) fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The words an event is indexed under: those of its message and error type, or, when a
/// word is too long or there are too many, those that fit and [`OVERFLOW`].
pub(crate) fn event_words(message: &str, error_type: &str) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut overflow = false;
    // Lower-case first, as the search does: lower-casing can change where words end.
    let (message, error_type) = (message.to_lowercase(), error_type.to_lowercase());
    for word in words_of(&message).chain(words_of(&error_type)) {
        let len = word.chars().count();
        let id_like = len > MAX_ID_WORD && word.chars().any(char::is_numeric);
        if len > MAX_WORD || id_like || (seen.len() == MAX_WORDS && !seen.contains(&word)) {
            overflow = true;
            continue;
        }
        seen.insert(word);
    }
    let mut words: Vec<String> = seen.into_iter().collect();
    if overflow {
        words.push(OVERFLOW.to_owned());
    }
    words
}

/// The index trees of a store: runs of ids, and the vocabulary of indexed words.
pub(crate) struct Postings {
    pub(crate) runs: sled::Tree,
    pub(crate) words: sled::Tree,
    pub(crate) meta: sled::Tree,
    known: Mutex<HashSet<Vec<u8>>>,
}

const PURGED_BELOW: &[u8] = b"postings.purged_below";

impl Postings {
    pub(crate) fn new(runs: sled::Tree, words: sled::Tree, meta: sled::Tree) -> Self {
        Postings {
            runs,
            words,
            meta,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Ids below this may belong to removed events.
    pub(crate) fn purged_below(&self) -> Result<EventId, sled::Error> {
        Ok(self
            .meta
            .get(PURGED_BELOW)?
            .and_then(|v| id_at_end(&v))
            .unwrap_or(EventId(0)))
    }

    /// Adds the words to the vocabulary that are not known to be there.
    fn remember_words<'a>(&self, words: impl Iterator<Item = &'a [u8]>) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        let mut any = false;
        {
            let mut known = crate::sync::lock(&self.known);
            for w in words {
                if known.contains(w) {
                    continue;
                }
                if known.len() >= KNOWN_WORDS {
                    known.clear();
                }
                known.insert(w.to_vec());
                batch.insert(w, &[] as &[u8]);
                any = true;
            }
        }
        if any {
            self.words.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Ids of one value from `lower` (inclusive) to `upper` (exclusive), newest first.
    pub(crate) fn descending(
        &self,
        field: Field,
        value: &[u8],
        lower: EventId,
        upper: EventId,
    ) -> Descending {
        let prefix = prefix(field, value);
        // The run that may straddle `upper`: the first whose greatest id is at or above it.
        // Runs after it hold only ids above `upper`.
        let straddling = match self.runs.range(run_key(&prefix, upper)..).next() {
            Some(Ok((k, v))) => max_of(&prefix, &k).map(|_| Ok(decode_ids(&v))),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        let rest = self
            .runs
            .range(run_key(&prefix, lower)..run_key(&prefix, upper))
            .rev();
        Descending {
            prefix,
            pending: straddling,
            rest,
            current: Vec::new(),
            lower,
            upper,
            failed: false,
        }
    }

    /// Ids of several values merged, newest first, each once.
    pub(crate) fn descending_any(
        &self,
        values: &[(Field, Vec<u8>)],
        lower: EventId,
        upper: EventId,
    ) -> MergedDescending {
        let mut sources: Vec<Descending> = values
            .iter()
            .map(|(f, v)| self.descending(*f, v, lower, upper))
            .collect();
        let heads = sources.iter_mut().map(Iterator::next).collect();
        MergedDescending {
            sources,
            heads,
            last: None,
        }
    }

    /// Vocabulary words containing `needle` (lower-case).
    pub(crate) fn words_containing(&self, needle: &str) -> Result<Vec<String>, sled::Error> {
        let mut out = Vec::new();
        for item in self.words.iter().keys() {
            let k = item?;
            if let Ok(w) = std::str::from_utf8(&k) {
                if w.contains(needle) {
                    out.push(w.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Records that ids below `boundary` may belong to removed events (the boundary never
    /// moves back).
    pub(crate) fn set_purged_below(&self, boundary: EventId) -> Result<(), sled::Error> {
        if boundary > self.purged_below()? {
            self.meta.insert(PURGED_BELOW, &boundary.to_bytes())?;
        }
        Ok(())
    }

    /// Deletes the runs made only of ids below `boundary`.
    pub(crate) fn forget_below(&self, boundary: EventId) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.runs.iter().keys() {
            let k = item?;
            if id_at_end(&k).is_some_and(|max| max < boundary) {
                batch.remove(k);
                n += 1;
                if n == 10_000 {
                    self.runs.apply_batch(std::mem::take(&mut batch))?;
                    n = 0;
                }
            }
        }
        self.runs.apply_batch(batch)
    }
}

/// A value's key prefix and the ids gathered under it.
type PrefixIds = (Vec<u8>, Vec<EventId>);

/// Index additions gathered over a batch of events, written in one go. Values are
/// borrowed from the events; the words of a message are worked out once per batch.
///
/// Events of a batch often share their values with the event before them, so each field
/// remembers where its last value went and a repeat costs a comparison, not a hash.
#[derive(Default)]
pub(crate) struct Additions<'a> {
    by_value: HashMap<(Field, &'a [u8]), usize>,
    /// The ids of each value in `by_value`, at the index it maps to.
    value_ids: Vec<Vec<EventId>>,
    /// Per field (by tag), its last value and that value's index.
    recent: Vec<(u8, &'a [u8], usize)>,
    by_text: HashMap<(&'a str, &'a str), usize>,
    /// The ids of each message and error type in `by_text`, at the index it maps to.
    text_ids: Vec<Vec<EventId>>,
    last_text: Option<(&'a str, &'a str, usize)>,
}

impl<'a> Additions<'a> {
    /// Indexes `id` under `value` of `field`; an empty value is not indexed.
    pub(crate) fn add(&mut self, field: Field, value: &'a [u8], id: EventId) {
        if value.is_empty() {
            return;
        }
        let tag = field.tag();
        let recent = self.recent.iter_mut().find(|(t, _, _)| *t == tag);
        if let Some((_, v, at)) = &recent {
            if *v == value {
                self.value_ids[*at].push(id);
                return;
            }
        }
        let next = self.value_ids.len();
        let at = *self.by_value.entry((field, value)).or_insert(next);
        if at == next {
            self.value_ids.push(Vec::new());
        }
        self.value_ids[at].push(id);
        match recent {
            Some(r) => *r = (tag, value, at),
            None => self.recent.push((tag, value, at)),
        }
    }

    /// Indexes `id` under the words of a message and error type (see [`event_words`]).
    pub(crate) fn add_text(&mut self, message: &'a str, error_type: &'a str, id: EventId) {
        if let Some((m, t, at)) = self.last_text {
            if m == message && t == error_type {
                self.text_ids[at].push(id);
                return;
            }
        }
        let next = self.text_ids.len();
        let at = *self.by_text.entry((message, error_type)).or_insert(next);
        if at == next {
            self.text_ids.push(Vec::new());
        }
        self.text_ids[at].push(id);
        self.last_text = Some((message, error_type, at));
    }

    /// The ids gathered under each value's key prefix, words included, and the words.
    fn by_prefix(mut self) -> (Vec<PrefixIds>, HashMap<String, Vec<EventId>>) {
        let mut by_word: HashMap<String, Vec<EventId>> = HashMap::new();
        for ((message, error_type), at) in &self.by_text {
            for w in event_words(message, error_type) {
                by_word
                    .entry(w)
                    .or_default()
                    .extend_from_slice(&self.text_ids[*at]);
            }
        }
        let mut value_ids = std::mem::take(&mut self.value_ids);
        let values = self.by_value.iter().map(|((field, value), at)| {
            (prefix(*field, value), std::mem::take(&mut value_ids[*at]))
        });
        let words = by_word
            .iter()
            .map(|(w, ids)| (prefix(Field::Word, w.as_bytes()), ids.clone()));
        (values.chain(words).collect(), by_word)
    }

    /// Writes the additions.
    pub(crate) fn apply(self, postings: &Postings) -> Result<(), sled::Error> {
        let tree = &postings.runs;
        let mut batch = sled::Batch::default();
        let (values, by_word) = self.by_prefix();
        for (prefix, mut ids) in values {
            ids.sort_unstable();
            ids.dedup();
            let last = tree.scan_prefix(&prefix).next_back().transpose()?;
            let last = last.and_then(|(k, v)| max_of(&prefix, &k).map(|max| (k, max, v)));
            let split = match &last {
                Some((_, max, _)) => ids.partition_point(|id| id <= max),
                None => 0,
            };
            let (old, new) = ids.split_at(split);
            // Ids at or below the greatest indexed go into the run that covers them.
            let mut into_runs: BTreeMap<Vec<u8>, Vec<EventId>> = BTreeMap::new();
            for &id in old {
                if let Some((k, _)) = tree.range(run_key(&prefix, id)..).next().transpose()? {
                    if max_of(&prefix, &k).is_some() {
                        into_runs.entry(k.to_vec()).or_default().push(id);
                    }
                }
            }
            match last {
                Some((k, _, v)) if !new.is_empty() && v.len() / 16 < SHORT_RUN => {
                    let mut extended = decode_ids(&v);
                    if let Some(also) = into_runs.remove(k.as_ref()) {
                        extended = union(&extended, &also);
                    }
                    extended = union(&extended, new);
                    batch.remove(k);
                    put_runs(&mut batch, &prefix, &extended);
                }
                _ => put_runs(&mut batch, &prefix, new),
            }
            // A run that grows past the limit is split; its last part keeps its key.
            for (k, ids) in into_runs {
                let existing = tree.get(&k)?.map(|v| decode_ids(&v)).unwrap_or_default();
                put_runs(&mut batch, &prefix, &union(&existing, &ids));
            }
        }
        tree.apply_batch(batch)?;
        postings.remember_words(by_word.keys().map(String::as_bytes))
    }
}

/// Ids of one value, newest first; see [`Postings::descending`].
pub(crate) struct Descending {
    prefix: Vec<u8>,
    pending: Option<Result<Vec<EventId>, sled::Error>>,
    rest: std::iter::Rev<sled::Iter>,
    /// The run being read, ascending; read from its end.
    current: Vec<EventId>,
    lower: EventId,
    upper: EventId,
    failed: bool,
}

impl Iterator for Descending {
    type Item = Result<EventId, sled::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(id) = self.current.pop() {
                if id >= self.upper {
                    continue;
                }
                if id < self.lower {
                    // Runs are ordered: everything after is older still.
                    self.current.clear();
                    continue;
                }
                return Some(Ok(id));
            }
            if self.failed {
                return None;
            }
            match self.pending.take() {
                Some(Ok(run)) => {
                    self.current = run;
                    continue;
                }
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                None => {}
            }
            match self.rest.next()? {
                Ok((k, v)) => {
                    if max_of(&self.prefix, &k).is_some() {
                        self.current = decode_ids(&v);
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Ids of several values, newest first, each once; see [`Postings::descending_any`].
pub(crate) struct MergedDescending {
    sources: Vec<Descending>,
    heads: Vec<Option<Result<EventId, sled::Error>>>,
    last: Option<EventId>,
}

impl Iterator for MergedDescending {
    type Item = Result<EventId, sled::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // An error first; otherwise the greatest head.
            let mut best: Option<(usize, EventId)> = None;
            for (i, head) in self.heads.iter().enumerate() {
                match head {
                    Some(Err(_)) => {
                        let err = self.heads[i].take();
                        return err;
                    }
                    Some(Ok(id)) if best.is_none_or(|(_, b)| *id > b) => best = Some((i, *id)),
                    _ => {}
                }
            }
            let (i, id) = best?;
            self.heads[i] = self.sources[i].next();
            if self.last == Some(id) {
                continue;
            }
            self.last = Some(id);
            return Some(Ok(id));
        }
    }
}

mod removal;
#[cfg(test)]
mod tests;
