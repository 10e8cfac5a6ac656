//! The viewer on a large database: the first page of `groups`, `list --limit 50`, text
//! searches and each of the dashboard's pages, against a full scan of the events in the same
//! run, so each figure reads as a fraction of a scan.
//!
//! `STACKTRACE_BENCH_EVENTS` events (100,000 unless set) in 5,000 groups are captured through
//! the public API once and kept under the target directory for later runs:
//!
//! ```text
//! STACKTRACE_BENCH_EVENTS=1000000 cargo bench -p stacktrace --features cli --bench viewer
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use stacktrace::{Config, Dashboard, GroupOrder, Level, Report, Store};
use tower::ServiceExt;

const GROUPS: usize = 5_000;
const DEFAULT_EVENTS: usize = 100_000;
const PAGE: usize = 50;
/// Events captured between two flushes while the database is built.
const BATCH: usize = 10_000;

fn events_wanted() -> usize {
    std::env::var("STACKTRACE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_EVENTS)
}

/// The message of group `g`: distinct per group (messages without frames are grouped by
/// their text), with a word every group shares and one only group 4242 has.
fn message_of(g: usize) -> String {
    let word = if g == 4242 { "quasar" } else { "timeout" };
    format!("order batch {g} failed: payment provider {word} after retries")
}

fn marker_of(db: &Path) -> PathBuf {
    db.with_extension("complete")
}

/// Captures `events` events round-robin over the groups, through the installed tracker.
fn build(db: &Path, events: usize) -> &'static Store {
    let _ = std::fs::remove_dir_all(db);
    let _ = std::fs::remove_file(marker_of(db));
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(db)
            .queue_capacity(BATCH * 2)
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let messages: Vec<String> = (0..GROUPS).map(message_of).collect();
    let start = Instant::now();
    for i in 0..events {
        let g = i % GROUPS;
        let level = if g.is_multiple_of(10) {
            Level::Warning
        } else {
            Level::Error
        };
        Report::message(messages[g].as_str(), level)
            .user(format!("user{}", i % 97))
            .request_path(format!("/orders/{}", g % 50))
            .capture();
        if (i + 1).is_multiple_of(BATCH) {
            assert!(guard.flush(), "the writer fell behind");
            eprintln!("viewer bench: {} of {events} events stored", i + 1);
        }
    }
    assert!(guard.flush());
    let store = stacktrace::store().expect("the installed store");
    let stats = store.stats().expect("stats");
    assert_eq!(stats.events as usize, events, "events were dropped");
    assert_eq!(stats.groups as usize, GROUPS);
    std::fs::write(marker_of(db), events.to_string()).expect("write the marker");
    eprintln!(
        "viewer bench: built {events} events in {:.0?} at {}",
        start.elapsed(),
        db.display()
    );
    // The guard would flush on drop; the store stays open for the process.
    std::mem::forget(guard);
    store
}

/// The database of `events` events: the one kept from an earlier run, or a new one.
fn database(events: usize) -> &'static Store {
    let db = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("viewer-{events}.db"));
    let complete = std::fs::read_to_string(marker_of(&db)).ok();
    if complete.as_deref() == Some(events.to_string().as_str()) {
        let store = Store::open(&db).expect("open the kept database");
        return Box::leak(Box::new(store));
    }
    build(&db, events)
}

async fn page(app: &Router, uri: &str) -> usize {
    let mut req = Request::get(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    let res = app.clone().oneshot(req).await.expect("the router answers");
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .expect("body");
    body.len()
}

fn viewer(c: &mut Criterion) {
    let events = events_wanted();
    let store = database(events);
    let app: Router = Dashboard::new(store).allow_loopback(true).router();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut g = c.benchmark_group(format!("viewer, {events} events in {GROUPS} groups"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    g.bench_function("full scan of the events (baseline)", |b| {
        b.iter(|| {
            let n = store.query().count().expect("scan");
            assert_eq!(n as usize, events);
        })
    });
    g.bench_function("groups: first page by last seen", |b| {
        b.iter(|| {
            black_box(
                store
                    .groups_page(GroupOrder::LastSeen, None, PAGE, |_| true)
                    .expect("groups"),
            )
        })
    });
    g.bench_function("groups: first page by count", |b| {
        b.iter(|| {
            black_box(
                store
                    .groups_page(GroupOrder::Count, None, PAGE, |_| true)
                    .expect("groups"),
            )
        })
    });
    g.bench_function("list --limit 50", |b| {
        b.iter(|| {
            let page = store.query().limit(PAGE).run().expect("list");
            assert_eq!(page.events.len(), PAGE);
        })
    });
    g.bench_function("list --limit 50 --level warning (index)", |b| {
        b.iter(|| {
            let page = store.query().level(Level::Warning).limit(PAGE).run();
            assert_eq!(page.expect("list").events.len(), PAGE);
        })
    });
    g.bench_function("search, a word of every group: first page", |b| {
        b.iter(|| {
            let page = store.query().text("timeout").limit(PAGE).run();
            assert_eq!(page.expect("search").events.len(), PAGE);
        })
    });
    g.bench_function("search, a word of one group: first page", |b| {
        b.iter(|| {
            let page = store.query().text("quasar").limit(PAGE).run();
            assert!(!page.expect("search").events.is_empty());
        })
    });
    g.bench_function("dashboard: groups page", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, "/"))))
    });
    g.bench_function("dashboard: groups page, search", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, "/?q=quasar"))))
    });
    g.bench_function("dashboard: events page", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, "/events"))))
    });
    let newest = store.query().limit(1).run().expect("newest").events;
    let newest = newest.first().expect("an event");
    let group = format!("/groups/{}", newest.fingerprint);
    g.bench_function("dashboard: a group's page", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, &group))))
    });
    let trends = format!("{group}/trends");
    g.bench_function("dashboard: a group's trends page", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, &trends))))
    });
    let event = format!("/events/{}", newest.id);
    g.bench_function("dashboard: an event's page", |b| {
        b.iter(|| black_box(rt.block_on(page(&app, &event))))
    });
    for (name, uri) in [
        ("dashboard: releases page", "/releases"),
        ("dashboard: functions page", "/functions"),
        ("dashboard: requests page", "/requests"),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(rt.block_on(page(&app, uri)))));
    }
    g.finish();
}

criterion_group!(benches, viewer);
criterion_main!(benches);
