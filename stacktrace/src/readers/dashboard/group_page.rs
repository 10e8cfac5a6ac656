//! What a group's page shows beyond its summary and its events: users affected, events by
//! release, the first and last release seen, tag value breakdowns, one event's culprit line
//! with its source and its breadcrumbs as a timeline with links to the previous and next
//! event; and the group's trends page, per hour and per day. Summed over the group's newest
//! [`MAX_SCANNED`] events.

use std::collections::{BTreeMap, HashMap, HashSet};

use maud::{html, Markup};

use super::html::{self, query_string, url_component, Frame};
use super::pages::PageError;
use super::source_view::{place, source_block};
use crate::model::time::utc_text;
use crate::readers::wording::short_title;
use crate::{CrashEvent, Group, Interval, Store, Window};

/// Events of a group read to sum up its page at most (the newest).
pub(crate) const MAX_SCANNED: usize = 5_000;
/// Values listed per tag.
const TOP_VALUES: usize = 5;

/// A release as shown: `(none)` for events stored without one.
fn release_of(e: &CrashEvent) -> &str {
    let r = e.context.program_version.as_ref();
    if r.is_empty() {
        "(none)"
    } else {
        r
    }
}

/// The dimensions a group's events are broken down by: the event's tags, and its release,
/// operating system, host and request path.
fn dimensions(e: &CrashEvent) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = vec![
        ("release", release_of(e)),
        ("os", e.context.os.as_ref()),
        ("host", e.context.hostname.as_ref()),
    ];
    if !e.request_path.is_empty() {
        out.push(("path", e.request_path.as_str()));
    }
    out.extend(e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    out
}

