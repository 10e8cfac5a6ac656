//! `requests`: the request-tracking log of the HTTP layer, newest or slowest first, or summed
//! up by path or status.

use std::time::Duration;

use serde_json::json;

use super::args::{ByArg, RequestsArgs};
use super::output::{cell, Out, Table};
use super::run::CliError;
use super::when::us_of_when;
use crate::model::time::utc_text;
use crate::model::time::{from_us, now_us};
use crate::readers::request_summary::{duration_text, slowest_of, summaries_of, SummaryKey};
use crate::readers::wording::counted;
use crate::{Store, TrackedRequest};

/// A status filter: one status, or a class such as `5xx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusFilter {
    Exact(u16),
    Class(u16),
}

fn status_filter_of(text: &str) -> Result<StatusFilter, CliError> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || {
        CliError::Usage(format!(
            "invalid status {text:?}: expected a status such as 404 or a class such as 5xx"
        ))
    };
    if let Some(class) = t.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) if class.len() == 1 => Ok(StatusFilter::Class(c)),
            _ => Err(bad()),
        };
    }
    match t.parse::<u16>() {
        Ok(s @ 100..=999) if t.len() == 3 => Ok(StatusFilter::Exact(s)),
        _ => Err(bad()),
    }
}

/// `1s`, `250ms`, `1.5s`, `2m`, `500us`, `1h`.
pub(crate) fn duration_of(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_us = match unit.trim() {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" | "sec" | "secs" => 1e6,
        "m" | "min" | "mins" => 6e7,
        "h" | "hour" | "hours" => 3.6e9,
        _ => return None,
    };
    let us = (n * unit_us).round();
    (us.is_finite() && us < 1.8e19).then(|| Duration::from_micros(us as u64))
}

/// The rows the filters accept, newest first: at most `limit` when the query itself can stop
/// there, every match otherwise (the log is capped, so that is bounded).
fn matching(
    store: &Store,
    a: &RequestsArgs,
    status: Option<StatusFilter>,
    limit: usize,
) -> Result<Vec<TrackedRequest>, CliError> {
    let now = now_us();
    let mut q = store.tracked();
    if let Some(d) = &a.slower_than {
        let d = duration_of(d).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid duration {d:?}: expected a number and a unit, such as 1s, 250ms or 1.5s"
            ))
        })?;
        q = q.slower_than(d);
    }
    if let Some(s) = &a.since {
        q = q.since(from_us(us_of_when(s, now).map_err(CliError::Usage)?));
    }
    if let Some([start, end]) = a.between.as_deref() {
        q = q
            .since(from_us(us_of_when(start, now).map_err(CliError::Usage)?))
            .until(from_us(us_of_when(end, now).map_err(CliError::Usage)?));
    }
    if let Some(p) = &a.path {
        q = q.path(p.as_str());
    }
    let whole = match status {
        Some(StatusFilter::Exact(s)) => {
            q = q.status(s);
            a.slowest || a.by.is_some()
        }
        Some(StatusFilter::Class(_)) => true,
        None => a.slowest || a.by.is_some(),
    };
    let (rows, damaged) = q
        .limit(if whole { usize::MAX } else { limit })
        .run_skipping_damaged()?;
    for e in &damaged {
        eprintln!("skipped: {}", crate::diag::error_chain(e));
    }
    Ok(match status {
        Some(StatusFilter::Class(c)) => rows.into_iter().filter(|r| r.status / 100 == c).collect(),
        _ => rows,
    })
}

pub(crate) fn requests(
    store: &Store,
    a: &RequestsArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let status = a.status.as_deref().map(status_filter_of).transpose()?;
    let limit = super::commands::all_if_zero(a.limit);
    let rows = matching(store, a, status, limit)?;
    if let Some(by) = a.by {
        return summaries(rows, by, limit, json, out);
    }
    let rows = if a.slowest {
        slowest_of(rows, limit)
    } else {
        let mut rows = rows;
        rows.truncate(limit);
        rows
    };
    if json {
        out.json(&json!({ "requests": rows }))?;
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("no requests match (requests are tracked when the app's StacktraceLayer has tracking on)");
        return Ok(());
    }
    let mut t = Table::new(&[
        "TIME (UTC)",
        "METHOD",
        ">STATUS",
        ">DURATION",
        "USER",
        "PATH",
    ]);
    for r in &rows {
        let path = if r.query.is_empty() {
            r.path.clone()
        } else {
            format!("{}?{}", r.path, r.query)
        };
        t.row(vec![
            utc_text(r.timestamp_us),
            cell(&r.method),
            status_text(out, r.status),
            duration_text(r.duration_us),
            cell(&r.user),
            cell(&path),
        ]);
    }
    t.print(out)?;
    Ok(())
}

fn status_text(out: &Out, status: u16) -> String {
    let style = match status {
        500.. => "31",
        400..=499 => "33",
        _ => "32",
    };
    out.paint(style, &status.to_string())
}

fn summaries(
    rows: Vec<TrackedRequest>,
    by: ByArg,
    limit: usize,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let key = match by {
        ByArg::Path => SummaryKey::Path,
        ByArg::Status => SummaryKey::Status,
    };
    let total = rows.len();
    let mut sums = summaries_of(&rows, key);
    let all = sums.len();
    sums.truncate(limit);
    if json {
        out.json(&sums)?;
        return Ok(());
    }
    if sums.is_empty() {
        eprintln!("no requests match");
        return Ok(());
    }
    let mut t = Table::new(&[
        match by {
            ByArg::Path => "PATH",
            ByArg::Status => "STATUS",
        },
        ">REQUESTS",
        ">5XX",
        ">MEAN",
        ">P95",
        ">MAX",
        "LAST (UTC)",
    ]);
    for s in &sums {
        t.row(vec![
            cell(&s.key),
            s.requests.to_string(),
            s.server_errors.to_string(),
            duration_text(s.mean_us),
            duration_text(s.p95_us),
            duration_text(s.max_us),
            utc_text(s.last_us),
        ]);
    }
    t.print(out)?;
    if sums.len() < all {
        eprintln!(
            "showing {} of {}; --limit 0 shows all",
            sums.len(),
            counted(all as u64, "row", "rows")
        );
    }
    eprintln!("{}", counted(total as u64, "request", "requests"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_fractions() {
        assert_eq!(duration_of("1s"), Some(Duration::from_secs(1)));
        assert_eq!(duration_of("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration_of("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration_of("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration_of("500us"), Some(Duration::from_micros(500)));
        for bad in ["1", "fast", "1x", "-1s", ""] {
            assert_eq!(duration_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_are_codes_or_classes() {
        assert_eq!(status_filter_of("404").unwrap(), StatusFilter::Exact(404));
        assert_eq!(status_filter_of("5xx").unwrap(), StatusFilter::Class(5));
        assert_eq!(status_filter_of("4XX").unwrap(), StatusFilter::Class(4));
        for bad in ["42", "6xx", "abc", "1000", "xx"] {
            assert!(status_filter_of(bad).is_err(), "{bad}");
        }
    }
}
