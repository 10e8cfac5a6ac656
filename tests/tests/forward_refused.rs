//! Forwarding to a server that refuses us for a while (a rotated key, a load balancer in
//! maintenance answering 403), then takes events again: nothing is given up, everything
//! arrives once it recovers, and a per-event refusal (400) fails that event only.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stacktrace::forward::ForwardConfig;
use stacktrace::{Config, Level, Store};

/// Set in the child run of the test: it is the program that forwards.
const CHILD: &str = "FORWARD_REFUSED_CHILD";
/// The event the sink refuses on its own (400).
const POISON: &str = "refused-scenario poison";
/// How many answers the sink gives 403 before it takes events again.
const REFUSALS: usize = 3;

/// A sink on 127.0.0.1 that answers the first `REFUSALS` envelopes with a 403, then a
/// 400 to the one holding `POISON`, and a 200 to the others, keeping the bodies it took.
#[derive(Clone)]
struct RefusingSink {
    port: u16,
    answered: Arc<Mutex<usize>>,
    taken: Arc<Mutex<Vec<String>>>,
}

impl RefusingSink {
    fn start() -> RefusingSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let sink = RefusingSink {
            port: listener.local_addr().expect("address").port(),
            answered: Arc::default(),
            taken: Arc::default(),
        };
        let serving = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = serving.clone();
                std::thread::spawn(move || s.serve(stream));
            }
        });
        sink
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut gz = vec![0; length];
        if reader.read_exact(&mut gz).is_err() {
            return;
        }
        let mut body = String::new();
        let _ = flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut body);
        let status = {
            let mut answered = self.answered.lock().unwrap();
            *answered += 1;
            if *answered <= REFUSALS {
                403
            } else if body.contains(POISON) {
                400
            } else {
                self.taken.lock().unwrap().push(body);
                200
            }
        };
        let text =
            format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
        let _ = writer.write_all(text.as_bytes());
    }

    fn taken(&self) -> Vec<String> {
        self.taken.lock().unwrap().clone()
    }
}

/// The child: forwards three events and the poisoned one to the DSN it is given, with
/// short back-offs, and waits until its outbox is empty.
fn forward_and_wait(db: &str, dsn: &str) {
    let forward = ForwardConfig::new(dsn)
        .expect("a DSN")
        .refusal_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(400));
    let guard = stacktrace::install_with(Config::default().db_path(db).forward(forward));
    for e in guard.errors() {
        println!("install error: {e}");
    }
    for i in 0..3 {
        stacktrace::capture_message(&format!("refused-scenario {i}"), Level::Error);
    }
    stacktrace::capture_message(POISON, Level::Error);
    assert!(guard.flush());
    let end = Instant::now() + Duration::from_secs(30);
    let store = stacktrace::store().expect("the program holds its database");
    while store.unsent_count() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Regression: a 403 from the server (or a proxy before it) marked each event it answered
// as failed, so a server refusing us for a minute gave up the whole outbox within
// seconds. The forwarder pauses instead, keeps the events and sends them all once the
// server takes them again; a 400 fails its own event only; stderr says the refusal once.
#[test]
fn a_server_refusing_us_for_a_while_loses_no_event() {
    if let (Ok(db), Ok(dsn)) = (std::env::var(CHILD), std::env::var("REFUSED_DSN")) {
        forward_and_wait(&db, &dsn);
        return;
    }
    let sink = RefusingSink::start();
    let (_dir, db) = support::scenario::db_dir();
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        "a_server_refusing_us_for_a_while_loses_no_event",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, &db)
    .env(
        "REFUSED_DSN",
        format!("http://sinkkey01@127.0.0.1:{}/7", sink.port),
    )
    .env_remove("STACKTRACE_DSN")
    .env_remove("STACKTRACE_DB");
    let run = support::scenario::run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains("install error"), "{run:?}");

    let taken = sink.taken();
    for i in 0..3 {
        let message = format!("refused-scenario {i}\"");
        assert!(taken.iter().any(|b| b.contains(&message)), "{i}: {taken:?}");
    }
    assert!(!taken.iter().any(|b| b.contains(POISON)), "{taken:?}");

    let counts = Store::open(&db).expect("open").forward_counts().unwrap();
    assert_eq!(counts.pending, 0, "{counts:?}");
    assert_eq!(counts.sent, 3, "{counts:?}");
    assert_eq!(counts.refused, REFUSALS as u64, "{counts:?}");
    // Only the poisoned event failed, for its own 400 (the control that a failure is
    // counted at all).
    assert_eq!(counts.failed.get("status_400"), Some(&1), "{counts:?}");
    assert_eq!(counts.failed_total(), 1, "{counts:?}");

    let said = run.stderr.matches("refuses our events").count();
    assert_eq!(said, 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
}
