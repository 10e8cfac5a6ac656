//! One event's page: message, source chain, frames with the in-app ones highlighted, the
//! captured calls with their (already redacted) arguments, request, user, environment, tags
//! and extra data.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::{self, esc, Frame};
use super::pages::PageError;
use crate::readers::wording::{counted, short_title};
use crate::{CrashEvent, EventId, Store};

fn row(b: &mut String, name: &str, value_html: &str) {
    let _ = write!(b, "<tr><th>{}</th><td>{value_html}</td></tr>", esc(name));
}

/// A JSON value as text: strings bare, everything else as compact JSON.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request part of the payload, when the HTTP integration stored one.
fn request_of(payload: &Value) -> Option<&serde_json::Map<String, Value>> {
    payload.get("request").and_then(Value::as_object)
}

/// The event page.
pub(crate) fn event(store: &Store, frame: &Frame, id: &str) -> Result<String, PageError> {
    let id: EventId = id
        .parse()
        .map_err(|e: crate::ParseEventIdError| PageError::NotFound(e.to_string()))?;
    let e = store
        .get(id)?
        .ok_or_else(|| PageError::NotFound(format!("no event {id}")))?;
    Ok(frame.page(
        &short_title(&e.title()),
        &event_body(store, &frame.base, &e),
    ))
}

fn event_body(store: &Store, base: &str, e: &CrashEvent) -> String {
    let mut b = format!(
        r#"<h1>{}</h1><h2>Message</h2><pre id="message">{}</pre>"#,
        esc(&short_title(&e.title())),
        esc(&e.message)
    );

    b.push_str(r#"<h2>Details</h2><table class="meta">"#);
    row(&mut b, "Event", &format!("<code>{}</code>", e.id));
    row(&mut b, "Time", &html::time(e.timestamp_us));
    row(&mut b, "Level", &html::level_badge(e.level));
    row(&mut b, "Logger", &esc(&e.logger));
    if !e.error_type.is_empty() {
        row(&mut b, "Error type", &esc(&e.error_type));
    }
    if let Some(l) = &e.location {
        row(&mut b, "Location", &esc(&l.to_string()));
    }
    let group_title = store
        .group(&e.fingerprint)
        .ok()
        .flatten()
        .map(|g| {
            format!(
                "{} ({}, {})",
                short_title(&g.title),
                counted(g.count, "event", "events"),
                g.status
            )
        })
        .unwrap_or_else(|| e.fingerprint.clone());
    row(
        &mut b,
        "Group",
        &format!(
            r#"<a href="{}/groups/{}">{}</a>"#,
            esc(base),
            esc(&e.fingerprint),
            esc(&group_title)
        ),
    );
    row(&mut b, "User", &esc(&e.user));
    row(&mut b, "Request path", &esc(&e.request_path));
    b.push_str("</table>");

    if !e.sources.is_empty() {
        b.push_str(r#"<h2>Caused by</h2><ol class="sources">"#);
        for s in &e.sources {
            let _ = write!(b, "<li><pre>{}</pre></li>", esc(s));
        }
        b.push_str("</ol>");
    }

    if !e.frames.is_empty() {
        let app = e.frames.iter().filter(|f| f.in_app).count();
        let _ = write!(
            b,
            r#"<h2>Frames <span class="muted">(innermost first; {app} of {} in the application)</span></h2><table class="frames"><tbody>"#,
            e.frames.len()
        );
        for f in &e.frames {
            let place = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!("{file}:{line}"),
                (Some(file), None) => file.clone(),
                _ => String::new(),
            };
            let _ = write!(
                b,
                r#"<tr class="{}"><td><code>{}</code></td><td class="muted">{}</td></tr>"#,
                if f.in_app { "app" } else { "lib" },
                esc(&f.function),
                esc(&place)
            );
            if let (Some(source), Some(at)) = (&f.source, f.line) {
                b.push_str(&super::source_view::source_block(source, at));
            }
        }
        b.push_str("</tbody></table>");
    }

    if !e.calls.is_empty() {
        b.push_str(
            r#"<h2>Captured calls <span class="muted">(outermost first)</span></h2><table class="calls"><thead><tr><th>Function</th><th>Arguments</th></tr></thead><tbody>"#,
        );
        for c in &e.calls {
            let mut args = String::new();
            for a in &c.args {
                let _ = write!(
                    args,
                    "<div><code>{}</code> = <code>{}</code></div>",
                    esc(&a.name),
                    esc(&a.value)
                );
            }
            let _ = write!(
                b,
                r#"<tr><td><code>{}</code><div class="muted">{}:{}</div></td><td>{args}</td></tr>"#,
                esc(&c.function),
                esc(&c.file),
                c.line
            );
        }
        b.push_str("</tbody></table>");
    }

    if let Some(req) = request_of(&e.payload) {
        b.push_str(r#"<h2>Request</h2><table class="meta request">"#);
        for (k, v) in req {
            match v {
                Value::Object(map) => {
                    let mut inner = String::new();
                    for (hk, hv) in map {
                        let _ = write!(
                            inner,
                            "<div><code>{}</code>: {}</div>",
                            esc(hk),
                            esc(&json_text(hv))
                        );
                    }
                    row(&mut b, k, &inner);
                }
                other => row(&mut b, k, &format!("<pre>{}</pre>", esc(&json_text(other)))),
            }
        }
        b.push_str("</table>");
    }

    if !e.tags.is_empty() {
        b.push_str(r#"<h2>Tags</h2><table class="meta tags">"#);
        for (k, v) in &e.tags {
            row(&mut b, k, &esc(v));
        }
        b.push_str("</table>");
    }
    if !e.extra.is_empty() {
        b.push_str(r#"<h2>Extra</h2><table class="meta extra">"#);
        for (k, v) in &e.extra {
            row(&mut b, k, &format!("<pre>{}</pre>", esc(&json_text(v))));
        }
        b.push_str("</table>");
    }
    let other_payload = match &e.payload {
        Value::Null => None,
        Value::Object(m) => {
            let rest: serde_json::Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "request")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!rest.is_empty()).then_some(Value::Object(rest))
        }
        other => Some(other.clone()),
    };
    if let Some(p) = other_payload {
        let text = serde_json::to_string_pretty(&p).unwrap_or_default();
        let _ = write!(b, "<h2>Payload</h2><pre>{}</pre>", esc(&text));
    }

    let c = &e.context;
    b.push_str(r#"<h2>Environment</h2><table class="meta environment">"#);
    let program = if c.program_version.is_empty() {
        c.program.to_string()
    } else {
        format!("{} {}", c.program, c.program_version)
    };
    row(&mut b, "Program", &esc(&program));
    row(&mut b, "Host", &esc(&c.hostname));
    row(&mut b, "System", &esc(&format!("{} {}", c.os, c.arch)));
    let thread = match &c.thread_name {
        Some(name) => format!("{name} ({})", c.thread_id),
        None => c.thread_id.clone(),
    };
    row(&mut b, "Thread", &esc(&thread));
    row(&mut b, "Process", &c.pid.to_string());
    b.push_str("</table>");
    if !c.environment.is_empty() {
        let _ = write!(
            b,
            r#"<details><summary>{} environment variables</summary><table class="meta">"#,
            c.environment.len()
        );
        for (k, v) in c.environment.iter() {
            row(&mut b, k, &format!("<code>{}</code>", esc(v)));
        }
        b.push_str("</table></details>");
    }
    b
}
