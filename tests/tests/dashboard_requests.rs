//! The dashboard's requests page, driven in process over a database of requests tracked
//! through the HTTP layer: the slowest, by path, by status and the latest, its filters, and
//! what it says when nothing is tracked.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use stacktrace::{Dashboard, Store};
use support::cli::tracked::{tracked_db, FAILED, FAST_BEFORE, MISSING};
use tower::ServiceExt;

#[test]
#[ignore = "run as a child by the tests that need tracked requests"]
fn tracked_requests_writer() {
    support::cli::tracked::write_if_asked();
}

async fn page(app: &Router, uri: &str) -> (StatusCode, String) {
    let mut req = Request::get(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The text of a section: from its heading to the next one.
fn section<'a>(html: &'a str, heading: &str) -> &'a str {
    let start = html
        .find(&format!("<h2>{heading}</h2>"))
        .unwrap_or_else(|| panic!("no section {heading:?} in {html}"));
    let rest = &html[start + heading.len() + 9..];
    &rest[..rest.find("<h2>").unwrap_or(rest.len())]
}

/// The first cell of each body row of a table.
fn first_cells(table: &str) -> Vec<String> {
    table
        .split("<tr><td")
        .skip(1)
        .map(|row| {
            let cell = &row[row.find('>').unwrap() + 1..row.find("</td>").unwrap()];
            // The text without its tags.
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

fn tracked_app() -> (tempfile::TempDir, Router) {
    let (dir, db) = tracked_db();
    let store = Store::open(&db).expect("open the copy");
    (dir, Dashboard::owning(store).allow_loopback(true).router())
}

#[tokio::test]
async fn the_requests_page_shows_the_slowest_by_path_by_status_and_the_latest() {
    let (_dir, app) = tracked_app();
    let (status, html) = page(&app, "/requests").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<h1>Requests</h1>"));
    assert!(
        html.contains(r#"href="/requests">Requests</a>"#),
        "linked from the header"
    );

    let slowest = section(&html, "Slowest");
    assert!(first_cells(slowest).len() >= 10);
    let first_row = &slowest[slowest.find("<tr><td").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(first_row.contains(">/slow<"), "{first_row}");
    assert!(first_row.contains(" s</td>"), "in seconds: {first_row}");

    let by_path = section(&html, "By path");
    assert_eq!(
        first_cells(by_path),
        ["/fast", "/fail", "/missing", "/slow", "/login"]
    );
    assert!(by_path.contains(&format!(r#"<td class="num">{FAST_BEFORE}</td>"#)));

    let by_status = section(&html, "By status");
    assert_eq!(first_cells(by_status), ["200", "500", "404"]);
    assert!(by_status.contains(&format!(
        r#">500</a></td><td class="num">{FAILED}</td><td class="num">{FAILED}</td>"#
    )));

    let latest = section(&html, "Latest");
    assert!(latest.contains("/fast") && latest.contains("?page=0"));
    assert!(latest.contains("carol"), "the user of /login");
}

#[tokio::test]
async fn the_requests_page_filters_by_path_status_and_time() {
    let (_dir, app) = tracked_app();
    let (status, html) = page(&app, "/requests?status=404").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first_cells(section(&html, "By path")), ["/missing"]);
    assert!(html.contains(&format!("From the {MISSING} matching requests")));
    assert!(
        html.contains(r#"name="status" value="404""#),
        "the form keeps it"
    );

    let (_, html) = page(&app, "/requests?slower_than=500").await;
    assert_eq!(first_cells(section(&html, "By path")), ["/slow"]);

    let (_, html) = page(&app, "/requests?path=%2Ffail").await;
    assert_eq!(first_cells(section(&html, "By status")), ["500"]);

    // Rows link to the same page filtered by their path or status.
    let (_, html) = page(&app, "/requests").await;
    assert!(html.contains(r#"href="/requests?path=%2Fslow""#), "{html}");
    assert!(html.contains(r#"href="/requests?status=404""#));

    for bad in ["/requests?status=ok", "/requests?slower_than=fast"] {
        let (status, html) = page(&app, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(html.contains("invalid"), "{html}");
    }
}

#[tokio::test]
async fn without_tracked_requests_the_page_says_how_to_track_them() {
    let (_dir, db) = support::cli::empty_db();
    let app: Router = Dashboard::owning(Store::open(&db).unwrap())
        .allow_loopback(true)
        .router();
    let (status, html) = page(&app, "/requests").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No tracked requests match"), "{html}");
    assert!(html.contains("StacktraceLayer"));
}

// Regression: the page said "Over 2 matching requests" of exactly 2 (read as "more than"),
// and "1 matching requests" of one.
#[tokio::test]
async fn the_requests_page_says_how_many_requests_it_covers() {
    let (_dir, app) = tracked_app();
    let (_, html) = page(&app, "/requests?status=404").await;
    let covered = &html[html.find(r#"id="covered">"#).expect("the covered line")..];
    assert!(
        covered.starts_with(&format!(
            r#"id="covered">From the {MISSING} matching requests"#
        )),
        "{covered}"
    );
    let (_, html) = page(&app, "/requests?path=%2Fslow").await;
    assert!(
        html.contains(r#"id="covered">From the 1 matching request (tracked"#),
        "{html}"
    );
    assert!(!html.contains("Over "), "{html}");
}
