//! The request known to every capture made while it is handled: the panic hook,
//! `capture_error`, `#[capture]`, spawned tasks; 500 on panics; server errors.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::Request;
use serde_json::{json, Value};
use stacktrace::http::{in_current_request, ResponseError, StacktraceLayer};
use stacktrace::{capture, Config, Level, PLACEHOLDER};
use support::http::{client, empty, events_at, flush, get as fetch, install, send, serve};

fn setup() {
    install(|| Config::default().capture_env(false));
}

async fn panics() -> &'static str {
    stacktrace::set_user(json!({"id": 7, "username": "ann", "password": "pw-in-user"}));
    tokio::task::yield_now().await;
    panic!("handler exploded");
}

async fn fails(Path(id): Path<String>, headers: HeaderMap) -> StatusCode {
    // Interleave with the other requests on the same threads before and after capturing.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let header = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    stacktrace::capture_error(&std::io::Error::other(format!(
        "failure of {id} ({header})"
    )));
    tokio::time::sleep(Duration::from_millis(1)).await;
    StatusCode::OK
}

#[derive(Debug)]
struct AppError(std::io::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut res = (StatusCode::BAD_GATEWAY, "upstream failed").into_response();
        res.extensions_mut().insert(ResponseError::new(&self.0));
        res
    }
}

async fn error_response() -> Result<&'static str, AppError> {
    Err(AppError(std::io::Error::other("upstream timed out")))
}

async fn plain_500() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

#[capture]
async fn charge(amount: u32) -> Result<u32, std::io::Error> {
    tokio::task::yield_now().await;
    Err(std::io::Error::other(format!("card declined for {amount}")))
}

async fn captured() -> Result<String, AppError> {
    charge(42).await.map(|n| n.to_string()).map_err(AppError)
}

async fn spawns() -> &'static str {
    let task = tokio::spawn(in_current_request(async {
        tokio::task::yield_now().await;
        stacktrace::capture_message("from a spawned task", Level::Warning);
    }));
    let _ = task.await;
    "spawned"
}

fn app() -> Router {
    Router::new()
        .route("/panic", get(panics))
        .route("/ok", get(|| async { "ok" }))
        .route("/fail/{id}", get(fails))
        .route("/error-response", get(error_response))
        .route("/plain-500", get(plain_500))
        .route("/captured", get(captured))
        .route("/spawns", get(spawns))
        .layer(
            StacktraceLayer::new()
                .user(|req| {
                    req.headers
                        .get("x-user")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
                .client_addr(|req| {
                    req.extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip())
                }),
        )
}

fn request_of(e: &stacktrace::CrashEvent) -> &Value {
    &e.payload["request"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_is_a_500_and_the_server_keeps_serving() {
    setup();
    let addr = serve(app()).await;
    let c = client();
    let req = Request::get(format!("http://{addr}/panic?page=2&token=tok-in-query"))
        .header("authorization", "Bearer sekrit-bearer-1")
        .header("x-trace", "trace-77")
        .body(empty())
        .unwrap();
    let (status, _, body) = send(&c, req).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(&body[..], b"Internal Server Error");
    let (status, body) = fetch(&c, format!("http://{addr}/ok")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));

    flush();
    let events = events_at("/panic");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.level, Level::Fatal);
    assert_eq!(e.message, "handler exploded");
    assert_eq!(e.user, "ann");
    let r = request_of(e);
    assert_eq!(r["method"], "GET");
    assert_eq!(r["path"], "/panic");
    assert_eq!(r["query"], format!("page=2&token={PLACEHOLDER}"));
    assert_eq!(r["headers"]["authorization"], PLACEHOLDER);
    assert_eq!(r["headers"]["x-trace"], "trace-77");
    assert_eq!(r["client_addr"], "127.0.0.1");
    assert_eq!(r["user"]["username"], "ann");
    assert_eq!(r["user"]["password"], PLACEHOLDER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_carry_their_own_context() {
    setup();
    let addr = serve(app()).await;
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::get(format!("http://{addr}/fail/{i}"))
                .header("x-request-id", format!("req-{i}"))
                .header("x-user", format!("user-{i}"))
                .body(empty())
                .unwrap();
            send(&c, req).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    flush();
    let store = stacktrace::store().unwrap();
    for i in 0..200u32 {
        // Regression: `Report` (behind `capture_error`) overwrote the request's indexed path
        // and user with its own empty fields. Found through the path index, with the user.
        let events = store
            .query()
            .request_path(format!("/fail/{i}"))
            .user(format!("user-{i}"))
            .all()
            .unwrap();
        assert_eq!(events.len(), 1, "request {i}: {events:#?}");
        let e = &events[0];
        assert_eq!(e.message, format!("failure of {i} (req-{i})"));
        let r = request_of(e);
        assert_eq!(r["path"], format!("/fail/{i}"), "request {i}");
        assert_eq!(r["user"], format!("user-{i}"), "request {i}");
        assert_eq!(
            r["headers"]["x-request-id"],
            format!("req-{i}"),
            "request {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_stored_once_with_their_error() {
    setup();
    let addr = serve(app()).await;
    let c = client();
    for path in ["/error-response", "/plain-500", "/captured"] {
        let (status, _) = fetch(&c, format!("http://{addr}{path}")).await;
        assert!(status.is_server_error(), "{path}: {status}");
    }
    let (status, _) = fetch(&c, format!("http://{addr}/ok")).await;
    assert_eq!(status, StatusCode::OK);
    flush();

    let e = events_at("/error-response");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].message, "upstream timed out");
    assert_eq!(e[0].error_type, "std::io::error::Error");
    assert_eq!(e[0].tags["status"], "502");
    assert_eq!(request_of(&e[0])["method"], "GET");

    let e = events_at("/plain-500");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].error_type, "HTTP 500");
    assert_eq!(e[0].message, "500 Internal Server Error GET /plain-500");

    // `#[capture]` stored the error with the request; the 5xx is not stored again.
    let e = events_at("/captured");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].message, "card declined for 42");
    assert_eq!(e[0].logger, "capture");
    assert_eq!(request_of(&e[0])["path"], "/captured");

    assert!(events_at("/ok").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_bound_to_the_request_carry_it() {
    setup();
    let addr = serve(app()).await;
    let c = client();
    let req = Request::get(format!("http://{addr}/spawns"))
        .header("x-user", "bob")
        .body(empty())
        .unwrap();
    assert_eq!(send(&c, req).await.0, StatusCode::OK);
    flush();
    let e = stacktrace::store()
        .unwrap()
        .query()
        .text("from a spawned task")
        .all()
        .unwrap();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(request_of(&e[0])["path"], "/spawns");
    assert_eq!(request_of(&e[0])["user"], "bob");
}

#[test]
fn outside_a_request_nothing_is_added() {
    setup();
    assert!(!stacktrace::set_user("nobody"));
    assert!(!stacktrace::http::track("k", 1));
    let id = stacktrace::capture_message("no request here", Level::Info).expect("stored");
    flush();
    let e = stacktrace::store().unwrap().get(id).unwrap().unwrap();
    assert_eq!(e.request_path, "");
    assert!(e.payload.get("request").is_none());
}
