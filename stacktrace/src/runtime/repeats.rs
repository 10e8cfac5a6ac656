//! Repeats counted rather than queued. When the writer's queue is full, an event that repeats
//! a failure whose full copy is on its way to the store (or stored) is counted under a cheap
//! key, and the writer adds the counts to that failure's group: a burst loses the copies,
//! never the occurrences. The first event of a failure not seen yet goes in a small room
//! past the queue's bound, so that every distinct failure keeps one full copy.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};

use crate::capture::pending::PendingEvent;
use crate::model::drop::DropReason;
use crate::store::Repeated;

/// How many failures are counted at most; past it, an event that is not a known repeat is
/// dropped as the queue's bound says.
const MAX_KEYS: usize = 1024;
/// Events queued past the queue's bound at most: the first copies of failures first seen
/// while the queue is full.
pub(crate) const FIRST_ROOM: usize = 64;
/// How many times a capture tries the lock before it drops the event: it never waits for
/// it, but spins, then yields, a bounded number of times (other captures hold it for a
/// lookup and an addition).
const TRIES: u32 = 256;
/// Of [`TRIES`], those that spin before the rest yield.
const SPINS: u32 = 16;

/// The key of a pending event's failure: its error type, message, grouping key, source and
/// capture site, and the raw return addresses of its stack. Events of one key get one
/// fingerprint (which reads a subset of these, once resolved), so the counts of a key
/// belong to the group of any of its stored copies. The whole message counts, since it
/// stands in for frames in the fingerprint of an event without app frames.
pub(crate) fn key_of(p: &PendingEvent) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.error_type.hash(&mut h);
    p.message.hash(&mut h);
    p.grouping.hash(&mut h);
    p.logger.hash(&mut h);
    if let Some(l) = &p.location {
        (&l.file, l.line, l.column).hash(&mut h);
    }
    if let Some(t) = &p.trace {
        t.ips().hash(&mut h);
    }
    h.finish()
}

/// What became of an event the queue had no room for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Counted as a repeat of a failure on its way to the store.
    Counted,
    /// Queued as the first copy of its failure.
    Queued,
}

#[derive(Debug, Default)]
struct Slot {
    counted: u64,
    last_us: u64,
    /// The group of the failure's stored copy; `None` while the copy is queued.
    fingerprint: Option<String>,
}

/// The repeats counted by key, shared by the captures and the writer.
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    slots: Mutex<HashMap<u64, Slot>>,
    /// Repeats counted and not taken yet: the writer looks without the lock.
    waiting: AtomicU64,
}

