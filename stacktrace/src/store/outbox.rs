//! The outbox of forwarding: the events not yet taken by the server, marked in the same
//! atomic write that stores them, and the counts of what became of them.
//!
//! `outbox`: event id (16 bytes, big-endian, so oldest first) to its [`Unsent`] record.
//! `forward_failed`: event id to the [`Refusal`] that ended it. The counts are
//! `forward.sent`, `forward.retried`, `forward.rate_limited`, `forward.refused` and
//! `forward.failed.<reason>` in `counters`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::event::{CrashEvent, EventId, Level};
use crate::store::keys;
use crate::store::Store;

const SENT: &str = "forward.sent";
const RETRIED: &str = "forward.retried";
const RATE_LIMITED: &str = "forward.rate_limited";
const REFUSED: &str = "forward.refused";
const FAILED_PREFIX: &str = "forward.failed.";

/// What is known of an event not yet taken by the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsent {
    /// Tries that failed and will be retried.
    #[serde(default)]
    pub attempts: u32,
    /// When the first try failed (microseconds since the epoch), for the give-up age.
    #[serde(default)]
    pub first_failure_us: Option<u64>,
    /// What the last failed try found.
    #[serde(default)]
    pub last_error: String,
}

/// Why an event was given up, with the server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The reason, as counted: `status_400`, `status_413`, `gave_up`, ...
    pub reason: String,
    /// The server's answer (status and the start of its body), or the last error.
    pub answer: String,
}

/// Counts of forwarding, kept in the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardCounts {
    /// Events waiting in the outbox.
    pub pending: u64,
    /// Events the server took.
    pub sent: u64,
    /// Failed tries that were retried.
    pub retried: u64,
    /// Answers that asked for a wait (429, a rate limit), each waited out; not failures.
    #[serde(default)]
    pub rate_limited: u64,
    /// Answers that refused us as a whole (401, 403, 404, 407: a rotated key, a proxy in
    /// maintenance), each followed by a pause; the events are kept until `give_up_after`,
    /// not failed.
    #[serde(default)]
    pub refused: u64,
    /// Events given up, by reason (`status_400`, `status_413`, `gave_up`, ...).
    pub failed: BTreeMap<String, u64>,
}

impl ForwardCounts {
    /// Events given up, all reasons.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// Which events a store marks as unsent when it stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutboxMarks {
    /// The lowest level marked; events below it are not forwarded.
    pub(crate) min_level: Level,
}

// What writes the outbox runs only in a build with forwarding.
#[cfg_attr(not(feature = "forward"), allow(dead_code))]
impl Store {
    /// The outbox records of `events` that are to be forwarded, as a batch for the
    /// `outbox` tree.
    pub(crate) fn outbox_batch_of(&self, events: &[CrashEvent]) -> Option<sled::Batch> {
        let marks = self.outbox_marks?;
        let mut batch = sled::Batch::default();
        let record = keys::encode(&Unsent::default());
        for e in events.iter().filter(|e| e.level >= marks.min_level) {
            batch.insert(&e.id.to_bytes(), record.clone());
        }
        Some(batch)
    }

