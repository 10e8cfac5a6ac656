//! What a request carries, found by value, against a real server: headers whose value is a
//! URL or a path with a query are redacted as the request URL is, in events and tracking
//! alike; a JSON or form body is redacted as one whatever its declared content type; and a
//! huge header value is stored cut, marked.

mod support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use stacktrace::http::{StacktraceLayer, Tracking};
use stacktrace::mail::MailConfig;
use stacktrace::{Breadcrumb, Config, Level, Report, Store, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::http::{client, echo_tagged, empty, flush, full, install, send, serve};

/// The most bytes of one header value stored.
const HEADER_CAP: usize = 8 << 10;
/// The SMTP password of the mail settings: a secret wherever it shows.
const SMTP_PASSWORD: &str = "sv-registered-smtp-pw-8d";

fn setup() -> std::path::PathBuf {
    install(|| {
        Config::default()
            .capture_env(false)
            .capture_body(true)
            .mail(
                MailConfig::default()
                    .smtp_url(format!("smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:9")),
            )
    })
}

async fn echo(headers: HeaderMap, body: Bytes) -> String {
    echo_tagged("http-sv seen", &headers, &body)
}

/// Says who the user is and attaches data under a key, both holding URL credentials.
async fn who() -> &'static str {
    stacktrace::set_user("ops postgres://ctl-http-user:sv-http-user-pw-7a@db.internal/app");
    stacktrace::http::track("amqp://ctl-track-key:sv-track-key-pw-8b@mq.internal", 1);
    stacktrace::capture_message("http-sv who ctl-who", Level::Info);
    "ok"
}

fn app() -> Router {
    Router::new()
        .route("/echo", post(echo))
        .route("/who", get(who))
        .layer(StacktraceLayer::new().tracking(Tracking::new().max_body_length(4096)))
}

/// The database's files and the JSON-lines export of its events, read through the
/// running program's handle.
fn stored_bytes(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    flush();
    let store: &Store = stacktrace::store().expect("store");
    store.flush().expect("flush to disk");
    let mut export = Vec::new();
    store.query().export_jsonl(&mut export).expect("export");
    (raw_bytes(dir), export)
}

// Regression: a 404 whose `Referer` was `http://host/reset?token=...` was tracked with the
// token in clear (only the event hid it), and other headers holding a URL or a path with a
// query (`X-Original-URL`, `X-Forwarded-Uri`, `Location`, ...) kept their sensitive query
// fields in events and tracking alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_holding_urls_are_redacted_as_the_request_url_in_events_and_tracking() {
    let dir = setup();
    let addr = serve(app()).await;
    let req = Request::get(format!("http://{addr}/reset-gone?ctl=requested"))
        .header(
            "referer",
            format!("http://{addr}/reset?token=sv-referer-token-1c&q=ctl-referer-q"),
        )
        .header(
            "x-original-url",
            "/reset?to%6Ben=sv-original-token-2d&q=ctl-original-q",
        )
        .header(
            "x-forwarded-uri",
            "/login?pass%77ord=sv-forwarded-pw-3e&next=ctl-forwarded-next",
        )
        .header(
            "content-location",
            "https://ctl-cl-user:sv-location-pw-4f@cdn.example.com/a?x=ctl-cl",
        )
        .body(empty())
        .unwrap();
    let (status, _, _) = send(&client(), req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (files, export) = stored_bytes(&dir);

    let store = stacktrace::store().unwrap();
    let tracked = store.tracked().path("/reset-gone").run().unwrap();
    assert_eq!(tracked.len(), 1);
    let headers = &tracked[0].headers;
    assert_eq!(
        headers["referer"],
        format!("http://{addr}/reset?token={PLACEHOLDER}&q=ctl-referer-q")
    );
    assert_eq!(
        headers["x-original-url"],
        format!("/reset?to%6Ben={PLACEHOLDER}&q=ctl-original-q")
    );
    assert_eq!(
        headers["x-forwarded-uri"],
        format!("/login?pass%77ord={PLACEHOLDER}&next=ctl-forwarded-next")
    );
    assert_eq!(
        headers["content-location"],
        format!("https://ctl-cl-user:{PLACEHOLDER}@cdn.example.com/a?x=ctl-cl")
    );
    // The broken link's event holds the same headers, redacted the same way.
    let events = store.query().request_path("/reset-gone").all().unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event_headers = &events[0].payload["request"]["headers"];
    for (name, value) in headers {
        if [
            "referer",
            "x-original-url",
            "x-forwarded-uri",
            "content-location",
        ]
        .contains(&name.as_str())
        {
            assert_eq!(event_headers[name], *value, "{name}");
        }
    }
    for (what, bytes) in [("the database files", &files), ("the export", &export)] {
        for secret in [
            "sv-referer-token-1c",
            "sv-original-token-2d",
            "sv-forwarded-pw-3e",
            "sv-location-pw-4f",
        ] {
            assert!(!contains(bytes, secret.as_bytes()), "{secret} in {what}");
        }
        for control in [
            "ctl-referer-q",
            "ctl-original-q",
            "ctl-forwarded-next",
            "ctl-cl-user",
        ] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control} not in {what}"
            );
        }
    }
}

