//! The dashboard router driven in process: who is served (loopback peers through no proxy
//! when the loopback rule is on, token holders from anywhere, whoever the application's
//! check allows), the remembered cookie, mounting under a path, escaping of event text and
//! of what a request asked for, and forms that did not come from the dashboard.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use stacktrace::{Dashboard, ServeError, Store};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(uri: &str, peer: Option<&str>, host: &str) -> Request<Body> {
    let mut req = Request::get(uri)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap();
    if let Some(p) = peer {
        let addr: SocketAddr = p.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    req
}

fn showcase_store() -> (tempfile::TempDir, Store) {
    let (dir, db) = support::cli::showcase_db();
    let store = Store::open(&db).expect("open the copy");
    (dir, store)
}

#[tokio::test]
async fn without_a_token_only_loopback_requests_are_served() {
    let (_dir, store) = showcase_store();
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();

    let local = send(&app, get("/", Some("127.0.0.1:40000"), "127.0.0.1:8080")).await;
    assert_eq!(local.status, StatusCode::OK);
    assert!(local.body.contains("<h1>Groups</h1>"));

    let remote = send(&app, get("/", Some("10.0.0.7:40000"), "10.0.0.1:8080")).await;
    assert_eq!(remote.status, StatusCode::FORBIDDEN);
    assert!(remote.body.contains("Loopback only"), "{}", remote.body);
    assert!(!remote.body.contains("checkout declined"));

    // A server that does not record peers cannot show that a request is local.
    let unknown = send(&app, get("/", None, "127.0.0.1:8080")).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);

    // A page elsewhere reaching 127.0.0.1 through a rebound name.
    let rebound = send(&app, get("/", Some("127.0.0.1:40000"), "evil.example")).await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_a_token_requests_from_anywhere_must_present_it() {
    let (_dir, store) = showcase_store();
    let app: Router = Dashboard::owning(store).token("s3cret-token").router();
    let peer = Some("10.0.0.7:40000");

    let refused = send(&app, get("/", peer, "errors.example")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(!refused.body.contains("checkout declined"));
    let wrong = send(&app, get("/?token=guess", peer, "errors.example")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let by_query = send(&app, get("/?token=s3cret-token", peer, "errors.example")).await;
    assert_eq!(by_query.status, StatusCode::OK);
    let cookie = by_query.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("stacktrace_dashboard=") && cookie.contains("HttpOnly"));

    let mut by_cookie = get("/events", peer, "errors.example");
    by_cookie.headers_mut().insert(
        header::COOKIE,
        cookie.split(';').next().unwrap().parse().unwrap(),
    );
    assert_eq!(send(&app, by_cookie).await.status, StatusCode::OK);

    let mut by_header = get("/", peer, "errors.example");
    by_header.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer s3cret-token".parse().unwrap(),
    );
    let ok = send(&app, by_header).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.body.contains("checkout declined by the provider"));
}