    /// Up to `limit` unsent events' ids and records, oldest first, from `after` on
    /// (exclusive).
    pub fn unsent(
        &self,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<(EventId, Unsent)>, StoreError> {
        let start = after.map_or(0, |a| a.0.saturating_add(1));
        let mut out = Vec::new();
        for item in self.outbox.range(start.to_be_bytes()..) {
            let (k, v) = item?;
            let Some(id) = keys::id_of_event_key(&k) else {
                continue;
            };
            let unsent = keys::decode(&v, || format!("outbox/{id}"))?;
            out.push((id, unsent));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Events waiting in the outbox (counted one by one: sled keeps no length).
    pub fn unsent_count(&self) -> usize {
        self.outbox.len()
    }

    /// Whether any event waits in the outbox, without counting them.
    pub(crate) fn has_unsent(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Marks events as unsent (a backfill): those already in the outbox keep their
    /// records.
    pub(crate) fn mark_unsent(&self, ids: &[EventId]) -> Result<(), StoreError> {
        let record = keys::encode(&Unsent::default());
        for id in ids {
            let _ = self.outbox.compare_and_swap(
                id.to_bytes(),
                None as Option<&[u8]>,
                Some(record.clone()),
            )?;
        }
        Ok(())
    }

    /// Calls `visit` with every readable event captured at or after `since_us`, oldest
    /// first.
    pub(crate) fn visit_all_from(
        &self,
        since_us: u64,
        mut visit: impl FnMut(&CrashEvent),
    ) -> Result<(), StoreError> {
        self.visit_events(
            EventId::floor(since_us)..EventId(u128::MAX),
            false,
            |block, i| {
                if let Ok(e) = block.event(i) {
                    visit(&e);
                }
                Ok(true)
            },
        )
    }

    /// The server took these events: one write removes them all from the outbox.
    pub(crate) fn mark_sent(&self, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&id.to_bytes());
        }
        self.outbox.apply_batch(batch)?;
        self.count(SENT, ids.len() as u64)
    }

    /// A try failed and will be retried.
    pub(crate) fn mark_retried(&self, id: EventId, unsent: &Unsent) -> Result<(), StoreError> {
        self.outbox.insert(id.to_bytes(), keys::encode(unsent))?;
        self.count(RETRIED, 1)
    }

    /// The server asked for a wait (a rate limit): counted; the event keeps its record.
    pub(crate) fn count_rate_limited(&self) -> Result<(), StoreError> {
        self.count(RATE_LIMITED, 1)
    }

    /// The server refused us as a whole: the event keeps its record (for the give-up age),
    /// and the answer is counted.
    pub(crate) fn mark_refused(&self, id: EventId, unsent: &Unsent) -> Result<(), StoreError> {
        self.outbox.insert(id.to_bytes(), keys::encode(unsent))?;
        self.count(REFUSED, 1)
    }

    /// The event is given up: out of the outbox, its refusal kept and counted.
    pub(crate) fn mark_failed(&self, id: EventId, refusal: &Refusal) -> Result<(), StoreError> {
        self.forward_failed
            .insert(id.to_bytes(), keys::encode(refusal))?;
        self.outbox.remove(id.to_bytes())?;
        self.count(&format!("{FAILED_PREFIX}{}", refusal.reason), 1)
    }

    /// Why the event was given up, when it was.
    pub fn forward_refusal(&self, id: EventId) -> Result<Option<Refusal>, StoreError> {
        match self.forward_failed.get(id.to_bytes())? {
            Some(v) => Ok(Some(keys::decode(&v, || format!("forward_failed/{id}"))?)),
            None => Ok(None),
        }
    }

    /// Pending, sent, retried, rate-limited, refused and failed by reason.
    pub fn forward_counts(&self) -> Result<ForwardCounts, StoreError> {
        let read = |name: &str| -> Result<u64, StoreError> {
            Ok(self
                .counters
                .get(keys::counter_key(name))?
                .map(|v| keys::u64_of(&v))
                .unwrap_or(0))
        };
        let mut failed = BTreeMap::new();
        for item in self.counters.scan_prefix(FAILED_PREFIX.as_bytes()) {
            let (k, v) = item?;
            let reason = String::from_utf8_lossy(&k[FAILED_PREFIX.len()..]).into_owned();
            failed.insert(reason, keys::u64_of(&v));
        }
        Ok(ForwardCounts {
            pending: self.outbox.len() as u64,
            sent: read(SENT)?,
            retried: read(RETRIED)?,
            rate_limited: read(RATE_LIMITED)?,
            refused: read(REFUSED)?,
            failed,
        })
    }

    fn count(&self, name: &str, n: u64) -> Result<(), StoreError> {
        self.counters
            .update_and_fetch(keys::counter_key(name), |old| {
                let v = old.map(keys::u64_of).unwrap_or(0).saturating_add(n);
                Some(v.to_be_bytes().to_vec())
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(dir: &std::path::Path, marks: Option<OutboxMarks>) -> Store {
        Store::open_marking(&dir.join("db"), crate::store::DEFAULT_CACHE_BYTES, marks).unwrap()
    }

    // Regression: events stored while forwarding is on must be marked unsent in the same
    // write, those below the minimum level not at all, and the marks must outlive the
    // process (a restart sends what was not sent, oldest first).
    #[test]
    fn stored_events_are_marked_unsent_and_the_marks_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let marks = Some(OutboxMarks {
            min_level: Level::Error,
        });
        {
            let store = opened(dir.path(), marks);
            let mut low = CrashEvent::sample(5, "low");
            low.level = Level::Info;
            store
                .insert_batch(&[CrashEvent::sample(9, "b"), CrashEvent::sample(3, "a"), low])
                .unwrap();
            store.flush().unwrap();
        }
        let store = opened(dir.path(), marks);
        let ids: Vec<u128> = store
            .unsent(None, 10)
            .unwrap()
            .iter()
            .map(|(id, _)| id.0)
            .collect();
        assert_eq!(ids, [3, 9]);
        assert_eq!(store.unsent(Some(EventId(3)), 10).unwrap()[0].0, EventId(9));
        store.mark_sent(&[EventId(3)]).unwrap();
        let retried = Unsent {
            attempts: 1,
            first_failure_us: Some(7),
            last_error: "503".into(),
        };
        store.mark_retried(EventId(9), &retried).unwrap();
        assert_eq!(store.unsent(None, 10).unwrap(), [(EventId(9), retried)]);
        let refusal = Refusal {
            reason: "status_400".into(),
            answer: "400 bad envelope".into(),
        };
        store.mark_failed(EventId(9), &refusal).unwrap();
        assert_eq!(store.forward_refusal(EventId(9)).unwrap(), Some(refusal));
        let counts = store.forward_counts().unwrap();
        assert_eq!(
            (
                counts.pending,
                counts.sent,
                counts.retried,
                counts.failed_total()
            ),
            (0, 1, 1, 1)
        );
        assert_eq!(counts.failed["status_400"], 1);
        // Without forwarding, nothing is marked.
        drop(store);
        let store = opened(dir.path(), None);
        store.insert_batch(&[CrashEvent::sample(20, "c")]).unwrap();
        assert_eq!(store.unsent_count(), 0);
    }
}
