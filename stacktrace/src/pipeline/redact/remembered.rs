//! Values hidden once, hidden everywhere in the process: what an event's redaction hid (a
//! `#[sensitive_variables]` argument, a field hidden by its name, a cookie, a token found by
//! its form) is remembered, and scrubbed from every later text of the process (another
//! event's message or source lines, a breadcrumb copied into the crash record, a tracked
//! request), not only from the event that hid it.
//!
//! The set holds no secret: each value (and each form a text would quote it in) is kept as
//! its length, a hash of its first [`MIN_LEN`] bytes and the first half of a SHA-256 of the
//! whole, both keyed by a random number drawn once per process. A text is scanned once,
//! whatever the number and lengths of the values: the rolling hash of each window of
//! [`MIN_LEN`] bytes is looked up in a bit filter, and only a window whose hash is held is
//! looked up in the table and confirmed by the SHA-256 of the text from there. The set is
//! bounded ([`MAX_ENTRIES`]); past it, the oldest values are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, TryLockError};
use std::time::Duration;

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

use crate::model::event::PLACEHOLDER;

/// The most forms of values kept (each value counts once per form a text may quote it in).
pub(crate) const MAX_ENTRIES: usize = 4096;

/// Values shorter than this are not remembered: hidden in their own event, but a short
/// value (`true`, `admin`) would hide ordinary words in every later event. Also the width
/// of the window a text is scanned with.
pub(crate) const MIN_LEN: usize = 6;

/// Values longer than this are not remembered (a whole body hidden by its name).
const MAX_LEN: usize = 512;

const FILTER_BITS: usize = 1 << 18;

/// One form of a remembered value.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The hash of its first [`MIN_LEN`] bytes.
    head: u64,
    len: u32,
    digest: [u8; 16],
}

struct Table {
    /// The forms by the hash of their first bytes.
    by_head: HashMap<u64, Vec<Entry>>,
    /// Oldest first, to forget when full.
    order: VecDeque<Entry>,
    /// One bit per some bits of a held head hash.
    filter: Vec<u64>,
    /// The odd multiplier of the rolling hash and the key of the digests: random, so that
    /// the table tells nothing of the values without them.
    base: u64,
    key: [u8; 16],
}

static TABLE: Lazy<RwLock<Table>> = Lazy::new(|| {
    let base = rand::random::<u64>() | 1;
    RwLock::new(Table {
        by_head: HashMap::new(),
        order: VecDeque::new(),
        filter: vec![0; FILTER_BITS / 64],
        base,
        key: rand::random(),
    })
});

/// How many forms are held: read without the lock, so that a process that never hid
/// anything pays one load per text.
static HELD: AtomicUsize = AtomicUsize::new(0);

impl Table {
    fn head_of(&self, bytes: &[u8]) -> u64 {
        bytes.iter().fold(0u64, |h, b| {
            h.wrapping_mul(self.base).wrapping_add(u64::from(*b) + 1)
        })
    }

