//! Trends: how many events fell in each hour or day of a window, for all events, a group or
//! a query. A group's or the whole store's trend is counted from keys alone (an event id
//! starts with its capture time), without decoding an event.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{QueryError, StoreError};
use crate::model::event::EventId;
use crate::model::time::{now_us, to_us};
use crate::store::db::Store;
use crate::store::events::query::Query;
use crate::store::keys::Field;

const HOUR_US: u64 = 3_600_000_000;
const DAY_US: u64 = 24 * HOUR_US;

/// The width of one bar of a [`Trend`]. Buckets start on whole UTC hours or days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One hour.
    #[default]
    Hour,
    /// One UTC day.
    Day,
}

impl Interval {
    /// The interval's length in microseconds.
    pub fn as_us(self) -> u64 {
        match self {
            Interval::Hour => HOUR_US,
            Interval::Day => DAY_US,
        }
    }

    /// The lower-case name (`hour`, `day`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hour" | "hours" | "hourly" | "h" => Ok(Interval::Hour),
            "day" | "days" | "daily" | "d" => Ok(Interval::Day),
            _ => Err(format!("unknown interval {s:?}: expected hour or day")),
        }
    }
}

/// Which buckets a trend counts: `buckets` intervals, the last one holding `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    interval: Interval,
    buckets: usize,
    end_us: u64,
}

impl Window {
    /// The last `buckets` intervals up to and including the current one.
    ///
    /// ```
    /// use stacktrace::{Interval, Window};
    /// let day = Window::last(Interval::Hour, 24);
    /// assert_eq!(day.buckets(), 24);
    /// ```
    pub fn last(interval: Interval, buckets: usize) -> Window {
        Window::ending_at_us(interval, buckets, now_us())
    }

    /// `buckets` intervals, the last one holding `end`.
    pub fn ending_at(interval: Interval, buckets: usize, end: SystemTime) -> Window {
        Window::ending_at_us(interval, buckets, to_us(end))
    }

    /// `buckets` intervals, the last one holding `end_us` (microseconds since the epoch).
    pub fn ending_at_us(interval: Interval, buckets: usize, end_us: u64) -> Window {
        Window {
            interval,
            buckets: buckets.clamp(1, 10_000),
            end_us,
        }
    }

    /// The width of a bucket.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// How many buckets.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// Start of the first bucket, microseconds since the epoch.
    pub fn start_us(&self) -> u64 {
        let width = self.interval.as_us();
        let last = self.end_us - self.end_us % width;
        last.saturating_sub(width * (self.buckets as u64 - 1))
    }

    /// End of the last bucket (exclusive), microseconds since the epoch.
    pub fn end_us(&self) -> u64 {
        let width = self.interval.as_us();
        (self.end_us - self.end_us % width).saturating_add(width)
    }

    fn empty(&self) -> Trend {
        Trend {
            interval: self.interval,
            start_us: self.start_us(),
            counts: vec![0; self.buckets],
        }
    }
}

/// Events per interval, oldest bucket first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trend {
    /// The width of a bucket.
    pub interval: Interval,
    /// Start of the first bucket, microseconds since the epoch.
    pub start_us: u64,
    /// Events in each bucket, oldest first.
    pub counts: Vec<u64>,
}

impl Trend {
    /// Events in the whole window.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The largest bucket's count.
    pub fn max(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }

    /// Each bucket's start (microseconds since the epoch) with its count, oldest first.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let width = self.interval.as_us();
        self.counts
            .iter()
            .enumerate()
            .map(move |(i, n)| (self.start_us + width * i as u64, *n))
    }

    fn add(&mut self, timestamp_us: u64) {
        self.add_many(timestamp_us, 1);
    }

    fn add_many(&mut self, timestamp_us: u64, many: u64) {
        if timestamp_us < self.start_us {
            return;
        }
        let i = (timestamp_us - self.start_us) / self.interval.as_us();
        if let Some(n) = usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
            *n += many;
        }
    }
}

