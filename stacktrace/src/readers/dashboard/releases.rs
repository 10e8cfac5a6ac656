//! The releases page: each release's health (sessions, crash-free and errored rates, new
//! groups, first and last seen), two releases compared side by side, and the form that
//! resolves a group in a release.

use std::fmt::Write as _;

use serde::Deserialize;

use super::html::{self, esc, Frame};
use super::pages::PageError;
use crate::readers::wording::percent;
use crate::{Release, Store};

/// Parameters of the releases page: two releases to compare, when both are given.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReleasesParams {
    pub(crate) a: String,
    pub(crate) b: String,
}

/// The releases page, newest first, with the comparison of `a` and `b` when asked.
pub(crate) fn releases(
    store: &Store,
    frame: &Frame,
    p: &ReleasesParams,
) -> Result<String, PageError> {
    let mut list = store.releases()?;
    list.reverse();
    let mut b = String::from("<h1>Releases</h1>");
    if !p.a.is_empty() || !p.b.is_empty() {
        let find = |name: &str| {
            store.release(name)?.ok_or_else(|| {
                PageError::NotFound(format!("no release {:?}", crate::model::release::cut(name)))
            })
        };
        let (a, bb) = (find(&p.a)?, find(&p.b)?);
        b.push_str(&comparison(&a, &bb));
    }
    if list.is_empty() {
        b.push_str(
            r#"<p class="notice">No releases yet: set a release, or install with <code>stacktrace::install!()</code>, which names it after the crate.</p>"#,
        );
        return Ok(frame.page("Releases", &b));
    }
    let options: Vec<(&str, &str)> = list
        .iter()
        .map(|r| (r.name.as_str(), r.name.as_str()))
        .collect();
    let first = |given: &str, at: usize| {
        if given.is_empty() {
            list.get(at).map_or("", |r| r.name.as_str()).to_owned()
        } else {
            given.to_owned()
        }
    };
    let _ = write!(
        b,
        r#"<form class="filters" id="compare" method="get" action="{}/releases">Compare {} with {} <button type="submit">Compare</button></form>"#,
        esc(&frame.base),
        html::select("a", &first(&p.a, 1.min(list.len() - 1)), &options),
        html::select("b", &first(&p.b, 0), &options),
    );
    b.push_str(
        r#"<table id="releases"><thead><tr><th>Release</th><th class="num">Sessions</th><th class="num">Crash-free</th><th class="num">Errored</th><th class="num">Crashed</th><th class="num">Open</th><th class="num">Events</th><th class="num">New groups</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>"#,
    );
    for r in &list {
        let _ = write!(
            b,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&r.name),
            r.sessions,
            percent(r.crash_free_rate()),
            percent(r.errored_rate()),
            r.crashed,
            r.open_sessions(),
            r.events,
            r.new_groups,
            html::time(r.first_seen_us),
            html::time(r.last_seen_us),
        );
    }
    b.push_str("</tbody></table>");
    Ok(frame.page("Releases", &b))
}

/// One row of a comparison: a release's value as text.
type Measure = fn(&Release) -> String;

/// Two releases side by side.
fn comparison(a: &Release, b: &Release) -> String {
    let mut s = format!(
        r#"<h2>{} compared with {}</h2><table id="comparison"><thead><tr><th></th><th class="num">{}</th><th class="num">{}</th></tr></thead><tbody>"#,
        esc(&a.name),
        esc(&b.name),
        esc(&a.name),
        esc(&b.name),
    );
    let rows: [(&str, Measure); 9] = [
        ("Sessions", |r| r.sessions.to_string()),
        ("Crash-free", |r| percent(r.crash_free_rate())),
        ("Errored", |r| percent(r.errored_rate())),
        ("Crashed", |r| r.crashed.to_string()),
        ("Open", |r| r.open_sessions().to_string()),
        ("Events", |r| r.events.to_string()),
        ("New groups", |r| r.new_groups.to_string()),
        ("First seen", |r| html::time(r.first_seen_us)),
        ("Last seen", |r| html::time(r.last_seen_us)),
    ];
    for (label, value) in rows {
        let _ = write!(
            s,
            r#"<tr><th>{label}</th><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&value(a)),
            esc(&value(b)),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// The form on a group's page that resolves it in a release (empty: the newest seen),
/// posted to its status address.
pub(crate) fn resolve_in_release_form(here: &str, csrf: &str) -> String {
    format!(
        r#"<form class="inline" id="resolve-in-release" method="post" action="{}/status"><input type="hidden" name="status" value="resolved"><input type="hidden" name="csrf" value="{}"><input name="in_release" value="" placeholder="release (empty: newest)" aria-label="release"><button type="submit">Resolve in release</button></form>"#,
        esc(here),
        esc(csrf),
    )
}
