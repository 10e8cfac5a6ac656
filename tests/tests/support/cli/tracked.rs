//! A database holding tracked requests, written through the HTTP layer by the test program
//! itself run again as a child (the tracker is process-global and keeps its database open
//! for the life of the process, so the tools can only read it once that process has ended).
//!
//! A test file that uses [`tracked_db`] declares the child's entry point:
//!
//! ```ignore
//! #[test]
//! #[ignore = "run as a child by the tests that need tracked requests"]
//! fn tracked_requests_writer() {
//!     support::cli::tracked::write_if_asked();
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use stacktrace::http::{StacktraceLayer, Tracking};
use stacktrace::Config;
use tower::ServiceExt;

use super::{copy_of, Template};
use crate::support::scenario::run_with_limit;

/// Where the child writes; set only in the child.
const WRITER_DB: &str = "STACKTRACE_TEST_TRACKED_DB";

/// What the writer sends, in order: requests before the slow one, the slow one, and
/// requests after it (at least a second later, so `--between` can split them).
pub const FAST_BEFORE: usize = 5;
/// Requests to `/missing` (404) after the slow one.
pub const MISSING: usize = 2;
/// Requests to `/fail` (500) after the slow one.
pub const FAILED: usize = 3;
/// Everything tracked: the fast ones, `/slow`, the 404s, the 500s and one `/login`.
pub const TOTAL: usize = FAST_BEFORE + 1 + MISSING + FAILED + 1;
/// How long `/slow` takes.
pub const SLOW: Duration = Duration::from_millis(1_100);

fn app() -> Router {
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW).await;
                "slow"
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/login",
            post(|| async {
                stacktrace::set_user("carol");
                "welcome"
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(StacktraceLayer::new().tracking(Tracking::new()))
}

async fn send(app: &Router, method: &str, uri: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("the app answers");
    let status = res.status();
    // The entry is queued when the response body ends.
    let _ = axum::body::to_bytes(res.into_body(), 1 << 20).await;
    status
}

/// In the child: installs the tracker on the database it was given, sends the requests
/// through the HTTP layer and waits until they are stored. Elsewhere: nothing.
pub fn write_if_asked() {
    let Some(db) = std::env::var_os(WRITER_DB) else {
        return;
    };
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(PathBuf::from(db))
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let app = app();
        for i in 0..FAST_BEFORE {
            let uri = format!("/fast?page={i}");
            assert_eq!(send(&app, "GET", &uri).await, StatusCode::OK);
        }
        assert_eq!(send(&app, "GET", "/slow").await, StatusCode::OK);
        for _ in 0..MISSING {
            assert_eq!(send(&app, "GET", "/missing").await, StatusCode::NOT_FOUND);
        }
        for _ in 0..FAILED {
            let status = send(&app, "GET", "/fail").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        assert_eq!(send(&app, "POST", "/login").await, StatusCode::OK);
    });
    assert!(guard.flush_timeout(Duration::from_secs(20)));
    assert!(stacktrace::http::flush_tracking(Duration::from_secs(20)));
}

fn write_template(db: &Path) {
    let mut cmd = Command::new(std::env::current_exe().expect("the test program"));
    cmd.args([
        "--exact",
        "tracked_requests_writer",
        "--ignored",
        "--test-threads=1",
    ])
    .env(WRITER_DB, db)
    .env_remove("STACKTRACE_DB");
    let run = run_with_limit(cmd, Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "the writer failed: {run:?}");
    assert!(
        run.stdout.contains("1 passed"),
        "the test program has no tracked_requests_writer test: {run:?}"
    );
}

/// A copy of a database of [`TOTAL`] tracked requests (written once per test program).
pub fn tracked_db() -> (tempfile::TempDir, PathBuf) {
    static CELL: OnceLock<Template> = OnceLock::new();
    let template = &CELL
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = dir.path().join("template.db");
            write_template(&db);
            Template { _dir: dir, db }
        })
        .db;
    copy_of(template)
}
