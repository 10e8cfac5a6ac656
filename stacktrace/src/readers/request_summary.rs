//! Tracked requests summed up by path or by status (requests, server errors, mean, 95th
//! percentile and slowest time), and the slowest of them: what the `requests` command and
//! the dashboard's requests page show over the latest entries of the tracking log.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::TrackedRequest;

/// Requests of one path or one status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub(crate) struct RequestSummary {
    /// The path, or the status as text.
    pub(crate) key: String,
    pub(crate) requests: u64,
    /// Answered with a 5xx status.
    pub(crate) server_errors: u64,
    pub(crate) mean_us: u64,
    pub(crate) p95_us: u64,
    pub(crate) max_us: u64,
    /// The latest request's start.
    pub(crate) last_us: u64,
}

/// What to sum requests up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub(crate) enum SummaryKey {
    Path,
    Status,
}

/// The requests summed up by `by`, the most requested first (ties: the slowest first).
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub(crate) fn summaries_of(rows: &[TrackedRequest], by: SummaryKey) -> Vec<RequestSummary> {
    let mut groups: HashMap<String, Vec<&TrackedRequest>> = HashMap::new();
    for r in rows {
        let key = match by {
            SummaryKey::Path => r.path.clone(),
            SummaryKey::Status => r.status.to_string(),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut out: Vec<RequestSummary> = groups
        .into_iter()
        .map(|(key, rs)| {
            let mut times: Vec<u64> = rs.iter().map(|r| r.duration_us).collect();
            times.sort_unstable();
            let n = times.len() as u64;
            let total: u128 = times.iter().map(|&t| u128::from(t)).sum();
            // Nearest rank: the smallest time at or above 95% of the requests.
            let rank = (times.len() * 95).div_ceil(100).max(1) - 1;
            RequestSummary {
                key,
                requests: n,
                server_errors: rs.iter().filter(|r| r.status >= 500).count() as u64,
                mean_us: u64::try_from(total / u128::from(n.max(1))).unwrap_or(u64::MAX),
                p95_us: times.get(rank).copied().unwrap_or_default(),
                max_us: times.last().copied().unwrap_or_default(),
                last_us: rs.iter().map(|r| r.timestamp_us).max().unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(b.max_us.cmp(&a.max_us))
            .then(a.key.cmp(&b.key))
    });
    out
}

/// The `n` slowest requests, slowest first (ties: the newest first).
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub(crate) fn slowest_of(mut rows: Vec<TrackedRequest>, n: usize) -> Vec<TrackedRequest> {
    rows.sort_by(|a, b| {
        b.duration_us
            .cmp(&a.duration_us)
            .then(b.timestamp_us.cmp(&a.timestamp_us))
    });
    rows.truncate(n);
    rows
}

/// `812 µs`, `45.6 ms`, `1.23 s`.
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub(crate) fn duration_text(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_errors_and_times_per_key() {
        let mut rows: Vec<TrackedRequest> = (1..=20)
            .map(|i| TrackedRequest::sample(i, "/a", 200, i * 100))
            .collect();
        rows.push(TrackedRequest::sample(30, "/b", 500, 7));
        rows.push(TrackedRequest::sample(31, "/b", 503, 9));
        let by_path = summaries_of(&rows, SummaryKey::Path);
        assert_eq!(by_path.len(), 2);
        let a = &by_path[0];
        assert_eq!((a.key.as_str(), a.requests, a.server_errors), ("/a", 20, 0));
        assert_eq!(
            (a.mean_us, a.p95_us, a.max_us, a.last_us),
            (1050, 1900, 2000, 20)
        );
        let b = &by_path[1];
        assert_eq!(
            (b.requests, b.server_errors, b.mean_us, b.max_us),
            (2, 2, 8, 9)
        );
        let by_status = summaries_of(&rows, SummaryKey::Status);
        let keys: Vec<&str> = by_status.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["200", "503", "500"]);
        assert!(summaries_of(&[], SummaryKey::Path).is_empty());
    }

    #[test]
    fn slowest_first_and_durations_read_well() {
        let rows = vec![
            TrackedRequest::sample(1, "/x", 200, 5),
            TrackedRequest::sample(2, "/y", 200, 50),
            TrackedRequest::sample(3, "/z", 200, 50),
        ];
        let s = slowest_of(rows, 2);
        assert_eq!(s.iter().map(|r| r.timestamp_us).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(duration_text(812), "812 µs");
        assert_eq!(duration_text(45_600), "45.6 ms");
        assert_eq!(duration_text(1_234_000), "1.23 s");
    }
}
