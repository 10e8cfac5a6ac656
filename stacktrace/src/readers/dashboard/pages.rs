//! The list pages: groups (with search, filters and trend lines), one group (chart, events,
//! status buttons) and events (a search over the read API's filters). Each turns a store and
//! the request's parameters into a whole HTML page.

use std::fmt::Write as _;

use serde::Deserialize;

use super::html::{self, esc, query_string, Frame};
use crate::readers::wording::{counted, short_title};
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
}

impl From<crate::StoreError> for PageError {
    fn from(e: crate::StoreError) -> Self {
        PageError::Store(e.to_string())
    }
}

impl From<crate::QueryError> for PageError {
    fn from(e: crate::QueryError) -> Self {
        match e {
            crate::QueryError::Store(e) => PageError::Store(e.to_string()),
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
/// database that forwards adds `"forwarded: 40 sent · 2 pending · 0 failed"`.
pub(crate) fn summary(store: &Store) -> String {
    let mut text = match store.group_totals() {
        Ok((groups, events)) => format!(
            "{} · {}",
            counted(events, "event", "events"),
            counted(groups, "group", "groups")
        ),
        Err(_) => String::new(),
    };
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
    let base = &frame.base;

    let mut b = String::from("<h1>Groups</h1>");
    let _ = write!(
        b,
        r#"<form class="filters" method="get" action="{}"><input type="search" name="q" value="{}" placeholder="search titles and error types" aria-label="search">{}{}{}<button type="submit">Search</button></form>"#,
        esc(&frame.home()),
        esc(&p.q),
        html::select(
            "status",
            &p.status,
            &[
                ("", "any status"),
                ("unresolved", "unresolved"),
                ("resolved", "resolved"),
                ("ignored", "ignored"),
            ]
        ),
        html::select("level", &p.level, &LEVELS),
        html::select(
            "order",
            &p.order,
            &[("", "last seen"), ("count", "most events")]
        ),
    );
    if !needle.is_empty() {
        let _ = write!(
            b,
            r#"<p class="notice">{} {} “{}”. <a href="{}/events{}">Search the events’ messages too</a>.</p>"#,
            counted(page.matching as u64, "group", "groups"),
            if page.matching == 1 {
                "matches"
            } else {
                "match"
            },
            esc(p.q.trim()),
            esc(base),
            query_string(&[("q", p.q.trim())])
        );
    }
    b.push_str(
        r#"<table class="groups"><thead><tr><th>Title</th><th>Level</th><th>Status</th><th class="num">Events</th><th>First seen</th><th>Last seen</th><th>Last 24 hours</th></tr></thead><tbody>"#,
    );
    let window = Window::last(Interval::Hour, 24);
    for g in &page.groups {
        let trend = store.group_trend(&g.fingerprint, window)?;
        let _ = write!(
            b,
            r#"<tr><td class="title"><a href="{}/groups/{}">{}</a><div class="muted">{}</div></td><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(base),
            esc(&g.fingerprint),
            esc(&short_title(&g.title)),
            esc(&g.error_type),
            html::level_badge(g.level),
            html::status_badge(g.status, g.regressed),
            g.count,
            html::time(g.first_seen_us),
            html::time(g.last_seen_us),
            html::sparkline(&trend),
        );
    }
    b.push_str("</tbody></table>");
    if page.groups.is_empty() {
        b.push_str(r#"<p class="muted empty">No groups.</p>"#);
    }
    if let Some(last) = &page.next {
        let _ = write!(
            b,
            r#"<p class="pager"><a rel="next" href="{}{}">Next page</a></p>"#,
            esc(&frame.home()),
            query_string(&[
                ("q", &p.q),
                ("status", &p.status),
                ("level", &p.level),
                ("order", &p.order),
                ("after", last)
            ])
        );
    }
    Ok(frame.page("Groups", &b))
}

/// A table of events, each row linking to its page.
fn events_table(base: &str, events: &[CrashEvent]) -> String {
    let mut b = String::from(
        r#"<table class="events"><thead><tr><th>Time</th><th>Level</th><th>Event</th><th>User</th><th>Path</th></tr></thead><tbody>"#,
    );
    for e in events {
        let _ = write!(
            b,
            r#"<tr><td>{}</td><td>{}</td><td class="title"><a href="{}/events/{}">{}</a></td><td>{}</td><td>{}</td></tr>"#,
            html::time(e.timestamp_us),
            html::level_badge(e.level),
            esc(base),
            e.id,
            esc(&short_title(&e.title())),
            esc(&e.user),
            esc(&e.request_path),
        );
    }
    b.push_str("</tbody></table>");
    if events.is_empty() {
        b.push_str(r#"<p class="muted empty">No events.</p>"#);
    }
    b
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
    let base = &frame.base;
    let here = format!("{base}/groups/{}", g.fingerprint);

    let mut b = format!(
        r#"<h1>{}</h1><table class="meta"><tr><th>Status</th><td id="status">{}</td></tr><tr><th>Level</th><td>{}</td></tr><tr><th>Error type</th><td>{}</td></tr><tr><th>Events</th><td>{}</td></tr><tr><th>First seen</th><td>{}</td></tr><tr><th>Last seen</th><td>{}</td></tr><tr><th>Fingerprint</th><td><code>{}</code></td></tr></table>"#,
        esc(&short_title(&g.title)),
        html::status_badge(g.status, g.regressed),
        html::level_badge(g.level),
        esc(&g.error_type),
        g.count,
        html::time(g.first_seen_us),
        html::time(g.last_seen_us),
        esc(&g.fingerprint),
    );
    b.push_str(r#"<p class="actions">"#);
    for (status, label) in [
        (GroupStatus::Resolved, "Resolve"),
        (GroupStatus::Ignored, "Ignore"),
        (GroupStatus::Unresolved, "Reopen"),
    ] {
        if status != g.status {
            let _ = write!(
                b,
                r#"<form class="inline" method="post" action="{}/status"><input type="hidden" name="status" value="{}"><input type="hidden" name="csrf" value="{}"><button type="submit" id="{}">{label}</button></form> "#,
                esc(&here),
                status.as_str(),
                esc(csrf),
                label.to_lowercase(),
            );
        }
    }
    if g.status != GroupStatus::Resolved || g.resolved_in.is_none() {
        b.push_str(&super::releases::resolve_in_release_form(&here, csrf));
    }
    if let Some(r) = &g.resolved_in {
        let _ = write!(
            b,
            r#" <span id="resolved-in" class="muted">resolved in {}: an event of a newer release reopens it</span>"#,
            esc(&r.release)
        );
    }
    b.push_str("</p>");
    let _ = write!(
        b,
        r#"<h2>Occurrences per {} <span class="muted">({} in the last {}; <a href="{}{}">per hour</a> · <a href="{}{}">per day</a>)</span></h2>{}"#,
        interval,
        trend.total(),
        counted(
            buckets as u64,
            &interval.to_string(),
            &format!("{interval}s")
        ),
        esc(&here),
        query_string(&[("interval", "hour")]),
        esc(&here),
        query_string(&[("interval", "day")]),
        html::bar_chart(&trend),
    );
    b.push_str(&super::group_page::details(store, frame, &g, &p.event)?);
    b.push_str("<h2>Events</h2>");
    b.push_str(&events_table(base, &page.events));
    if let Some(next) = &page.next {
        let _ = write!(
            b,
            r#"<p class="pager"><a rel="next" href="{}{}">Older events</a></p>"#,
            esc(&here),
            query_string(&[("interval", &p.interval), ("after", next)])
        );
    }
    Ok(frame.page(&short_title(&g.title), &b))
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
    let mut b = String::from("<h1>Events</h1>");
    let _ = write!(
        b,
        r#"<form class="filters" method="get" action="{}/events"><input type="search" name="q" value="{}" placeholder="search messages" aria-label="search">{}<input name="user" value="{}" placeholder="user"><input name="path" value="{}" placeholder="request path"><input name="type" value="{}" placeholder="error type"><button type="submit">Search</button></form>"#,
        esc(base),
        esc(&p.q),
        html::select("level", &p.level, &LEVELS),
        esc(&p.user),
        esc(&p.path),
        esc(&p.error_type),
    );
    b.push_str(&events_table(base, &page.events));
    if let Some(next) = &page.next {
        let _ = write!(
            b,
            r#"<p class="pager"><a rel="next" href="{}/events{}">Older events</a></p>"#,
            esc(base),
            query_string(&[
                ("q", &p.q),
                ("level", &p.level),
                ("user", &p.user),
                ("path", &p.path),
                ("type", &p.error_type),
                ("group", &p.group),
                ("after", next)
            ])
        );
    }
    Ok(frame.page("Events", &b))
}
