//! Times on the command line: `2h` (ago), `7d`, `1h30m`, `3 days ago`, `now`, `2026-01-31`,
//! `2026-01-31T14:05Z`, `2026-01-31 14:05:09`, `2026-01-31T14:05:09+02:00`, `@1767225600`
//! (Unix seconds). Dates and times without an offset are UTC. Durations and dates are read
//! by `jiff`.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::model::time::timestamp_of_us;

const SECOND_US: u64 = 1_000_000;

/// Microseconds since the epoch of a time given on the command line, relative to `now_us`.
pub(crate) fn us_of_when(text: &str, now_us: u64) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid time {text:?}: expected a duration ago (30m, 2h, 7d, 1w, 1h30m, 3 days ago), \
             now, a date (2026-01-31), a UTC date and time (2026-01-31T14:05:09Z) or \
             @UNIX_SECONDS"
        )
    };
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_us);
    }
    if let Some(secs) = t.strip_prefix('@') {
        return secs
            .parse::<u64>()
            .map(|s| s.saturating_mul(SECOND_US))
            .map_err(|_| bad());
    }
    if let Ok(span) = t.parse::<Span>() {
        return Ok(us_before(now_us, span));
    }
    us_of_datetime(t).ok_or_else(bad)
}

/// The instant a span before `now_us` (`2h` and `2h ago` alike), in UTC's calendar (a month
/// back from March 31 is February's last day); 0 before the epoch.
fn us_before(now_us: u64, span: Span) -> u64 {
    timestamp_of_us(now_us)
        .to_zoned(TimeZone::UTC)
        .checked_sub(span.abs())
        .ok()
        .and_then(|then| u64::try_from(then.timestamp().as_microsecond()).ok())
        .unwrap_or(0)
}

/// An RFC 3339 instant with its offset, or a civil date and time (`2026-01-31`,
/// `2026-01-31T14:05`, `2026-01-31 14:05:09.5`, an optional `Z`) read as UTC.
fn us_of_datetime(t: &str) -> Option<u64> {
    let instant = match t.parse::<Timestamp>() {
        Ok(instant) => instant,
        Err(_) => {
            let civil: DateTime = t.strip_suffix('Z').unwrap_or(t).parse().ok()?;
            TimeZone::UTC.to_timestamp(civil).ok()?
        }
    };
    u64::try_from(instant.as_microsecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000 * SECOND_US;

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(us_of_when("2h", NOW).unwrap(), NOW - 7_200 * SECOND_US);
        assert_eq!(
            us_of_when("7d ago", NOW).unwrap(),
            NOW - 7 * 86_400 * SECOND_US
        );
        assert_eq!(us_of_when("now", NOW).unwrap(), NOW);
        assert_eq!(us_of_when("1w", NOW).unwrap(), NOW - 604_800 * SECOND_US);
        assert_eq!(us_of_when("90s", NOW).unwrap(), NOW - 90 * SECOND_US);
        assert_eq!(
            us_of_when("1h30m", NOW).unwrap(),
            us_of_when("90 minutes ago", NOW).unwrap()
        );
        assert_eq!(us_of_when("2h", 1_000).unwrap(), 0, "before the epoch is 0");
    }

    #[test]
    fn dates_and_times_are_utc() {
        assert_eq!(
            us_of_when("2000-02-29", NOW).unwrap(),
            951_782_400 * SECOND_US
        );
        assert_eq!(
            us_of_when("2000-02-29T01:02:03.5Z", NOW).unwrap(),
            (951_782_400 + 3_723) * SECOND_US + 500_000
        );
        assert_eq!(
            us_of_when("2000-02-29 01:02", NOW).unwrap(),
            (951_782_400 + 3_720) * SECOND_US
        );
        assert_eq!(us_of_when("@10", NOW).unwrap(), 10 * SECOND_US);
        assert_eq!(
            us_of_when("2000-02-29T02:02:03+01:00", NOW).unwrap(),
            (951_782_400 + 3_723) * SECOND_US
        );
    }

    #[test]
    fn nonsense_is_an_error_naming_it() {
        for bad in [
            "yesterday",
            "2000-13-01",
            "2000-1-1",
            "5x",
            "",
            "2000-01-01T25:00",
        ] {
            let e = us_of_when(bad, NOW).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
