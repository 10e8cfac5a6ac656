//! Sentry's own scrubber as the referee of what we store and send. Every event is run
//! through Relay's store normalizer and then its data scrubber (`scripts/relay.sh`, which
//! installs the `sentry-relay` package under `target/relay/` on first use, and
//! `scripts/relay_check.py`), the steps Sentry's ingestion runs. The scrubber has a new
//! Sentry project's settings: data scrubbing and the default scrubbers on, no extra
//! sensitive fields, and "prevent storing of IP addresses" off, as it is by default: a
//! user's IP address is not a secret to us. An event passes when the normalizer reports no
//! error and the scrubber finds nothing left to remove but our placeholder `**********`:
//! alone, or in a text Relay removes whole only for naming a secret (`password=**********`),
//! which discloses nothing. Those are printed, as "disclosing nothing", without failing.
//! Relay's default scrubber leaves messages and error texts alone but for card numbers,
//! IBANs, social security numbers, e-mail addresses and bearer tokens: a passing test says
//! nothing of `password=x` in a message, which the redaction tests must hold.
//!
//! The events are those of `referee_scenario` (secrets in every common form, in every
//! place an event holds, and in the environment it is started with) and of HTTP requests
//! through the tower layer, made here: as forwarded to a recording sink, and as stored by
//! a run with forwarding off, each sent by `stacktrace::forward::backfill`, the conversion
//! the forwarder makes. Control values must be found as they are, so a test that finds
//! nothing because nothing arrived fails. Source lines around frames are off: the
//! scenario's own source holds its secrets as literals, and Relay would rightly find them
//! there.
//!
//! `STACKTRACE_SKIP_SERVER_TESTS=1` skips the tests that need Relay (locally only).

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use http::Request;
use serde_json::{json, Value};
use stacktrace::forward::{backfill, backfill_candidates, ForwardConfig};
use stacktrace::http::StacktraceLayer;
use stacktrace::{Config, Level, Store};
use support::http::{client, empty, flush, full, install, send, serve};
use support::scenario::{db_dir, run_with_limit};
use support::sink::{Envelope, Sink};

/// Whether the tests that need Relay are skipped: only on request, and never in CI (`CI`
/// set, as `.ci/run` and CI services do), where a skip would hide a failure.
fn skipped() -> bool {
    let asked = std::env::var("STACKTRACE_SKIP_SERVER_TESTS").is_ok_and(|v| v == "1");
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !(asked && in_ci),
        "STACKTRACE_SKIP_SERVER_TESTS=1 is refused in CI: the Relay tests must run there"
    );
    asked
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/relay.sh")
}

/// What Relay found in one event.
#[derive(Debug)]
struct Verdict {
    event: Value,
    findings: Vec<Value>,
}

/// Runs the checker over `events`, one verdict each, in order.
fn referee(events: &[Value]) -> Vec<Verdict> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("events.jsonl");
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, lines).expect("write the events");
    let out = Command::new("bash")
        .arg(script())
        .arg("check")
        .arg(&file)
        .output()
        .expect("run scripts/relay.sh");
    assert!(
        out.status.success(),
        "scripts/relay.sh could not check the events (set STACKTRACE_SKIP_SERVER_TESTS=1 to skip locally): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the checker prints JSON");
    let verdicts = report["events"].as_array().expect("a verdict per event");
    assert_eq!(verdicts.len(), events.len(), "{report}");
    events
        .iter()
        .zip(verdicts)
        .map(|(event, v)| Verdict {
            event: event.clone(),
            findings: v["findings"].as_array().cloned().unwrap_or_default(),
        })
        .collect()
}

/// The text an event is known by: its message, or its error's.
fn headline(event: &Value) -> String {
    let text = event["message"]["formatted"]
        .as_str()
        .or_else(|| {
            event["exception"]["values"]
                .as_array()
                .and_then(|v| v.last())
                .and_then(|e| e["value"].as_str())
        })
        .unwrap_or_default();
    clipped(text, 160)
}

fn clipped(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        out.push('…');
    }
    out
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", clipped(s, 160)),
        other => clipped(&other.to_string(), 160),
    }
}

