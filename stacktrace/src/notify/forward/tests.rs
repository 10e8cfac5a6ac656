//! Delivery against a small fault-injecting HTTP server: each answer form, each failure.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::ForwardConfig;
use super::event::Additions;
use super::forwarder::{Backoff, Delivery, Step};
use super::send::Sender;
use crate::model::event::{CrashEvent, EventId, Level};
use crate::store::{OutboxMarks, Store};

/// Headers of an answer.
type Headers = Vec<(&'static str, String)>;

/// What the server does with one request.
#[derive(Clone, Debug)]
pub(super) enum Act {
    Answer(u16, Headers, &'static str),
    /// Reads the request, then answers nothing for this long.
    Stall(Duration),
    /// Closes the connection without an answer.
    Reset,
    /// Sends the status line and headers, then the body one byte per `Duration`.
    SlowBody(Duration),
}

/// A request as received: its headers (lower-case names) and its body, un-gzipped.
#[derive(Clone, Debug)]
pub(super) struct Received {
    head: String,
    body: Vec<u8>,
}

#[derive(Clone)]
pub(super) struct FaultServer {
    pub(super) port: u16,
    acts: Arc<Mutex<VecDeque<Act>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FaultServer {
    pub(super) fn start(acts: Vec<Act>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = FaultServer {
            port: listener.local_addr().unwrap().port(),
            acts: Arc::new(Mutex::new(acts.into())),
            received: Arc::default(),
        };
        let s = server.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || s.serve(conn));
            }
        });
        server
    }

    fn serve(&self, mut conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut gz = vec![0; len];
        if reader.read_exact(&mut gz).is_err() {
            return;
        }
        let mut body = Vec::new();
        let _ = flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut body);
        self.received.lock().unwrap().push(Received { head, body });
        let act = self
            .acts
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Act::Answer(200, vec![], "{}"));
        match act {
            Act::Answer(status, headers, body) => {
                let mut text = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    text.push_str(&format!("{k}: {v}\r\n"));
                }
                text.push_str("\r\n");
                text.push_str(body);
                let _ = conn.write_all(text.as_bytes());
            }
            Act::Stall(d) => std::thread::sleep(d),
            Act::Reset => drop(conn),
            Act::SlowBody(d) => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n");
                for _ in 0..20 {
                    std::thread::sleep(d);
                    if conn.write_all(b"x").is_err() {
                        return;
                    }
                }
            }
        }
    }

    pub(super) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    sender: Sender,
    config: ForwardConfig,
    server: FaultServer,
    additions: Additions,
}

/// A database in `dir` that marks its error events unsent.
pub(super) fn outbox_in(dir: &tempfile::TempDir) -> Store {
    Store::open_marking(
        &dir.path().join("db"),
        crate::store::DEFAULT_CACHE_BYTES,
        Some(OutboxMarks {
            min_level: Level::Error,
        }),
    )
    .unwrap()
}

/// The settings of a forwarder to `server`.
pub(super) fn config_for(server: &FaultServer) -> ForwardConfig {
    ForwardConfig::new(&format!("http://publickey01@127.0.0.1:{}/7", server.port)).unwrap()
}

fn bench(acts: Vec<Act>) -> Bench {
    let server = FaultServer::start(acts);
    let dir = tempfile::tempdir().unwrap();
    let store = outbox_in(&dir);
    let config = config_for(&server)
        .timeout(Duration::from_millis(600))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(400));
    let sender = Sender::new(&config).unwrap();
    Bench {
        _dir: dir,
        store,
        sender,
        config,
        server,
        additions: Additions::default(),
    }
}

impl Bench {
    /// Stores one event, then sends the oldest unsent one once.
    fn store_and_forward(&self, event: CrashEvent) -> Step {
        self.store.insert(&event).unwrap();
        self.forward_oldest()
    }

    fn forward_oldest(&self) -> Step {
        let (id, unsent) = self.store.unsent(None, 1).unwrap().remove(0);
        self.delivery()
            .forward(id, &unsent, &mut Backoff::new(&self.config))
    }

    /// Stores one event and sends it once as though it first failed long ago, past the
    /// give-up age of an hour: its id and what the forwarder does next.
    fn forward_failing_since_long_ago(&self) -> (EventId, Step) {
        self.store.insert(&event(1)).unwrap();
        let (id, mut unsent) = self.store.unsent(None, 1).unwrap().remove(0);
        unsent.first_failure_us = Some(1);
        let step = self
            .delivery()
            .forward(id, &unsent, &mut Backoff::new(&self.config));
        (id, step)
    }

    /// A delivery from this bench's store through its sender, giving up after an hour.
    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            store: &self.store,
            sender: &self.sender,
            additions: &self.additions,
            give_up_after: Duration::from_secs(3600),
        }
    }
}

