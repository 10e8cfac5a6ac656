//! The tower layer: makes each request known to the captures made while it is handled,
//! turns a panicking handler into a `500`, stores server errors and broken links, and
//! queues the request's tracking entry.

use std::future::Future;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::body::{RequestBody, ResponseBody};
use super::broken_links::DEFAULT_IGNORABLE_404_URLS;
use super::events::{self, Grouping, ResponseError};
use super::limit::{EventLimit, DEFAULT_PER_GROUP, DEFAULT_PER_MINUTE};
use super::request::RequestState;
use super::route::matched_route;
use super::scope::{add_requests_to_events, within, within_shared};
use super::tracking::{regex_setting, Plan, Tracker, Tracking};
use crate::capture::user_hook::UserHook;
use crate::error::ConfigError;
use crate::runtime::install::runtime;

/// The [`StacktraceLayer::user`] and [`StacktraceLayer::client_addr`] closures, as their
/// panics are said.
static USER: UserHook = UserHook::new("user", "the request goes on without a user");
static CLIENT_ADDR: UserHook =
    UserHook::new("client_addr", "the request goes on with the peer's address");

type UserFn = dyn Fn(&Parts) -> Option<Value> + Send + Sync;
type AddrFn = dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync;

struct Settings {
    user: Option<Arc<UserFn>>,
    client_addr: Option<Arc<AddrFn>>,
    ignorable_404_urls: Vec<Regex>,
    broken_links: bool,
    server_errors: bool,
    tracking: Option<Arc<Tracking>>,
    limit: &'static EventLimit,
}

/// The HTTP integration, as a [`tower::Layer`]: it serves axum, hyper and tonic alike.
///
/// For every request it handles, it
/// - makes the request known to every capture made while it is handled (the panic hook,
///   `#[capture]`, [`capture_error`](crate::capture_error)), also in the handler's async
///   code: events get the method, path, query, headers (`capture_headers`), the first
///   `max_payload_bytes` of the body (`capture_body`), the client address and the user,
///   all redacted, and `request_path` and `user` in their indexed fields;
/// - answers `500` when the handler panics, and the server keeps serving;
/// - stores a `5xx` response as an event (with the [`ResponseError`] the response carries);
/// - stores a `404` reached through a link as a broken link (logger `http.404`);
/// - groups these events of its own by route (axum's `MatchedPath`, feature
///   `axum-matched-path`) or by the path with its ids replaced (`/orders/{id}`), never by
///   the `Host` a client sent, and stores at most
///   [`event_limits`](StacktraceLayer::event_limits) of them a minute;
/// - with [`tracking`](StacktraceLayer::tracking), records the request in the tracking
///   tree, off the request path.
///
/// It does nothing but catch panics until [`install`](crate::install()) has run.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use stacktrace::http::{StacktraceLayer, Tracking};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let _guard = stacktrace::install();
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(
///         StacktraceLayer::new()
///             .user(|req| req.headers.get("x-user").and_then(|v| v.to_str().ok()).map(str::to_owned))
///             .tracking(Tracking::new().exclude("^/health$")?),
///     );
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StacktraceLayer {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for StacktraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.settings;
        f.debug_struct("StacktraceLayer")
            .field("user", &s.user.is_some())
            .field("client_addr", &s.client_addr.is_some())
            .field("ignorable_404_urls", &s.ignorable_404_urls)
            .field("broken_links", &s.broken_links)
            .field("server_errors", &s.server_errors)
            .field("tracking", &s.tracking)
            .field("event_limits", &s.limit.limits())
            .finish()
    }
}

impl Default for StacktraceLayer {
    fn default() -> Self {
        StacktraceLayer::new()
    }
}

