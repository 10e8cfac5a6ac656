//! The releases page: each release's health (sessions, crash-free and errored rates, new
//! groups, first and last seen), two releases compared side by side, and the form that
//! resolves a group in a release.

use maud::{html, Markup};
use serde::Deserialize;

use super::html::{self, Frame};
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
    let compared = if !p.a.is_empty() || !p.b.is_empty() {
        let find = |name: &str| {
            store.release(name)?.ok_or_else(|| {
                PageError::NotFound(format!("no release {:?}", crate::model::release::cut(name)))
            })
        };
        Some(comparison(&find(&p.a)?, &find(&p.b)?))
    } else {
        None
    };
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
    let heads = [
        "Sessions",
        "Crash-free",
        "Errored",
        "Crashed",
        "Open",
        "Events",
        "New groups",
    ];
    let body = html! {
        h1 { "Releases" }
        @if let Some(compared) = compared { (compared) }
        @if list.is_empty() {
            p class="notice" {
                "No releases yet: set a release, or install with "
                code { "stacktrace::install!()" } ", which names it after the crate."
            }
        } @else {
            form class="filters" id="compare" method="get" action={ (frame.base) "/releases" } {
                "Compare " (html::select("a", &first(&p.a, 1.min(list.len() - 1)), &options))
                " with " (html::select("b", &first(&p.b, 0), &options)) " "
                button type="submit" { "Compare" }
            }
            table id="releases" {
                thead { tr {
                    th { "Release" }
                    @for head in heads { th class="num" { (head) } }
                    th { "First seen" } th { "Last seen" }
                } }
                tbody {
                    @for r in &list {
                        tr {
                            td { (r.name) }
                            td class="num" { (r.sessions) }
                            td class="num" { (percent(r.crash_free_rate())) }
                            td class="num" { (percent(r.errored_rate())) }
                            td class="num" { (r.crashed) }
                            td class="num" { (r.open_sessions()) }
                            td class="num" { (r.events) }
                            td class="num" { (r.new_groups) }
                            td { (html::time(r.first_seen_us)) }
                            td { (html::time(r.last_seen_us)) }
                        }
                    }
                }
            }
        }
    };
    Ok(frame.page("Releases", body))
}

/// One row of a comparison: a release's value as text.
type Measure = fn(&Release) -> String;

/// Two releases side by side.
fn comparison(a: &Release, b: &Release) -> Markup {
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
    html! {
        h2 { (a.name) " compared with " (b.name) }
        table id="comparison" {
            thead { tr { th {} th class="num" { (a.name) } th class="num" { (b.name) } } }
            tbody {
                @for (label, value) in rows {
                    tr { th { (label) } td class="num" { (value(a)) } td class="num" { (value(b)) } }
                }
            }
        }
    }
}

/// The form on a group's page that resolves it in a release (empty: the newest seen),
/// posted to its status address.
pub(crate) fn resolve_in_release_form(here: &str, csrf: &str) -> Markup {
    html! {
        form class="inline" id="resolve-in-release" method="post" action={ (here) "/status" } {
            input type="hidden" name="status" value="resolved";
            input type="hidden" name="csrf" value=(csrf);
            input name="in_release" value="" placeholder="release (empty: newest)" aria-label="release";
            button type="submit" { "Resolve in release" }
        }
    }
}