pub(super) fn event(n: u128) -> CrashEvent {
    let mut e = CrashEvent::sample(n, "db down");
    e.error_type = "std::io::Error".into();
    e
}

fn pause_of(step: Step) -> Duration {
    match step {
        Step::Pause(d) => d,
        Step::Next => panic!("expected a pause, got Next"),
    }
}

#[test]
fn a_2xx_marks_the_event_sent_and_the_envelope_has_no_dsn() {
    let b = bench(vec![Act::Answer(
        200,
        vec![(
            "X-Sentry-Rate-Limits",
            "86400:transaction;span:organization".into(),
        )],
        "{}",
    )]);
    assert_eq!(b.store_and_forward(event(1)), Step::Next);
    let counts = b.store.forward_counts().unwrap();
    assert_eq!((counts.pending, counts.sent), (0, 1));
    let got = b.server.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .head
            .contains("x-sentry-auth: sentry sentry_version=7"),
        "{}",
        got[0].head
    );
    assert!(got[0].head.contains("sentry_key=publickey01"));
    assert!(got[0].head.contains("content-encoding: gzip"));
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["event_id"], format!("{:032x}", 1));
    assert!(header.get("dsn").is_none(), "{header}");
    let item: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(item["type"], "event");
    let body = lines.next().unwrap();
    assert_eq!(item["length"].as_u64().unwrap() as usize, body.len());
    assert!(!text.contains("publickey01"));
}

// Regression: a 429 must be waited out for as long as the server says, in each of its
// forms, and the event kept, never dropped or counted as failed.
#[test]
fn a_429_is_waited_out_in_each_header_form() {
    // An HTTP date 40 s ahead (rounded down to the second).
    let date = {
        let secs = crate::model::time::now_us() / 1_000_000 + 40;
        let at = jiff::Timestamp::from_second(i64::try_from(secs).unwrap()).unwrap();
        jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&at)
            .unwrap()
    };
    let forms: Vec<(Headers, Duration, Duration)> = vec![
        (
            vec![("X-Sentry-Rate-Limits", "60::key".into())],
            Duration::from_secs(60),
            Duration::from_secs(60),
        ),
        (
            vec![
                (
                    "X-Sentry-Rate-Limits",
                    "5:error:project, 90:transaction:key".into(),
                ),
                ("Retry-After", "30".into()),
            ],
            Duration::from_secs(5),
            Duration::from_secs(5),
        ),
        (
            vec![("Retry-After", "17".into())],
            Duration::from_secs(17),
            Duration::from_secs(17),
        ),
        (
            vec![("Retry-After", date)],
            Duration::from_secs(38),
            Duration::from_secs(40),
        ),
        (vec![], Duration::from_secs(60), Duration::from_secs(60)),
    ];
    for (headers, low, high) in forms {
        let b = bench(vec![Act::Answer(429, headers.clone(), "quota")]);
        let wait = pause_of(b.store_and_forward(event(1)));
        assert!(wait >= low && wait <= high, "{headers:?}: waited {wait:?}");
        let counts = b.store.forward_counts().unwrap();
        assert_eq!(
            (
                counts.pending,
                counts.failed_total(),
                counts.retried,
                counts.rate_limited
            ),
            (1, 0, 0, 1)
        );
        // The next try is taken: the event goes out, once.
        assert_eq!(b.forward_oldest(), Step::Next);
        assert_eq!(b.store.forward_counts().unwrap().sent, 1);
    }
}

// Regression: network errors, timeouts and 5xx must be retried after a growing,
// jittered back-off, the event kept and the try counted, until the server takes it; an
// answer whose body dribbles holds the forwarder no longer than the timeout, and its
// status decides.
/// What a call may take when the 600 ms timeout cuts a stall of two minutes (or a body of two
/// minutes): a bound that only a timeout that does not work can pass.
const HELD: Duration = Duration::from_secs(30);

