//! The list pages: groups (with search, filters and trend lines), one group (chart, events,
//! status buttons) and events (a search over the read API's filters). Each turns a store and
//! the request's parameters into a whole HTML page.

use std::fmt::Write as _;

use maud::{html, Markup};
use serde::Deserialize;

use super::html::{self, query_string, Frame};
use crate::readers::wording::{bytes, counted, short_title};
use crate::{CrashEvent, EventId, GroupOrder, GroupStatus, Interval, Level, Store, Window};

/// Rows on a page of groups or events.
pub(crate) const PAGE_SIZE: usize = 50;

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No such group or event.
    NotFound(String),
    /// A parameter could not be understood.
    BadInput(String),
    /// Reading the database failed.
    Store(String),
    /// Reading ran into damaged pages; the database is named once known.
    Damaged(crate::StoreError),
    /// Another process holds the database.
    Held(String),
}

impl From<crate::StoreError> for PageError {
    fn from(e: crate::StoreError) -> Self {
        match e {
            e @ crate::StoreError::Io(sled::Error::Corruption { .. }) => PageError::Damaged(e),
            e => PageError::Store(e.to_string()),
        }
    }
}

impl From<crate::QueryError> for PageError {
    fn from(e: crate::QueryError) -> Self {
        match e {
            crate::QueryError::Store(e) => e.into(),
            other => PageError::BadInput(other.to_string()),
        }
    }
}

/// Parameters of the groups page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GroupsParams {
    pub(crate) q: String,
    pub(crate) status: String,
    pub(crate) level: String,
    pub(crate) order: String,
    pub(crate) after: String,
}

/// Parameters of the events page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventsParams {
    pub(crate) q: String,
    pub(crate) level: String,
    pub(crate) user: String,
    pub(crate) path: String,
    #[serde(rename = "type")]
    pub(crate) error_type: String,
    pub(crate) group: String,
    pub(crate) after: String,
}

/// Parameters of a group's page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GroupParams {
    pub(crate) interval: String,
    pub(crate) after: String,
    /// The event shown with its culprit and breadcrumbs (the newest when empty).
    pub(crate) event: String,
}

fn parse_level(s: &str) -> Result<Option<Level>, PageError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e: crate::ParseLevelError| PageError::BadInput(e.to_string()))
}

/// `"42 events · 7 groups"` for the header, counted from the groups (events since purged
/// included): counting the events tree would read every event's key on every page. A
/// database with a disk budget adds `"1.2 MiB of 512.0 MiB · 300 removed for space"`, one
/// that forwards `"forwarded: 40 sent · 2 pending · 0 failed"`.
pub(crate) fn summary(store: &Store) -> String {
    let mut text = match store.group_totals() {
        Ok((groups, events)) => format!(
            "{} · {}",
            counted(events, "event", "events"),
            counted(groups, "group", "groups")
        ),
        Err(_) => String::new(),
    };
    if let Ok(budget) = store.disk_budget() {
        if budget > 0 {
            let _ = write!(
                text,
                " · {} of {}",
                bytes(store.estimated_size()),
                bytes(budget)
            );
        }
        let removed = store.budget_removed().map_or(0, |r| r.events);
        if removed > 0 {
            let _ = write!(text, " · {removed} removed for space");
        }
    }
    if let Ok(f) = store.forward_counts() {
        if f != Default::default() {
            let _ = write!(
                text,
                " · forwarded: {} sent · {} pending · {} retried · {} failed",
                f.sent,
                f.pending,
                f.retried,
                f.failed_total()
            );
        }
    }
    text
}

const LEVELS: [(&str, &str); 6] = [
    ("", "any level"),
    ("fatal", "fatal"),
    ("error", "error"),
    ("warning", "warning"),
    ("info", "info"),
    ("debug", "debug"),
];