// Regression: a JSON body posted as `text/plain`, or a form posted as `text/plain`, kept its
// `password` field in events and tracking: only the declared content type decided how a
// body was redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_or_form_body_is_redacted_as_one_whatever_its_declared_type() {
    let dir = setup();
    let addr = serve(app()).await;
    let bodies = [
        (
            "sv-json-plain",
            "text/plain",
            r#"{"user":"ctl-json-user","password":"sv-json-plain-pw-5a"}"#,
        ),
        (
            "sv-json-list",
            "text/plain; charset=utf-8",
            r#"[{"ctl":"ctl-list-item","nested":{"api_token":"sv-json-list-token-6b"}}]"#,
        ),
        (
            "sv-form-plain",
            "text/plain",
            "user=ctl-form-user&new_pass%77ord=sv-form-plain-pw-7c",
        ),
    ];
    for (tag, content_type, body) in bodies {
        let req = Request::post(format!("http://{addr}/echo"))
            .header("x-tag", tag)
            .header("content-type", content_type)
            .body(full(body))
            .unwrap();
        let (status, _, answer) = send(&client(), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer, body.len().to_string(), "the handler reads it whole");
    }
    let (files, export) = stored_bytes(&dir);
    let store = stacktrace::store().unwrap();
    for (tag, _, _) in bodies {
        let events = store
            .query()
            .text(format!("http-sv seen {tag}"))
            .all()
            .unwrap();
        assert_eq!(events.len(), 1, "{tag}");
        let body = events[0].payload["request"]["body"].as_str().unwrap();
        assert!(body.contains(PLACEHOLDER), "{tag}: {body}");
    }
    let tracked = store.tracked().path("/echo").limit(100).run().unwrap();
    let tracked_bodies: Vec<&str> = tracked
        .iter()
        .filter_map(|t| t.request_body.as_deref())
        .collect();
    for marker in ["ctl-json-user", "ctl-list-item", "ctl-form-user"] {
        let body = tracked_bodies
            .iter()
            .find(|b| b.contains(marker))
            .unwrap_or_else(|| panic!("{marker} not tracked: {tracked_bodies:?}"));
        assert!(body.contains(PLACEHOLDER), "{body}");
    }
    for (what, bytes) in [("the database files", &files), ("the export", &export)] {
        for secret in [
            "sv-json-plain-pw-5a",
            "sv-json-list-token-6b",
            "sv-form-plain-pw-7c",
        ] {
            assert!(!contains(bytes, secret.as_bytes()), "{secret} in {what}");
        }
        for control in ["ctl-json-user", "ctl-list-item", "ctl-form-user"] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control} not in {what}"
            );
        }
    }
}

// Regression: a 200 KB header value was stored whole in the tracked request and the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_header_value_is_stored_cut_and_marked() {
    setup();
    let addr = serve(app()).await;
    let huge = format!("ctl-huge-start{}", "x".repeat(200 << 10));
    let req = Request::post(format!("http://{addr}/echo?huge=1"))
        .header("x-tag", "sv-huge-header")
        .header("x-huge", &huge)
        .header("x-small", "ctl-small-kept")
        .body(empty())
        .unwrap();
    let (status, _, _) = send(&client(), req).await;
    assert_eq!(status, StatusCode::OK);
    flush();
    let store = stacktrace::store().unwrap();
    let tracked = store.tracked().path("/echo").limit(100).run().unwrap();
    let entry = tracked
        .iter()
        .find(|t| t.query == "huge=1")
        .expect("the request is tracked");
    let events = store
        .query()
        .text("http-sv seen sv-huge-header")
        .all()
        .unwrap();
    assert_eq!(events.len(), 1);
    let event_headers = &events[0].payload["request"]["headers"];
    for (where_, value) in [
        ("tracking", entry.headers["x-huge"].as_str()),
        ("the event", event_headers["x-huge"].as_str().unwrap()),
    ] {
        assert!(
            value.len() <= HEADER_CAP + 32,
            "{where_}: {} bytes",
            value.len()
        );
        assert!(value.starts_with("ctl-huge-start"), "{where_}");
        assert!(value.ends_with("[truncated]"), "{where_}");
    }
    assert_eq!(entry.headers["x-small"], "ctl-small-kept");
    assert_eq!(event_headers["x-small"], "ctl-small-kept");
}