    fn digest_of(&self, bytes: &[u8]) -> [u8; 16] {
        let full = Sha256::new()
            .chain_update(self.key)
            .chain_update(bytes)
            .finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    fn entry_of(&self, bytes: &[u8]) -> Entry {
        Entry {
            head: self.head_of(&bytes[..MIN_LEN]),
            len: bytes.len() as u32,
            digest: self.digest_of(bytes),
        }
    }

    fn filter_slot(hash: u64) -> (usize, u64) {
        let bit = (hash >> 46) as usize % FILTER_BITS;
        (bit / 64, 1u64 << (bit % 64))
    }

    fn insert(&mut self, entry: Entry) -> bool {
        let same = self.by_head.entry(entry.head).or_default();
        if same.contains(&entry) {
            return false;
        }
        same.push(entry);
        self.order.push_back(entry);
        let (word, bit) = Table::filter_slot(entry.head);
        self.filter[word] |= bit;
        true
    }

    fn forget_oldest(&mut self) {
        let Some(old) = self.order.pop_front() else {
            return;
        };
        if let Some(same) = self.by_head.get_mut(&old.head) {
            same.retain(|e| *e != old);
            if same.is_empty() {
                self.by_head.remove(&old.head);
            }
        }
    }

    fn refilter(&mut self) {
        self.filter.iter_mut().for_each(|w| *w = 0);
        for head in self.by_head.keys() {
            let (word, bit) = Table::filter_slot(*head);
            self.filter[word] |= bit;
        }
    }

    /// The byte ranges of `text` that are remembered values, in order, overlapping ones
    /// joined: one pass of a window of [`MIN_LEN`] bytes.
    fn spans_in(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if text.len() < MIN_LEN {
            return spans;
        }
        let top = (0..MIN_LEN - 1).fold(1u64, |p, _| p.wrapping_mul(self.base));
        let mut h = self.head_of(&text[..MIN_LEN]);
        let mut at = 0;
        loop {
            let (word, bit) = Table::filter_slot(h);
            if self.filter[word] & bit != 0 {
                if let Some(same) = self.by_head.get(&h) {
                    for e in same {
                        let end = at + e.len as usize;
                        if end <= text.len() && self.digest_of(&text[at..end]) == e.digest {
                            match spans.last_mut() {
                                Some(last) if at <= last.1 => last.1 = last.1.max(end),
                                _ => spans.push((at, end)),
                            }
                        }
                    }
                }
            }
            if at + MIN_LEN >= text.len() {
                break;
            }
            h = h
                .wrapping_sub((u64::from(text[at]) + 1).wrapping_mul(top))
                .wrapping_mul(self.base)
                .wrapping_add(u64::from(text[at + MIN_LEN]) + 1);
            at += 1;
        }
        spans
    }
}

/// Whether a value a pattern found in free text looks like a secret rather than a word: it
/// holds a digit, or a capital after its first letter, or a character other than a letter (a word
/// after `auth:` in a message, `failed`, is hidden there but not remembered).
pub(crate) fn looks_like_a_secret(value: &str) -> bool {
    let v = value.trim();
    v.chars().any(|c| c.is_ascii_digit())
        || (v.chars().any(char::is_lowercase) && v.chars().skip(1).any(char::is_uppercase))
        || v.chars().any(|c| !c.is_alphabetic())
}

/// Whether a value is worth remembering: long enough to be told from ordinary words, not
/// so long that it is a whole text, and not made of the placeholder's stars.
fn worth_remembering(value: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&value.len())
        && !value.bytes().all(|b| b == b'*')
        && !value.contains(PLACEHOLDER)
}

/// Remembers hidden values (and the forms texts quote them in), so that every later text
/// of the process is scrubbed of them.
pub(crate) fn remember<'a>(values: impl IntoIterator<Item = &'a str>) {
    let mut values = values
        .into_iter()
        .map(str::trim)
        .filter(|v| worth_remembering(v))
        .peekable();
    if values.peek().is_none() {
        return;
    }
    let mut table = match TABLE.write() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut forgot = false;
    for value in values {
        // A value remembered already (a session cookie hidden at every request) has its
        // forms remembered too.
        let entry = table.entry_of(value.as_bytes());
        if !table.insert(entry) {
            continue;
        }
        let forms = super::secrets::encoded_forms(value);
        for form in forms
            .iter()
            .filter(|f| (MIN_LEN..=MAX_LEN).contains(&f.len()))
        {
            let entry = table.entry_of(form.as_bytes());
            table.insert(entry);
        }
        while table.order.len() > MAX_ENTRIES {
            table.forget_oldest();
            forgot = true;
        }
    }
    if forgot {
        table.refilter();
    }
    HELD.store(table.order.len(), Ordering::Release);
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

/// Whether a text holds a remembered value.
pub(crate) fn found_in(text: &str) -> bool {
    if is_empty() || text.is_empty() {
        return false;
    }
    read_briefly().is_some_and(|t| !t.spans_in(text.as_bytes()).is_empty())
}

/// Replaces every remembered value in `text` with the placeholder.
pub(crate) fn scrub(text: &mut String) {
    if is_empty() || text.is_empty() {
        return;
    }
    let Some(table) = read_briefly() else {
        return;
    };
    let spans = table.spans_in(text.as_bytes());
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

/// Forgets every value: for tests and benches, which share one process.
pub(crate) fn forget_all() {
    let mut table = match TABLE.write() {
        Ok(t) => t,
        Err(p) => p.into_inner(),
    };
    table.by_head.clear();
    table.order.clear();
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
    fn words_are_told_from_secrets() {
        for word in ["failed", "expired", "applicant", "Expired"] {
            assert!(!looks_like_a_secret(word), "{word}");
        }
        for secret in ["hunter2", "s3cr3t", "AbCdEfGh", "tok_live_x", "p@ssword"] {
            assert!(looks_like_a_secret(secret), "{secret}");
        }
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
        assert!(table.order.len() <= MAX_ENTRIES);
        let held: usize = table.by_head.values().map(Vec::len).sum();
        assert_eq!(table.order.len(), held);
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
