//! The events the layer stores itself: server errors, broken links, and panics the panic
//! hook did not store.

use std::error::Error as StdError;
use std::sync::atomic::Ordering;

use regex::Regex;
use serde_json::Value;

use super::broken_links::{verdict, Verdict};
use super::limit::EventLimit;
use super::request::RequestState;
use super::request_redaction::{Redaction, SensitiveBody};
use super::route::path_pattern;
use crate::api::capture::{error_type_name, sources_of};
use crate::capture::pending::PendingEvent;
use crate::model::event::Level;
use crate::runtime::admission::{admitted, submit};

/// The error behind a `5xx` response, for the event the layer stores. Put it in the
/// response's extensions where your error type becomes a response:
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::{IntoResponse, Response};
///
/// #[derive(Debug)]
/// struct AppError(std::io::Error);
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong").into_response();
///         res.extensions_mut().insert(stacktrace::http::ResponseError::new(&self.0));
///         res
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseError {
    error_type: String,
    message: String,
    sources: Vec<String>,
}

impl ResponseError {
    /// The error's type, message and `source()` chain.
    pub fn new<E: StdError + ?Sized>(error: &E) -> Self {
        ResponseError {
            error_type: error_type_name(error),
            message: error.to_string(),
            sources: sources_of(error),
        }
    }

    /// The error's type name.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Stores a `5xx` response as an event with its request, unless an event was already
/// captured while the request was handled (the panic, or the `#[capture]` error that
/// caused the response): that one carries the request already.
pub(crate) fn server_error(
    state: &RequestState,
    status: http::StatusCode,
    error: Option<&ResponseError>,
    grouping: &Grouping<'_>,
) {
    if state.events.load(Ordering::Relaxed) > 0 {
        return;
    }
    let Some((rt, now)) = admitted() else { return };
    let mut p = PendingEvent::new(now, Level::Error, "http");
    let route = grouping.route(state);
    match error {
        Some(e) => {
            p.error_type = e.error_type.clone();
            p.message = e.message.clone();
            p.sources = e.sources.clone();
        }
        None => {
            p.error_type = format!("HTTP {}", status.as_u16());
            p.message = format!("{} {} {}", status, state.method, state.path());
            // One group per route, not per path: `/orders/1` and `/orders/2` fail alike.
            p.grouping = Some(format!("{} {route}", state.method));
        }
    }
    p.tags.insert("status".into(), status.as_u16().to_string());
    p.tags.insert("route".into(), route);
    if !grouping.admit(&p, now) {
        return;
    }
    submit(rt, p, false);
}

/// How the layer's events are grouped and capped: the route that matched the request, if
/// the router said it, and the layer's limit.
pub(crate) struct Grouping<'a> {
    pub(crate) matched: Option<&'a str>,
    pub(crate) limit: &'a EventLimit,
}

impl Grouping<'_> {
    /// The route template, or the path with its ids replaced.
    fn route(&self, state: &RequestState) -> String {
        match self.matched {
            Some(m) => m.to_owned(),
            None => path_pattern(state.path()),
        }
    }

    /// Whether the layer's limit lets the event be stored; counts the drop when not.
    fn admit(&self, p: &PendingEvent, now: u64) -> bool {
        let key = p.grouping.as_deref().unwrap_or(&p.message);
        match self.limit.admit(&format!("{}\0{key}", p.error_type), now) {
            Ok(()) => true,
            Err(reason) => {
                if let Some(rt) = crate::runtime::install::runtime() {
                    rt.drops.add(reason);
                }
                false
            }
        }
    }
}

/// Stores a panic of the handler that the panic hook did not (another hook was set after
/// `install`).
pub(crate) fn unstored_panic(state: &RequestState, message: &str) {
    if state.events.load(Ordering::Relaxed) > 0 {
        return;
    }
    let Some((rt, now)) = admitted() else { return };
    let mut p = PendingEvent::new(now, Level::Fatal, "panic");
    p.error_type = "panic".into();
    p.message = message.to_owned();
    submit(rt, p, false);
}

/// Stores a 404 as a broken link when a page linked to it (see `broken_links`), for the
/// managers' mail.
pub(crate) fn broken_link(state: &RequestState, ignorable: &[Regex], grouping: &Grouping<'_>) {
    let head = &state.head;
    let referer = head.header_text(http::header::REFERER);
    let host = {
        let h = head.header_text(http::header::HOST);
        if h.is_empty() {
            head.authority().unwrap_or_default().to_owned()
        } else {
            h
        }
    };
    let full_path = head.path_and_query();
    let kind = match verdict(&host, state.path(), &full_path, &referer, ignorable) {
        Verdict::Ignored => return,
        Verdict::Internal => "Broken INTERNAL link",
        Verdict::External => "Broken link",
    };
    let Some((rt, now)) = admitted() else { return };
    let mut p = PendingEvent::new(now, Level::Warning, "http.404");
    p.error_type = "http.404".into();
    // The host is the client's to choose: kept apart (`extra.host`), out of the message
    // that titles the event and its mail, and out of its group.
    p.message = format!("{kind}: {}", state.path());
    let route = grouping.route(state);
    p.grouping = Some(format!("{kind} {} {route}", state.method));
    p.tags.insert("route".into(), route);
    p.extra.insert("host".into(), Value::String(host));
    if !grouping.admit(&p, now) {
        return;
    }
    // The URLs as stored: credentials and sensitive query fields hidden.
    let nothing = SensitiveBody::Nothing;
    let mut r = Redaction::new(&rt.build.redactor, &rt.config.redact_headers, &nothing);
    let requested = r.url(&full_path);
    let referer = r.url(&referer);
    p.secrets.extend(r.secrets);
    p.extra.insert("referer".into(), Value::String(referer));
    p.extra
        .insert("requested_url".into(), Value::String(requested));
    p.extra.insert(
        "user_agent".into(),
        Value::String(head.header_text(http::header::USER_AGENT)),
    );
    if let Some(addr) = &state.client_addr {
        p.extra
            .insert("ip_address".into(), Value::String(addr.clone()));
    }
    submit(rt, p, false);
}
