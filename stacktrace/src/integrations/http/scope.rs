//! The request current on this thread, made known to every capture made while it is:
//! installed in a thread-local for the duration of each poll of the request's future (and
//! of the inner service's `call`), so interleaved requests on one thread never see each
//! other's; and what a handler adds to it (`set_user`, `track`, sensitive parameters).
//!
//! Everything here may run inside the panic hook: thread-locals are read with `try_with`
//! and `try_borrow`, locks taken with `try_lock`, and nothing panics or blocks.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{RequestState, ViewOptions};
use crate::capture::pending::PendingEvent;
use crate::runtime::install::runtime;
use crate::sync::lock;

thread_local! {
    static CURRENT: RefCell<Option<Arc<RequestState>>> = const { RefCell::new(None) };
}

/// The request current on this thread.
pub(crate) fn current() -> Option<Arc<RequestState>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
        .ok()
        .flatten()
}

/// Registers [`fill_pending`] with the pending events, once, when a layer makes its first
/// service (before any request can be made current): from then on every event captured
/// while a request is current carries it.
pub(crate) fn add_requests_to_events() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        crate::capture::pending::register_enricher(fill_pending);
        crate::capture::pending::register_secret_source(current_request_secrets);
    });
}

/// Runs `f` with the request in `slot` current on this thread. The request is moved into
/// the thread-local for the time, and back into `slot` after (also when `f` unwinds): no
/// count is updated, where a shared one ([`within_shared`]) takes two updates of a word
/// that every core serving the request touches. `slot` is empty while `f` runs.
pub(crate) fn within<R>(slot: &mut Option<Arc<RequestState>>, f: impl FnOnce() -> R) -> R {
    let Some(state) = slot.take() else {
        return f();
    };
    let mut state = Some(state);
    let made = CURRENT
        .try_with(|c| {
            c.try_borrow_mut()
                .ok()
                .map(|mut c| std::mem::replace(&mut *c, state.take()))
        })
        .ok()
        .flatten();
    // Not made current (the thread-local is gone or in use): it stays where it was.
    let Some(previous) = made else {
        *slot = state;
        return f();
    };
    let _back = Within { slot, previous };
    f()
}

/// Moves the request made current by [`within`] back into its slot, and makes the one
/// before current again.
struct Within<'a> {
    slot: &'a mut Option<Arc<RequestState>>,
    previous: Option<Arc<RequestState>>,
}

impl Drop for Within<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                *self.slot = std::mem::replace(&mut *c, previous);
            }
        });
    }
}

/// Runs `f` with `state` current on this thread, sharing it (its count taken for the
/// time): for where an event is made, which must carry the request.
pub(crate) fn within_shared<R>(state: &Arc<RequestState>, f: impl FnOnce() -> R) -> R {
    within(&mut Some(state.clone()), f)
}

pin_project_lite::pin_project! {
    /// A future that carries the request that was current when it was made: spawn a task
    /// from a handler with it, and what the task captures belongs to the request.
    ///
    /// ```no_run
    /// # async fn handler() {
    /// tokio::spawn(stacktrace::http::in_current_request(async {
    ///     // a panic or capture here carries the request's method, path and user
    /// }));
    /// # }
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct InRequest<F> {
        #[pin]
        inner: F,
        state: Option<Arc<RequestState>>,
    }
}

/// Binds a future to the request current now (see [`InRequest`]).
pub fn in_current_request<F: Future>(future: F) -> InRequest<F> {
    InRequest {
        inner: future,
        state: current(),
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        within(this.state, || inner.poll(cx))
    }
}

/// Says who the user of the current request is: a value whose `user_field` attribute
/// (`username` unless configured) is shown and indexed, as django-stacktrace reads
/// `request.user`; a plain string is the user itself. The whole value is stored with the
/// request, its fields redacted by name. Returns `false` outside a request.
///
/// ```no_run
/// # async fn handler() {
/// stacktrace::set_user(serde_json::json!({"id": 7, "username": "ann", "plan": "pro"}));
/// // or simply
/// stacktrace::set_user("ann");
/// # }
/// ```
pub fn set_user(user: impl Serialize) -> bool {
    let Some(state) = current() else {
        return false;
    };
    let value = serde_json::to_value(user).unwrap_or(Value::Null);
    lock(&state.shared).user = Some(value);
    true
}

/// Attaches data to the current request's tracking entry (stored as JSON, fields redacted
/// by name). Returns `false` outside a request.
///
/// ```no_run
/// # async fn handler() {
/// stacktrace::http::track("cart_items", 3);
/// # }
/// ```
pub fn track(key: &str, value: impl Serialize) -> bool {
    let Some(state) = current() else {
        return false;
    };
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    lock(&state.shared).data.insert(key.to_owned(), value);
    true
}