/// The findings of `kind`, each on a line under its event: path, rule, what was removed,
/// and the value it was removed from.
fn report(verdicts: &[Verdict], kind: &str) -> String {
    let mut out = String::new();
    for v in verdicts {
        let found: Vec<&Value> = v.findings.iter().filter(|f| f["kind"] == kind).collect();
        if found.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "event {} {:?}",
            v.event["event_id"].as_str().unwrap_or("?"),
            headline(&v.event)
        );
        for f in found {
            let _ = write!(
                out,
                "    {} [{}]",
                f["path"].as_str().unwrap_or("?"),
                f["rule"].as_str().unwrap_or("?")
            );
            if let Some(why) = f["why"].as_str() {
                let _ = write!(out, " ({why})");
            }
            match f.get("removed") {
                Some(removed) if removed != &f["value"] => {
                    let _ = writeln!(
                        out,
                        " removes {} from {}",
                        shown(removed),
                        shown(&f["value"])
                    );
                }
                _ => {
                    let _ = writeln!(out, " removes {}", shown(&f["value"]));
                }
            }
        }
    }
    out
}

/// Holds `events` to Relay: the control values are there as they are, the normalizer
/// reports no error, and nothing is left to scrub. Says every finding of every event
/// before it fails.
fn assert_passes(what: &str, events: &[Value], controls: &[&str]) {
    let all = serde_json::to_string(events).expect("JSON");
    let missing: Vec<&str> = controls
        .iter()
        .copied()
        .filter(|c| !all.contains(c))
        .collect();
    let verdicts = referee(events);
    let errors = report(&verdicts, "normalizer-error");
    let scrubbed = report(&verdicts, "scrubbed");
    let allowed = report(&verdicts, "allowed");
    let n = |kind: &str| {
        verdicts
            .iter()
            .flat_map(|v| &v.findings)
            .filter(|f| f["kind"] == kind)
            .count()
    };
    eprintln!(
        "{what}: {} events, controls missing {missing:?}, {} normalizer errors, {} values Relay would scrub, {} it would remove that disclose nothing\n\
         normalizer errors:\n{errors}scrubbed:\n{scrubbed}disclosing nothing:\n{allowed}",
        events.len(),
        n("normalizer-error"),
        n("scrubbed"),
        n("allowed"),
    );
    assert!(
        missing.is_empty(),
        "{what}: control values are not in the events as they are, so the check would prove nothing: {missing:?}"
    );
    assert!(
        errors.is_empty(),
        "{what}: Relay's normalizer reports errors:\n{errors}"
    );
    assert!(
        scrubbed.is_empty(),
        "{what}: Relay's default scrubber finds {} values left to remove:\n{scrubbed}",
        n("scrubbed")
    );
}

/// The events of the envelopes received, those of event items only.
fn events_of(envelopes: &[Envelope]) -> Vec<Value> {
    envelopes
        .iter()
        .filter(|e| {
            e.body
                .lines()
                .nth(1)
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
                .is_some_and(|h| h["type"] == "event")
        })
        .map(Envelope::event)
        .collect()
}

// The checker can fail: a clear-text password field, a card number and a text naming a
// clear secret are found, with their paths; our placeholder, alone or named by a text,
// is let through.
#[test]
fn the_checker_finds_a_clear_text_password_and_a_card_number() {
    if skipped() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs_f64();
    let event = json!({
        "event_id": "0123456789abcdef0123456789abcdef",
        "timestamp": now,
        "platform": "native",
        "level": "error",
        "message": { "formatted": "charge of card 4111 1111 1111 1111 declined" },
        "extra": {
            "password": "hunter2-clear",
            "api_key": "**********",
            "note": "the password is hunter2-note",
            "retry": "retried with password=**********",
            "order": "ctl-order",
        },
    });
    let verdicts = referee(&[event]);
    let findings = &verdicts[0].findings;
    let at = |path: &str| {
        findings
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("nothing found at {path}: {findings:#?}"))
    };
    let password = at("extra.password");
    assert_eq!(password["kind"], "scrubbed");
    assert_eq!(password["value"], "hunter2-clear");
    let card = at("logentry.formatted");
    assert_eq!(card["kind"], "scrubbed");
    assert_eq!(card["rule"], "@creditcard:replace");
    assert_eq!(card["removed"], "4111 1111 1111 1111");
    assert_eq!(at("extra.note")["kind"], "scrubbed");
    assert_eq!(at("extra.api_key")["kind"], "allowed");
    assert_eq!(at("extra.retry")["kind"], "allowed");
    assert!(
        findings.iter().all(|f| f["path"] != "extra.order"),
        "{findings:#?}"
    );
    let scrubbed = findings.iter().filter(|f| f["kind"] == "scrubbed").count();
    assert_eq!(scrubbed, 3, "{findings:#?}");
    let report = report(&verdicts, "scrubbed");
    assert!(
        report.contains("extra.password [@password:filter] removes \"hunter2-clear\""),
        "{report}"
    );
}

