//! The reading commands and the group status changes: list, search, show, groups,
//! resolve/ignore/reopen, trends, stats.

use serde_json::json;

use super::args::{Filters, GroupsArgs, ListArgs, OrderArg, TrendsArgs};
use super::output::{bytes, cell, title_cell, Out, Table};
use super::run::CliError;
use super::show;
use super::when::us_of_when;
use crate::model::time::now_us;
use crate::model::time::utc_text;
use crate::readers::wording::counted;
use crate::{EventId, Group, GroupOrder, GroupStatus, Interval, Level, Query, Store, Window};

/// The group a fingerprint or a unique prefix of it (at least 4 characters) names.
pub(crate) fn find_group(store: &Store, given: &str) -> Result<Group, CliError> {
    let given = given.trim();
    if let Some(g) = store.group(given)? {
        return Ok(g);
    }
    if given.len() < 4 {
        return Err(CliError::NotFound(format!(
            "no group {given:?} (give the fingerprint or at least 4 of its first characters)"
        )));
    }
    let mut matching = store
        .groups(GroupOrder::LastSeen)?
        .into_iter()
        .filter(|g| g.fingerprint.starts_with(given));
    match (matching.next(), matching.next()) {
        (Some(g), None) => Ok(g),
        (None, _) => Err(CliError::NotFound(format!("no group {given:?}"))),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "{given:?} is the start of several groups' fingerprints: give more of it"
        ))),
    }
}

/// A `--limit` as a count: 0 means no limit, for every command that takes one.
pub(crate) fn all_if_zero(limit: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit
    }
}

/// A query with the filters of the command line.
pub(crate) fn query_of<'s>(store: &'s Store, f: &Filters) -> Result<Query<'s>, CliError> {
    let mut q = store.query();
    let now = now_us();
    if let Some(l) = &f.level {
        let level: Level = l.parse().map_err(|e| CliError::Usage(format!("{e}")))?;
        q = q.level(level);
    }
    if let Some(t) = &f.error_type {
        q = q.error_type(t.as_str());
    }
    if let Some(p) = &f.path {
        q = q.request_path(p.as_str());
    }
    if let Some(u) = &f.user {
        q = q.user(u.as_str());
    }
    if let Some(g) = &f.group {
        q = q.fingerprint(find_group(store, g)?.fingerprint);
    }
    if let Some(s) = &f.since {
        q = q.since_us(us_of_when(s, now).map_err(CliError::Usage)?);
    }
    if let Some(u) = &f.until {
        q = q.until_us(us_of_when(u, now).map_err(CliError::Usage)?);
    }
    if let Some(t) = &f.text {
        q = q.text(t.as_str());
    }
    Ok(q)
}

pub(crate) fn list(
    store: &Store,
    a: &ListArgs,
    text: Option<&str>,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let mut q = query_of(store, &a.filters)?.limit(all_if_zero(a.limit));
    if let Some(t) = text {
        q = q.text(t);
    }
    if let Some(c) = &a.after {
        q = q.after(c);
    }
    let page = q.run()?;
    if json {
        out.json(&json!({ "events": page.events, "next": page.next }))?;
        return Ok(());
    }
    let mut t = Table::new(&["ID", "TIME (UTC)", "LEVEL", "USER", "PATH", "EVENT"]);
    for e in &page.events {
        t.row(vec![
            e.id.to_string(),
            utc_text(e.timestamp_us),
            out.level(e.level),
            cell(&e.user),
            cell(&e.request_path),
            title_cell(&e.title()),
        ]);
    }
    if page.events.is_empty() {
        eprintln!("no events match");
    } else {
        t.print(out)?;
    }
    if let Some(next) = &page.next {
        eprintln!("more: add --after {next}");
    }
    Ok(())
}

pub(crate) fn show(store: &Store, id: &str, json: bool, out: &mut Out) -> Result<(), CliError> {
    let id: EventId = id.parse().map_err(|e| CliError::Usage(format!("{e}")))?;
    let event = store
        .get(id)?
        .ok_or_else(|| CliError::NotFound(format!("no event {id}")))?;
    if json {
        out.json(&event)?;
        return Ok(());
    }
    let group = store.group(&event.fingerprint)?;
    show::print(out, &event, group.as_ref())?;
    Ok(())
}

pub(crate) fn groups(
    store: &Store,
    a: &GroupsArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let order = match a.order {
        OrderArg::Count => GroupOrder::Count,
        OrderArg::LastSeen => GroupOrder::LastSeen,
    };
    let status: Option<GroupStatus> = match &a.status {
        Some(s) => Some(s.parse().map_err(CliError::Usage)?),
        None => None,
    };
    let limit = all_if_zero(a.limit);
    let page = store.groups_page(order, None, limit, |g| status.is_none_or(|s| g.status == s))?;
    let shown = &page.groups;
    if json {
        out.json(&shown)?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "GROUP",
        "STATUS",
        "LEVEL",
        ">EVENTS",
        "FIRST SEEN",
        "LAST SEEN",
        "TITLE",
    ]);
    for g in shown {
        t.row(vec![
            g.fingerprint.chars().take(12).collect(),
            out.status(g.status, g.regressed),
            out.level(g.level),
            g.count.to_string(),
            utc_text(g.first_seen_us),
            utc_text(g.last_seen_us),
            title_cell(&g.title),
        ]);
    }
    if shown.is_empty() {
        eprintln!("no groups");
    } else {
        t.print(out)?;
    }
    if shown.len() < page.matching {
        eprintln!(
            "showing {} of {}; --limit 0 shows all",
            shown.len(),
            counted(page.matching as u64, "group", "groups")
        );
    }
    Ok(())
}

