//! The dashboard as an axum router: its settings, the routes behind the access check, and the
//! server behind `stacktrace serve`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::access;
use super::event_page;
use super::guard::guard;
use super::html::Frame;
use super::opened::Opened;
use super::pages::{self, EventsParams, GroupParams, GroupsParams, PageError};
use super::releases::{self, ReleasesParams};
use super::requests_page::{self, RequestsParams};
use crate::{GroupStatus, Store};

/// The web dashboard over a store: groups with trend lines, search and filters, a group's
/// chart and events with resolve/ignore/reopen, each event's full report, and the requests
/// the HTTP layer tracks (slowest, by path, by status). Pages are rendered on the server,
/// with no script and nothing loaded from elsewhere.
///
/// Mount its [`router`](Dashboard::router) in your axum app to see the events while the
/// app runs (sled lets one process open the database, so the app's own handle is the way
/// in), or let `stacktrace serve` run it over a database no program holds.
///
/// Access, checked in this order:
///
/// 1. With a [`token`](Dashboard::token), a request that presents it is served:
///    `Authorization: Bearer TOKEN`, or `?token=TOKEN` once (remembered in a cookie that
///    holds a digest of the token, kept to the mount path).
/// 2. With an [`authorize`](Dashboard::authorize) check, its verdict decides (a refused
///    request is asked for the token when one is set).
/// 3. With a token, a request that did not present it is refused.
/// 4. The loopback rule, when it is on ([`allow_loopback`](Dashboard::allow_loopback)):
///    a request from a loopback address, naming a loopback host, and carrying none of the
///    headers a proxy adds (`Forwarded`, `X-Forwarded-For`, `X-Forwarded-Host`,
///    `X-Forwarded-Proto`, `X-Real-IP`, `Via`) is served. A reverse proxy on the same
///    machine makes every visitor's request come from 127.0.0.1, so a proxied request needs
///    the token. For the rule to see peers, serve the app with
///    [`into_make_service_with_connect_info::<SocketAddr>()`](axum::Router::into_make_service_with_connect_info).
///
/// Anything else is refused. The loopback rule is on for [`serve`](Dashboard::serve)
/// (`stacktrace serve`), and off for [`router`](Dashboard::router), which is mounted in the
/// program's own app: there, give it a token, a check of the app's own login, or turn the
/// rule on explicitly.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// # fn is_admin(_: &axum::http::HeaderMap) -> bool { false }
/// # async fn app() -> std::io::Result<()> {
/// let _guard = stacktrace::install();
/// let store = stacktrace::store().expect("the database is open");
/// let dashboard = stacktrace::Dashboard::new(store)
///     // The app's own login decides who sees the events...
///     .authorize(|parts: &axum::http::request::Parts| is_admin(&parts.headers))
///     // ... or whoever holds the token, from anywhere.
///     .token(std::env::var("STACKTRACE_DASHBOARD_TOKEN").unwrap_or_default());
/// let app = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .nest_service("/errors", dashboard.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<SocketAddr>(),
/// )
/// .await
/// # }
/// ```
pub struct Dashboard {
    store: StoreRef,
    token: Option<String>,
    /// `None`: the default of the way it is served (see [`Dashboard::allow_loopback`]).
    loopback: Option<bool>,
    authorize: Option<Authorize>,
}

/// The application's check of a request, given to [`Dashboard::authorize`].
type Authorize = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

enum StoreRef {
    Static(&'static Store),
    Owned(Box<Store>),
    /// Opened for requests and closed once idle (`stacktrace serve`).
    Opened(Arc<Opened>),
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("store", &self.inner_path())
            .field("token", &self.token.as_ref().map(|_| "**********"))
            .field("loopback", &self.loopback)
            .field("authorize", &self.authorize.as_ref().map(|_| ".."))
            .finish()
    }
}

/// The dashboard could not be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The address is reachable from other machines and no token is set.
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding or serving failed.
    Io(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::TokenRequired { addr } => write!(
                f,
                "refusing to serve the dashboard on {addr} without a token: that address is \
                 reachable from other machines; bind a loopback address (127.0.0.1) or set a token"
            ),
            ServeError::Io(_) => f.write_str("serving the dashboard failed"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(e) => Some(e),
            ServeError::TokenRequired { .. } => None,
        }
    }
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> Self {
        ServeError::Io(e)
    }
}

