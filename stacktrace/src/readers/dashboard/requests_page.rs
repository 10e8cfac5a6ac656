//! The requests page: the request-tracking log of the HTTP layer as the slowest requests,
//! requests by path, by status, and the latest ones, with filters by path, status and time
//! taken.

use std::time::Duration;

use maud::{html, Markup};
use serde::Deserialize;

use super::html::{self, query_string, Frame};
use super::pages::PageError;
use crate::readers::request_summary::{
    duration_text, slowest_of, summaries_of, RequestSummary, SummaryKey,
};
use crate::readers::wording::counted;
use crate::{Store, TrackedRequest};

/// The latest entries the summaries cover: enough for a picture, bounded so the page stays
/// quick on a full log.
pub(crate) const SCAN: usize = 10_000;
/// Rows in each table.
const ROWS: usize = 25;

/// Parameters of the requests page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RequestsParams {
    pub(crate) path: String,
    pub(crate) status: String,
    /// Milliseconds.
    pub(crate) slower_than: String,
}

fn status_class(status: u16) -> &'static str {
    match status {
        500.. => "lv-error",
        400..=499 => "lv-warning",
        _ => "st-resolved",
    }
}

fn requests_table(base: &str, rows: &[TrackedRequest]) -> Markup {
    html! {
        table class="requests" {
            thead { tr {
                th { "Time" } th { "Method" } th { "Path" } th class="num" { "Status" }
                th class="num" { "Duration" } th { "User" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { (html::time(r.timestamp_us)) }
                        td { (r.method) }
                        td class="title" {
                            a href={ (base) "/requests" (query_string(&[("path", &r.path)])) } { (r.path) }
                            span class="muted" { @if !r.query.is_empty() { "?" (r.query) } }
                        }
                        td class="num" { span class={ "badge " (status_class(r.status)) } { (r.status) } }
                        td class="num" { (duration_text(r.duration_us)) }
                        td { (r.user) }
                    }
                }
            }
        }
        @if rows.is_empty() {
            p class="muted empty" { "No requests." }
        }
    }
}

fn summary_table(
    base: &str,
    by: SummaryKey,
    sums: &[RequestSummary],
    p: &RequestsParams,
) -> Markup {
    let (head, class) = match by {
        SummaryKey::Path => ("Path", "by-path"),
        SummaryKey::Status => ("Status", "by-status"),
    };
    let link = |key: &str| match by {
        SummaryKey::Path => query_string(&[
            ("path", key),
            ("status", &p.status),
            ("slower_than", &p.slower_than),
        ]),
        SummaryKey::Status => query_string(&[
            ("path", &p.path),
            ("status", key),
            ("slower_than", &p.slower_than),
        ]),
    };
    html! {
        table class=(class) {
            thead { tr {
                th { (head) } th class="num" { "Requests" } th class="num" { "5xx" }
                th class="num" { "Mean" } th class="num" { "95th percentile" }
                th class="num" { "Slowest" } th { "Last" }
            } }
            tbody {
                @for s in sums.iter().take(ROWS) {
                    tr {
                        td class="title" { a href={ (base) "/requests" (link(&s.key)) } { (s.key) } }
                        td class="num" { (s.requests) }
                        td class="num" { (s.server_errors) }
                        td class="num" { (duration_text(s.mean_us)) }
                        td class="num" { (duration_text(s.p95_us)) }
                        td class="num" { (duration_text(s.max_us)) }
                        td { (html::time(s.last_us)) }
                    }
                }
            }
        }
        @if sums.is_empty() {
            p class="muted empty" { "No requests." }
        }
    }
}

/// The requests page.
pub(crate) fn requests(
    store: &Store,
    frame: &Frame,
    p: &RequestsParams,
) -> Result<String, PageError> {
    let mut q = store.tracked().limit(SCAN);
    let path = p.path.trim();
    if !path.is_empty() {
        q = q.path(path);
    }
    let status = p.status.trim();
    if !status.is_empty() {
        let s: u16 = status
            .parse()
            .ok()
            .filter(|s| (100..=999).contains(s))
            .ok_or_else(|| PageError::BadInput(format!("invalid status {status:?}")))?;
        q = q.status(s);
    }
    let slower = p.slower_than.trim();
    if !slower.is_empty() {
        let ms: f64 = slower
            .parse()
            .ok()
            .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
            .ok_or_else(|| {
                PageError::BadInput(format!("invalid time {slower:?}: expected milliseconds"))
            })?;
        q = q.slower_than(Duration::from_micros((ms * 1e3) as u64));
    }
    let (rows, damaged) = q.run_skipping_damaged()?;
    let base = &frame.base;
    // What the figures below are computed from: all the matching requests, or the latest
    // `SCAN` of them.
    let n = counted(rows.len() as u64, "matching request", "matching requests");
    let covered = if rows.len() == SCAN {
        format!("the latest {n}")
    } else {
        format!("the {n}")
    };
    let body = html! {
        h1 { "Requests" }
        @for e in &damaged {
            p class="notice" { "Skipped: " (crate::diag::error_chain(e)) }
        }
        form class="filters" method="get" action={ (base) "/requests" } {
            input name="path" value=(p.path) placeholder="path, such as /checkout" aria-label="path";
            input name="status" value=(p.status) placeholder="status" aria-label="status" size="6";
            input name="slower_than" value=(p.slower_than) placeholder="slower than (ms)"
                aria-label="slower than, in milliseconds" size="14";
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p class="notice" {
                "No tracked requests match. Requests are tracked when the app's "
                code { "StacktraceLayer" } " has " code { "tracking" } " on."
            }
        } @else {
            p class="muted" id="covered" {
                "From " (covered) " (tracked from "
                (html::time(rows.last().map_or(0, |r| r.timestamp_us))) " to "
                (html::time(rows.first().map_or(0, |r| r.timestamp_us))) ")."
            }
        }
        h2 { "Slowest" }
        (requests_table(base, &slowest_of(rows.clone(), ROWS)))
        h2 { "By path" }
        (summary_table(base, SummaryKey::Path, &summaries_of(&rows, SummaryKey::Path), p))
        h2 { "By status" }
        (summary_table(base, SummaryKey::Status, &summaries_of(&rows, SummaryKey::Status), p))
        h2 { "Latest" }
        (requests_table(base, &rows[..rows.len().min(ROWS)]))
    };
    Ok(frame.page("Requests", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrackingLog;

    #[test]
    fn a_damaged_block_is_named_and_the_other_requests_shown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let mut log = TrackingLog::open(&store).unwrap();
        let base = 1_700_000_000_000_000;
        log.append(
            &[
                TrackedRequest::sample(base, "/kept-first", 200, 5),
                TrackedRequest::sample(base + 1, "/kept-second", 200, 6),
            ],
            u64::MAX,
            u64::MAX,
        )
        .unwrap();
        let damaged = crate::model::event::EventId::new(base + 2);
        store
            .tracking_tree()
            .insert(damaged.to_bytes(), vec![2, 1])
            .unwrap();
        let frame = Frame {
            base: String::new(),
            summary: String::new(),
        };
        let html = requests(&store, &frame, &RequestsParams::default()).unwrap();
        assert!(
            html.contains(&format!("Skipped: stored value tracking/{damaged}")),
            "{html}"
        );
        assert!(
            html.contains("/kept-first") && html.contains("/kept-second"),
            "{html}"
        );
    }
}