impl StacktraceLayer {
    /// A layer with server errors and broken links on, the default ignorable 404 URLs
    /// (`/favicon.ico`, `/robots.txt`, `/apple-touch-icon*.png`, `*.php`), the default
    /// [`event_limits`](StacktraceLayer::event_limits) and no tracking.
    pub fn new() -> Self {
        StacktraceLayer {
            settings: Arc::new(Settings {
                user: None,
                client_addr: None,
                ignorable_404_urls: DEFAULT_IGNORABLE_404_URLS
                    .iter()
                    .filter_map(|p| Regex::new(p).ok())
                    .collect(),
                broken_links: true,
                server_errors: true,
                tracking: None,
                limit: EventLimit::shared(DEFAULT_PER_GROUP, DEFAULT_PER_MINUTE),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        match Arc::get_mut(&mut self.settings) {
            Some(s) => f(s),
            None => {
                let s = &*self.settings;
                let mut copy = Settings {
                    user: s.user.clone(),
                    client_addr: s.client_addr.clone(),
                    ignorable_404_urls: s.ignorable_404_urls.clone(),
                    broken_links: s.broken_links,
                    server_errors: s.server_errors,
                    tracking: s.tracking.clone(),
                    limit: s.limit,
                };
                f(&mut copy);
                self.settings = Arc::new(copy);
            }
        }
        self
    }

    /// Who the user of a request is, read from the request as it arrives (headers, or
    /// extensions set by layers outside this one). A value whose `user_field` attribute is
    /// shown and indexed, or a string; see [`set_user`](crate::set_user) to say it from the
    /// handler instead.
    pub fn user<F, U>(self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<U> + Send + Sync + 'static,
        U: Serialize,
    {
        let f: Arc<UserFn> =
            Arc::new(move |parts| f(parts).and_then(|u| serde_json::to_value(u).ok()));
        self.edit(|s| s.user = Some(f))
    }

    /// Where a request's client address is read. By default, a `SocketAddr` in the
    /// request's extensions; with axum, read its `ConnectInfo`:
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use axum::extract::ConnectInfo;
    ///
    /// let layer = stacktrace::http::StacktraceLayer::new().client_addr(|req| {
    ///     req.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
    /// });
    /// ```
    pub fn client_addr<F>(self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        let f: Arc<AddrFn> = Arc::new(f);
        self.edit(|s| s.client_addr = Some(f))
    }

    /// Replaces the path regexes of 404s never reported as broken links.
    pub fn ignorable_404_urls<I, S>(self, patterns: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = patterns
            .into_iter()
            .map(|p| regex_setting("ignorable_404_urls", p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.edit(|s| s.ignorable_404_urls = list))
    }

    /// Adds a path regex of 404s never reported as broken links.
    ///
    /// ```
    /// let layer = stacktrace::http::StacktraceLayer::new().ignorable_404_url(r"^/\.well-known/")?;
    /// # Ok::<(), stacktrace::ConfigError>(())
    /// ```
    pub fn ignorable_404_url(self, pattern: &str) -> Result<Self, ConfigError> {
        let r = regex_setting("ignorable_404_urls", pattern)?;
        Ok(self.edit(|s| s.ignorable_404_urls.push(r)))
    }

    /// Whether 404s reached through a link are stored (on by default).
    pub fn broken_links(self, on: bool) -> Self {
        self.edit(|s| s.broken_links = on)
    }

    /// Whether `5xx` responses are stored (on by default).
    pub fn server_errors(self, on: bool) -> Self {
        self.edit(|s| s.server_errors = on)
    }

    /// At most how many of the layer's own events (server errors, broken links) are stored
    /// a minute: `per_group` of one group, `per_minute` in all (default 10 and 100; 0 is no
    /// limit). Clients decide how many requests fail: past the limit, events are counted as
    /// dropped ([`DropReason::HttpLimited`](crate::DropReason::HttpLimited)) and mail no one.
    /// The count is the process's: layers with the same limits share it.
    ///
    /// ```
    /// let layer = stacktrace::http::StacktraceLayer::new().event_limits(5, 50);
    /// # let _ = layer;
    /// ```
    pub fn event_limits(self, per_group: u32, per_minute: u32) -> Self {
        let limit = EventLimit::shared(per_group, per_minute);
        self.edit(|s| s.limit = limit)
    }

    /// Turns request tracking on, with these settings.
    pub fn tracking(self, tracking: Tracking) -> Self {
        let t = Arc::new(tracking);
        self.edit(|s| s.tracking = Some(t))
    }
}

impl<S> tower::Layer<S> for StacktraceLayer {
    type Service = StacktraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        add_requests_to_events();
        StacktraceService {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service made by [`StacktraceLayer`].
#[derive(Clone)]
pub struct StacktraceService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for StacktraceService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StacktraceService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> StacktraceService<S> {
    /// The request's state, when the tracker is installed and on, with the tracking
    /// settings when the request is tracked and the body bytes kept.
    fn state_of(&self, parts: &Parts) -> (Option<Arc<RequestState>>, Option<Plan>, usize) {
        let Some(rt) = runtime() else {
            return (None, None, 0);
        };
        if !rt.config.enabled {
            return (None, None, 0);
        }
        let s = &self.settings;
        let path = parts.uri.path();
        let tracking = s.tracking.as_ref().and_then(|t| t.plan(path));
        let mut body_limit = if rt.config.capture_body {
            rt.config.max_payload_bytes
        } else {
            0
        };
        if let Some(plan) = &tracking {
            body_limit = body_limit.max(plan.body_limit());
        }
        // A closure that panics leaves the request without what it reads, and the request
        // goes on: it is the program's code, run where the program did not ask for it.
        let user = s
            .user
            .as_ref()
            .and_then(|f| USER.call(|| f(parts)).flatten());
        let addr = s
            .client_addr
            .as_ref()
            .and_then(|f| CLIENT_ADDR.call(|| f(parts)).flatten())
            .map(|a| a.to_string());
        let state = RequestState::new(parts, addr, user, body_limit);
        (Some(Arc::new(state)), tracking, body_limit)
    }
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for StacktraceService<S>
where
    S: tower::Service<Request<RequestBody<ReqB>>, Response = Response<ResB>>,
    ResB: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let (mut state, tracking, body_limit) = self.state_of(&parts);
        // Read only for a tracked request, since only its duration is kept.
        let tracking = tracking.map(|plan| (plan, Instant::now()));
        let has_referer = parts.headers.contains_key(http::header::REFERER);
        let route = matched_route(&parts);
        let body_state = state.as_ref().filter(|_| body_limit > 0).cloned();
        let req = Request::from_parts(parts, RequestBody::new(body, body_state));
        let inner = &mut self.inner;
        let called = within(&mut state, || {
            catch_unwind(AssertUnwindSafe(|| inner.call(req)))
        });
        let kind = match called {
            Ok(future) => Kind::Running { future },
            Err(payload) => Kind::Panicked {
                message: Some(crate::diag::panic_message(&*payload)),
            },
        };
        // Only a request with a referer can be a broken link; the others need no share of
        // the settings, whose count all threads would otherwise update for every request.
        let s = &self.settings;
        ResponseFuture {
            kind,
            state,
            tracking,
            server_errors: s.server_errors,
            links: (s.broken_links && has_referer).then(|| s.clone()),
            route,
            limit: s.limit,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Running { #[pin] future: F },
        Panicked { message: Option<String> },
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`StacktraceService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
        state: Option<Arc<RequestState>>,
        // The tracking settings and when the request came in, for a tracked request.
        tracking: Option<(Plan, Instant)>,
        // Whether a 5xx response is recorded.
        server_errors: bool,
        // The settings, for a request that could be a broken link.
        links: Option<Arc<Settings>>,
        // The route that matched, when the router said it.
        route: Option<Arc<str>>,
        // The cap on the layer's own events.
        limit: &'static EventLimit,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("path", &self.state.as_ref().map(|s| s.path().to_owned()))
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let panicked = match this.kind.project() {
            KindProj::Running { future } => {
                match within(this.state, || {
                    catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
                }) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Err(e))) => return Poll::Ready(Err(e)),
                    Ok(Poll::Ready(Ok(res))) => {
                        let grouping = Grouping {
                            matched: this.route.as_deref(),
                            limit: this.limit,
                        };
                        return Poll::Ready(Ok(finish(
                            res,
                            this.state,
                            this.tracking,
                            *this.server_errors,
                            this.links.as_deref(),
                            &grouping,
                        )));
                    }
                    Err(payload) => crate::diag::panic_message(&*payload),
                }
            }
            KindProj::Panicked { message } => message.take().unwrap_or_default(),
        };
        if let Some(state) = this.state.as_ref() {
            // The event carries the request: it is made current meanwhile.
            within_shared(state, || events::unstored_panic(state, &panicked));
        }
        let tracker = tracker_of(
            this.state,
            this.tracking,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(http::HeaderValue::from_static("text/plain")),
        );
        let mut res = Response::new(ResponseBody::full(
            Bytes::from_static(b"Internal Server Error"),
            tracker,
        ));
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Poll::Ready(Ok(res))
    }
}

/// The tracker of a tracked request, which takes the request's state from its finished
/// future rather than sharing it (one count less to update on a line other cores read).
fn tracker_of(
    state: &mut Option<Arc<RequestState>>,
    tracking: &Option<(Plan, Instant)>,
    status: StatusCode,
    content_type: Option<http::HeaderValue>,
) -> Option<Tracker> {
    let (plan, started) = tracking.as_ref()?;
    let state = state.take()?;
    Some(Tracker::new(
        *plan,
        *started,
        state,
        status.as_u16(),
        content_type,
    ))
}

/// Stores what the response says went wrong, and wraps its body for tracking.
fn finish<B>(
    res: Response<B>,
    state: &mut Option<Arc<RequestState>>,
    tracking: &Option<(Plan, Instant)>,
    server_errors: bool,
    links: Option<&Settings>,
    grouping: &Grouping<'_>,
) -> Response<ResponseBody<B>> {
    let status = res.status();
    if let Some(state) = state.as_ref() {
        // An event made here carries the request: it is made current meanwhile (only then,
        // since that updates its count twice).
        if status.is_server_error() && server_errors {
            let error = res.extensions().get::<ResponseError>();
            within_shared(state, || {
                events::server_error(state, status, error, grouping)
            });
        } else if status == StatusCode::NOT_FOUND {
            if let Some(links) = links {
                within_shared(state, || {
                    events::broken_link(state, &links.ignorable_404_urls, grouping)
                });
            }
        }
    }
    let tracker = if tracking.is_some() {
        let ct = res.headers().get(http::header::CONTENT_TYPE).cloned();
        tracker_of(state, tracking, status, ct)
    } else {
        None
    };
    res.map(|body| ResponseBody::inner(body, tracker))
}