#[test]
fn binding_beyond_loopback_needs_a_token() {
    let (_dir, store) = showcase_store();
    let open = Dashboard::owning(store);
    let anywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let lan: SocketAddr = "192.168.1.10:8080".parse().unwrap();
    assert!(matches!(
        open.check_bind(anywhere),
        Err(ServeError::TokenRequired { .. })
    ));
    assert!(open.check_bind(lan).is_err());
    assert!(open.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
    assert!(open.check_bind("[::1]:8080".parse().unwrap()).is_ok());
    let with_token = open.token("t");
    assert!(with_token.check_bind(anywhere).is_ok());
}

#[tokio::test]
async fn mounted_under_a_path_links_stay_inside_it_and_event_text_is_escaped() {
    let (_dir, store) = showcase_store();
    let script = store
        .query()
        .text("<script>")
        .run()
        .unwrap()
        .events
        .remove(0);
    let app: Router = Router::new()
        .route("/", axum::routing::get(|| async { "the app" }))
        .nest(
            "/errors",
            Dashboard::owning(store).allow_loopback(true).router(),
        );
    let peer = Some("127.0.0.1:40000");

    let home = send(&app, get("/errors", peer, "localhost:3000")).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("href=\"/errors/groups/"),
        "{}",
        home.body
    );
    assert!(home.body.contains("action=\"/errors\""));
    let csp = home.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"));

    let page = send(
        &app,
        get(&format!("/errors/events/{}", script.id), peer, "localhost"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("&lt;script&gt;document.title="));
    assert!(!page.body.contains("<script>"), "unescaped markup");
    assert!(page.body.contains("href=\"/errors/groups/"));
    assert!(page.body.contains("mallory") && page.body.contains("/comments"));

    let missing = send(
        &app,
        get(
            &format!("/errors/events/{}", "0".repeat(32)),
            peer,
            "localhost",
        ),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_status_change_from_a_foreign_form_is_refused() {
    let (_dir, store) = showcase_store();
    let fp = store.groups(stacktrace::GroupOrder::Count).unwrap()[0]
        .fingerprint
        .clone();
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();
    let mut req = Request::post(format!("/groups/{fp}/status"))
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("status=resolved&csrf=forged"))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(
        "127.0.0.1:40000".parse::<SocketAddr>().unwrap(),
    ));
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let page = send(
        &app,
        get(&format!("/groups/{fp}"), Some("127.0.0.1:1"), "127.0.0.1"),
    )
    .await;
    assert!(page.body.contains("st-unresolved"), "unchanged");
}

// The message pages quote what the request asked for: a parameter or a path segment that
// holds markup shows as text.
#[tokio::test]
async fn message_pages_show_markup_from_the_request_as_text() {
    let (_dir, store) = showcase_store();
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();
    let local = Some("127.0.0.1:40000");
    let markup = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";

    let bad = send(&app, get(&format!("/?order={markup}"), local, "localhost")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .contains("unknown order &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
        "{}",
        bad.body
    );
    assert!(!bad.body.contains("<script"), "unescaped markup");

    let missing = send(&app, get(&format!("/groups/{markup}"), local, "localhost")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .body
            .contains("no group &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        missing.body
    );
    assert!(!missing.body.contains("<script"), "unescaped markup");
}

/// Every `href` and `action` of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "action=\""] {
        for part in html.split(attr).skip(1) {
            out.push(part[..part.find('"').unwrap()].to_owned());
        }
    }
    out
}

// Regression: an unknown address was answered with an empty 404; mounted under a path as
// the README shows, `/errors/` was a 404 and the 403 and 401 pages linked outside the
// mount path.
#[tokio::test]
async fn unknown_addresses_get_the_html_404_and_mounted_pages_link_inside_the_mount() {
    let (_dir, store) = showcase_store();
    let app: Router = Router::new()
        .route("/", axum::routing::get(|| async { "the app" }))
        .nest_service(
            "/errors",
            Dashboard::owning(store).allow_loopback(true).router(),
        );
    let local = Some("127.0.0.1:40000");

    let missing = send(&app, get("/errors/no/such/page", local, "localhost")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<h1>Not found</h1>"),
        "{}",
        missing.body
    );
    assert!(missing.body.contains("/errors/no/such/page"), "names it");
    assert!(missing.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let l = links(&missing.body);
    assert!(
        !l.is_empty() && l.iter().all(|h| h.starts_with("/errors")),
        "{l:?}"
    );

    let slash = send(&app, get("/errors/", local, "localhost")).await;
    assert_eq!(slash.status, StatusCode::OK, "{}", slash.body);
    assert!(slash.body.contains("<h1>Groups</h1>"));

    let remote = send(&app, get("/errors/events", Some("10.0.0.7:1"), "10.0.0.1")).await;
    assert_eq!(remote.status, StatusCode::FORBIDDEN);
    let l = links(&remote.body);
    assert!(
        !l.is_empty() && l.iter().all(|h| h.starts_with("/errors")),
        "{l:?}"
    );

    // At the root too.
    let (_dir2, store) = showcase_store();
    let root: Router = Dashboard::owning(store).allow_loopback(true).router();
    let missing = send(&root, get("/nope", local, "localhost")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<h1>Not found</h1>"),
        "{}",
        missing.body
    );

    // The page asking for a token, under a mount path.
    let (_dir3, store) = showcase_store();
    let guarded: Router =
        Router::new().nest_service("/errors", Dashboard::owning(store).token("t0ken").router());
    let asked = send(
        &guarded,
        get("/errors/", Some("10.0.0.7:1"), "errors.example"),
    )
    .await;
    assert_eq!(asked.status, StatusCode::UNAUTHORIZED);
    let l = links(&asked.body);
    assert!(
        !l.is_empty() && l.iter().all(|h| h.starts_with("/errors")),
        "{l:?}"
    );
}

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    &html[from..from + html[from..].find(end).unwrap()]
}

// Regression: a 50 KB message filled the group list, the group's and the event's heading
// and the page titles; counts of one were plural ("1 events").
#[tokio::test]
async fn a_long_title_is_shortened_in_lists_and_headings_and_the_message_is_whole() {
    let (_dir, db) = support::cli::long_message_db();
    let store = Store::open(&db).expect("open the copy");
    let id = store.query().run().unwrap().events[0].id;
    let fp = store.groups(stacktrace::GroupOrder::Count).unwrap()[0]
        .fingerprint
        .clone();
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();
    let local = Some("127.0.0.1:40000");
    let whole = format!("huge-title-start {} huge-title-end", "é".repeat(25_000));

    for uri in [
        "/".to_owned(),
        "/events".to_owned(),
        format!("/groups/{fp}"),
    ] {
        let page = send(&app, get(&uri, local, "localhost")).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(page.body.contains("huge-title-start é"), "{uri}");
        assert!(page.body.contains('…'), "{uri}: shortened");
        assert!(
            !page.body.contains("huge-title-end"),
            "{uri}: whole title shown"
        );
        assert!(page.body.len() < 20_000, "{uri}: {} bytes", page.body.len());
        assert!(page.body.contains("1 event · 1 group"), "{uri}: header");
    }

    let event = send(&app, get(&format!("/events/{id}"), local, "localhost")).await;
    assert_eq!(event.status, StatusCode::OK);
    let heading = between(&event.body, "<h1>", "</h1>");
    assert!(heading.starts_with("huge-title-start é") && heading.ends_with('…'));
    assert!(
        heading.chars().count() <= 200,
        "{}",
        heading.chars().count()
    );
    let title = between(&event.body, "<title>", "</title>");
    assert!(title.chars().count() < 250, "{}", title.chars().count());
    // The whole message, in a block that scrolls.
    let message = between(&event.body, "<pre id=\"message\">", "</pre>");
    assert_eq!(message, whole);
    assert!(
        event.body.contains("#message{"),
        "a style for the message block"
    );
    let style = between(&event.body, "#message{", "}");
    assert!(
        style.contains("overflow:auto") && style.contains("max-height"),
        "{style}"
    );
    let group = between(&event.body, "<th>Group</th>", "</tr>");
    assert!(
        group.contains("… (1 event, unresolved)"),
        "the group, singular: {group}"
    );
}

/// `req` with one more header.
fn with(mut req: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    req.headers_mut().insert(name, value.parse().unwrap());
    req
}

/// The headers a reverse proxy adds, each with a usual value.
const PROXY_HEADERS: [(&str, &str); 6] = [
    (
        "forwarded",
        "for=203.0.113.9;proto=https;host=errors.example",
    ),
    ("x-forwarded-for", "203.0.113.9"),
    ("x-forwarded-host", "errors.example"),
    ("x-forwarded-proto", "https"),
    ("x-real-ip", "203.0.113.9"),
    ("via", "1.1 nginx"),
];

// Regression: behind a reverse proxy on the same machine (nginx or Apache with their
// default settings) the peer is 127.0.0.1 and the Host 127.0.0.1:3000, so the loopback rule
// served the dashboard to anyone on the internet.
#[tokio::test]
async fn a_request_through_a_proxy_needs_the_token() {
    let (_dir, store) = showcase_store();
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();
    let local = Some("127.0.0.1:40000");

    // Control: the same request with no proxy header is served.
    let direct = send(&app, get("/", local, "127.0.0.1:3000")).await;
    assert_eq!(direct.status, StatusCode::OK);
    for (name, value) in PROXY_HEADERS {
        let proxied = send(&app, with(get("/", local, "127.0.0.1:3000"), name, value)).await;
        assert_eq!(proxied.status, StatusCode::FORBIDDEN, "{name}");
        assert!(
            proxied.body.contains("proxy") && proxied.body.contains("token"),
            "{name}: {}",
            proxied.body
        );
        assert!(!proxied.body.contains("checkout declined"), "{name}");
    }

    // A loopback name does not help.
    let via = send(
        &app,
        with(get("/", local, "localhost"), "via", "1.1 apache"),
    )
    .await;
    assert_eq!(via.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&app, get("/", local, "localhost")).await.status,
        StatusCode::OK
    );

    // With the token, through the proxy.
    let (_dir2, store) = showcase_store();
    let guarded: Router = Dashboard::owning(store).token("pr0xy-token").router();
    for (name, value) in PROXY_HEADERS {
        let refused = send(&guarded, with(get("/", local, "localhost"), name, value)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{name}");
        let req = with(get("/", local, "localhost"), name, value);
        let ok = send(&guarded, with(req, "authorization", "Bearer pr0xy-token")).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}");
    }
}