#[test]
fn a_500_a_timeout_a_reset_and_a_slow_body_are_retried() {
    let b = bench(vec![
        Act::Answer(500, vec![], "oops"),
        Act::Answer(503, vec![], "busy"),
        // Far longer than the 600 ms timeout, so that only a timeout that works ends them
        // within the generous bound below, however loaded the machine.
        Act::Stall(Duration::from_secs(120)),
        Act::Reset,
        Act::SlowBody(Duration::from_secs(6)),
    ]);
    b.store.insert(&event(1)).unwrap();
    let mut backoff = Backoff::new(&b.config);
    let delivery = Delivery {
        store: &b.store,
        sender: &b.sender,
        additions: &Additions::default(),
        give_up_after: Duration::from_secs(3600),
    };
    let mut waits = Vec::new();
    for _ in 0..4 {
        let (id, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
        let started = Instant::now();
        waits.push(pause_of(delivery.forward(id, &unsent, &mut backoff)));
        assert!(started.elapsed() < HELD, "the timeout held");
    }
    let (_, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
    assert_eq!(unsent.attempts, 4);
    assert!(unsent.first_failure_us.is_some());
    // Doubling from 100 ms, capped at 400 ms, each drawn in [half, all].
    for (w, full) in waits.iter().zip([100u64, 200, 400, 400]) {
        let full = Duration::from_millis(full);
        assert!(*w >= full / 2 && *w <= full, "{waits:?}");
    }
    let (id, unsent) = b.store.unsent(None, 1).unwrap().remove(0);
    let started = Instant::now();
    assert_eq!(delivery.forward(id, &unsent, &mut backoff), Step::Next);
    assert!(started.elapsed() < HELD, "the timeout held");
    let counts = b.store.forward_counts().unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.sent,
            counts.retried,
            counts.failed_total()
        ),
        (0, 1, 4, 0)
    );
    assert_eq!(b.server.received().len(), 5);
}

// Regression: a permanent refusal (400, 413) must end the event with the server's answer
// recorded and counted, not retry it forever; and a failing event is given up at its age.
#[test]
fn a_400_or_413_fails_the_event_with_the_answer() {
    let b = bench(vec![
        Act::Answer(400, vec![], "bad envelope header"),
        Act::Answer(413, vec![], "MAX_EVENT_SIZE exceeded"),
    ]);
    assert_eq!(b.store_and_forward(event(1)), Step::Next);
    assert_eq!(b.store_and_forward(event(2)), Step::Next);
    let counts = b.store.forward_counts().unwrap();
    assert_eq!((counts.pending, counts.sent), (0, 0));
    assert_eq!(
        (counts.failed["status_400"], counts.failed["status_413"]),
        (1, 1)
    );
    let r = b.store.forward_refusal(EventId(2)).unwrap().unwrap();
    assert_eq!(r.answer, "413 MAX_EVENT_SIZE exceeded");

    let b = bench(vec![Act::Answer(502, vec![], "gateway")]);
    let (id, step) = b.forward_failing_since_long_ago();
    assert_eq!(step, Step::Next);
    assert_eq!(b.store.forward_counts().unwrap().failed["gave_up"], 1);
    assert_eq!(
        b.store.forward_refusal(id).unwrap().unwrap().answer,
        "502 gateway"
    );
}

// Regression: an event over the servers' 1 MiB limit must be trimmed to fit before it
// is sent, saying what was cut; the message stays.
#[test]
fn an_event_over_one_mib_is_trimmed_to_fit() {
    let b = bench(vec![]);
    let mut e = event(1);
    e.extra
        .insert("blob".into(), serde_json::json!("x".repeat(600_000)));
    for i in 0..300 {
        e.breadcrumbs
            .push(crate::model::breadcrumb::Breadcrumb::new(
                Level::Info,
                "db",
                format!("{i} {}", "y".repeat(4000)),
            ));
    }
    for i in 0..2000 {
        e.frames.push(crate::model::event::Frame {
            function: format!("app::f{i}::{}", "z".repeat(200)),
            file: Some("src/lib.rs".into()),
            line: Some(i),
            in_app: true,
            source: None,
        });
    }
    assert_eq!(b.store_and_forward(e), Step::Next);
    let got = b.server.received();
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    let body = text.lines().nth(2).unwrap();
    assert!(
        body.len() <= super::envelope::MAX_EVENT_BYTES,
        "{}",
        body.len()
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["exception"]["values"][0]["value"], "db down");
    assert!(
        v["extra"]["stacktrace_trimmed"].as_array().is_some(),
        "{}",
        v["extra"]
    );
}

