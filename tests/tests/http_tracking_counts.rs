//! Opt-in: request tracking at the HTTP bench's rate loses nothing unaccounted. Every
//! request answered is counted as stored or dropped with a reason, and every entry stored
//! is in the tree or counted as trimmed by the cap.
//!
//! `STACKTRACE_STRESS=1 cargo test --release -p stacktrace-tests --test http_tracking_counts -- --nocapture`
//! (`STACKTRACE_TRACKING_SECS` seconds of load, default 3): with `--release`, at the HTTP
//! bench's rate (same app, 16 connections, two workers); a debug build serves fewer.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use stacktrace::http::{tracking_counts, StacktraceLayer, Tracking};
use stacktrace::Config;
use support::http::{client, flush, get as fetch, install, serve};
use support::scenario::{env_u64, stress_enabled};

/// Entries the tree keeps: far fewer than the load sends, so that the cap trims.
const CAP: u64 = 1_000;
/// Connections kept busy at once, as in the bench.
const CONNECTIONS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_stored_trimmed_or_dropped_with_a_reason() {
    if !stress_enabled("drive a tracked app at full speed and add up its counts") {
        return;
    }
    install(|| Config::default().capture_env(false));
    let app = Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .layer(StacktraceLayer::new().tracking(Tracking::new().max_entries(CAP)));
    let addr = serve(app).await;
    let before = tracking_counts();
    let store = stacktrace::store().expect("store");
    let in_tree_before = store.tracked().limit(usize::MAX).run().unwrap().len() as u64;

    let deadline = Instant::now() + Duration::from_secs(env_u64("STACKTRACE_TRACKING_SECS", 3));
    let answered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let answered = answered.clone();
        let url = format!("http://{addr}/");
        tasks.push(tokio::spawn(async move {
            let c = client();
            while Instant::now() < deadline {
                let (status, body) = fetch(&c, url.clone()).await;
                assert!(status.is_success());
                assert_eq!(&body[..], b"Hello, World!");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    // Without a flush, the worker's own takes store every request within a bounded time.
    let accounted = || {
        let now = tracking_counts();
        now.stored - before.stored + now.dropped() - before.dropped()
    };
    let settle = Instant::now() + Duration::from_secs(5);
    while accounted() < answered && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(accounted(), answered, "stored without a flush");
    flush();
    let after = tracking_counts();
    let d = |f: fn(&stacktrace::http::TrackingCounts) -> u64| f(&after) - f(&before);
    let (queued, stored, trimmed) = (d(|c| c.queued), d(|c| c.stored), d(|c| c.trimmed));
    let dropped = after.dropped() - before.dropped();
    let in_tree = store.tracked().limit(usize::MAX).run().unwrap().len() as u64;
    println!(
        "{answered} answered: {queued} queued, {stored} stored, {trimmed} trimmed, {dropped} \
         dropped ({after:?}); {in_tree} in the tree"
    );
    // The load was heavy enough to fill the tree many times over, so the cap trimmed.
    assert!(answered > 4 * CAP, "only {answered} requests");
    assert!(trimmed > 0 && stored > 0);
    // A response ends before the client reads its last byte, so each is queued by then.
    assert_eq!(queued, answered);
    assert_eq!(stored + dropped, queued);
    assert_eq!(in_tree_before + stored - trimmed, in_tree);
    assert!(in_tree <= CAP);
}
