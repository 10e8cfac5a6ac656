//! What a request carries, as stored: secrets in headers, cookies, query strings, form and
//! JSON bodies, URLs and bearer values never reach the database; bodies are kept up to the
//! limit, marked when cut or not UTF-8, and the handler still receives them whole.

mod support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use http::Request;
use stacktrace::http::{SensitivePostParameters, StacktraceLayer};
use stacktrace::{Config, CrashEvent, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::http::{chunked, client, echo_tagged, flush, full, install, send, serve};

const LIMIT: usize = 1024;

fn setup() -> std::path::PathBuf {
    install(|| {
        Config::default()
            .capture_env(false)
            .capture_body(true)
            .max_payload_bytes(LIMIT)
    })
}

/// Reads the whole body, stores an event tagged by `x-tag`, answers the length it read.
async fn echo(headers: HeaderMap, body: Bytes) -> String {
    echo_tagged("seen", &headers, &body)
}

async fn inside(headers: HeaderMap, body: Bytes) -> String {
    stacktrace::http::sensitive_post_parameters(&["pin"]);
    echo(headers, body).await
}

fn app() -> Router {
    Router::new()
        .route("/echo", post(echo).get(echo))
        .route(
            "/login",
            post(echo).layer(SensitivePostParameters::new(["pass_word", "card"])),
        )
        .route("/pay", post(echo).layer(SensitivePostParameters::all()))
        .route("/inside", post(inside))
        .layer(StacktraceLayer::new())
}

fn event_tagged(tag: &str) -> CrashEvent {
    flush();
    let events = stacktrace::store()
        .unwrap()
        .query()
        .text(format!("seen {tag}"))
        .all()
        .unwrap();
    assert_eq!(events.len(), 1, "{tag}: {events:#?}");
    events.into_iter().next().unwrap()
}

async fn post_body(
    addr: std::net::SocketAddr,
    path: &str,
    tag: &str,
    content_type: &str,
    body: support::http::Body,
) -> String {
    let req = Request::post(format!("http://{addr}{path}"))
        .header("x-tag", tag)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    let (status, _, body) = send(&client(), req).await;
    assert!(status.is_success(), "{path} {tag}: {status}");
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_database() {
    let dir = setup();
    let addr = serve(app()).await;
    let c = client();

    let req = Request::get(format!(
        "http://{addr}/echo?keep=ctl-query-1&password=sec-query-pass&api_token=sec-query-token"
    ))
    .header("x-tag", "headers")
    .header("authorization", "Bearer sec-auth-bearer")
    .header(
        "cookie",
        "theme=ctl-cookie-theme; sessionid=sec-cookie-session",
    )
    .header("x-api-key", "sec-api-key-hdr")
    .header("x-upstream", "Bearer sec-upstream-bearer")
    .header("referer", "https://deploy:sec-url-pass@example.test/page")
    .header("x-control", "ctl-header-1")
    .body(support::http::empty())
    .unwrap();
    assert!(send(&c, req).await.0.is_success());

    post_body(
        addr,
        "/echo",
        "form",
        "application/x-www-form-urlencoded",
        full("user=ctl-form-user&new_password=sec-form-pass&Token=sec-form-token"),
    )
    .await;
    post_body(
        addr,
        "/echo",
        "json",
        "application/json",
        full(
            r#"{"user":"ctl-json-user","nested":{"list":[{"PASSWORD":"sec-json-pass"}],"access_token":{"v":"sec-json-token"}},"dsn":"postgres://app:sec-json-dsn@db/x"}"#,
        ),
    )
    .await;
    post_body(
        addr,
        "/login",
        "login",
        "application/x-www-form-urlencoded",
        full("username=ctl-login-user&pass_word=sec-login-pw&CARD=sec-login-card"),
    )
    .await;
    post_body(
        addr,
        "/pay",
        "pay",
        "application/json",
        full(r#"{"anything":"sec-pay-whole-body"}"#),
    )
    .await;
    post_body(
        addr,
        "/inside",
        "inside",
        "application/json",
        full(r#"{"pin":"sec-inside-pin","note":"ctl-inside-note"}"#),
    )
    .await;
    flush();
    assert!(stacktrace::store().unwrap().flush().is_ok());

    let e = event_tagged("headers");
    let r = &e.payload["request"];
    assert_eq!(r["headers"]["authorization"], PLACEHOLDER);
    // `cookie` is in the default `redact_headers`: the whole header goes.
    assert_eq!(r["headers"]["cookie"], PLACEHOLDER);
    assert_eq!(r["headers"]["x-upstream"], format!("Bearer {PLACEHOLDER}"));
    assert_eq!(
        r["headers"]["referer"],
        format!("https://deploy:{PLACEHOLDER}@example.test/page")
    );
    assert_eq!(
        r["query"],
        format!("keep=ctl-query-1&password={PLACEHOLDER}&api_token={PLACEHOLDER}")
    );
    assert_eq!(event_tagged("pay").payload["request"]["body"], PLACEHOLDER);

    let raw = raw_bytes(&dir);
    for secret in [
        "sec-query-pass",
        "sec-query-token",
        "sec-auth-bearer",
        "sec-cookie-session",
        "sec-api-key-hdr",
        "sec-upstream-bearer",
        "sec-url-pass",
        "sec-form-pass",
        "sec-form-token",
        "sec-json-pass",
        "sec-json-token",
        "sec-json-dsn",
        "sec-login-pw",
        "sec-login-card",
        "sec-pay-whole-body",
        "sec-inside-pin",
    ] {
        assert!(
            !contains(&raw, secret.as_bytes()),
            "{secret} is in the database"
        );
    }
    for control in [
        "ctl-query-1",
        "ctl-header-1",
        "ctl-form-user",
        "ctl-json-user",
        "ctl-login-user",
        "ctl-inside-note",
    ] {
        assert!(contains(&raw, control.as_bytes()), "{control} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_kept_up_to_the_limit_and_marked() {
    setup();
    let addr = serve(app()).await;

    // Over the limit, with a length.
    let big = "a".repeat(5000);
    assert_eq!(
        post_body(addr, "/echo", "big", "text/plain", full(big)).await,
        "5000"
    );
    let r = event_tagged("big").payload["request"].clone();
    assert_eq!(r["body"].as_str().unwrap().len(), LIMIT);
    assert_eq!(r["body_truncated"], true);
    assert_eq!(r["body_size"], 5000);

    // Chunked, without a length: the handler still reads every chunk.
    let chunks = (0..10).map(|i| Bytes::from(vec![b'0' + i; 500])).collect();
    let got = post_body(addr, "/echo", "chunked", "text/plain", chunked(chunks)).await;
    assert_eq!(got, "5000");
    let r = event_tagged("chunked").payload["request"].clone();
    let kept = r["body"].as_str().unwrap();
    assert_eq!(kept.len(), LIMIT);
    assert!(kept.starts_with(&"0".repeat(500)) && kept.ends_with(&"2".repeat(24)));
    assert_eq!(r["body_truncated"], true);

    // Cut inside a character: kept up to it.
    let accents = "é".repeat(1000);
    post_body(
        addr,
        "/echo",
        "accents",
        "text/plain; charset=utf-8",
        full(accents),
    )
    .await;
    let r = event_tagged("accents").payload["request"].clone();
    assert_eq!(r["body"], "é".repeat(LIMIT / 2));
    assert_eq!(r["body_truncated"], true);

    // Not UTF-8.
    let mut latin = b"caf".to_vec();
    latin.push(0xe9);
    post_body(addr, "/echo", "latin", "text/plain", full(latin)).await;
    let r = event_tagged("latin").payload["request"].clone();
    assert_eq!(r["body"], "caf\u{fffd}");
    assert_eq!(r["body_lossy"], true);

    // Binary: described, not stored.
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let got = post_body(
        addr,
        "/echo",
        "binary",
        "application/octet-stream",
        full(binary),
    )
    .await;
    assert_eq!(got, "3000");
    let r = event_tagged("binary").payload["request"].clone();
    assert_eq!(r["body"], "[3000 bytes of application/octet-stream]");

    // Empty.
    post_body(addr, "/echo", "empty", "text/plain", full("")).await;
    let r = event_tagged("empty").payload["request"].clone();
    assert_eq!(r["body"], "");
    assert!(r.get("body_truncated").is_none());

    // Control characters are kept, escaped by the JSON they are stored in.
    post_body(
        addr,
        "/echo",
        "controls",
        "text/plain",
        full("a\u{0}b\u{1b}[31mc\r\n"),
    )
    .await;
    let r = event_tagged("controls").payload["request"].clone();
    assert_eq!(r["body"], "a\u{0}b\u{1b}[31mc\r\n");
}