/// Runs `referee_scenario` with its database at `db`, forwarding to `dsn` when given, in
/// an environment of its own: the secret-looking variables it must not disclose, and a
/// control.
fn scenario(db: &Path, dsn: Option<&str>) -> u64 {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_referee_scenario"));
    cmd.env_clear()
        .env("STACKTRACE_DB", db)
        .env("STACKTRACE_RELEASE", "shop@1.2.3")
        .env("STACKTRACE_SOURCE_CONTEXT", "false")
        .env("STACKTRACE_FORWARD_LEVEL", "debug")
        .env("STACKTRACE_FORWARD_DRAIN_TIMEOUT", "15")
        .env("STACKTRACE_FORWARD_CONNECT_TIMEOUT", "1")
        .env("MY_SERVICE_PWD", "sec-env-service-pwd")
        .env("APP_CREDENTIALS", "sec-env-app-credentials")
        .env(
            "SENTRY_DSN",
            "https://sec0env0sentry0dsn0key@o1.ingest.example.com/42",
        )
        .env(
            "CONFIG_JSON",
            r#"{"password":"sec-env-json-pass","region":"ctl-env-json-region"}"#,
        )
        .env("APP_REGION", "ctl-env-region");
    if let Some(dsn) = dsn {
        cmd.env("STACKTRACE_DSN", dsn);
    }
    let run = run_with_limit(cmd, Duration::from_secs(90));
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(!run.stdout.contains("install error"), "{run:#?}");
    assert!(run.stdout.contains("exited"), "{run:#?}");
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("stored ")?.parse().ok())
        .unwrap_or_else(|| panic!("the scenario says what it stored: {run:#?}"))
}

const SCENARIO_CONTROLS: &[&str] = &[
    "ann-control",
    "ctl-pair-user",
    "ctl-order-1",
    "ctl-tag-shop",
    "ctl-extra-order",
    "ctl-region",
    "ctl-env-region",
    "ctl-tracing-client",
    "https://ctl-crumb.example.com/orders",
];

/// The scenario's events, as the forwarder sends them while the program runs.
#[test]
fn forwarded_events_pass_sentrys_scrubber() {
    if skipped() {
        return;
    }
    let sink = Sink::start();
    let (_dir, db) = db_dir();
    let stored = scenario(&db, Some(&sink.dsn()));
    assert!(stored >= 20, "{stored} events stored");
    let events = events_of(&sink.wait_for(stored as usize));
    assert_eq!(
        events.len() as u64,
        stored,
        "every stored event is forwarded"
    );
    assert_passes("forwarded", &events, SCENARIO_CONTROLS);
}

/// The scenario's events as stored with forwarding off, converted as the forwarder
/// converts them: a backfill of the database to the recording sink.
#[test]
fn stored_events_pass_sentrys_scrubber() {
    if skipped() {
        return;
    }
    let (_dir, db) = db_dir();
    let stored = scenario(&db, None);
    let sink = Sink::start();
    let store = Store::open(&db).expect("open the scenario's database");
    let config = ForwardConfig::new(&sink.dsn())
        .expect("the sink's DSN")
        .min_level(Level::Debug)
        .connect_timeout(Duration::from_secs(1));
    let ids = backfill_candidates(&store, &config, 0).expect("the stored events");
    assert_eq!(
        ids.len() as u64,
        stored,
        "every stored event is a candidate"
    );
    let counts = backfill(&store, &config, &ids, |_, _| {}).expect("backfill to the sink");
    assert_eq!(counts.pending, 0, "{counts:?}");
    let events = events_of(&sink.wait_for(ids.len()));
    assert_eq!(events.len(), ids.len());
    assert_passes("stored", &events, SCENARIO_CONTROLS);
}

