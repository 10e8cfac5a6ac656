//! Request tracking (execution times, excludes, body limits, the cap, queries) and broken
//! links (referer rules, ignorable URLs), against a real server.

mod support;

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use http::Request;
use stacktrace::http::{StacktraceLayer, Tracking};
use stacktrace::{Config, Level};
use support::http::{client, empty, flush, full, get as fetch, install, send, serve};
use tokio::sync::Mutex;

/// The tests share one tracking tree; the cap test must not see the others' entries.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn setup() {
    install(|| Config::default().capture_env(false));
}

fn tracked_app(tracking: Tracking) -> Router {
    Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(120)).await;
                "slow"
            }),
        )
        .route("/fast", get(|| async { "fast" }))
        .route("/health", get(|| async { "up" }))
        .route(
            "/upload",
            post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
        )
        .route(
            "/login",
            post(|body: Bytes| async move {
                stacktrace::set_user("carol");
                stacktrace::http::track("attempt", 2);
                stacktrace::http::track("password", "sec-track-data");
                format!("{} bytes received by the login route", body.len())
            }),
        )
        .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .layer(StacktraceLayer::new().tracking(tracking))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_tracked_with_times_bodies_and_data() {
    setup();
    let _serial = SERIAL.lock().await;
    let tracking = Tracking::new()
        .exclude("^/health$")
        .unwrap()
        .exclude_body("^/upload")
        .unwrap()
        .max_body_length(32);
    let addr = serve(tracked_app(tracking)).await;
    let c = client();
    let start = SystemTime::now();
    assert_eq!(
        fetch(&c, format!("http://{addr}/slow")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&c, format!("http://{addr}/fast?x=1&token=sec-q"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&c, format!("http://{addr}/health")).await.0,
        StatusCode::OK
    );
    let req = Request::post(format!("http://{addr}/upload"))
        .header("content-type", "text/plain")
        .body(full("u".repeat(100)))
        .unwrap();
    assert_eq!(send(&c, req).await.0, StatusCode::OK);
    let req = Request::post(format!("http://{addr}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Bearer sec-track-auth")
        .body(full("user=carol&password=sec-track-pw&remember=yes-please"))
        .unwrap();
    assert_eq!(send(&c, req).await.0, StatusCode::OK);
    assert_eq!(
        fetch(&c, format!("http://{addr}/boom")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    flush();
    let end = SystemTime::now();

    let store = stacktrace::store().unwrap();
    let rows = store.tracked().since(start).until(end).run().unwrap();
    let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/boom", "/login", "/upload", "/fast", "/slow"]);

    let slow = store
        .tracked()
        .since(start)
        .slower_than(Duration::from_millis(100))
        .run()
        .unwrap();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].path, "/slow");
    assert!(slow[0].duration() >= Duration::from_millis(120));
    assert_eq!(slow[0].response_body.as_deref(), Some("slow"));

    let fast = &store.tracked().since(start).path("/fast").run().unwrap()[0];
    assert!(fast.duration() < Duration::from_millis(100));
    assert_eq!(fast.query, "x=1&token=**********");
    assert_eq!(fast.method, "GET");
    assert_eq!(fast.status, 200);

    let upload = &store.tracked().since(start).path("/upload").run().unwrap()[0];
    assert_eq!(upload.request_body, None);
    assert_eq!(upload.response_body, None);

    let login = &store.tracked().since(start).path("/login").run().unwrap()[0];
    assert_eq!(login.user, "carol");
    assert_eq!(login.headers["authorization"], "**********");
    assert_eq!(
        login.request_body.as_deref(),
        Some("user=carol&password=**********")
    );
    assert!(login.request_body_truncated);
    assert!(login.response_body_truncated);
    assert_eq!(login.data["attempt"], 2);
    assert_eq!(login.data["password"], "**********");

    let errors = store.tracked().since(start).status(503).run().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "/boom");
    // A 5xx is also an event.
    let e = store.query().request_path("/boom").all().unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].error_type, "HTTP 503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_after_ten_times_the_cap() {
    setup();
    let _serial = SERIAL.lock().await;
    let addr = serve(tracked_app(Tracking::new().max_entries(20))).await;
    let c = client();
    let start = SystemTime::now();
    for i in 0..200 {
        let (status, _) = fetch(&c, format!("http://{addr}/fast?i={i}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    flush();
    let store = stacktrace::store().unwrap();
    let rows = store.tracked().limit(1000).run().unwrap();
    assert_eq!(rows.len(), 20);
    // The newest were kept, newest first.
    let queries: Vec<String> = rows.iter().map(|r| r.query.clone()).collect();
    let expected: Vec<String> = (180..200).rev().map(|i| format!("i={i}")).collect();
    assert_eq!(queries, expected);
    assert!(rows.iter().all(|r| r.time_after(start)));
    assert_eq!(stacktrace::http::tracking_dropped(), 0);
}

/// Requests that repeat one another in all but their start, duration and status (most
/// of a busy endpoint's) are stored with their own three, whether an entry was built for
/// each or repeated from the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_keep_their_own_status_and_duration() {
    setup();
    let _serial = SERIAL.lock().await;
    const STATUSES: [u16; 4] = [200, 201, 404, 202];
    let turn = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let quick = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/again",
            get(move || {
                let n = turn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 4;
                async move {
                    tokio::time::sleep(Duration::from_millis(20 * n as u64)).await;
                    (StatusCode::from_u16(STATUSES[n]).unwrap(), "again")
                }
            }),
        )
        .route(
            "/quick",
            get(move || {
                let n = quick.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 4;
                async move { (StatusCode::from_u16(STATUSES[n]).unwrap(), "quick") }
            }),
        )
        .layer(StacktraceLayer::new().tracking(Tracking::new().max_body_length(32)));
    let addr = serve(app).await;
    let start = SystemTime::now();
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let url = format!("http://{addr}/again");
        tasks.push(tokio::spawn(async move { fetch(&client(), url).await.0 }));
    }
    let mut answered = Vec::new();
    for t in tasks {
        answered.push(t.await.unwrap().as_u16());
    }
    flush();
    let rows = stacktrace::store()
        .unwrap()
        .tracked()
        .since(start)
        .path("/again")
        .run()
        .unwrap();
    let mut stored: Vec<u16> = rows.iter().map(|r| r.status).collect();
    stored.sort_unstable();
    answered.sort_unstable();
    assert_eq!(stored, answered);
    for r in &rows {
        let n = STATUSES.iter().position(|&s| s == r.status).unwrap();
        assert!(
            r.duration() >= Duration::from_millis(20 * n as u64),
            "{} took {:?}",
            r.status,
            r.duration()
        );
        assert_eq!((r.method.as_str(), r.query.as_str()), ("GET", ""));
        assert_eq!(r.response_body.as_deref(), Some("again"));
        assert!(r.time_after(start));
    }
    // Each start is its own: the entries are not copies of one another.
    let mut ids: Vec<_> = rows.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    let slowest = rows.iter().map(|r| r.duration()).max().unwrap();
    assert!(slowest >= Duration::from_millis(60));

    // One after another on one connection, the same request with another status each
    // time: queued by one thread, most of them as repeats of the one before.
    let start = SystemTime::now();
    let c = client();
    let mut answered = Vec::new();
    for _ in 0..40 {
        answered.push(fetch(&c, format!("http://{addr}/quick")).await.0.as_u16());
    }
    flush();
    let rows = stacktrace::store()
        .unwrap()
        .tracked()
        .since(start)
        .path("/quick")
        .run()
        .unwrap();
    // Newest first: the statuses in the order answered.
    let stored: Vec<u16> = rows.iter().rev().map(|r| r.status).collect();
    assert_eq!(stored, answered);
    assert!(rows
        .iter()
        .all(|r| r.response_body.as_deref() == Some("quick")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_responses_are_each_stored_with_their_own_body() {
    setup();
    let _serial = SERIAL.lock().await;
    // Requests finishing together are built into entries together; each keeps its own
    // response body, whether it repeats the one before or not.
    let app = Router::new()
        .route(
            "/echo/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    if n.is_multiple_of(3) {
                        "same".to_owned()
                    } else {
                        format!("{n} Bearer sec-echo-{n} {}", "x".repeat(n as usize % 50))
                    }
                },
            ),
        )
        .route(
            "/json/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    axum::Json(serde_json::json!({"n": n, "password": format!("sec-json-{n}")}))
                },
            ),
        )
        .layer(StacktraceLayer::new().tracking(Tracking::new().max_body_length(40)));
    let addr = serve(app).await;
    let c = client();
    let start = SystemTime::now();
    let mut calls = Vec::new();
    for n in 0..120u32 {
        let c = c.clone();
        let kind = if n % 4 == 1 { "json" } else { "echo" };
        calls.push(tokio::spawn(async move {
            fetch(&c, format!("http://{addr}/{kind}/{n}")).await.0
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    flush();
    let rows = stacktrace::store()
        .unwrap()
        .tracked()
        .since(start)
        .limit(1000)
        .run()
        .unwrap();
    assert_eq!(rows.len(), 120);
    for r in &rows {
        let (kind, n) = r.path[1..].split_once('/').unwrap();
        let n: u32 = n.parse().unwrap();
        let body = r.response_body.as_deref().unwrap();
        // The first 40 bytes are kept, then redacted.
        let (expected, truncated) = if kind == "json" {
            (format!(r#"{{"n":{n},"password":"**********"}}"#), false)
        } else if n.is_multiple_of(3) {
            ("same".to_owned(), false)
        } else {
            let sent = format!("{n} Bearer sec-echo-{n} {}", "x".repeat(n as usize % 50));
            (
                sent[..sent.len().min(40)].replace(&format!("sec-echo-{n}"), "**********"),
                sent.len() > 40,
            )
        };
        assert_eq!(body, expected, "{}", r.path);
        assert_eq!(r.response_body_truncated, truncated, "{}", r.path);
        assert!(!body.contains("sec-"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_of_the_request_is_hidden_wherever_the_entry_repeats_it() {
    let dir = install(|| Config::default().capture_env(false));
    let _serial = SERIAL.lock().await;
    // The handlers echo what they were sent into their response and the attached data,
    // under names that are not sensitive: what the request's redaction found is hidden
    // there too, in a JSON response as JSON writes it.
    async fn echo(uri: http::Uri, headers: http::HeaderMap, body: Bytes) -> (String, String) {
        let text = String::from_utf8_lossy(&body).into_owned();
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_owned();
        let form: Vec<(String, String)> = form_urlencoded(&text);
        let password = form
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        stacktrace::http::track("note", format!("{password} {auth}"));
        // Quoted as HTML and as a URL with lower-case hex digits, too.
        let html = password.replace('&', "&amp;").replace('"', "&quot;");
        let url: String = password
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' => format!("%{b:02x}"),
                b => char::from(b).to_string(),
            })
            .collect();
        let reply = format!(
            "you sent {text}, {password}, {} and {auth}; <i>{html}</i> /next?p={url} ctl-echo-reply",
            uri.query().unwrap_or("")
        );
        (reply, password)
    }
    let app = Router::new()
        .route(
            "/echo",
            post(
                |uri: http::Uri, headers: http::HeaderMap, body: Bytes| async move {
                    echo(uri, headers, body).await.0
                },
            ),
        )
        .route(
            "/echo-json",
            post(
                |uri: http::Uri, headers: http::HeaderMap, body: Bytes| async move {
                    let (reply, password) = echo(uri, headers, body).await;
                    axum::Json(serde_json::json!({"reply": reply, "again": password}))
                },
            ),
        )
        // A response that looks like it holds a credential hides it in itself only.
        .route(
            "/plans/pro",
            get(|| async { "Your Basic plans are active" }),
        )
        .layer(StacktraceLayer::new().tracking(Tracking::new().max_body_length(1024)));
    let addr = serve(app).await;
    let c = client();
    let mut calls = Vec::new();
    // Each request twice at once, so that a take holds repeats of the same headers and body.
    for round in 0..2 {
        for path in ["/echo", "/echo", "/echo-json", "/echo-json"] {
            let req = Request::post(format!(
                "http://{addr}{path}?api_token=sec-echo-query-{round}"
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Bearer sec-echo-bearer-{round}"))
            .body(full(format!(
                "user=ctl-echo-user&password=sec%22echo%5Cform-{round}"
            )))
            .unwrap();
            let c = c.clone();
            calls.push(tokio::spawn(async move { send(&c, req).await.0 }));
        }
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        fetch(&c, format!("http://{addr}/plans/pro")).await.0,
        StatusCode::OK
    );
    flush();
    assert!(stacktrace::store().unwrap().flush().is_ok());
    let store = stacktrace::store().unwrap();
    let rows = store.tracked().path("/echo").run().unwrap();
    assert_eq!(rows.len(), 4);
    let reply = rows[0].response_body.as_deref().unwrap();
    assert!(
        reply.contains("ctl-echo-reply") && reply.contains("ctl-echo-user"),
        "{reply}"
    );
    assert!(!reply.contains("sec"), "{reply}");
    let json = &store.tracked().path("/echo-json").run().unwrap()[0];
    let reply = json.response_body.as_deref().unwrap();
    assert!(reply.contains("ctl-echo-reply"), "{reply}");
    assert!(!reply.contains("sec"), "{reply}");
    assert!(
        !json.data["note"].as_str().unwrap().contains("sec"),
        "{:?}",
        json.data
    );
    let plans = store.tracked().path("/plans/pro").run().unwrap();
    assert_eq!(plans.len(), 1, "the path is stored as it was");
    let raw = stacktrace_tests::raw_bytes(&dir);
    assert!(stacktrace_tests::contains(&raw, b"ctl-echo-reply"));
    for round in 0..2 {
        for secret in [
            format!("sec-echo-query-{round}"),
            format!("sec-echo-bearer-{round}"),
            format!("echo%5Cform-{round}"),
            format!("echo%5cform-{round}"),
            "sec&quot;echo".to_owned(),
            format!("echo\\form-{round}"),
            format!("echo\\\\form-{round}"),
        ] {
            assert!(
                !stacktrace_tests::contains(&raw, secret.as_bytes()),
                "{secret} is in the database"
            );
        }
    }
}

/// The pairs of a form body, decoded.
fn form_urlencoded(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

trait After {
    fn time_after(&self, t: SystemTime) -> bool;
}

impl After for stacktrace::TrackedRequest {
    fn time_after(&self, t: SystemTime) -> bool {
        stacktrace::from_us(self.timestamp_us) >= t
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_follow_django_rules() {
    setup();
    let app = Router::new().route("/", get(|| async { "home" })).layer(
        StacktraceLayer::new()
            .ignorable_404_url("^/ignored/")
            .unwrap(),
    );
    let addr = serve(app).await;
    let c = client();
    let host = format!("{addr}");
    let cases: [(&str, Option<String>); 7] = [
        ("/no-referer", None),
        ("/internal", Some(format!("http://{host}/"))),
        ("/external", Some("https://blog.test/post".to_owned())),
        ("/search", Some("https://search.test/?q=x".to_owned())),
        ("/self", Some(format!("http://{host}/self"))),
        ("/favicon.ico", Some(format!("http://{host}/"))),
        ("/ignored/page", Some(format!("http://{host}/"))),
    ];
    for (path, referer) in &cases {
        let mut req = Request::get(format!("http://{addr}{path}"));
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        let (status, _, _) = send(&c, req.body(empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    flush();
    let store = stacktrace::store().unwrap();
    let reported = |path: &str| store.query().request_path(path).all().unwrap();
    let internal = reported("/internal");
    assert_eq!(internal.len(), 1);
    assert_eq!(internal[0].level, Level::Warning);
    assert_eq!(internal[0].logger, "http.404");
    // The Host is the client's: kept apart from the message that titles the event.
    assert_eq!(internal[0].message, "Broken INTERNAL link: /internal");
    assert_eq!(internal[0].extra["host"], host);
    assert_eq!(internal[0].extra["referer"], format!("http://{host}/"));
    let external = reported("/external");
    assert_eq!(external.len(), 1);
    assert_eq!(external[0].message, "Broken link: /external");
    for path in [
        "/no-referer",
        "/search",
        "/self",
        "/favicon.ico",
        "/ignored/page",
    ] {
        assert!(reported(path).is_empty(), "{path} was reported");
    }
}

/// A burst of requests is stored without a flush, by the worker's own takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_stored_without_a_flush() {
    setup();
    let _serial = SERIAL.lock().await;
    let app = Router::new()
        .route("/burst", get(|| async { "burst" }))
        .layer(StacktraceLayer::new().tracking(Tracking::new()));
    let addr = serve(app).await;
    let start = SystemTime::now();
    const TASKS: usize = 16;
    const EACH: usize = 40;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let url = format!("http://{addr}/burst");
        tasks.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..EACH {
                assert_eq!(fetch(&c, url.clone()).await.0, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // No flush: the worker's own takes store them.
    let stored = || {
        stacktrace::store()
            .unwrap()
            .tracked()
            .since(start)
            .path("/burst")
            .limit(10 * TASKS * EACH)
            .run()
            .unwrap()
            .len()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stored() < TASKS * EACH && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored(), TASKS * EACH);
}
