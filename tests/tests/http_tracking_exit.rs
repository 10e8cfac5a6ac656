//! Dropping the install guard stores the requests tracked before it, as it stores the events
//! captured before it: a program that ends right after its last request loses none. In a
//! process of its own, since the guard is dropped.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use stacktrace::http::{tracking_counts, StacktraceLayer, Tracking};
use stacktrace::Config;
use tower::ServiceExt;

#[tokio::test]
async fn dropping_the_guard_stores_the_requests_tracked_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(dir.path().join("db"))
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(StacktraceLayer::new().tracking(Tracking::new()));
    // The first request starts the tracking worker's duty; the others are taken at its
    // next take, 10 ms on, unless the guard stores them first.
    for path in ["/", "/", "/", "/missing"] {
        let req = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
    drop(guard);
    let counts = tracking_counts();
    assert_eq!(counts.stored, 4, "{counts:?}");
    assert_eq!(counts.dropped(), 0, "{counts:?}");
    let stored = stacktrace::store()
        .expect("the store stays open")
        .tracked()
        .run()
        .unwrap();
    let mut paths: Vec<&str> = stored.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/", "/", "/", "/missing"]);
    // Nothing is left for the worker to store later.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(tracking_counts().stored, 4);
}
