//! The HTTP layer's `user` and `client_addr` closures that panic: the request is answered
//! as it would be without them, and its events are stored.

mod support;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use stacktrace::http::StacktraceLayer;
use stacktrace::{Config, Level};
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
