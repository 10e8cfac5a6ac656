//! The dashboard's releases page and the form that resolves a group in a release, driven in
//! process over a database that scenario processes of two releases wrote.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use stacktrace::{Dashboard, GroupStatus, Store};
use support::scenario::{db_dir, scenario};
use tower::ServiceExt;

const MARKUP: &str = "<b>shop</b>@1.0.0";

async fn send(app: &Router, mut req: Request<Body>) -> (StatusCode, String) {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn page(app: &Router, uri: &str) -> (StatusCode, String) {
    let req = Request::get(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

async fn post(app: &Router, uri: &str, form: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    send(app, req).await
}

/// The value of the first hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// A database with releases 1.0.0 (an error, a panic in main) and 2.0.0 (clean), and one
/// of a name that is markup.
fn releases_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, db) = db_dir();
    for arg in [
        "1.0.0/error",
        "1.0.0/panic",
        "2.0.0/clean",
        &format!("{MARKUP}/clean"),
    ] {
        let r = scenario("release", &db, arg);
        assert!(r.code == Some(0) || r.code == Some(101), "{arg}: {r:?}");
    }
    (dir, db)
}

#[tokio::test]
async fn the_releases_page_lists_health_and_compares_two() {
    let (_dir, db) = releases_db();
    let app: Router = Dashboard::owning(Store::open(&db).unwrap())
        .allow_loopback(true)
        .router();
    let (status, html) = page(&app, "/releases").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let table = &html[html.find(r#"<table id="releases">"#).expect("the table")..];
    // 1.0.0: two sessions, one errored and one crashed.
    let row = &table[table.find("<td>1.0.0</td>").expect("1.0.0's row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(
            r#"<td class="num">2</td><td class="num">50.0%</td><td class="num">50.0%</td>"#
        ),
        "{row}"
    );
    assert!(table.contains("<td>2.0.0</td>"), "{table}");
    // A name that is markup is shown as text.
    assert!(html.contains("&lt;b&gt;shop&lt;/b&gt;@1.0.0"), "{html}");
    assert!(!html.contains("<b>shop</b>"), "unescaped markup");
    assert!(
        html.contains(r#"href="/releases""#),
        "the header links the page"
    );

    let (status, html) = page(&app, "/releases?a=1.0.0&b=2.0.0").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let cmp = &html[html
        .find(r#"<table id="comparison">"#)
        .expect("the comparison")..];
    assert!(
        cmp.contains(r#"<th>Crash-free</th><td class="num">50.0%</td><td class="num">100.0%</td>"#),
        "{cmp}"
    );
    let (status, _) = page(&app, "/releases?a=1.0.0&b=9.9.9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_group_is_resolved_in_a_release_from_its_page() {
    let (_dir, db) = releases_db();
    let store = Store::open(&db).unwrap();
    let fp = store
        .groups(stacktrace::GroupOrder::Count)
        .unwrap()
        .into_iter()
        .find(|g| g.title.contains("cannot load config"))
        .unwrap()
        .fingerprint;
    let app: Router = Dashboard::owning(store).allow_loopback(true).router();
    let here = format!("/groups/{fp}");
    let (_, html) = page(&app, &here).await;
    assert!(html.contains(r#"id="resolve-in-release""#), "{html}");
    let csrf = csrf_of(&html);

    // A release name with a control character is refused, and nothing changes.
    let (status, reply) = post(
        &app,
        &format!("{here}/status"),
        &format!("status=resolved&csrf={csrf}&in_release=1.0%0Aforged"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (_, html) = page(&app, &here).await;
    assert!(html.contains("st-unresolved") && !html.contains(r#"id="resolved-in""#));

    // Empty: the newest release seen.
    let (status, _) = post(
        &app,
        &format!("{here}/status"),
        &format!("status=resolved&csrf={csrf}&in_release="),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &here).await;
    assert!(html.contains("st-resolved"), "{html}");
    let resolved_in = &html[html.find(r#"id="resolved-in""#).expect("resolved in")..];
    assert!(resolved_in.contains("resolved in 2.0.0"), "{resolved_in}");
    drop(app);
    let store = Store::open(&db).unwrap();
    let g = store.group(&fp).unwrap().unwrap();
    assert_eq!(g.status, GroupStatus::Resolved);
    assert_eq!(g.resolved_in.unwrap().release, "2.0.0");
}