/// An event with every part filled.
fn full_event() -> CrashEvent {
    let mut e = event(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    e.level = Level::Fatal;
    e.logger = "panic".into();
    e.error_type = "panic".into();
    e.message = "index out of bounds".into();
    e.sources = vec!["outer cause".into(), "root cause".into()];
    e.fingerprint = "f".repeat(64);
    e.user = "user-7".into();
    e.tags.insert("shop".into(), "eu-1".into());
    e.extra
        .insert("order".into(), serde_json::json!({"id": 12}));
    e.frames = vec![
        crate::model::event::Frame {
            function: "app::inner".into(),
            file: Some("src/inner.rs".into()),
            line: Some(3),
            in_app: true,
            source: Some(crate::model::source::SourceContext {
                pre: vec!["fn inner() {".into()],
                line: "    let x = v[9];".into(),
                post: vec!["}".into()],
            }),
        },
        crate::model::event::Frame {
            function: "std::rt::lang_start".into(),
            file: None,
            line: None,
            in_app: false,
            source: None,
        },
    ];
    e.breadcrumbs
        .push(crate::model::breadcrumb::Breadcrumb::new(
            Level::Info,
            "db",
            "select 1",
        ));
    e.calls.push(crate::model::event::CapturedCall {
        function: "app::checkout".into(),
        file: "src/checkout.rs".into(),
        line: 30,
        args: vec![crate::model::event::Argument {
            name: "card".into(),
            value: crate::PLACEHOLDER.into(),
        }],
    });
    e.context.hostname = "web-1".into();
    e.context.program_version = "shop@1.4.2".into();
    e.context.os = "linux".into();
    e.payload = serde_json::json!({"request": {
        "method": "POST", "path": "/checkout", "query": "a=1",
        "headers": {"host": "shop.example.com", "content-type": "application/json"},
        "client_addr": "10.0.0.1",
    }});
    e
}

// Every envelope we make must parse with Sentry's own protocol types (sentry-types, v7)
// and keep our fields. Regression: a request's path was sent as `url`, which Sentry's
// types refuse (not an absolute URL).
#[test]
fn the_envelope_parses_with_sentry_types_and_keeps_our_fields() {
    use sentry_types::protocol::v7;
    let e = full_event();
    let additions = Additions {
        environment: Some("production".into()),
    };
    let envelope = super::envelope::envelope_of(
        super::event::event_json(&e, &additions),
        "2026-01-01T00:00:00.000000Z",
    );
    let text = String::from_utf8(envelope).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(header.get("dsn").is_none());
    let parsed: v7::Event<'_> = serde_json::from_str(lines[2]).expect("sentry-types parses it");
    assert_eq!(parsed.event_id.simple().to_string(), e.id.to_string());
    assert_eq!(header["event_id"], e.id.to_string());
    assert_eq!(parsed.level, v7::Level::Fatal);
    assert_eq!(parsed.platform, "native");
    assert_eq!(parsed.fingerprint.as_ref(), [e.fingerprint.as_str()]);
    assert_eq!(parsed.release.as_deref(), Some("shop@1.4.2"));
    assert_eq!(parsed.environment.as_deref(), Some("production"));
    assert_eq!(parsed.server_name.as_deref(), Some("web-1"));
    assert_eq!(
        parsed.user.as_ref().and_then(|u| u.id.as_deref()),
        Some("user-7")
    );
    assert_eq!(parsed.tags["shop"], "eu-1");
    assert_eq!(parsed.extra["order"]["id"], 12);
    assert_eq!(parsed.sdk.as_ref().unwrap().name, "stacktrace");
    assert_eq!(
        parsed.breadcrumbs.values[0].message.as_deref(),
        Some("select 1")
    );
    let request = parsed.request.as_ref().expect("a request");
    assert_eq!(
        request.url.as_ref().map(|u| u.as_str()),
        Some("http://shop.example.com/checkout")
    );
    assert_eq!(request.method.as_deref(), Some("POST"));
    assert!(serde_json::from_str::<v7::Request>(r#"{"url": "/checkout"}"#).is_err());
    // The chain in Sentry's order: the innermost cause first, the panic last, with its
    // mechanism and its frames oldest first.
    let chain = &parsed.exception.values;
    let values: Vec<&str> = chain
        .iter()
        .map(|x| x.value.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(values, ["root cause", "outer cause", "index out of bounds"]);
    let top = chain.last().unwrap();
    let mechanism = top.mechanism.as_ref().unwrap();
    assert_eq!(
        (mechanism.ty.as_str(), mechanism.handled),
        ("panic", Some(false))
    );
    let frames = &top.stacktrace.as_ref().unwrap().frames;
    let functions: Vec<&str> = frames
        .iter()
        .map(|f| f.function.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(functions, ["std::rt::lang_start", "app::inner"]);
    assert_eq!(frames[1].in_app, Some(true));
    assert_eq!(frames[1].lineno, Some(3));
    // The source lines as Sentry's context lines; none for a frame without them.
    assert_eq!(frames[1].pre_context, ["fn inner() {"]);
    assert_eq!(frames[1].context_line.as_deref(), Some("    let x = v[9];"));
    assert_eq!(frames[1].post_context, ["}"]);
    assert!(frames[0].context_line.is_none() && frames[0].pre_context.is_empty());
    assert!(parsed.contexts.contains_key("os"));
    assert!(lines[2].contains("app::checkout") && lines[2].contains(crate::PLACEHOLDER));
}

#[path = "refusal_tests.rs"]
mod refusal_tests;