/// The groups page.
pub(crate) fn groups(store: &Store, frame: &Frame, p: &GroupsParams) -> Result<String, PageError> {
    let order = match p.order.as_str() {
        "count" => GroupOrder::Count,
        "" | "last" | "last-seen" => GroupOrder::LastSeen,
        other => return Err(PageError::BadInput(format!("unknown order {other:?}"))),
    };
    let status: Option<GroupStatus> = match p.status.as_str() {
        "" | "any" => None,
        s => Some(s.parse().map_err(PageError::BadInput)?),
    };
    let level = parse_level(&p.level)?;
    let needle = p.q.trim().to_lowercase();
    let after = (!p.after.is_empty()).then_some(p.after.as_str());
    let page = store.groups_page(order, after, PAGE_SIZE, |g| {
        status.is_none_or(|s| g.status == s)
            && level.is_none_or(|l| g.level == l)
            && (needle.is_empty()
                || g.title.to_lowercase().contains(&needle)
                || g.error_type.to_lowercase().contains(&needle)
                || g.fingerprint.starts_with(&needle))
    })?;
    let window = Window::last(Interval::Hour, 24);
    let trends = page
        .groups
        .iter()
        .map(|g| store.group_trend(&g.fingerprint, window))
        .collect::<Result<Vec<_>, _>>()?;
    let base = &frame.base;
    let statuses = [
        ("", "any status"),
        ("unresolved", "unresolved"),
        ("resolved", "resolved"),
        ("ignored", "ignored"),
    ];
    let body = html! {
        h1 { "Groups" }
        form class="filters" method="get" action=(frame.home()) {
            input type="search" name="q" value=(p.q) placeholder="search titles and error types" aria-label="search";
            (html::select("status", &p.status, &statuses))
            (html::select("level", &p.level, &LEVELS))
            (html::select("order", &p.order, &[("", "last seen"), ("count", "most events")]))
            button type="submit" { "Search" }
        }
        @if !needle.is_empty() {
            p class="notice" {
                (counted(page.matching as u64, "group", "groups"))
                (if page.matching == 1 { " matches “" } else { " match “" })
                (p.q.trim()) "”. "
                a href={ (base) "/events" (query_string(&[("q", p.q.trim())])) } {
                    "Search the events’ messages too"
                }
                "."
            }
        }
        table class="groups" {
            thead { tr {
                th { "Title" } th { "Level" } th { "Status" } th class="num" { "Events" }
                th { "First seen" } th { "Last seen" } th { "Last 24 hours" }
            } }
            tbody {
                @for (g, trend) in page.groups.iter().zip(&trends) {
                    tr {
                        td class="title" {
                            a href={ (base) "/groups/" (g.fingerprint) } { (short_title(&g.title)) }
                            div class="muted" { (g.error_type) }
                        }
                        td { (html::level_badge(g.level)) }
                        td { (html::status_badge(g.status, g.regressed)) }
                        td class="num" { (g.count) }
                        td { (html::time(g.first_seen_us)) }
                        td { (html::time(g.last_seen_us)) }
                        td { (html::sparkline(trend)) }
                    }
                }
            }
        }
        @if page.groups.is_empty() {
            p class="muted empty" { "No groups." }
        }
        @if let Some(last) = &page.next {
            @let next = query_string(&[
                ("q", &p.q),
                ("status", &p.status),
                ("level", &p.level),
                ("order", &p.order),
                ("after", last),
            ]);
            p class="pager" { a rel="next" href={ (frame.home()) (next) } { "Next page" } }
        }
    };
    Ok(frame.page("Groups", body))
}

/// A table of events, each row linking to its page.
fn events_table(base: &str, events: &[CrashEvent]) -> Markup {
    html! {
        table class="events" {
            thead { tr {
                th { "Time" } th { "Level" } th { "Event" } th { "User" } th { "Path" }
            } }
            tbody {
                @for e in events {
                    tr {
                        td { (html::time(e.timestamp_us)) }
                        td { (html::level_badge(e.level)) }
                        td class="title" {
                            a href={ (base) "/events/" (e.id) } { (short_title(&e.title())) }
                        }
                        td { (e.user) }
                        td { (e.request_path) }
                    }
                }
            }
        }
        @if events.is_empty() {
            p class="muted empty" { "No events." }
        }
    }
}