/// The recording sink of this test program's own install, which forwards the events of
/// its HTTP requests.
fn http_sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(Sink::start)
}

async fn seen(headers: HeaderMap, body: Bytes) -> String {
    stacktrace::set_user("ann-control");
    let tag = headers
        .get("x-tag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("untagged")
        .to_owned();
    stacktrace::capture_message(&format!("referee http {tag}"), Level::Error);
    body.len().to_string()
}

/// Requests with secrets in headers, cookies, the query, form and JSON bodies, through
/// the tower layer; their events as forwarded (this program forwards every event it
/// stores, so these are its stored events too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_pass_sentrys_scrubber() {
    if skipped() {
        return;
    }
    let sink = http_sink();
    install(|| {
        Config::default()
            .capture_env(false)
            .source_context(false)
            .capture_body(true)
            .forward(
                ForwardConfig::new(&sink.dsn())
                    .expect("the sink's DSN")
                    .min_level(Level::Debug)
                    .connect_timeout(Duration::from_secs(1)),
            )
    });
    let app = Router::new()
        .route("/orders/control", get(seen))
        .route("/login", post(seen))
        .layer(StacktraceLayer::new());
    let addr = serve(app).await;
    let c = client();

    let req = Request::get(format!(
        "http://{addr}/orders/control?api_key=sec-q-api-key&client_secret=sec-q-client-secret&page=ctl-q-page"
    ))
    .header("x-tag", "headers")
    .header("authorization", "Bearer sec-h-bearer-token")
    .header(
        "cookie",
        "sessionid=sec-c-session; csrftoken=sec-c-csrf; theme=ctl-c-theme",
    )
    .header("x-api-key", "sec-h-api-key")
    .header("x-auth-token", "sec-h-auth-token")
    .header("referer", "https://deploy:sec-h-referer-pass@ctl-referer.example.com/page")
    .header("x-control", "ctl-h-control")
    .body(empty())
    .expect("request");
    assert!(send(&c, req).await.0.is_success());

    let req = Request::get(format!("http://{addr}/orders/control?page=ctl-q-page"))
        .header("x-tag", "token-scheme")
        .header("authorization", "Token sec-h-token-scheme")
        .header("proxy-authorization", "Basic c2VjLWgtcHJveHk6cGFzcw==")
        .body(empty())
        .expect("request");
    assert!(send(&c, req).await.0.is_success());

    let form = "user=ctl-f-user&password=sec-f-password&client_secret=sec-f-client-secret&card=4111111111111111";
    let req = Request::post(format!("http://{addr}/login"))
        .header("x-tag", "form")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full(form))
        .expect("request");
    assert!(send(&c, req).await.0.is_success());

    let body = json!({
        "user": "ctl-j-user",
        "apiKey": "sec-j-api-key",
        "client_secret": "sec-j-client-secret",
        "access_token": "sec-j-access-token",
        "auth": { "session_id": "sec-j-session-id", "csrf_token": "sec-j-csrf" },
        "card": "4111 1111 1111 1111",
    });
    let req = Request::post(format!("http://{addr}/login"))
        .header("x-tag", "json")
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .expect("request");
    assert!(send(&c, req).await.0.is_success());

    flush();
    let stored = stacktrace::store()
        .expect("a store")
        .query()
        .limit(10_000)
        .all()
        .expect("query")
        .len();
    assert_eq!(stored, 4, "one event a request");
    let events = events_of(&sink.wait_for(stored));
    assert_eq!(events.len(), stored, "every stored event is forwarded");
    assert_passes(
        "http",
        &events,
        &[
            "ann-control",
            "/orders/control",
            "ctl-q-page",
            "ctl-h-control",
            "ctl-f-user",
            "ctl-j-user",
        ],
    );
}