// Regression: the SMTP password was hidden only where a pattern found it (in its URL): the
// bare value, quoted in a header, a query or an event's message, was stored as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_password_is_hidden_in_events_and_tracking_wherever_it_shows() {
    let dir = setup();
    let addr = serve(app()).await;
    let req = Request::post(format!(
        "http://{addr}/echo?note={SMTP_PASSWORD}&ctl=ctl-registered-query"
    ))
    .header(
        "x-tag",
        format!("relay login {SMTP_PASSWORD} ctl-registered-tag"),
    )
    .header("content-type", "text/plain")
    .body(full(format!(
        "the relay said no to {SMTP_PASSWORD} ctl-registered-body"
    )))
    .unwrap();
    let (status, _, _) = send(&client(), req).await;
    assert_eq!(status, StatusCode::OK);
    let (files, export) = stored_bytes(&dir);
    let store = stacktrace::store().unwrap();
    let tracked = store.tracked().path("/echo").limit(100).run().unwrap();
    let entry = tracked
        .iter()
        .find(|t| t.query.contains("ctl-registered-query"))
        .expect("the request is tracked");
    assert_eq!(
        entry.query,
        format!("note={PLACEHOLDER}&ctl=ctl-registered-query")
    );
    assert_eq!(
        entry.headers["x-tag"],
        format!("relay login {PLACEHOLDER} ctl-registered-tag")
    );
    let events = store.query().text("ctl-registered-tag").all().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].message,
        format!("http-sv seen relay login {PLACEHOLDER} ctl-registered-tag")
    );
    for (what, bytes) in [("the database files", &files), ("the export", &export)] {
        assert!(!contains(bytes, SMTP_PASSWORD.as_bytes()), "in {what}");
        for control in ["ctl-registered-tag", "ctl-registered-body"] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control} not in {what}"
            );
        }
    }
}

// Regression: not every text went through the redaction by value: an event's user (set by
// a report or by the request) was only scrubbed of known secrets, a breadcrumb's category
// and the keys of tags, extra data, breadcrumb data and tracked data were not looked at,
// so a URL password in any of them was stored as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_of_an_event_and_a_tracked_request_is_redacted_by_value() {
    let dir = setup();
    let addr = serve(app()).await;
    // On a thread of its own, so that its breadcrumbs are those of the report.
    std::thread::spawn(|| {
        stacktrace::add_breadcrumb(
            Breadcrumb::new(
                Level::Info,
                "redis://:sv-crumb-cat-pw-5e@cache.internal ctl-crumb-cat",
                "ctl-crumb-message",
            )
            .with_data("token=sv-crumb-key-6f ctl-crumb-key", 1),
        );
        Report::message("http-sv every text ctl-every-message", Level::Warning)
            .user("ops postgres://ctl-user-name:sv-user-url-pw-1a@db.internal/app")
            .tag(
                "postgres://ctl-tag-key-user:sv-tag-key-pw-2b@db.internal",
                "ctl-tag-value",
            )
            .tag(format!("relay {SMTP_PASSWORD} ctl-tag-key-2"), "v")
            .extra("Bearer sv-extra-key-token-3c ctl-extra-key", 1)
            .extra(
                "nested",
                serde_json::json!({"amqp://ctl-nested-key:sv-nested-key-pw-4d@mq": 2}),
            )
            .capture()
            .expect("the report is kept");
    })
    .join()
    .unwrap();
    let (status, _, _) = send(
        &client(),
        Request::get(format!("http://{addr}/who"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (files, export) = stored_bytes(&dir);

    let store = stacktrace::store().unwrap();
    let events = store.query().text("ctl-every-message").all().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].user,
        format!("ops postgres://ctl-user-name:{PLACEHOLDER}@db.internal/app")
    );
    let tracked = store.tracked().path("/who").run().unwrap();
    assert_eq!(tracked.len(), 1);
    for (what, bytes) in [("the database files", &files), ("the export", &export)] {
        for secret in [
            "sv-user-url-pw-1a",
            "sv-tag-key-pw-2b",
            SMTP_PASSWORD,
            "sv-extra-key-token-3c",
            "sv-nested-key-pw-4d",
            "sv-crumb-cat-pw-5e",
            "sv-crumb-key-6f",
            "sv-http-user-pw-7a",
            "sv-track-key-pw-8b",
        ] {
            assert!(!contains(bytes, secret.as_bytes()), "{secret} in {what}");
        }
        for control in [
            "ctl-user-name",
            "ctl-tag-key-user",
            "ctl-tag-key-2",
            "ctl-extra-key",
            "ctl-nested-key",
            "ctl-crumb-cat",
            "ctl-crumb-key",
            "ctl-http-user",
        ] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control} not in {what}"
            );
        }
    }
    // Tracked data is in the database only, not in the export of events.
    assert!(contains(&files, b"ctl-track-key"));
}

