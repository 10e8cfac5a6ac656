//! Releases: `releases` (each release's health), `releases --compare A B` (two side by
//! side), and `resolve --in-release [RELEASE]`.

use serde_json::json;

use super::args::{ReleasesArgs, ResolveArgs};
use super::commands::find_group;
use super::output::{cell, title_cell, Out, Table};
use super::run::CliError;
use crate::model::time::utc_text;
use crate::readers::wording::percent;
use crate::{Release, Store, StoreError};

/// A release as the JSON output gives it: its counts and its rates.
fn release_json(r: &Release) -> serde_json::Value {
    json!({
        "name": r.name,
        "sessions": r.sessions,
        "clean": r.clean,
        "errored": r.errored,
        "crashed": r.crashed,
        "open": r.open_sessions(),
        "crash_free_rate": r.crash_free_rate(),
        "errored_rate": r.errored_rate(),
        "events": r.events,
        "new_groups": r.new_groups,
        "first_seen_us": r.first_seen_us,
        "last_seen_us": r.last_seen_us,
        "first_seen": utc_text(r.first_seen_us),
        "last_seen": utc_text(r.last_seen_us),
    })
}

/// `resolve GROUP [--in-release [RELEASE]]`.
pub(crate) fn resolve(
    store: &Store,
    a: &ResolveArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let g = find_group(store, &a.group)?;
    let changed = match &a.in_release {
        None => store.resolve(&g.fingerprint),
        Some(None) => store.resolve_in_current_release(&g.fingerprint),
        Some(Some(release)) => store.resolve_in_release(&g.fingerprint, release),
    };
    let g = match changed {
        Err(e @ StoreError::InvalidRelease { .. }) => return Err(CliError::Usage(e.to_string())),
        other => other?.ok_or_else(|| CliError::NotFound(format!("no group {:?}", a.group)))?,
    };
    store.flush()?;
    if json {
        out.json(&g)?;
        return Ok(());
    }
    let mut line = format!(
        "{} {}  {}",
        out.status(g.status, g.regressed),
        &g.fingerprint[..g.fingerprint.len().min(12)],
        title_cell(&g.title)
    );
    if let Some(r) = &g.resolved_in {
        line.push_str(&format!(
            "\nresolved in {}: an event of a newer release reopens it",
            cell(&r.release)
        ));
    }
    out.line(&line)?;
    Ok(())
}

/// `releases` and `releases --compare A B`.
pub(crate) fn releases(
    store: &Store,
    a: &ReleasesArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    if let Some(pair) = &a.compare {
        return compare(store, pair, json, out);
    }
    let mut list = store.releases()?;
    list.reverse();
    if json {
        out.json(&list.iter().map(release_json).collect::<Vec<_>>())?;
        return Ok(());
    }
    if list.is_empty() {
        eprintln!("no releases: set a release, or install with stacktrace::install!()");
        return Ok(());
    }
    let mut t = Table::new(&[
        "RELEASE",
        ">SESSIONS",
        ">CRASH-FREE",
        ">ERRORED",
        ">CRASHED",
        ">OPEN",
        ">EVENTS",
        ">NEW GROUPS",
        "FIRST SEEN",
        "LAST SEEN",
    ]);
    for r in &list {
        t.row(vec![
            cell(&r.name),
            r.sessions.to_string(),
            percent(r.crash_free_rate()),
            percent(r.errored_rate()),
            r.crashed.to_string(),
            r.open_sessions().to_string(),
            r.events.to_string(),
            r.new_groups.to_string(),
            utc_text(r.first_seen_us),
            utc_text(r.last_seen_us),
        ]);
    }
    t.print(out)?;
    Ok(())
}

/// One row of a comparison: a release's value as text.
type Measure = fn(&Release) -> String;

fn compare(store: &Store, pair: &[String], json: bool, out: &mut Out) -> Result<(), CliError> {
    let [a, b] = pair else {
        return Err(CliError::Usage("--compare takes two releases".into()));
    };
    let find = |name: &String| {
        store
            .release(name)?
            .ok_or_else(|| CliError::NotFound(format!("no release {:?}", cell(name))))
    };
    let (ra, rb) = (find(a)?, find(b)?);
    if json {
        out.json(&json!({ "a": release_json(&ra), "b": release_json(&rb) }))?;
        return Ok(());
    }
    let mut t = Table::new(&["", ">A", ">B"]);
    t.row(vec!["release".into(), cell(&ra.name), cell(&rb.name)]);
    let rows: [(&str, Measure); 9] = [
        ("sessions", |r| r.sessions.to_string()),
        ("crash-free", |r| percent(r.crash_free_rate())),
        ("errored", |r| percent(r.errored_rate())),
        ("crashed", |r| r.crashed.to_string()),
        ("open", |r| r.open_sessions().to_string()),
        ("events", |r| r.events.to_string()),
        ("new groups", |r| r.new_groups.to_string()),
        ("first seen", |r| utc_text(r.first_seen_us)),
        ("last seen", |r| utc_text(r.last_seen_us)),
    ];
    for (label, value) in rows {
        t.row(vec![label.into(), value(&ra), value(&rb)]);
    }
    t.print(out)?;
    Ok(())
}