pub(crate) fn set_status(
    store: &Store,
    given: &str,
    status: &str,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let status: GroupStatus = status.parse().map_err(CliError::Usage)?;
    let g = find_group(store, given)?;
    let g = store
        .set_group_status(&g.fingerprint, status)?
        .ok_or_else(|| CliError::NotFound(format!("no group {given:?}")))?;
    store.flush()?;
    if json {
        out.json(&g)?;
    } else {
        let line = format!(
            "{} {}  {}",
            out.status(g.status, g.regressed),
            &g.fingerprint[..g.fingerprint.len().min(12)],
            title_cell(&g.title)
        );
        out.line(&line)?;
    }
    Ok(())
}

fn has_filters(f: &Filters) -> bool {
    f.level.is_some()
        || f.error_type.is_some()
        || f.path.is_some()
        || f.user.is_some()
        || f.since.is_some()
        || f.text.is_some()
}

pub(crate) fn trends(
    store: &Store,
    a: &TrendsArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let interval: Interval = a.interval.parse().map_err(CliError::Usage)?;
    let buckets = a.buckets.unwrap_or(match interval {
        Interval::Hour => 24,
        Interval::Day => 14,
    });
    if buckets == 0 || buckets > 10_000 {
        return Err(CliError::Usage(format!(
            "--buckets {buckets}: expected 1 to 10000"
        )));
    }
    let end = match &a.filters.until {
        Some(u) => us_of_when(u, now_us()).map_err(CliError::Usage)?,
        None => now_us(),
    };
    let window = Window::ending_at_us(interval, buckets, end);
    // Counted from keys alone when no event has to be read to filter it.
    let trend = match (&a.filters.group, has_filters(&a.filters)) {
        (None, false) => store.trend(window)?,
        (Some(g), false) => store.group_trend(&find_group(store, g)?.fingerprint, window)?,
        _ => query_of(store, &a.filters)?.trend(window)?,
    };
    if json {
        let buckets: Vec<_> = trend
            .buckets()
            .map(|(start, count)| json!({ "start": utc_text(start), "start_us": start, "count": count }))
            .collect();
        out.json(&json!({
            "interval": trend.interval,
            "total": trend.total(),
            "buckets": buckets,
        }))?;
        return Ok(());
    }
    let label_len = match interval {
        Interval::Hour => 16,
        Interval::Day => 10,
    };
    let count_width = trend.max().to_string().len();
    let room = out
        .width
        .unwrap_or(80)
        .saturating_sub(label_len + count_width + 4)
        .max(10);
    let max = trend.max().max(1);
    for (start, count) in trend.buckets() {
        let eighths = (count * room as u64 * 8).div_ceil(max) as usize;
        let mut bar = "█".repeat(eighths / 8);
        if !eighths.is_multiple_of(8) {
            bar.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
        }
        let label: String = utc_text(start).chars().take(label_len).collect();
        let line = format!("{label}  {count:>count_width$} {}", out.paint("34", &bar));
        out.line(line.trim_end())?;
    }
    out.line(&format!(
        "{} in {} (UTC)",
        counted(trend.total(), "event", "events"),
        counted(
            buckets as u64,
            &interval.to_string(),
            &format!("{interval}s")
        )
    ))?;
    Ok(())
}

pub(crate) fn stats(store: &Store, json: bool, out: &mut Out) -> Result<(), CliError> {
    let s = store.stats()?;
    let f = store.forward_counts()?;
    if json {
        out.json(&json!({
            "path": store.path(),
            "events": s.events,
            "groups": s.groups,
            "dropped": s.dropped,
            "size_on_disk": s.size_on_disk,
            "estimated_size": s.estimated_size,
            "disk_budget": s.disk_budget,
            "budget_removed": s.budget_removed,
            "budget_removed_bytes": s.budget_removed_bytes,
            "repeats_counted": s.repeats_counted,
            "forwarded": f,
        }))?;
        return Ok(());
    }
    let dropped_total: u64 = s.dropped.values().sum();
    let mut t = Table::new(&["", ">"]);
    t.row(vec!["database".into(), store.path().display().to_string()]);
    t.row(vec!["events".into(), s.events.to_string()]);
    t.row(vec!["groups".into(), s.groups.to_string()]);
    t.row(vec!["size on disk".into(), bytes(s.size_on_disk)]);
    t.row(vec!["estimated size".into(), bytes(s.estimated_size)]);
    let budget = match s.disk_budget {
        0 => "none".to_owned(),
        b => bytes(b),
    };
    t.row(vec!["disk budget".into(), budget]);
    t.row(vec![
        "removed for the budget".into(),
        format!("{} ({})", s.budget_removed, bytes(s.budget_removed_bytes)),
    ]);
    t.row(vec![
        "repeats counted, not stored".into(),
        s.repeats_counted.to_string(),
    ]);
    t.row(vec!["dropped".into(), dropped_total.to_string()]);
    for (reason, n) in &s.dropped {
        t.row(vec![format!("  {reason}"), n.to_string()]);
    }
    if f != Default::default() {
        t.row(vec!["forwarding: pending".into(), f.pending.to_string()]);
        t.row(vec!["  sent".into(), f.sent.to_string()]);
        t.row(vec!["  retried".into(), f.retried.to_string()]);
        t.row(vec!["  rate limited".into(), f.rate_limited.to_string()]);
        t.row(vec!["  refused (paused)".into(), f.refused.to_string()]);
        t.row(vec!["  failed".into(), f.failed_total().to_string()]);
        for (reason, n) in &f.failed {
            t.row(vec![format!("    {reason}"), n.to_string()]);
        }
    }
    t.print(out)?;
    Ok(())
}