pub(super) struct Inner {
    store: StoreRef,
    pub(super) token: Option<String>,
    /// What the token cookie holds: a digest of the token.
    pub(super) cookie: Option<String>,
    /// Whether the loopback rule is on.
    pub(super) loopback: bool,
    pub(super) authorize: Option<Authorize>,
    /// Put in every form and checked on every change, so that another site cannot make a
    /// visitor's browser resolve or ignore groups.
    form_token: String,
}

impl Inner {
    /// Runs `f` on the store; fails when the database cannot be opened for it.
    fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> Result<R, crate::StoreError> {
        match &self.store {
            StoreRef::Static(s) => Ok(f(s)),
            StoreRef::Owned(s) => Ok(f(s)),
            StoreRef::Opened(o) => o.with_store(f),
        }
    }
}

pub(super) type Shared = Arc<Inner>;

impl Dashboard {
    /// A dashboard over a store that lives for the whole program, such as
    /// [`stacktrace::store()`](crate::store).
    pub fn new(store: &'static Store) -> Dashboard {
        Dashboard {
            store: StoreRef::Static(store),
            token: None,
            loopback: None,
            authorize: None,
        }
    }

    /// A dashboard over the database at `path`, opened for requests and closed once idle, so
    /// that a program that uses it gets it back within seconds (what `stacktrace serve`
    /// does; see the opened module).
    pub(crate) fn opening(path: &std::path::Path) -> Dashboard {
        Dashboard {
            store: StoreRef::Opened(Opened::new(path)),
            token: None,
            loopback: None,
            authorize: None,
        }
    }

    /// A dashboard that owns its store.
    pub fn owning(store: Store) -> Dashboard {
        Dashboard {
            store: StoreRef::Owned(Box::new(store)),
            token: None,
            loopback: None,
            authorize: None,
        }
    }

    /// Requires this token on every request the [`authorize`](Dashboard::authorize) check
    /// does not allow, and allows requests from anywhere that present it. An empty token is
    /// no token.
    pub fn token(mut self, token: impl Into<String>) -> Dashboard {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Lets the application decide who sees the dashboard, with its own login: `check` is
    /// given each request's head and its answer is final, except that a request presenting
    /// the [`token`](Dashboard::token) is served without asking. Like ElmahCore's
    /// `OnPermissionCheck`. A check that panics refuses the request (`403`, or `401` asking
    /// for the token when there is one) and stderr gets one line naming `authorize`, once
    /// per process; the server goes on serving.
    ///
    /// ```
    /// # fn f(store: &'static stacktrace::Store) -> axum::Router {
    /// stacktrace::Dashboard::new(store)
    ///     .authorize(|parts: &axum::http::request::Parts| {
    ///         parts.headers.get("x-role").is_some_and(|r| r == "admin")
    ///     })
    ///     .router()
    /// # }
    /// ```
    pub fn authorize<F>(mut self, check: F) -> Dashboard
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(check));
        self
    }

    /// Turns the loopback rule on or off: without a token or an
    /// [`authorize`](Dashboard::authorize) check, serve requests from this machine (a
    /// loopback peer naming a loopback host, through no proxy). On by default for
    /// [`serve`](Dashboard::serve); off by default for [`router`](Dashboard::router), which
    /// is mounted in the program's own app, where a reverse proxy in front would make every
    /// visitor look local if it adds none of the proxy headers.
    pub fn allow_loopback(mut self, allow: bool) -> Dashboard {
        self.loopback = Some(allow);
        self
    }

    fn inner_path(&self) -> &std::path::Path {
        match &self.store {
            StoreRef::Static(s) => s.path(),
            StoreRef::Owned(s) => s.path(),
            StoreRef::Opened(o) => o.path(),
        }
    }

    /// Whether the dashboard may be served on `addr`: a non-loopback address needs a token.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), ServeError> {
        if access::is_exposed(&addr) && self.token.is_none() {
            return Err(ServeError::TokenRequired { addr });
        }
        Ok(())
    }

    /// The router, to mount in an app with
    /// [`nest_service`](axum::Router::nest_service) (which also routes `/errors/` to it),
    /// [`nest`](axum::Router::nest) (any app state; `/errors/` is not routed), or to serve
    /// as it is. Links, redirects and refusal pages follow the path it is mounted at; an
    /// unknown address gets the HTML 404 page.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        // Mounted in an app, the rule is off unless asked for: a proxy in front of the app
        // makes every visitor look local. `serve` asks for it.
        let loopback = self.loopback.unwrap_or(false);
        let shared: Shared = Arc::new(Inner {
            store: self.store,
            cookie: self.token.as_deref().map(access::cookie_value_of),
            token: self.token,
            loopback,
            authorize: self.authorize,
            form_token: access::random_hex(),
        });
        Router::new()
            .route("/", get(groups_page))
            .route("/events", get(events_page))
            .route("/events/{id}", get(event_page))
            .route("/groups/{fingerprint}", get(group_page))
            .route("/groups/{fingerprint}/status", post(set_status))
            .route("/requests", get(requests_page))
            .route("/releases", get(releases_page))
            .route("/functions", get(functions_page))
            .route("/groups/{fingerprint}/trends", get(group_trends_page))
            .fallback(unknown_page)
            .layer(middleware::from_fn_with_state(shared.clone(), guard))
            .with_state(shared)
    }

    /// Serves the dashboard on a bound listener until the process ends, with the loopback
    /// rule on unless [turned off](Dashboard::allow_loopback). Refuses a non-loopback
    /// address without a token ([`ServeError::TokenRequired`]).
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), ServeError> {
        self.check_bind(listener.local_addr()?)?;
        let loopback = self.loopback.unwrap_or(true);
        let app = self
            .allow_loopback(loopback)
            .router::<()>()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await?;
        Ok(())
    }
}

