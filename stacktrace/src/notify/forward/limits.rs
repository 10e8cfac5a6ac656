//! The server's rate limits: `X-Sentry-Rate-Limits` and `Retry-After`, as Sentry's
//! protocol documents them.

use std::time::{Duration, SystemTime};

/// The wait when a 429 says nothing of how long.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long error events must wait, from an `X-Sentry-Rate-Limits` value:
/// `retry_after:categories:scope[:reason[:namespaces]]`, comma-separated. A limit applies
/// to our events when its categories are empty (all) or name `error` or `default`; its
/// scope (`key`, `project`, `organization`) does not matter, as one DSN is one key of one
/// project. The longest wait that applies; `None` when none does.
pub(crate) fn error_wait_of_rate_limits(value: &str) -> Option<Duration> {
    value
        .split(',')
        .filter_map(|limit| {
            let mut parts = limit.trim().split(':');
            let secs: f64 = parts.next()?.trim().parse().ok()?;
            let categories = parts.next().unwrap_or("");
            let applies = categories.trim().is_empty()
                || categories
                    .split(';')
                    .any(|c| matches!(c.trim(), "error" | "default"));
            (applies && secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
        })
        .max()
}

/// How long to wait, from a `Retry-After` value: seconds, or an HTTP date.
pub(crate) fn wait_of_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date (an IMF-fixdate, `Wed, 21 Oct 2015 07:28:00 GMT`), read by jiff's
/// RFC 2822 parser, of which it is a form.
fn http_date(text: &str) -> Option<SystemTime> {
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()?;
    Some(SystemTime::from(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_apply_by_category() {
        // Bugsink's answer to every envelope: transactions limited, errors not.
        assert_eq!(
            error_wait_of_rate_limits("86400:transaction;span:organization"),
            None
        );
        assert_eq!(
            error_wait_of_rate_limits("60::key"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            error_wait_of_rate_limits(
                "10:error:project, 30:default;error:key:quota, 99:transaction:key"
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(error_wait_of_rate_limits("garbage"), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(
            wait_of_retry_after(" 7 ", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait_of_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        // A date already past waits nothing.
        assert_eq!(
            wait_of_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(wait_of_retry_after("soon", now), None);
        assert_eq!(
            wait_of_retry_after("Wed, 32 Oct 2015 07:28:00 GMT", now),
            None
        );
    }
}