// Regression: mounted in the app, the loopback rule was on without being asked for, so a
// reverse proxy that adds no header in front of the app served the dashboard to anyone.
#[tokio::test]
async fn mounted_in_the_app_the_loopback_rule_is_off_unless_asked_for() {
    let (_dir, store) = showcase_store();
    let store: &'static Store = Box::leak(Box::new(store));
    let mount = |d: Dashboard| -> Router {
        Router::new()
            .route("/", axum::routing::get(|| async { "the app" }))
            .nest_service("/errors", d.router())
    };
    let local = Some("127.0.0.1:40000");

    let closed = mount(Dashboard::new(store));
    let refused = send(&closed, get("/errors/", local, "127.0.0.1:3000")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("allow_loopback") && !refused.body.contains("checkout declined"),
        "{}",
        refused.body
    );
    let l = links(&refused.body);
    assert!(l.iter().all(|h| h.starts_with("/errors")), "{l:?}");

    // Control: asked for, the same request is served.
    let open = mount(Dashboard::new(store).allow_loopback(true));
    let served = send(&open, get("/errors/", local, "127.0.0.1:3000")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert!(served.body.contains("<h1>Groups</h1>"));
    // Still not through a proxy.
    let proxied = with(
        get("/errors/", local, "127.0.0.1:3000"),
        "x-real-ip",
        "1.2.3.4",
    );
    assert_eq!(send(&open, proxied).await.status, StatusCode::FORBIDDEN);

    // And the standalone server's kind of dashboard can turn it off.
    let (_dir2, owned) = showcase_store();
    let off: Router = Dashboard::owning(owned).allow_loopback(false).router();
    assert_eq!(
        send(&off, get("/", local, "localhost")).await.status,
        StatusCode::FORBIDDEN
    );
    // Regression: a dashboard owning its store and mounted with `router()` had the rule on
    // by default; any router is mounted in some app, where it is off unless asked for.
    let (_dir3, owned) = showcase_store();
    let mounted: Router = Dashboard::owning(owned).router();
    assert_eq!(
        send(&mounted, get("/", local, "localhost")).await.status,
        StatusCode::FORBIDDEN
    );
}

/// A dashboard whose check lets in requests with `x-role: admin`.
fn checked(d: Dashboard) -> Router {
    d.authorize(|parts: &axum::http::request::Parts| {
        parts.headers.get("x-role").is_some_and(|r| r == "admin")
    })
    .router()
}

// The application's own login guards the dashboard: its verdict decides, a token presented
// goes first.
#[tokio::test]
async fn the_applications_check_decides() {
    let (_dir, store) = showcase_store();
    let store: &'static Store = Box::leak(Box::new(store));
    let app = checked(Dashboard::new(store));
    let remote = Some("10.0.0.7:40000");

    let admin = send(
        &app,
        with(get("/", remote, "errors.example"), "x-role", "admin"),
    )
    .await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("checkout declined by the provider"));
    let guest = send(
        &app,
        with(get("/", remote, "errors.example"), "x-role", "guest"),
    )
    .await;
    assert_eq!(guest.status, StatusCode::FORBIDDEN);
    assert!(!guest.body.contains("checkout declined"));
    // Its refusal is final: the loopback rule does not overrule it.
    let (_dir2, owned) = showcase_store();
    let local_app = checked(Dashboard::owning(owned).allow_loopback(true));
    let local = send(&local_app, get("/", Some("127.0.0.1:1"), "localhost")).await;
    assert_eq!(local.status, StatusCode::FORBIDDEN);

    // With a token too: refused requests are asked for it, and it lets them in.
    let both = checked(Dashboard::new(store).token("b0th-token"));
    let asked = send(&both, get("/", remote, "errors.example")).await;
    assert_eq!(asked.status, StatusCode::UNAUTHORIZED);
    let by_token = send(&both, get("/?token=b0th-token", remote, "errors.example")).await;
    assert_eq!(by_token.status, StatusCode::OK);
    let by_login = send(
        &both,
        with(get("/", remote, "errors.example"), "x-role", "admin"),
    )
    .await;
    assert_eq!(by_login.status, StatusCode::OK);
}