impl Store {
    /// Events of every kind per interval over a window, counted from the time-ordered keys,
    /// with the repeats counted into groups without their events (a burst past the
    /// writer's queue) in the hour they were counted.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = stacktrace::Store::open(dir.path().join("db")).unwrap();
    /// use stacktrace::{Interval, Window};
    /// let trend = store.trend(Window::last(Interval::Day, 7))?;
    /// assert_eq!(trend.counts.len(), 7);
    /// # Ok::<(), stacktrace::StoreError>(())
    /// ```
    pub fn trend(&self, window: Window) -> Result<Trend, StoreError> {
        let mut trend = window.empty();
        let range = EventId::floor(window.start_us())..EventId::floor(window.end_us());
        self.visit_events(range, false, |block, i| {
            trend.add(block.id(i).timestamp_us());
            Ok(true)
        })?;
        for (hour, n) in self.repeats_by_hour(None, window.start_us(), window.end_us())? {
            trend.add_many(hour, n);
        }
        Ok(trend)
    }

    /// The capture times (microseconds since the epoch) of the oldest and the newest stored
    /// event; `None` when there is none. Where a trend or a purge can start.
    pub fn time_span(&self) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self
            .id_span()?
            .map(|(a, b)| (a.timestamp_us(), b.timestamp_us())))
    }

    /// One group's events per interval over a window, counted from its index entries, with
    /// its repeats counted without their events (see [`Store::trend`]).
    pub fn group_trend(&self, fingerprint: &str, window: Window) -> Result<Trend, StoreError> {
        let mut trend = window.empty();
        let lower = EventId::floor(window.start_us());
        let upper = EventId::floor(window.end_us());
        // Ids below this may be of removed events: those are looked up.
        let purged_below = self.purged_below()?;
        let ids =
            self.postings
                .descending(Field::Fingerprint, fingerprint.as_bytes(), lower, upper);
        for id in ids {
            let id = id?;
            if id >= purged_below || self.contains_event(id)? {
                trend.add(id.timestamp_us());
            }
        }
        let repeats =
            self.repeats_by_hour(Some(fingerprint), window.start_us(), window.end_us())?;
        for (hour, n) in repeats {
            trend.add_many(hour, n);
        }
        Ok(trend)
    }
}

impl Query<'_> {
    /// The matching events per interval over a window (the limit is ignored).
    pub fn trend(&self, window: Window) -> Result<Trend, QueryError> {
        let mut trend = window.empty();
        let (start, end) = (window.start_us(), window.end_us());
        // Newest first: events after the window are skipped, the first one before it ends
        // the scan.
        self.for_each(|e| {
            if e.timestamp_us >= end {
                return true;
            }
            if e.timestamp_us < start {
                return false;
            }
            trend.add(e.timestamp_us);
            true
        })?;
        Ok(trend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_aligns_to_whole_buckets() {
        let end = 10 * DAY_US + 5 * HOUR_US + 17;
        let w = Window::ending_at_us(Interval::Hour, 3, end);
        assert_eq!(w.end_us(), 10 * DAY_US + 6 * HOUR_US);
        assert_eq!(w.start_us(), 10 * DAY_US + 3 * HOUR_US);
        let d = Window::ending_at_us(Interval::Day, 2, end);
        assert_eq!((d.start_us(), d.end_us()), (9 * DAY_US, 11 * DAY_US));
    }

    #[test]
    fn trend_counts_into_buckets_and_ignores_outside() {
        let w = Window::ending_at_us(Interval::Hour, 3, 3 * HOUR_US - 1);
        let mut t = w.empty();
        for ts in [0, 1, HOUR_US, 3 * HOUR_US - 1, 3 * HOUR_US] {
            t.add(ts);
        }
        assert_eq!(t.counts, [2, 1, 1]);
        assert_eq!((t.total(), t.max()), (4, 2));
        assert_eq!(t.buckets().nth(1), Some((HOUR_US, 1)));
    }

    #[test]
    fn interval_names_parse() {
        assert_eq!("Daily".parse::<Interval>().unwrap(), Interval::Day);
        assert!("week".parse::<Interval>().unwrap_err().contains("week"));
    }
}
