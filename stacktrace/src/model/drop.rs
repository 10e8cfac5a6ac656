//! Why events were not stored, and the counters of drops by reason.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Why an event was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// Capture is turned off (`enabled = false`).
    Disabled,
    /// Left out by `sample_rate`.
    Sampled,
    /// Over `rate_limit` for the current minute.
    RateLimited,
    /// Removed by a filter.
    Filtered,
    /// The background writer's queue was full.
    QueueFull,
    /// Storing failed (full disk, I/O error).
    StorageError,
    /// Over the HTTP layer's cap on its own events (server errors, broken links): per
    /// group or in all, a minute.
    HttpLimited,
    /// The spool file (events written while another process holds the database) reached
    /// `spool_max_bytes`: its oldest events were dropped to make room.
    SpoolFull,
}

/// Every drop reason, in counter order.
pub const DROP_REASONS: [DropReason; 8] = [
    DropReason::Disabled,
    DropReason::Sampled,
    DropReason::RateLimited,
    DropReason::Filtered,
    DropReason::QueueFull,
    DropReason::StorageError,
    DropReason::HttpLimited,
    DropReason::SpoolFull,
];

impl DropReason {
    /// The snake-case name used in storage and output.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Disabled => "disabled",
            DropReason::Sampled => "sampled",
            DropReason::RateLimited => "rate_limited",
            DropReason::Filtered => "filtered",
            DropReason::QueueFull => "queue_full",
            DropReason::StorageError => "storage_error",
            DropReason::HttpLimited => "http_limited",
            DropReason::SpoolFull => "spool_full",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drops counted in memory since they were last persisted.
#[derive(Debug, Default)]
pub(crate) struct DropCounters([AtomicU64; DROP_REASONS.len()]);

impl DropCounters {
    /// Counts one drop. Never panics: it runs inside the panic hook.
    pub(crate) fn add(&self, reason: DropReason) {
        if let Some(counter) = self.0.get(reason.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the counts, leaving zeros.
    pub(crate) fn take(&self) -> [u64; DROP_REASONS.len()] {
        let mut out = [0; DROP_REASONS.len()];
        for (o, c) in out.iter_mut().zip(&self.0) {
            *o = c.swap(0, Ordering::Relaxed);
        }
        out
    }

    /// Adds counts back, after persisting them failed.
    pub(crate) fn put_back(&self, counts: [u64; DROP_REASONS.len()]) {
        for (c, n) in self.0.iter().zip(counts) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn peek(&self) -> [u64; DROP_REASONS.len()] {
        let mut out = [0; DROP_REASONS.len()];
        for (o, c) in out.iter_mut().zip(&self.0) {
            *o = c.load(Ordering::Relaxed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_counts_in_its_place_in_the_list() {
        let c = DropCounters::default();
        for (i, reason) in DROP_REASONS.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason}");
            c.add(*reason);
            assert_eq!(c.peek()[i], 1, "{reason}");
        }
        assert_eq!(c.take(), [1; DROP_REASONS.len()]);
    }

    #[test]
    fn counters_take_resets() {
        let c = DropCounters::default();
        c.add(DropReason::QueueFull);
        c.add(DropReason::QueueFull);
        assert_eq!(c.take()[4], 2);
        assert_eq!(c.take()[4], 0);
        let mut counts = [0; DROP_REASONS.len()];
        counts[0] = 1;
        counts[4] = 3;
        c.put_back(counts);
        assert_eq!(c.take(), counts);
    }
}
