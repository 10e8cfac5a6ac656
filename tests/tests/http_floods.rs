//! Floods through the HTTP layer against a real SMTP server on 127.0.0.1: a client looping
//! over ids, host names and fresh paths makes a few groups and a few mails, never a group
//! and a mail per request; the layer's events are grouped by the route that matched.

mod support;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use stacktrace::http::StacktraceLayer;
use stacktrace::mail::MailConfig;
use stacktrace::{Config, CrashEvent, DropReason};

use support::http::{client, empty, send, serve};
use support::mail::smtp::{Received, SmtpServer};

const SERVER_NAME: &str = "shop.example";
const WAIT: Duration = Duration::from_secs(20);

fn server() -> &'static SmtpServer {
    static SERVER: OnceLock<SmtpServer> = OnceLock::new();
    let server = SERVER.get_or_init(SmtpServer::start);
    let url = server.url();
    support::http::install(move || {
        Config::default().capture_env(false).mail(
            MailConfig::default()
                .admin("ops@example.com")
                .manager("web@example.com")
                .server_name(SERVER_NAME)
                .smtp_url(url)
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(100)),
        )
    });
    server
}

fn about<'a>(mails: &'a [Received], marker: &str) -> Vec<&'a Received> {
    mails
        .iter()
        .filter(|m| m.subject().contains(marker))
        .collect()
}

/// The stored events of an error type whose message holds `marker`.
fn events_of(error_type: &str, marker: &str) -> Vec<CrashEvent> {
    support::http::flush();
    stacktrace::store()
        .expect("store")
        .query()
        .error_type(error_type)
        .text(marker)
        .limit(100_000)
        .all()
        .expect("query")
}

fn groups_of(events: &[CrashEvent]) -> BTreeSet<&str> {
    events.iter().map(|e| e.fingerprint.as_str()).collect()
}

/// A path segment of letters only, different for each `i`: no id to replace.
fn letters(mut i: usize) -> String {
    let mut out = String::new();
    loop {
        out.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return out;
        }
    }
}

// Regression: every 404 with a Referer made a group per path and per Host, and each new
// group mailed the managers at once, with the request's Host in the subject: one request
// loop made a thousand groups and a thousand mails saying whatever the client wrote, from
// the company's own sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_broken_links_make_a_few_groups_and_mails_without_the_clients_host() {
    let s = server();
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .layer(StacktraceLayer::new());
    let addr = serve(app).await;
    let c = client();
    let request = |path: String, i: usize| {
        Request::get(format!("http://{addr}{path}"))
            .header("host", format!("evil{i}.attacker.test"))
            .header("referer", "https://blog.test/post")
            .body(empty())
            .unwrap()
    };
    for i in 0..1000 {
        let req = request(format!("/items-flood/{i}"), i);
        assert_eq!(send(&c, req).await.0, StatusCode::NOT_FOUND);
    }
    let items = tokio::task::spawn_blocking(|| events_of("http.404", "/items-flood/"))
        .await
        .unwrap();
    assert!(
        !items.is_empty() && items.len() <= 20,
        "at most the per-group cap a minute: {}",
        items.len()
    );
    assert_eq!(groups_of(&items).len(), 1, "one group for the ids");
    let e = &items[0];
    assert_eq!(e.tags["route"], "/items-flood/{id}");
    assert!(
        e.message.starts_with("Broken link: /items-flood/"),
        "{}",
        e.message
    );
    assert!(e.extra["host"].as_str().unwrap().starts_with("evil"));
    let items_mails = s.wait_for(WAIT, |m| !about(m, "/items-flood/").is_empty());
    let first = about(&items_mails, "/items-flood/")[0].subject();
    assert!(
        first.starts_with(&format!(
            "[stacktrace] Broken link on {SERVER_NAME}: /items-flood/"
        )),
        "{first}"
    );

    // Paths of letters only have no id to replace: the cap of all groups holds.
    for i in 0..1000 {
        let req = request(format!("/gone-flood-{}", letters(i)), i);
        assert_eq!(send(&c, req).await.0, StatusCode::NOT_FOUND);
    }
    let gone = tokio::task::spawn_blocking(|| events_of("http.404", "/gone-flood-"))
        .await
        .unwrap();
    // 100 a minute in all; the loop may straddle a minute's end.
    assert!(
        groups_of(&gone).len() <= 200,
        "{} groups",
        groups_of(&gone).len()
    );
    let dropped = stacktrace::store().unwrap().dropped().unwrap();
    assert!(
        dropped[&DropReason::HttpLimited] >= 1000,
        "counted as dropped: {dropped:?}"
    );

    s.wait_for(WAIT, |m| !about(m, "/gone-flood-").is_empty());
    std::thread::sleep(Duration::from_secs(1));
    let mails = s.mails();
    // 10 a minute about the layer's events, the loop maybe over two minutes.
    let gone_mails = about(&mails, "/gone-flood-").len();
    assert!((1..=20).contains(&gone_mails), "{gone_mails} mails");
    assert_eq!(
        about(&mails, "/items-flood/").len(),
        1,
        "one mail for the ids"
    );
    for m in &mails {
        let subject = m.subject();
        assert!(!subject.contains("attacker"), "{subject}");
        if subject.contains("Broken link") {
            assert!(subject.contains(SERVER_NAME), "{subject}");
        }
    }
    assert!(stacktrace::mail::stats().unwrap().limited >= 1);
}

// Regression: a server error without a `ResponseError` made a group per path, so a route
// with an id in it made a group per id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_grouped_by_the_route_that_matched() {
    server();
    let fail = || async { StatusCode::INTERNAL_SERVER_ERROR };
    let app = Router::new()
        .route("/files-flood/{name}", get(fail))
        .route("/folders-flood/{name}", get(fail))
        // A limit of its own: the other test's flood does not use this one's budget.
        .layer(StacktraceLayer::new().event_limits(10, 1000));
    let addr = serve(app).await;
    let c = client();
    // Names with no id in them: only the route groups them.
    for path in [
        "/files-flood/report.pdf",
        "/files-flood/notes.txt",
        "/folders-flood/report.pdf",
    ] {
        let req = Request::get(format!("http://{addr}{path}"))
            .body(empty())
            .unwrap();
        assert_eq!(send(&c, req).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let events = tokio::task::spawn_blocking(|| events_of("HTTP 500", "-flood/"))
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let group_at = |path: &str| {
        let e = events
            .iter()
            .find(|e| e.message.ends_with(path))
            .expect(path);
        (e.fingerprint.clone(), e.tags["route"].clone())
    };
    let (report, route) = group_at("/files-flood/report.pdf");
    let (notes, _) = group_at("/files-flood/notes.txt");
    let (folder, folder_route) = group_at("/folders-flood/report.pdf");
    assert_eq!(route, "/files-flood/{name}");
    assert_eq!(report, notes, "one route, one group");
    // Control: another route is another group.
    assert_eq!(folder_route, "/folders-flood/{name}");
    assert_ne!(report, folder);
}
