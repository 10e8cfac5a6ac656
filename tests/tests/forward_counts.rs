//! Forwarding's counts where people read them: `stacktrace stats --json` and the
//! dashboard's header, after a program forwarded to a Sentry-compatible sink on 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request};
use stacktrace::{Dashboard, Store};
use tower::ServiceExt;

/// Runs the forwarding scenario: `n` messages captured, forwarded when `dsn` is given.
fn capture(db: &Path, n: usize, dsn: Option<&str>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forward_scenario"));
    cmd.args(["many", &n.to_string(), "counted"])
        .env("STACKTRACE_DB", db)
        .env("STACKTRACE_FORWARD_DRAIN_TIMEOUT", "20")
        .env_remove("STACKTRACE_DSN")
        .env_remove("SENTRY_DSN");
    if let Some(dsn) = dsn {
        cmd.env("STACKTRACE_DSN", dsn);
    }
    let run = support::scenario::run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains("install error"), "{run:?}");
}

async fn home_page(db: &Path) -> String {
    let app = Dashboard::owning(Store::open(db).expect("open"))
        .allow_loopback(true)
        .router();
    let mut req = Request::get("/")
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.oneshot(req).await.expect("router answers");
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn stats_and_the_dashboard_show_what_was_forwarded() {
    let sink = support::sink::Sink::start();
    let (_dir, db) = support::scenario::db_dir();
    capture(&db, 3, Some(&sink.dsn()));
    assert_eq!(sink.wait_for(3).len(), 3);
    let stats = support::cli::cli_json(&db, &["stats"]);
    assert_eq!(stats["forwarded"]["sent"], 3, "{stats}");
    assert_eq!(stats["forwarded"]["pending"], 0, "{stats}");
    let text = support::cli::cli(&db, &["stats"]).stdout;
    assert!(text.contains("forwarding: pending"), "{text}");
    let page = home_page(&db).await;
    assert!(
        page.contains("forwarded: 3 sent · 0 pending · 0 retried · 0 failed"),
        "{page}"
    );

    // Control: a database that never forwarded says nothing of it.
    let (_other, plain) = support::scenario::db_dir();
    capture(&plain, 3, None);
    let stats = support::cli::cli_json(&plain, &["stats"]);
    assert_eq!(stats["events"], 3, "{stats}");
    assert_eq!(stats["forwarded"]["sent"], 0, "{stats}");
    let page = home_page(&plain).await;
    assert!(page.contains("3 events"), "{page}");
    assert!(!page.contains("forwarded:"), "{page}");
}
