//! The cap on the layer's own events (server errors, broken links): clients choose how many
//! requests fail, so at most so many a minute per group and in all are stored; the rest
//! are counted as dropped ([`DropReason::HttpLimited`]).

use std::sync::Mutex;

use crate::model::drop::DropReason;
use crate::pipeline::gate::KeyedLimit;

/// Events of one group a minute, by default.
pub(crate) const DEFAULT_PER_GROUP: u32 = 10;
/// Events of all groups a minute, by default.
pub(crate) const DEFAULT_PER_MINUTE: u32 = 100;

/// The one key of the limit of all groups.
const ALL: &str = "all";

/// Per-minute limits of the layer's events, by grouping key and in all (0: no limit).
#[derive(Debug)]
pub(crate) struct EventLimit {
    per_group: KeyedLimit,
    in_all: KeyedLimit,
    limits: (u32, u32),
}

impl EventLimit {
    pub(crate) fn new(per_group: u32, per_minute: u32) -> Self {
        EventLimit {
            per_group: KeyedLimit::new(per_group),
            in_all: KeyedLimit::new(per_minute),
            limits: (per_group, per_minute),
        }
    }

    /// The limit of these settings, one for the process: layers with the same limits share
    /// one count, since the cap is on what the process stores, and a request's future holds
    /// it without counting references on every request.
    pub(crate) fn shared(per_group: u32, per_minute: u32) -> &'static EventLimit {
        static MADE: Mutex<Vec<&'static EventLimit>> = Mutex::new(Vec::new());
        let mut made = crate::sync::lock(&MADE);
        if let Some(l) = made.iter().find(|l| l.limits == (per_group, per_minute)) {
            return l;
        }
        // One per pair of limits a program sets: a handful, kept for the process's life.
        let l: &'static EventLimit = Box::leak(Box::new(EventLimit::new(per_group, per_minute)));
        made.push(l);
        l
    }

    /// The limits it was made with: per group, in all.
    pub(crate) fn limits(&self) -> (u32, u32) {
        self.limits
    }

    /// Counts an event of group `key` at `now_us`, or the reason it is dropped.
    pub(crate) fn admit(&self, key: &str, now_us: u64) -> Result<(), DropReason> {
        // The group's own limit first: a busy group does not use the budget of all.
        if self.per_group.admit(key, now_us, true) && self.in_all.admit(ALL, now_us, true) {
            Ok(())
        } else {
            Err(DropReason::HttpLimited)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_group_and_in_all_each_minute() {
        let l = EventLimit::new(3, 5);
        let minute = 60_000_000;
        let admitted = |key: &str, at: u64| l.admit(key, at).is_ok();
        assert_eq!((0..10).filter(|_| admitted("a", 1)).count(), 3);
        assert_eq!((0..10).filter(|_| admitted("b", 1)).count(), 2);
        assert!(!admitted("c", 1), "the budget of all is spent");
        assert_eq!(l.admit("c", 1), Err(DropReason::HttpLimited));
        // The next minute starts over.
        assert!(admitted("a", minute + 1));
        assert!(admitted("c", minute + 1));
        let off = EventLimit::new(0, 0);
        assert!((0..1000).all(|i| off.admit(&i.to_string(), 1).is_ok()));
    }

    #[test]
    fn one_limit_per_pair_of_settings() {
        let a = EventLimit::shared(7, 70);
        assert!(std::ptr::eq(a, EventLimit::shared(7, 70)));
        assert!(!std::ptr::eq(a, EventLimit::shared(7, 71)));
        assert_eq!(a.limits(), (7, 70));
    }
}
