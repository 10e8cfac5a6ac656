//! Times on the command line: `2h` (ago), `7d`, `now`, `2026-01-31`, `2026-01-31T14:05Z`,
//! `2026-01-31 14:05:09`, `@1767225600` (Unix seconds). Dates and times are UTC.

use crate::model::time::days_from_civil;

const SECOND_US: u64 = 1_000_000;

/// Microseconds since the epoch of a time given on the command line, relative to `now_us`.
pub(crate) fn us_of_when(text: &str, now_us: u64) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid time {text:?}: expected a duration ago (30m, 2h, 7d, 1w), now, a date \
             (2026-01-31), a UTC date and time (2026-01-31T14:05:09Z) or @UNIX_SECONDS"
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
    if let Some(d) = us_of_duration(t.trim_end_matches(" ago")) {
        return Ok(now_us.saturating_sub(d));
    }
    us_of_datetime(t).ok_or_else(bad)
}

/// `90s`, `30m`, `2h`, `7d`, `1w` in microseconds.
pub(crate) fn us_of_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let unit_secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    Some(n.saturating_mul(unit_secs).saturating_mul(SECOND_US))
}

fn number<T: std::str::FromStr>(s: Option<&str>, len: usize) -> Option<T> {
    let s = s?;
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.frac]]`, optionally
/// `Z`; all UTC.
fn us_of_datetime(t: &str) -> Option<u64> {
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut d = date.split('-');
    let year: i64 = number(d.next(), 4)?;
    let month: u32 = number(d.next(), 2)?;
    let day: u32 = number(d.next(), 2)?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs: u64 = 0;
    let mut micros: u64 = 0;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (time, None),
        };
        let mut p = hms.split(':');
        let h: u64 = number(p.next(), 2)?;
        let m: u64 = number(p.next(), 2)?;
        let s: u64 = match p.next() {
            Some(s) => number(Some(s), 2)?,
            None => 0,
        };
        if p.next().is_some() || h > 23 || m > 59 || s > 60 {
            return None;
        }
        secs = h * 3600 + m * 60 + s;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            micros = format!("{f:0<6}").parse().ok()?;
        }
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some((days * 86_400 + secs) * SECOND_US + micros)
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
        assert_eq!(us_of_duration("1w"), Some(604_800 * SECOND_US));
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
