//! Time: microseconds since the Unix epoch, and the calendar and texts of such instants
//! (UTC, proleptic Gregorian), in one place. The clock is read with `std` (captures read it);
//! the calendar and its texts come from `jiff`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
    to_us(SystemTime::now())
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// The instant the monotonic clock is counted from (the first time it is asked for).
static ORIGIN: OnceLock<Instant> = OnceLock::new();
#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// The wall clock's distance from [`ORIGIN`] in microseconds, as last read; 0 before the
/// first read.
static WALL_AT_ORIGIN_US: AtomicU64 = AtomicU64::new(0);

#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// Reads the wall clock again for [`wall_us_of`], so that a wall clock set since the
/// last read is followed; returns the wall clock's microseconds at [`ORIGIN`].
pub(crate) fn read_wall_clock() -> u64 {
    let origin = *ORIGIN.get_or_init(Instant::now);
    let mono = Instant::now().saturating_duration_since(origin);
    let wall = now_us().saturating_sub(u64::try_from(mono.as_micros()).unwrap_or(u64::MAX));
    // Never 0, which means "not read yet".
    let wall = wall.max(1);
    WALL_AT_ORIGIN_US.store(wall, Ordering::Relaxed);
    wall
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
/// Microseconds since the Unix epoch of an instant, without reading the clock again: the
/// monotonic distance from the last wall clock read ([`read_wall_clock`], which whoever
/// reads this often calls now and then). A request's start is taken this way, so that a
/// request reads the clock once when it starts and once when it ends.
pub(crate) fn wall_us_of(at: Instant) -> u64 {
    let origin = *ORIGIN.get_or_init(Instant::now);
    let wall = match WALL_AT_ORIGIN_US.load(Ordering::Relaxed) {
        0 => read_wall_clock(),
        wall => wall,
    };
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    match at.checked_duration_since(origin) {
        Some(after) => wall.saturating_add(us(after)),
        None => wall.saturating_sub(us(origin.saturating_duration_since(at))),
    }
}

/// Microseconds since the Unix epoch of a system time (0 before the epoch, saturating).
pub fn to_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The system time of a count of microseconds since the Unix epoch.
pub fn from_us(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// The instant of a count of microseconds since the Unix epoch; past the last instant the
/// calendar holds (late on 9999-12-30), that last instant.
pub(crate) fn timestamp_of_us(us: u64) -> Timestamp {
    i64::try_from(us)
        .ok()
        .and_then(|us| Timestamp::from_microsecond(us).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg_attr(not(any(feature = "dashboard", feature = "mail")), allow(dead_code))]
/// `2026-01-31 14:05:09` (UTC) of microseconds since the epoch, for people.
pub(crate) fn utc_text(us: u64) -> String {
    // jiff's RFC 3339 printer (`2026-01-31T14:05:09Z`, a 4-digit year from 1970 on), with a
    // space for the `T` and no `Z`: several times cheaper than formatting the fields.
    let mut text = format!("{:.0}", timestamp_of_us(us));
    text.pop();
    if text.get(10..11) == Some("T") {
        text.replace_range(10..11, " ");
    }
    text
}

/// `2026-11-21T04:43:50.123456Z` from microseconds since the epoch.
pub(crate) fn rfc3339(us: u64) -> String {
    format!("{:.6}", timestamp_of_us(us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_placed_on_the_wall_clock() {
        let before = Instant::now() - Duration::from_millis(1500);
        read_wall_clock();
        let now = now_us();
        let at_now = wall_us_of(Instant::now());
        // Read a moment apart: within the time a busy machine may take between them.
        assert!(at_now.abs_diff(now) < 250_000, "{at_now} against {now}");
        // An instant from before the clock's origin, 1.5 s back.
        let back = now.saturating_sub(wall_us_of(before));
        assert!(
            (1_250_000..1_750_000).contains(&back),
            "{back} µs back instead of 1.5 s"
        );
    }

    #[test]
    fn utc_text_of_known_instants() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00");
        assert_eq!(utc_text(951_782_400_000_001), "2000-02-29 00:00:00");
        assert_eq!(utc_text(1_795_235_030_999_999), "2026-11-21 04:23:50");
        // Past the calendar's end: its last instant, not a panic.
        let last = u64::try_from(Timestamp::MAX.as_microsecond()).unwrap();
        assert_eq!(utc_text(u64::MAX), utc_text(last));
        assert!(utc_text(u64::MAX).starts_with("9999-12-"));
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            rfc3339(1_795_235_030_500_000),
            "2026-11-21T04:23:50.500000Z"
        );
        assert!(rfc3339(u64::MAX).starts_with("9999-12-"));
    }
}
