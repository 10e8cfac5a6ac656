//! The functions page: calls, failures and failure rate of each `#[capture]` function, by
//! release, with its last failure and its groups linked.

use std::fmt::Write as _;

use serde::Deserialize;

use super::html::{esc, query_string, time, url_component, Frame};
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
    let mut b = String::from("<h1>Functions</h1>");
    let _ = write!(
        b,
        r#"<p class="muted">Calls and failures of each <code>#[capture]</code> function, by release: a failure is an <code>Err</code> returned or a panic.</p><form class="filters" method="get" action="{base}/functions"><input type="search" name="q" value="{}" placeholder="function name contains" aria-label="function"><input type="search" name="release" value="{}" placeholder="release" aria-label="release"><button type="submit">Filter</button></form>"#,
        esc(&p.q),
        esc(&p.release),
        base = esc(base),
    );
    if listed.is_empty() {
        b.push_str(r#"<p class="muted" id="no-functions">No counted calls yet.</p>"#);
        return Ok(frame.page("Functions", &b));
    }
    b.push_str(
        r#"<table class="functions"><thead><tr><th>Function</th><th>Release</th><th class="num">Calls</th><th class="num">Failures</th><th class="num">Rate</th><th>Last failure</th><th>Groups</th></tr></thead><tbody>"#,
    );
    for f in &listed {
        let last = match (&f.last_event, f.last_failure_us) {
            (Some(id), Some(at)) => format!(
                r#"<a href="{}/events/{}">{}</a>"#,
                esc(base),
                esc(&url_component(id)),
                esc(&time(at))
            ),
            _ => "<span class=\"muted\">none stored</span>".to_owned(),
        };
        let groups: Vec<String> = f
            .groups
            .iter()
            .rev()
            .map(|g| {
                format!(
                    r#"<a href="{}/groups/{}"><code>{}</code></a>"#,
                    esc(base),
                    esc(&url_component(g)),
                    esc(&g.chars().take(12).collect::<String>())
                )
            })
            .collect();
        let release_cell = if f.release.is_empty() {
            "<span class=\"muted\">none</span>".to_owned()
        } else {
            format!(
                r#"<a href="{}/functions{}">{}</a>"#,
                esc(base),
                query_string(&[("release", &f.release)]),
                esc(&f.release)
            )
        };
        let _ = write!(
            b,
            r#"<tr><td><code>{}</code></td><td>{release_cell}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{last}</td><td>{}</td></tr>"#,
            esc(&f.function),
            f.calls,
            f.failures,
            esc(&rate_text(f)),
            groups.join(" "),
        );
    }
    b.push_str("</tbody></table>");
    Ok(frame.page("Functions", &b))
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