/// A group's page.
pub(crate) fn group(
    store: &Store,
    frame: &Frame,
    fingerprint: &str,
    p: &GroupParams,
    csrf: &str,
) -> Result<String, PageError> {
    let g = store
        .group(fingerprint)?
        .ok_or_else(|| PageError::NotFound(format!("no group {fingerprint}")))?;
    let interval: Interval = match p.interval.as_str() {
        "" => Interval::Hour,
        s => s.parse().map_err(PageError::BadInput)?,
    };
    let buckets = match interval {
        Interval::Hour => 48,
        Interval::Day => 30,
    };
    let trend = store.group_trend(fingerprint, Window::last(interval, buckets))?;
    let mut q = store.query().fingerprint(fingerprint).limit(PAGE_SIZE);
    if !p.after.is_empty() {
        q = q.after(&p.after);
    }
    let page = q.run()?;
    let details = super::group_page::details(store, frame, &g, &p.event)?;
    let here = format!("{}/groups/{}", frame.base, g.fingerprint);
    let actions = [
        (GroupStatus::Resolved, "Resolve", "resolve"),
        (GroupStatus::Ignored, "Ignore", "ignore"),
        (GroupStatus::Unresolved, "Reopen", "reopen"),
    ];
    let last = counted(
        buckets as u64,
        &interval.to_string(),
        &format!("{interval}s"),
    );
    let body = html! {
        h1 { (short_title(&g.title)) }
        table class="meta" {
            tr { th { "Status" } td id="status" { (html::status_badge(g.status, g.regressed)) } }
            tr { th { "Level" } td { (html::level_badge(g.level)) } }
            tr { th { "Error type" } td { (g.error_type) } }
            tr { th { "Events" } td { (g.count) } }
            tr { th { "First seen" } td { (html::time(g.first_seen_us)) } }
            tr { th { "Last seen" } td { (html::time(g.last_seen_us)) } }
            tr { th { "Fingerprint" } td { code { (g.fingerprint) } } }
        }
        p class="actions" {
            @for (status, label, id) in actions {
                @if status != g.status {
                    form class="inline" method="post" action={ (here) "/status" } {
                        input type="hidden" name="status" value=(status.as_str());
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" id=(id) { (label) }
                    }
                    " "
                }
            }
            @if g.status != GroupStatus::Resolved || g.resolved_in.is_none() {
                (super::releases::resolve_in_release_form(&here, csrf))
            }
            @if let Some(r) = &g.resolved_in {
                " "
                span id="resolved-in" class="muted" {
                    "resolved in " (r.release) ": an event of a newer release reopens it"
                }
            }
        }
        h2 {
            "Occurrences per " (interval) " "
            span class="muted" {
                "(" (trend.total()) " in the last " (last) "; "
                a href={ (here) (query_string(&[("interval", "hour")])) } { "per hour" }
                " · "
                a href={ (here) (query_string(&[("interval", "day")])) } { "per day" }
                ")"
            }
        }
        (html::bar_chart(&trend))
        (details)
        h2 { "Events" }
        (events_table(&frame.base, &page.events))
        @if let Some(next) = &page.next {
            p class="pager" {
                a rel="next" href={ (here) (query_string(&[("interval", &p.interval), ("after", next)])) } {
                    "Older events"
                }
            }
        }
    };
    Ok(frame.page(&short_title(&g.title), body))
}

/// The events page: the read API's filters over all events.
pub(crate) fn events(store: &Store, frame: &Frame, p: &EventsParams) -> Result<String, PageError> {
    let mut q = store.query().limit(PAGE_SIZE);
    if let Some(l) = parse_level(&p.level)? {
        q = q.level(l);
    }
    let text = p.q.trim();
    if !text.is_empty() {
        q = q.text(text);
    }
    if !p.user.is_empty() {
        q = q.user(p.user.as_str());
    }
    if !p.path.is_empty() {
        q = q.request_path(p.path.as_str());
    }
    if !p.error_type.is_empty() {
        q = q.error_type(p.error_type.as_str());
    }
    if !p.group.is_empty() {
        q = q.fingerprint(p.group.as_str());
    }
    if !p.after.is_empty() {
        if p.after.parse::<EventId>().is_err() {
            return Err(PageError::BadInput(format!("invalid cursor {:?}", p.after)));
        }
        q = q.after(&p.after);
    }
    let page = q.run()?;
    let base = &frame.base;
    let next = page.next.as_ref().map(|next| {
        query_string(&[
            ("q", &p.q),
            ("level", &p.level),
            ("user", &p.user),
            ("path", &p.path),
            ("type", &p.error_type),
            ("group", &p.group),
            ("after", next),
        ])
    });
    let body = html! {
        h1 { "Events" }
        form class="filters" method="get" action={ (base) "/events" } {
            input type="search" name="q" value=(p.q) placeholder="search messages" aria-label="search";
            (html::select("level", &p.level, &LEVELS))
            input name="user" value=(p.user) placeholder="user";
            input name="path" value=(p.path) placeholder="request path";
            input name="type" value=(p.error_type) placeholder="error type";
            button type="submit" { "Search" }
        }
        (events_table(base, &page.events))
        @if let Some(next) = next {
            p class="pager" { a rel="next" href={ (base) "/events" (next) } { "Older events" } }
        }
    };
    Ok(frame.page("Events", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins: the dashboard said nothing of the disk budget: its header showed neither the
    // size held against it nor the events removed to hold it.
    #[test]
    fn the_header_shows_the_budget_and_what_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("events.db")).unwrap();
        let events: Vec<CrashEvent> = (1..=300u128)
            .map(|i| {
                let mut e = CrashEvent::sample(i << 64, &"x".repeat(2_000));
                e.timestamp_us = i as u64;
                e
            })
            .collect();
        store.insert_batch(&events).unwrap();
        // Control: no budget recorded, none shown.
        let before = summary(&store);
        assert!(before.starts_with("300 events · 1 group"), "{before}");
        assert!(
            !before.contains(" of ") && !before.contains("removed"),
            "{before}"
        );
        store.record_disk_budget(512 << 10).unwrap();
        let removed = store.enforce_disk_budget(512 << 10).unwrap().events;
        assert!(removed > 0);
        let after = summary(&store);
        assert!(after.contains(" of 512.0 KiB"), "{after}");
        assert!(
            after.contains(&format!("{removed} removed for space")),
            "{after}"
        );
    }
}
