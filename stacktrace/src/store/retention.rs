//! Retention: removing events by age and by count.

use std::time::SystemTime;

use super::db::Store;
use super::keys;
use crate::error::StoreError;
use crate::event::{to_us, CrashEvent, EventId};

impl Store {
    /// Removes the events captured before `time`; returns how many. Groups keep their
    /// counts and first-seen times.
    pub fn purge_before(&self, time: SystemTime) -> Result<u64, StoreError> {
        let end = EventId::floor(to_us(time)).to_bytes();
        self.remove_range(self.events.range(..end))
    }

    /// Keeps the newest `n` events and removes the rest; returns how many were removed.
    pub fn keep_latest(&self, n: usize) -> Result<u64, StoreError> {
        // The (n+1)-th newest event and everything older go.
        let Some(item) = self.events.iter().rev().nth(n) else {
            return Ok(0);
        };
        let (first_gone, _) = item?;
        let first_gone = first_gone.to_vec();
        self.remove_range(self.events.range(..=first_gone))
    }

    fn remove_range(&self, range: sled::Iter) -> Result<u64, StoreError> {
        let mut removed = 0;
        for item in range {
            let (k, v) = item?;
            match keys::decode::<CrashEvent>(&v, || "events/…".into()) {
                Ok(event) => self.remove(&event)?,
                // An undecodable event has no readable index entries; drop the event alone.
                Err(_) => {
                    self.events.remove(k)?;
                }
            }
            removed += 1;
        }
        self.flush()?;
        Ok(removed)
    }
}
