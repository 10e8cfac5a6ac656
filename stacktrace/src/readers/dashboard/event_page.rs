//! One event's page: message, source chain, frames with the in-app ones highlighted, the
//! captured calls with their (already redacted) arguments, request, user, environment, tags
//! and extra data.

use maud::{html, Markup, Render};
use serde_json::Value;

use super::html::{self, Frame};
use super::pages::PageError;
use super::source_view::{place, source_block};
use crate::readers::wording::{counted, short_title};
use crate::{CrashEvent, EventId, Store};

/// A row of a table of names and values.
fn row(name: &str, value: impl Render) -> Markup {
    html! { tr { th { (name) } td { (value) } } }
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
    Ok(frame.page(&short_title(&e.title()), event_body(store, &frame.base, &e)))
}

fn event_body(store: &Store, base: &str, e: &CrashEvent) -> Markup {
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
    let c = &e.context;
    let program = if c.program_version.is_empty() {
        c.program.to_string()
    } else {
        format!("{} {}", c.program, c.program_version)
    };
    let thread = match &c.thread_name {
        Some(name) => format!("{name} ({})", c.thread_id),
        None => c.thread_id.clone(),
    };
    html! {
        h1 { (short_title(&e.title())) }
        h2 { "Message" }
        pre id="message" { (e.message) }
        h2 { "Details" }
        table class="meta" {
            (row("Event", html! { code { (e.id) } }))
            (row("Time", html::time(e.timestamp_us)))
            (row("Level", html::level_badge(e.level)))
            (row("Logger", &e.logger))
            @if !e.error_type.is_empty() {
                (row("Error type", &e.error_type))
            }
            @if let Some(l) = &e.location {
                (row("Location", l.to_string()))
            }
            (row("Group", html! { a href={ (base) "/groups/" (e.fingerprint) } { (group_title) } }))
            (row("User", &e.user))
            (row("Request path", &e.request_path))
        }
        @if !e.sources.is_empty() {
            h2 { "Caused by" }
            ol class="sources" {
                @for s in &e.sources {
                    li { pre { (s) } }
                }
            }
        }
        @if !e.frames.is_empty() {
            h2 {
                "Frames "
                span class="muted" {
                    "(innermost first; " (e.frames.iter().filter(|f| f.in_app).count())
                    " of " (e.frames.len()) " in the application)"
                }
            }
            table class="frames" {
                tbody {
                    @for f in &e.frames {
                        tr class=(if f.in_app { "app" } else { "lib" }) {
                            td { code { (f.function) } }
                            td class="muted" { (place(f)) }
                        }
                        @if let (Some(source), Some(at)) = (&f.source, f.line) {
                            (source_block(source, at))
                        }
                    }
                }
            }
        }
        @if !e.calls.is_empty() {
            h2 { "Captured calls " span class="muted" { "(outermost first)" } }
            table class="calls" {
                thead { tr { th { "Function" } th { "Arguments" } } }
                tbody {
                    @for call in &e.calls {
                        tr {
                            td {
                                code { (call.function) }
                                div class="muted" { (call.file) ":" (call.line) }
                            }
                            td {
                                @for a in &call.args {
                                    div { code { (a.name) } " = " code { (a.value) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(req) = request_of(&e.payload) {
            h2 { "Request" }
            table class="meta request" {
                @for (k, v) in req {
                    @if let Value::Object(map) = v {
                        (row(k, html! {
                            @for (hk, hv) in map {
                                div { code { (hk) } ": " (json_text(hv)) }
                            }
                        }))
                    } @else {
                        (row(k, html! { pre { (json_text(v)) } }))
                    }
                }
            }
        }
        @if !e.tags.is_empty() {
            h2 { "Tags" }
            table class="meta tags" {
                @for (k, v) in &e.tags {
                    (row(k, v))
                }
            }
        }
        @if !e.extra.is_empty() {
            h2 { "Extra" }
            table class="meta extra" {
                @for (k, v) in &e.extra {
                    (row(k, html! { pre { (json_text(v)) } }))
                }
            }
        }
        @if let Some(p) = other_payload(&e.payload) {
            h2 { "Payload" }
            pre { (serde_json::to_string_pretty(&p).unwrap_or_default()) }
        }
        h2 { "Environment" }
        table class="meta environment" {
            (row("Program", program))
            (row("Host", &c.hostname))
            (row("System", format!("{} {}", c.os, c.arch)))
            (row("Thread", thread))
            (row("Process", c.pid))
        }
        @if !c.environment.is_empty() {
            details {
                summary { (c.environment.len()) " environment variables" }
                table class="meta" {
                    @for (k, v) in c.environment.iter() {
                        (row(k, html! { code { (v) } }))
                    }
                }
            }
        }
    }
}

/// The payload less its request, when anything is left.
fn other_payload(payload: &Value) -> Option<Value> {
    match payload {
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
    }
}
