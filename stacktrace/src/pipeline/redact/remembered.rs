//! Values hidden once, hidden everywhere in the process: what an event's redaction hid (a
//! `#[sensitive_variables]` argument, a field hidden by its name, a cookie, a token found by
//! its form) is remembered, and scrubbed from every later text of the process (another
//! event's message or source lines, a breadcrumb copied into the crash record, a tracked
//! request), not only from the event that hid it.
//!
//! The set holds no secret: each value (and each form a text would quote it in) is kept as
//! its length, a rolling hash and the first half of its SHA-256. A text is scanned once for
//! each length held, the rolling hash of each window looked up in a bit filter first; a
//! window whose hash is held is confirmed by its SHA-256. The set is bounded
//! ([`MAX_ENTRIES`]); past it, the oldest values are forgotten first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, TryLockError};
use std::time::Duration;

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

use crate::model::event::PLACEHOLDER;

/// The most forms of values kept (each value counts once per form a text may quote it in).
pub(crate) const MAX_ENTRIES: usize = 4096;

/// Values shorter than this are not remembered: hidden in their own event, but a short
/// value (`true`, `admin`) would hide ordinary words in every later event.
pub(crate) const MIN_LEN: usize = 6;

/// Values longer than this are not remembered (a whole body hidden by its name): the scan
/// costs a pass per length held.
const MAX_LEN: usize = 512;

const BASE: u64 = 0x0000_0100_0000_01b3;
const FILTER_BITS: usize = 1 << 16;

type Key = (u32, u64);

#[derive(Default)]
struct Table {
    digests: HashMap<Key, [u8; 16]>,
    /// Oldest first, to forget when full.
    order: VecDeque<Key>,
    /// Each length held and how many forms have it.
    lengths: BTreeMap<u32, u32>,
    /// One bit per top 16 bits of a held hash.
    filter: Vec<u64>,
}

static TABLE: Lazy<RwLock<Table>> = Lazy::new(|| {
    RwLock::new(Table {
        filter: vec![0; FILTER_BITS / 64],
        ..Table::default()
    })
});

/// How many forms are held: read without the lock, so that a process that never hid
/// anything pays one load per text.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn hash_of(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(*b))
    })
}

fn digest_of(bytes: &[u8]) -> [u8; 16] {
    let full = Sha256::digest(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn filter_slot(hash: u64) -> (usize, u64) {
    let bit = (hash >> 48) as usize;
    (bit / 64, 1u64 << (bit % 64))
}

/// Whether a value is worth remembering: long enough to be told from ordinary words, not
/// so long that it costs every scan, and not made of the placeholder's stars.
fn worth_remembering(value: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&value.len())
        && !value.bytes().all(|b| b == b'*')
        && !PLACEHOLDER.contains(value)
        && !value.contains(PLACEHOLDER)
}

/// Remembers hidden values (and the forms texts quote them in), so that every later text
/// of the process is scrubbed of them.
pub(crate) fn remember<'a>(values: impl IntoIterator<Item = &'a str>) {
    let mut forms: Vec<String> = Vec::new();
    for value in values {
        let value = value.trim();
        if !worth_remembering(value) {
            continue;
        }
        forms.push(value.to_owned());
        forms.extend(
            super::secrets::encoded_forms(value)
                .into_iter()
                .filter(|f| f.len() <= MAX_LEN),
        );
    }
    if forms.is_empty() {
        return;
    }
    let keys: Vec<(Key, [u8; 16])> = forms
        .iter()
        .map(|f| {
            let b = f.as_bytes();
            ((b.len() as u32, hash_of(b)), digest_of(b))
        })
        .collect();
    let mut table = match TABLE.write() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut forgot = false;
    for (key, digest) in keys {
        if table.digests.insert(key, digest).is_some() {
            continue;
        }
        table.order.push_back(key);
        *table.lengths.entry(key.0).or_insert(0) += 1;
        let (word, bit) = filter_slot(key.1);
        table.filter[word] |= bit;
        while table.order.len() > MAX_ENTRIES {
            let Some(old) = table.order.pop_front() else {
                break;
            };
            table.digests.remove(&old);
            if let Some(n) = table.lengths.get_mut(&old.0) {
                *n -= 1;
                if *n == 0 {
                    table.lengths.remove(&old.0);
                }
            }
            forgot = true;
        }
    }
    if forgot {
        let Table {
            filter, digests, ..
        } = &mut *table;
        filter.iter_mut().for_each(|w| *w = 0);
        for key in digests.keys() {
            let (word, bit) = filter_slot(key.1);
            filter[word] |= bit;
        }
    }
    HELD.store(table.digests.len(), Ordering::Release);
}

/// Whether nothing is remembered.
pub(crate) fn is_empty() -> bool {
    HELD.load(Ordering::Acquire) == 0
}

