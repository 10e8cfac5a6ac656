//! Retention: removing events by age and by count, oldest first.

use std::time::SystemTime;

use crate::error::StoreError;
use crate::model::event::EventId;
use crate::model::time::to_us;
use crate::store::db::Store;

impl Store {
    /// Removes the events captured before `time`; returns how many. Groups keep their
    /// counts and first-seen times.
    pub fn purge_before(&self, time: SystemTime) -> Result<u64, StoreError> {
        self.remove_and_flush(EventId::floor(to_us(time)))
    }

    /// Keeps the newest `n` events and removes the rest; returns how many were removed.
    pub fn keep_latest(&self, n: usize) -> Result<u64, StoreError> {
        // The (n+1)-th newest event and everything older go.
        match self.nth_newest(n)? {
            Some(first_gone) => self.remove_and_flush(EventId(first_gone.0.saturating_add(1))),
            None => Ok(0),
        }
    }

    fn remove_and_flush(&self, boundary: EventId) -> Result<u64, StoreError> {
        let removed = self.remove_below(boundary)?;
        self.flush()?;
        Ok(removed)
    }
}
