//! The functions page: calls, failures and failure rate of each `#[capture]` function, by
//! release, with its last failure and its groups linked.

use maud::html;
use serde::Deserialize;

use super::html::{query_string, time, url_component, Frame};
use super::pages::PageError;
use crate::readers::function_rates::{functions_listed, rate_text};
use crate::Store;

/// Parameters of the functions page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FunctionsParams {
    pub(crate) release: String,
    pub(crate) q: String,
}

pub(crate) fn functions(
    store: &Store,
    frame: &Frame,
    p: &FunctionsParams,
) -> Result<String, PageError> {
    let release = (!p.release.is_empty()).then_some(p.release.as_str());
    let needle = p.q.trim();
    let listed = functions_listed(store, release, (!needle.is_empty()).then_some(needle))?;
    let base = &frame.base;
    let body = html! {
        h1 { "Functions" }
        p class="muted" {
            "Calls and failures of each " code { "#[capture]" } " function, by release: a failure is an "
            code { "Err" } " returned or a panic."
        }
        form class="filters" method="get" action={ (base) "/functions" } {
            input type="search" name="q" value=(p.q) placeholder="function name contains" aria-label="function";
            input type="search" name="release" value=(p.release) placeholder="release" aria-label="release";
            button type="submit" { "Filter" }
        }
        @if listed.is_empty() {
            p class="muted" id="no-functions" { "No counted calls yet." }
        } @else {
            table class="functions" {
                thead { tr {
                    th { "Function" } th { "Release" } th class="num" { "Calls" }
                    th class="num" { "Failures" } th class="num" { "Rate" }
                    th { "Last failure" } th { "Groups" }
                } }
                tbody {
                    @for f in &listed {
                        tr {
                            td { code { (f.function) } }
                            td {
                                @if f.release.is_empty() {
                                    span class="muted" { "none" }
                                } @else {
                                    a href={ (base) "/functions" (query_string(&[("release", &f.release)])) } {
                                        (f.release)
                                    }
                                }
                            }
                            td class="num" { (f.calls) }
                            td class="num" { (f.failures) }
                            td class="num" { (rate_text(f)) }
                            td {
                                @if let (Some(id), Some(at)) = (&f.last_event, f.last_failure_us) {
                                    a href={ (base) "/events/" (url_component(id)) } { (time(at)) }
                                } @else {
                                    span class="muted" { "none stored" }
                                }
                            }
                            td {
                                @for (i, g) in f.groups.iter().rev().enumerate() {
                                    @if i > 0 { " " }
                                    a href={ (base) "/groups/" (url_component(g)) } {
                                        code { (g.chars().take(12).collect::<String>()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame.page("Functions", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_names_and_links_events_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let frame = Frame::default();
        let empty = functions(&store, &frame, &FunctionsParams::default()).unwrap();
        assert!(empty.contains("id=\"no-functions\""));
        store
            .add_function_counts("<1.0>", &[("app::<pay>".into(), 8, 2)])
            .unwrap();
        let mut e = crate::CrashEvent::sample(u128::from(5u64) << 64, "x");
        e.logger = "capture".into();
        e.timestamp_us = 5;
        e.fingerprint = "abcdef0123456789".into();
        e.context.program_version = "<1.0>".into();
        e.calls.push(crate::model::event::CapturedCall {
            function: "app::<pay>".into(),
            ..Default::default()
        });
        store.note_function_failures(&[e.clone()]).unwrap();
        let page = functions(&store, &frame, &FunctionsParams::default()).unwrap();
        assert!(!page.contains("id=\"no-functions\""));
        assert!(page.contains("app::&lt;pay&gt;"), "{page}");
        assert!(!page.contains("<pay>"));
        assert!(page.contains("25.0%"));
        assert!(page.contains(&format!("/events/{}", e.id)));
        assert!(page.contains("/groups/abcdef0123456789"));
        let other = FunctionsParams {
            release: "2.0".into(),
            ..Default::default()
        };
        let filtered = functions(&store, &frame, &other).unwrap();
        assert!(filtered.contains("id=\"no-functions\""));
    }
}