/// Where the router is mounted: the original path less the part the router saw.
pub(super) fn base_of(original: &Uri, seen: &Uri) -> String {
    let (o, s) = (original.path(), seen.path());
    let base = if s == "/" {
        o.trim_end_matches('/')
    } else {
        o.strip_suffix(s).unwrap_or("")
    };
    base.to_owned()
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) fn message_page(status: StatusCode, frame: &Frame, title: &str, text: &str) -> Response {
    let body = maud::html! { h1 { (title) } p class="notice" { (text) } };
    html_response(status, frame.page(title, body))
}

/// Renders a page off the async threads: sled reads block.
async fn render<F>(s: Shared, base: String, build: F) -> Response
where
    F: FnOnce(&Store, &Frame) -> Result<String, PageError> + Send + 'static,
{
    let done = tokio::task::spawn_blocking(move || {
        let at = base.clone();
        s.with_store(|store| {
            let frame = Frame {
                base,
                summary: pages::summary(store),
            };
            let result = build(store, &frame).map_err(|e| named_damage(e, store.path()));
            (frame, result)
        })
        .unwrap_or_else(|e| {
            let frame = Frame {
                base: at,
                summary: String::new(),
            };
            (frame, Err(unopened(e)))
        })
    })
    .await;
    match done {
        Ok((_, Ok(html))) => html_response(StatusCode::OK, html),
        Ok((frame, Err(PageError::NotFound(m)))) => {
            message_page(StatusCode::NOT_FOUND, &frame, "Not found", &m)
        }
        Ok((frame, Err(PageError::BadInput(m)))) => {
            message_page(StatusCode::BAD_REQUEST, &frame, "Bad request", &m)
        }
        Ok((frame, Err(PageError::Store(m)))) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &frame,
            "Database error",
            &m,
        ),
        Ok((frame, Err(PageError::Damaged(e)))) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &frame,
            "Damaged database",
            &format!("{e}; {}", crate::store::DAMAGE_REMEDY),
        ),
        Ok((frame, Err(PageError::Held(m)))) => message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &frame,
            "Database in use",
            &m,
        ),
        Err(_) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Frame::default(),
            "Internal error",
            "rendering the page failed",
        ),
    }
}

/// A page's failure to read damaged pages, said naming the database at `db`.
fn named_damage(e: PageError, db: &std::path::Path) -> PageError {
    match e {
        PageError::Damaged(e) => PageError::Damaged(crate::store::named_damage(e, db)),
        other => other,
    }
}

/// Why the database could not be opened for a page.
fn unopened(e: crate::StoreError) -> PageError {
    match e {
        crate::StoreError::Locked { path } => PageError::Held(format!(
            "The database {} is held by a running program (sled lets one process open it at a \
             time): see its events through the dashboard that program serves. This page shows \
             them again once it ends.",
            path.display()
        )),
        e @ crate::StoreError::Corrupt { .. } => PageError::Damaged(e),
        e => PageError::Store(crate::diag::error_chain(&e)),
    }
}

