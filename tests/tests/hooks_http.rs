//! The HTTP layer's `user` and `client_addr` closures and the dashboard's `authorize`
//! check that panic: the request is answered as it would be without them (refused, for the
//! check), and its events are stored.

mod support;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use stacktrace::http::StacktraceLayer;
use stacktrace::{Config, Dashboard, Level, Store};
use support::http::{client, empty, events_at, flush, install, send, serve};

async fn panics() -> &'static str {
    panic!("handler exploded");
}

async fn fine() -> &'static str {
    stacktrace::capture_message("the fine handler ran", Level::Warning);
    "fine"
}

/// Both closures panic when the request asks for it (`x-break`), else name `ann`.
fn layer() -> StacktraceLayer {
    let breaks = |req: &http::request::Parts| req.headers.contains_key("x-break");
    StacktraceLayer::new()
        .user(move |req| {
            if breaks(req) {
                panic!("the user closure broke");
            }
            Some("ann")
        })
        .client_addr(move |req| {
            if breaks(req) {
                panic!("the client_addr closure broke");
            }
            None
        })
}

// Pins: the layer called the program's `user` and `client_addr` closures unguarded, so one
// that panicked unwound out of the service: the connection was dropped with no response,
// the `500` of a panicking handler included, and the request's events were never made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closures_that_panic_leave_the_response_and_the_events() {
    install(|| Config::default().capture_env(false));
    let app = Router::new()
        .route("/hooks/panics", get(panics))
        .route("/hooks/fine", get(fine))
        .layer(layer());
    let addr = serve(app).await;
    let c = client();
    let fetch = |path: &str, broken: bool| {
        let mut req = Request::get(format!("http://{addr}{path}"));
        if broken {
            req = req.header("x-break", "1");
        }
        send(&c, req.body(empty()).unwrap())
    };

    let (status, _, body) = fetch("/hooks/panics", true).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _, body_fine) = fetch("/hooks/fine", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body_fine[..], b"fine");
    // The control: the same request with closures that return.
    let (status, _, _) = fetch("/hooks/fine", false).await;
    assert_eq!(status, StatusCode::OK);
    let _ = body;
    flush();

    let panicked = events_at("/hooks/panics");
    assert_eq!(panicked.len(), 1, "{panicked:#?}");
    assert_eq!(panicked[0].message, "handler exploded");
    assert_eq!(panicked[0].user, "");
    let fine = events_at("/hooks/fine");
    assert_eq!(fine.len(), 2, "{fine:#?}");
    assert!(fine.iter().all(|e| e.message == "the fine handler ran"));
    // Without a user where the closure panicked; with it where it returned.
    let mut users: Vec<&str> = fine.iter().map(|e| e.user.as_str()).collect();
    users.sort_unstable();
    assert_eq!(users, ["", "ann"]);
    // The closures' panics are not the program's: no event of theirs.
    let all = stacktrace::store()
        .unwrap()
        .query()
        .limit(10_000)
        .all()
        .unwrap();
    assert!(
        all.iter().all(|e| !e.message.contains("closure broke")),
        "{all:#?}"
    );
}

// Pins: a `Dashboard::authorize` check that panicked unwound out of the dashboard's access
// guard: the request got no answer at all where a refusal was due.
#[tokio::test]
async fn an_authorize_check_that_panics_refuses_the_request() {
    use tower::ServiceExt;

    let (_dir, db) = support::cli::showcase_db();
    let store: &'static Store = Box::leak(Box::new(Store::open(&db).expect("open the copy")));
    let app = Dashboard::new(store)
        .authorize(|parts: &http::request::Parts| {
            if parts.headers.contains_key("x-break") {
                panic!("the check broke");
            }
            parts.headers.get("x-role").is_some_and(|r| r == "admin")
        })
        .router();
    let fetch = |broken: bool| {
        let mut req = Request::get("/")
            .header("host", "errors.example")
            .header("x-role", "admin");
        if broken {
            req = req.header("x-break", "1");
        }
        let req = req.body(axum::body::Body::empty()).unwrap();
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.expect("router answers");
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 16 << 20)
                .await
                .expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, body) = fetch(true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("checkout declined"), "{body}");
    // The control: the same request, with a check that returns, is let in.
    let (status, body) = fetch(false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("checkout declined"), "{body}");
}