/// Hides body parameters from inside a handler: the named body parameters
/// (form fields, JSON keys at any depth; whole names, any case) of the current request are
/// stored as `**********`; with no names, the whole body is. Returns `false` outside a
/// request. [`SensitivePostParameters`](super::SensitivePostParameters) does the same as a
/// route layer.
///
/// ```no_run
/// # async fn login() {
/// stacktrace::http::sensitive_post_parameters(&["pass_word", "card"]);
/// # }
/// ```
pub fn sensitive_post_parameters(names: &[&str]) -> bool {
    let Some(state) = current() else {
        return false;
    };
    lock(&state.shared).sensitive.add(names);
    true
}

/// Adds the current request to an event: called for every event built on this thread.
fn fill_pending(p: &mut PendingEvent) {
    let Some(state) = current() else { return };
    state.events.fetch_add(1, Ordering::Relaxed);
    fill_from(p, &state);
}

/// The credentials of the request current on this thread (hidden headers, their cookies
/// and `Basic` passwords, sensitive query fields): what a breadcrumb copied into the crash
/// record while it is served is scrubbed of. Only the headers hidden by name are read, once
/// a request.
fn current_request_secrets(out: &mut Vec<String>) {
    let Some(state) = current() else { return };
    let Some(rt) = runtime() else { return };
    let found = state.credentials.get_or_init(|| {
        let nothing = super::request_redaction::SensitiveBody::Nothing;
        let mut r = super::request_redaction::Redaction::new(
            &rt.build.redactor,
            &rt.config.redact_headers,
            &nothing,
        );
        for (name, value) in state.head.headers() {
            if r.is_sensitive_header(name) {
                r.header(name, value);
            }
        }
        if let Some(query) = state.head.query().filter(|q| q.contains('=')) {
            r.pairs(query);
        }
        r.secrets
    });
    out.extend(found.iter().cloned());
}

/// Adds a request to an event.
pub(crate) fn fill_from(p: &mut PendingEvent, state: &RequestState) {
    let Some(rt) = runtime() else { return };
    let view = state.view(&ViewOptions::of_config(&rt.config, &rt.build.redactor));
    p.request_path = state.path().to_owned();
    p.user = view.user;
    p.client_addr = state.client_addr.clone().unwrap_or_default();
    p.secrets.extend(view.secrets);
    match &mut p.payload {
        Value::Object(map) => {
            map.insert("request".into(), view.json);
        }
        other => {
            let mut map = Map::new();
            if !other.is_null() {
                map.insert("value".into(), other.take());
            }
            map.insert("request".into(), view.json);
            *other = Value::Object(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_request_is_current_within_and_the_previous_one_after() {
        let parts = http::Request::get("/a").body(()).unwrap().into_parts().0;
        let a = Arc::new(RequestState::new(&parts, None, None, 0));
        let parts = http::Request::get("/b").body(()).unwrap().into_parts().0;
        let b = Arc::new(RequestState::new(&parts, None, None, 0));
        assert!(current().is_none());
        within_shared(&a, || {
            within_shared(&b, || {
                assert_eq!(current().unwrap().path(), "/b");
            });
            assert_eq!(current().unwrap().path(), "/a");
        });
        assert!(current().is_none());
    }

    #[test]
    fn within_moves_the_request_in_and_back() {
        let parts = http::Request::get("/a").body(()).unwrap().into_parts().0;
        let a = Arc::new(RequestState::new(&parts, None, None, 0));
        let parts = http::Request::get("/b").body(()).unwrap().into_parts().0;
        let mut b = Some(Arc::new(RequestState::new(&parts, None, None, 0)));
        let mut none = None;
        within_shared(&a, || {
            let seen = within(&mut b, || {
                let inner = within(&mut none, || current().map(|s| s.path().to_owned()));
                let now = current().unwrap();
                // Moved, not shared: the thread-local's and this one are all the counts.
                assert_eq!(Arc::strong_count(&now), 2);
                (now.path().to_owned(), inner)
            });
            assert_eq!(seen.0, "/b");
            assert_eq!(
                seen.1.as_deref(),
                Some("/b"),
                "an empty slot leaves it current"
            );
            assert_eq!(Arc::strong_count(b.as_ref().unwrap()), 1);
            assert_eq!(current().unwrap().path(), "/a", "the one before is back");
            // Also when what runs within unwinds.
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                within(&mut b, || panic!("handler"))
            }));
            assert!(unwound.is_err());
            assert_eq!(b.as_ref().unwrap().path(), "/b");
            assert_eq!(current().unwrap().path(), "/a");
        });
    }
}