async fn groups_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Query(p): Query<GroupsParams>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        pages::groups(store, frame, &p)
    })
    .await
}

async fn events_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Query(p): Query<EventsParams>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        pages::events(store, frame, &p)
    })
    .await
}

async fn group_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Path(fingerprint): Path<String>,
    Query(p): Query<GroupParams>,
) -> Response {
    let form_token = s.form_token.clone();
    render(s, base_of(&original, &uri), move |store, frame| {
        pages::group(store, frame, &fingerprint, &p, &form_token)
    })
    .await
}

async fn event_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        event_page::event(store, frame, &id)
    })
    .await
}

async fn requests_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Query(p): Query<RequestsParams>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        requests_page::requests(store, frame, &p)
    })
    .await
}

async fn releases_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Query(p): Query<ReleasesParams>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        releases::releases(store, frame, &p)
    })
    .await
}

async fn group_trends_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Path(fingerprint): Path<String>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        super::group_page::trends(store, frame, &fingerprint)
    })
    .await
}

async fn functions_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Query(p): Query<super::functions::FunctionsParams>,
) -> Response {
    render(s, base_of(&original, &uri), move |store, frame| {
        super::functions::functions(store, frame, &p)
    })
    .await
}

/// An address the dashboard does not have: the HTML 404 page, in the dashboard's frame.
async fn unknown_page(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> Response {
    let base = base_of(&original, &uri);
    let path = original.path().to_owned();
    render(s, base, move |_, _| {
        Err(PageError::NotFound(format!("no page at {path}")))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    status: String,
    csrf: String,
    /// Resolved in this release (empty: the newest seen); absent: resolved outright.
    #[serde(default)]
    in_release: Option<String>,
}

async fn set_status(
    State(s): State<Shared>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    Path(fingerprint): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let base = base_of(&original, &uri);
    let frame = Frame {
        base: base.clone(),
        summary: String::new(),
    };
    if !access::same_secret(&form.csrf, &s.form_token) {
        return message_page(
            StatusCode::FORBIDDEN,
            &frame,
            "Form expired",
            "This form was not issued by this dashboard (or the dashboard restarted): reload the page and try again.",
        );
    }
    let status: GroupStatus = match form.status.parse() {
        Ok(st) => st,
        Err(m) => return message_page(StatusCode::BAD_REQUEST, &frame, "Bad request", &m),
    };
    let fp = fingerprint.clone();
    let done = tokio::task::spawn_blocking(move || {
        s.with_store(|store| {
            let r = match (status, form.in_release.as_deref()) {
                (GroupStatus::Resolved, Some("")) => store.resolve_in_current_release(&fp),
                (GroupStatus::Resolved, Some(release)) => store.resolve_in_release(&fp, release),
                _ => store.set_group_status(&fp, status),
            };
            // Made durable at once: a server stopped right after must not lose the change.
            let flushed = store.flush();
            r.and_then(|g| flushed.map(|()| g))
                .map_err(|e| crate::store::named_damage(e, store.path()))
        })
        .and_then(|r| r)
    })
    .await;
    match done {
        Ok(Ok(Some(_))) => {
            let to = format!("{base}/groups/{fingerprint}");
            match HeaderValue::from_str(&to) {
                Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
                Err(_) => StatusCode::NO_CONTENT.into_response(),
            }
        }
        Ok(Ok(None)) => message_page(
            StatusCode::NOT_FOUND,
            &frame,
            "Not found",
            &format!("no group {fingerprint}"),
        ),
        Ok(Err(e @ crate::StoreError::InvalidRelease { .. })) => message_page(
            StatusCode::BAD_REQUEST,
            &frame,
            "Bad request",
            &e.to_string(),
        ),
        Ok(Err(e)) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &frame,
            "Database error",
            &crate::diag::error_chain(&e),
        ),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_the_mount_path() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(base_of(&u("/"), &u("/")), "");
        assert_eq!(base_of(&u("/errors"), &u("/")), "/errors");
        assert_eq!(base_of(&u("/errors/"), &u("/")), "/errors");
        assert_eq!(
            base_of(&u("/errors/groups/ab"), &u("/groups/ab")),
            "/errors"
        );
        assert_eq!(base_of(&u("/groups/ab"), &u("/groups/ab")), "");
    }
}