impl Repeats {
    /// From a capture that found the queue full: counts the event as a repeat of `key`, or
    /// queues it with `queue_first` (past the bound) when its failure has no copy on the
    /// way. Waits for no lock: a lock held too long drops the event.
    pub(crate) fn overflow(
        &self,
        key: u64,
        timestamp_us: u64,
        queue_first: impl FnOnce() -> bool,
    ) -> Result<Overflow, DropReason> {
        let mut tries = 0;
        let mut slots = loop {
            match self.slots.try_lock() {
                Ok(s) => break s,
                // Nothing under the lock can panic: a poisoned map is consistent.
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if tries < TRIES => {
                    tries += 1;
                    if tries <= SPINS {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                Err(TryLockError::WouldBlock) => return Err(DropReason::QueueFull),
            }
        };
        if let Some(slot) = slots.get_mut(&key) {
            slot.counted += 1;
            slot.last_us = slot.last_us.max(timestamp_us);
            self.waiting.fetch_add(1, Ordering::SeqCst);
            return Ok(Overflow::Counted);
        }
        if slots.len() >= MAX_KEYS {
            // Stored failures that repeat no more make room.
            slots.retain(|_, s| s.fingerprint.is_none() || s.counted > 0);
        }
        if slots.len() < MAX_KEYS && queue_first() {
            slots.insert(key, Slot::default());
            return Ok(Overflow::Queued);
        }
        Err(DropReason::QueueFull)
    }

    /// From the writer: the first copy of `key` is stored in the group of `fingerprint`.
    pub(crate) fn stored(&self, key: u64, fingerprint: &str) {
        let mut slots = crate::sync::lock(&self.slots);
        slots.entry(key).or_default().fingerprint = Some(fingerprint.to_owned());
    }

    /// From the writer: the first copy of `key` was not stored; its repeats, returned, are
    /// lost with it.
    pub(crate) fn lost(&self, key: u64) -> u64 {
        let mut slots = crate::sync::lock(&self.slots);
        let n = slots.remove(&key).map_or(0, |s| s.counted);
        self.waiting.fetch_sub(n, Ordering::SeqCst);
        n
    }

    /// Whether repeats wait to be taken.
    pub(crate) fn any_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// From the writer: takes the repeats of failures whose copy is stored, by group.
    /// Looks without the lock first, which the captures want.
    pub(crate) fn take(&self) -> Vec<Repeated> {
        if !self.any_waiting() {
            return Vec::new();
        }
        let mut slots = crate::sync::lock(&self.slots);
        let mut out: Vec<Repeated> = Vec::new();
        for slot in slots.values_mut() {
            let Some(fingerprint) = &slot.fingerprint else {
                continue;
            };
            if slot.counted == 0 {
                continue;
            }
            let n = std::mem::take(&mut slot.counted);
            self.waiting.fetch_sub(n, Ordering::SeqCst);
            match out.iter_mut().find(|c| c.fingerprint == *fingerprint) {
                Some(c) => {
                    c.repeats += n;
                    c.last_us = c.last_us.max(slot.last_us);
                }
                None => out.push(Repeated {
                    fingerprint: fingerprint.clone(),
                    repeats: n,
                    last_us: slot.last_us,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_copy_is_queued_once_and_its_repeats_are_counted_into_its_group() {
        let r = Repeats::default();
        assert_eq!(r.overflow(7, 10, || true), Ok(Overflow::Queued));
        assert_eq!(r.overflow(7, 30, || unreachable!()), Ok(Overflow::Counted));
        assert_eq!(r.overflow(7, 20, || unreachable!()), Ok(Overflow::Counted));
        // Not stored yet: nothing to take.
        assert!(r.take().is_empty());
        r.stored(7, "fp");
        let taken = r.take();
        assert_eq!(
            taken,
            [Repeated {
                fingerprint: "fp".into(),
                repeats: 2,
                last_us: 30
            }]
        );
        assert!(!r.any_waiting());
        assert!(r.take().is_empty());
    }

    #[test]
    fn a_failure_without_room_for_its_first_copy_is_dropped() {
        let r = Repeats::default();
        assert_eq!(r.overflow(1, 0, || false), Err(DropReason::QueueFull));
        // Still unknown: the next one may take the room.
        assert_eq!(r.overflow(1, 0, || true), Ok(Overflow::Queued));
    }

    #[test]
    fn the_repeats_of_a_lost_copy_are_lost_with_it() {
        let r = Repeats::default();
        r.overflow(3, 0, || true).unwrap();
        r.overflow(3, 0, || true).unwrap();
        assert_eq!(r.lost(3), 1);
        assert!(!r.any_waiting());
        assert_eq!(r.overflow(3, 0, || true), Ok(Overflow::Queued));
    }

    #[test]
    fn keys_tell_failures_apart_by_type_message_and_stack() {
        let p = |ty: &str, msg: &str| {
            let mut p = PendingEvent::new(0, crate::model::event::Level::Error, "t");
            p.error_type = ty.into();
            p.message = msg.into();
            p
        };
        assert_eq!(key_of(&p("E", "m")), key_of(&p("E", "m")));
        assert_ne!(key_of(&p("E", "m")), key_of(&p("F", "m")));
        assert_ne!(key_of(&p("E", "m")), key_of(&p("E", "n")));
        let mut traced = p("E", "m");
        traced.trace = Some(crate::capture::trace::RawTrace::capture());
        assert_ne!(key_of(&p("E", "m")), key_of(&traced));
    }
}