/// The table for reading, waiting at most a few milliseconds: a writer holds it only while
/// it inserts a few hashes, and a panic hook must never wait on a thread that is stuck.
fn read_briefly() -> Option<RwLockReadGuard<'static, Table>> {
    for i in 0..200u32 {
        match TABLE.try_read() {
            Ok(t) => return Some(t),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if i < 20 => std::thread::yield_now(),
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_micros(25)),
        }
    }
    None
}

/// The byte ranges of `text` that are remembered values, in order, overlapping ones
/// joined.
fn spans_in(table: &Table, text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for &len in table.lengths.keys() {
        let len = len as usize;
        if len == 0 || len > text.len() {
            continue;
        }
        let top = (0..len - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
        let mut h = hash_of(&text[..len]);
        let mut at = 0;
        loop {
            let (word, bit) = filter_slot(h);
            if table.filter[word] & bit != 0 {
                if let Some(d) = table.digests.get(&(len as u32, h)) {
                    if *d == digest_of(&text[at..at + len]) {
                        spans.push((at, at + len));
                    }
                }
            }
            if at + len >= text.len() {
                break;
            }
            h = h
                .wrapping_sub(u64::from(text[at]).wrapping_mul(top))
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(text[at + len]));
            at += 1;
        }
    }
    spans.sort_unstable();
    let mut joined: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match joined.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => joined.push((start, end)),
        }
    }
    joined
}

/// Whether a text holds a remembered value.
pub(crate) fn found_in(text: &str) -> bool {
    if is_empty() || text.is_empty() {
        return false;
    }
    read_briefly().is_some_and(|t| !spans_in(&t, text.as_bytes()).is_empty())
}

/// Replaces every remembered value in `text` with the placeholder.
pub(crate) fn scrub(text: &mut String) {
    if is_empty() || text.is_empty() {
        return;
    }
    let Some(table) = read_briefly() else {
        return;
    };
    let spans = spans_in(&table, text.as_bytes());
    drop(table);
    if spans.is_empty() {
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in spans {
        // Values are whole UTF-8 texts, so a window equal to one starts and ends on
        // character boundaries; checked all the same, as slicing elsewhere would panic.
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(PLACEHOLDER);
        last = end;
    }
    out.push_str(&text[last..]);
    *text = out;
}

/// Forgets every value: for tests, which share one process.
#[cfg(test)]
pub(crate) fn forget_all() {
    let mut table = match TABLE.write() {
        Ok(t) => t,
        Err(p) => p.into_inner(),
    };
    table.digests.clear();
    table.order.clear();
    table.lengths.clear();
    table.filter.iter_mut().for_each(|w| *w = 0);
    HELD.store(0, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The set is process-wide; these tests use values no other test hides.
    #[test]
    fn a_value_remembered_is_scrubbed_from_later_texts_in_its_forms() {
        remember(["rm-s3cret value/1"]);
        for quoted in [
            "panic: rm-s3cret value/1 rejected",
            "next=rm-s3cret+value%2F1",
            r#"{"note":"rm-s3cret value\/1"}"#,
        ] {
            let mut text = quoted.to_owned();
            scrub(&mut text);
            assert!(text.contains(PLACEHOLDER), "{quoted} -> {text}");
            assert!(!text.contains("rm-s3cret"), "{quoted} -> {text}");
        }
        // Control: a text that only shares a part of it is kept.
        let mut text = "rm-s3cret valu".to_owned();
        scrub(&mut text);
        assert_eq!(text, "rm-s3cret valu");
        assert!(found_in("x rm-s3cret value/1 y") && !found_in("nothing here"));
    }

    #[test]
    fn short_values_and_placeholders_are_not_remembered() {
        remember(["short", "**********", "", "      "]);
        let mut text = "short words stay".to_owned();
        scrub(&mut text);
        assert_eq!(text, "short words stay");
    }

    #[test]
    fn the_set_is_bounded_and_forgets_the_oldest_first() {
        let values: Vec<String> = (0..MAX_ENTRIES + 10)
            .map(|i| format!("bound-value-{i:06}"))
            .collect();
        remember(values.iter().map(String::as_str));
        let table = read_briefly().unwrap();
        assert!(table.digests.len() <= MAX_ENTRIES);
        assert_eq!(table.order.len(), table.digests.len());
        drop(table);
        let mut newest = format!("x {} y", values[values.len() - 1]);
        scrub(&mut newest);
        assert_eq!(newest, format!("x {PLACEHOLDER} y"));
        let mut oldest = format!("x {} y", values[0]);
        scrub(&mut oldest);
        assert_eq!(oldest, format!("x {} y", values[0]));
    }

    proptest! {
        #[test]
        fn a_remembered_value_never_survives(
            tail in "[a-zA-Z0-9é!@#]{0,24}",
            before in "\\PC{0,40}",
            after in "\\PC{0,40}",
        ) {
            // A prefix no other test's text holds: the set is the process's.
            let secret = format!("rm-prop-{tail}");
            remember([secret.as_str()]);
            let mut text = format!("{before}{secret}{after}{secret}");
            scrub(&mut text);
            prop_assert!(!text.contains(secret.as_str()), "{}", text);
        }
    }
}
