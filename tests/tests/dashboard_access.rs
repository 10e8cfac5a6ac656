//! The dashboard router driven in process: who is served (loopback peers without a token,
//! token holders from anywhere), mounting under a path, escaping of event text, and forms
//! that did not come from the dashboard.

mod cli_support;
mod common;

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
    let (dir, db) = cli_support::showcase_db();
    let store = Store::open(&db).expect("open the copy");
    (dir, store)
}

#[tokio::test]
async fn without_a_token_only_loopback_requests_are_served() {
    let (_dir, store) = showcase_store();
    let app: Router = Dashboard::owning(store).router();

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
    assert!(
        cookie.starts_with("stacktrace_dashboard=s3cret-token;") && cookie.contains("HttpOnly")
    );

    let mut by_cookie = get("/events", peer, "errors.example");
    by_cookie.headers_mut().insert(
        header::COOKIE,
        "stacktrace_dashboard=s3cret-token".parse().unwrap(),
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
        .nest("/errors", Dashboard::owning(store).router());
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
    let app: Router = Dashboard::owning(store).router();
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