/// The `name=value` pair of a `Set-Cookie` header, and the header whole.
fn set_cookie(reply: &Reply) -> (String, String) {
    let whole = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let pair = whole.split(';').next().unwrap().to_owned();
    (pair, whole)
}

// Regression: the cookie that remembers `?token=` held the token itself, on `Path=/` of the
// whole site, and was never `Secure`, even behind an HTTPS proxy.
#[tokio::test]
async fn the_remembered_cookie_holds_no_token_and_stays_under_the_mount() {
    let (_dir, store) = showcase_store();
    let token = "c00kie-token-123";
    let app: Router =
        Router::new().nest_service("/errors", Dashboard::owning(store).token(token).router());
    let remote = Some("10.0.0.7:40000");

    let first = send(
        &app,
        get(&format!("/errors/?token={token}"), remote, "errors.example"),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let (pair, whole) = set_cookie(&first);
    assert!(!whole.contains(token), "{whole}");
    assert!(
        pair.starts_with("stacktrace_dashboard=") && pair.len() > 30,
        "{pair}"
    );
    for part in ["Path=/errors", "HttpOnly", "SameSite=Strict"] {
        assert!(whole.split("; ").any(|p| p == part), "{part}: {whole}");
    }
    assert!(!whole.contains("Secure"), "plain HTTP, no proxy: {whole}");

    // Accepted afterwards.
    let again = with(
        get("/errors/events", remote, "errors.example"),
        "cookie",
        &pair,
    );
    assert_eq!(send(&app, again).await.status, StatusCode::OK);
    // Control: a cookie of another value is not.
    let forged = with(
        get("/errors/events", remote, "errors.example"),
        "cookie",
        &format!("stacktrace_dashboard={token}"),
    );
    assert_eq!(send(&app, forged).await.status, StatusCode::UNAUTHORIZED);

    // Through a proxy, or a proxy that says the visitor came over HTTPS: `Secure`.
    for (name, value) in [("x-forwarded-proto", "https"), ("via", "1.1 nginx")] {
        let req = get(&format!("/errors/?token={token}"), remote, "errors.example");
        let proxied = send(&app, with(req, name, value)).await;
        assert_eq!(proxied.status, StatusCode::OK, "{name}");
        let (p, whole) = set_cookie(&proxied);
        assert_eq!(p, pair, "the same value");
        assert!(whole.ends_with("; Secure"), "{name}: {whole}");
    }

    // At the root, the cookie is the whole site's.
    let (_dir2, store) = showcase_store();
    let root: Router = Dashboard::owning(store).token(token).router();
    let at_root = send(&root, get(&format!("/?token={token}"), remote, "e.example")).await;
    let (_, whole) = set_cookie(&at_root);
    assert!(whole.contains("; Path=/;"), "{whole}");
}