/// Events by release, oldest release first: (release, events, first seen, last seen).
fn by_release(events: &[CrashEvent]) -> Vec<(String, u64, u64, u64)> {
    let mut map: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for e in events {
        let entry = map
            .entry(release_of(e))
            .or_insert((0, e.timestamp_us, e.timestamp_us));
        entry.0 += 1;
        entry.1 = entry.1.min(e.timestamp_us);
        entry.2 = entry.2.max(e.timestamp_us);
    }
    let mut out: Vec<_> = map
        .into_iter()
        .map(|(r, (n, first, last))| (r.to_owned(), n, first, last))
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Each dimension's most frequent values with their counts, the dimension's total first.
fn breakdowns(events: &[CrashEvent]) -> BTreeMap<String, (u64, Vec<(String, u64)>)> {
    let mut counts: BTreeMap<&str, HashMap<&str, u64>> = BTreeMap::new();
    for e in events {
        for (k, v) in dimensions(e) {
            *counts.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(k, values)| {
            let total = values.values().sum();
            let mut top: Vec<(String, u64)> =
                values.into_iter().map(|(v, n)| (v.to_owned(), n)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(TOP_VALUES);
            (k.to_owned(), (total, top))
        })
        .collect()
}

/// A share as a percentage with no decimals below 10% and none above.
fn share(n: u64, total: u64) -> String {
    if total == 0 {
        return "0%".to_owned();
    }
    let pct = n as f64 * 100.0 / total as f64;
    if pct < 10.0 && pct > 0.0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// The sections of a group's page between its chart and its events: `selected` is the
/// event shown with its culprit and breadcrumbs (the newest when empty or unknown).
pub(crate) fn details(
    store: &Store,
    frame: &Frame,
    g: &Group,
    selected: &str,
) -> Result<Markup, PageError> {
    let events = store
        .query()
        .fingerprint(&g.fingerprint)
        .limit(MAX_SCANNED)
        .run()?
        .events;
    if events.is_empty() {
        return Ok(Markup::default());
    }
    let base = &frame.base;
    let here = format!("{base}/groups/{}", url_component(&g.fingerprint));
    let users: HashSet<&str> = events
        .iter()
        .map(|e| e.user.as_str())
        .filter(|u| !u.is_empty())
        .collect();
    let (first_release, last_release) = {
        let oldest = events.iter().min_by_key(|e| e.id).map(release_of);
        let newest = events.iter().max_by_key(|e| e.id).map(release_of);
        (oldest.unwrap_or(""), newest.unwrap_or(""))
    };
    // The event shown: the one asked for, else the newest.
    let at = events
        .iter()
        .position(|e| e.id.to_string() == selected)
        .unwrap_or(0);
    let e = &events[at];
    let link_to = |i: usize| {
        format!(
            "{here}{}#event",
            query_string(&[("event", &events[i].id.to_string())])
        )
    };
    Ok(html! {
        h2 {
            "Impact"
            @if events.len() == MAX_SCANNED {
                " " span class="muted" { "(of the newest " (MAX_SCANNED) " events)" }
            }
        }
        table class="meta impact" {
            tr { th { "Users affected" } td id="users-affected" { (users.len()) } }
            tr { th { "First release seen" } td id="first-release" { (first_release) } }
            tr { th { "Last release seen" } td id="last-release" { (last_release) } }
            tr {
                th { "Trends" }
                td { a id="trends-link" href={ (here) "/trends" } { "per hour and per day" } }
            }
        }
        h2 { "Events by release" }
        table class="releases" {
            thead { tr {
                th { "Release" } th class="num" { "Events" } th { "First seen" } th { "Last seen" }
            } }
            tbody {
                @for (release, n, first, last) in by_release(&events) {
                    tr {
                        td { (release) }
                        td class="num" { (n) }
                        td { (html::time(first)) }
                        td { (html::time(last)) }
                    }
                }
            }
        }
        h2 { "Tags" }
        div class="tags" {
            @for (key, (total, top)) in breakdowns(&events) {
                table class="tag" data-tag=(key) {
                    thead { tr { th colspan="3" { (key) } } }
                    tbody {
                        @for (value, n) in top {
                            @let pct = share(n, total);
                            tr {
                                td class="value" { (value) }
                                td class="num" { (n) }
                                td class="share" {
                                    span class="bar" style={ "width:" (pct) } {}
                                    (pct)
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 id="event" {
            "Event " (at + 1) " of " (events.len()) " "
            span class="muted" { "(" (html::time(e.timestamp_us)) ")" }
        }
        p class="pager event-nav" {
            @if at > 0 {
                a id="newer-event" rel="prev" href=(link_to(at - 1)) { "← Newer" }
                " · "
            }
            a id="open-event" href={ (base) "/events/" (e.id) } { "Open event" }
            @if at + 1 < events.len() {
                " · "
                a id="older-event" rel="next" href=(link_to(at + 1)) { "Older →" }
            }
        }
        (culprit(e))
        (timeline(e))
    })
}

/// The event's culprit frame with its source lines.
fn culprit(e: &CrashEvent) -> Markup {
    let Some(f) = e.culprit() else {
        return html! { p class="muted" id="culprit" { "No frame of the application." } };
    };
    html! {
        h3 { "Culprit" }
        table class="frames culprit" id="culprit" {
            tbody {
                tr class="app" {
                    td { code { (f.function) } }
                    td class="muted" { (place(f)) }
                }
                @match (&f.source, f.line) {
                    (Some(source), Some(at)) => (source_block(source, at)),
                    _ => tr {
                        td colspan="2" class="muted" { "No source lines were kept for this frame." }
                    },
                }
            }
        }
    }
}

/// The event's breadcrumbs, oldest first, each with its time before the event.
fn timeline(e: &CrashEvent) -> Markup {
    html! {
        h3 { "Breadcrumbs" }
        @if e.breadcrumbs.is_empty() {
            p class="muted" id="no-breadcrumbs" { "None." }
        } @else {
            ol class="timeline" {
                @for c in &e.breadcrumbs {
                    li class={ "crumb lv-" (c.level.as_str()) } {
                        span class="when" title=(utc_text(c.timestamp_us)) {
                            (before_text(e.timestamp_us.saturating_sub(c.timestamp_us)))
                        }
                        " " span class="category" { (c.category) } " " (c.message)
                    }
                }
                li class="crumb event" {
                    span class="when" { "0 s" } " " span class="category" { "event" } " "
                    (short_title(&e.title()))
                }
            }
        }
    }
}

/// A duration before the event: `-40 µs`, `-250 ms`, `-3.2 s`, `-4 min`, `-2 h`.
fn before_text(us: u64) -> String {
    let ms = us / 1_000;
    if ms == 0 {
        format!("-{us} µs")
    } else if ms < 1_000 {
        format!("-{ms} ms")
    } else if ms < 60_000 {
        format!("-{:.1} s", ms as f64 / 1_000.0)
    } else if ms < 3_600_000 {
        format!("-{} min", ms / 60_000)
    } else {
        format!("-{} h", ms / 3_600_000)
    }
}

/// The group's trends page: a chart per hour over two days and per day over a month.
pub(crate) fn trends(store: &Store, frame: &Frame, fingerprint: &str) -> Result<String, PageError> {
    let g = store
        .group(fingerprint)?
        .ok_or_else(|| PageError::NotFound(format!("no group {fingerprint}")))?;
    let hourly = store.group_trend(fingerprint, Window::last(Interval::Hour, 48))?;
    let daily = store.group_trend(fingerprint, Window::last(Interval::Day, 30))?;
    let here = format!("{}/groups/{}", frame.base, url_component(&g.fingerprint));
    let title = format!("Trends: {}", short_title(&g.title));
    let body = html! {
        h1 { (title) }
        p { a id="back-to-group" href=(here) { "Back to the group" } }
        @for (id, what, trend) in [
            ("hourly", "Events per hour, last 48 hours", &hourly),
            ("daily", "Events per day, last 30 days", &daily),
        ] {
            h2 { (what) " " span class="muted" { "(" (trend.total()) " in all)" } }
            div id=(id) { (super::trend_chart::labelled_chart(trend)) }
        }
    };
    Ok(frame.page(&title, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: u64, release: &str, user: &str, tag: &str) -> CrashEvent {
        let mut e = CrashEvent::sample(u128::from(t) << 64, "boom");
        e.timestamp_us = t;
        e.user = user.into();
        e.context.program_version = release.to_owned().into();
        e.tags.insert("shard".into(), tag.into());
        e
    }

    #[test]
    fn releases_and_tags_are_summed_with_shares() {
        let events = vec![
            event(3, "1.1", "ann", "a"),
            event(2, "1.0", "bob", "a"),
            event(1, "1.0", "", "b"),
            event(4, "", "ann", "a"),
        ];
        let r = by_release(&events);
        assert_eq!(r[0], ("1.0".to_owned(), 2, 1, 2));
        assert_eq!(r[1].0, "1.1");
        assert_eq!(r[2].0, "(none)");
        let t = breakdowns(&events);
        let (total, top) = &t["shard"];
        assert_eq!(*total, 4);
        assert_eq!(top[0], ("a".to_owned(), 3));
        assert_eq!(share(3, 4), "75%");
        assert_eq!(share(1, 40), "2.5%");
        assert_eq!(share(0, 0), "0%");
    }

    #[test]
    fn breadcrumb_times_read_as_durations_before_the_event() {
        assert_eq!(before_text(40), "-40 µs");
        assert_eq!(before_text(250_000), "-250 ms");
        assert_eq!(before_text(3_200_000), "-3.2 s");
        assert_eq!(before_text(240_000_000), "-4 min");
        assert_eq!(before_text(7_200_000_000), "-2 h");
    }
}