/// The most bytes of a body or a message stored in an event (`max_payload_bytes`).
const PAYLOAD_CAP: usize = 65536;
/// The password of a URL in a body, found by its form only.
const URL_PASSWORD: &str = "sv-cut-url-pw-9c";
/// The most bytes of a body stored in a tracked request (`max_body_length` above).
const TRACKED_BODY_CAP: usize = 4096;

/// `start`, then filler up to `at` bytes, then the SMTP password and more filler: a text
/// whose cut at `at` falls inside the password.
fn straddling(start: &str, fill: char, at: usize, len: usize) -> String {
    straddling_with(start, fill, at, len, "", SMTP_PASSWORD, "")
}

/// `start`, filler, `before`, `secret` and `after`, then more filler: `secret` begins 8
/// bytes before `at`.
fn straddling_with(
    start: &str,
    fill: char,
    at: usize,
    len: usize,
    before: &str,
    secret: &str,
    after: &str,
) -> String {
    let mut text = start.to_owned();
    while text.len() + before.len() < at - 8 {
        text.push(fill);
    }
    text.push_str(before);
    text.push_str(secret);
    text.push_str(after);
    while text.len() < len {
        text.push(fill);
    }
    text
}

// Regression: a header value over 8 KiB was cut in the event after scrubbing only what the
// request's own redaction had found, not the secrets of the settings, so the first bytes
// of the SMTP password straddling the cut were stored; a body was cut at its limit before
// the secrets were scrubbed, in tracking (cut at `max_body_length`) and in the event (cut
// where it was captured), with the same result, and a URL's password cut before its `@`
// was not taken for one. A message cut at its cap keeps none either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_prefix_of_a_secret_remains_where_a_text_is_cut() {
    let dir = setup();
    let addr = serve(app()).await;
    let prefix = &SMTP_PASSWORD[..8];
    let requests = [
        (
            "sv-cut-header",
            straddling("ctl-long-header", 'h', HEADER_CAP, HEADER_CAP + 100),
            straddling("ctl-tracked-body", 't', TRACKED_BODY_CAP, 8000),
        ),
        (
            "sv-cut-body",
            "ctl-short-header".to_owned(),
            straddling("ctl-event-body", 'e', PAYLOAD_CAP, PAYLOAD_CAP + 4000),
        ),
        (
            "sv-url-cut",
            "ctl-short-header".to_owned(),
            straddling_with(
                "ctl-url-body",
                'u',
                PAYLOAD_CAP,
                PAYLOAD_CAP + 4000,
                " postgres://ctl-cut-user:",
                URL_PASSWORD,
                "@db.internal/app ",
            ),
        ),
    ];
    for (tag, header, body) in &requests {
        let req = Request::post(format!("http://{addr}/echo"))
            .header("x-tag", *tag)
            .header("x-long", header)
            .header("content-type", "text/plain")
            .body(full(body.clone()))
            .unwrap();
        let (status, _, answer) = send(&client(), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer, body.len().to_string());
    }
    let message = straddling("ctl-long-message", 'm', PAYLOAD_CAP, PAYLOAD_CAP + 100);
    stacktrace::capture_message(&message, Level::Info);
    let (files, export) = stored_bytes(&dir);

    let store = stacktrace::store().unwrap();
    let header_event = &store
        .query()
        .text("http-sv seen sv-cut-header")
        .all()
        .unwrap()[0];
    let value = header_event.payload["request"]["headers"]["x-long"]
        .as_str()
        .unwrap();
    assert!(value.ends_with("[truncated]"), "the header is cut");
    let body_event = &store
        .query()
        .text("http-sv seen sv-cut-body")
        .all()
        .unwrap()[0];
    assert_eq!(body_event.payload["request"]["body_truncated"], true);
    for (what, bytes) in [("the database files", &files), ("the export", &export)] {
        assert!(!contains(bytes, prefix.as_bytes()), "{prefix} in {what}");
        let url_prefix = &URL_PASSWORD[..8];
        assert!(
            !contains(bytes, url_prefix.as_bytes()),
            "{url_prefix} in {what}"
        );
        for control in [
            "ctl-cut-user",
            "ctl-long-header",
            "ctl-tracked-body",
            "ctl-event-body",
            "ctl-long-message",
        ] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control} not in {what}"
            );
        }
    }
}
