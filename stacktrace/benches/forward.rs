//! Forwarding's costs, in one run:
//!
//! - the calling thread's cost of capture (`capture_error`, a panic made durable) with
//!   forwarding on against off, in wall time and the thread's CPU time, with the forwarder
//!   sending all the while: forwarding adds nothing to the caller, as nothing is forwarded
//!   from the capture path and the forwarder runs on what the program leaves idle;
//! - the forwarder's cost per event (serialise, gzip, HTTP, and the outbox's marks) against
//!   a local sink that answers 200 at once, as events per second and the process's CPU time
//!   per event, against `sentry`'s own transport (ureq) sending the same event to the same
//!   sink;
//! - a burst: events captured as fast as a program can, each stored, then delivered by the
//!   forwarder's thread to the sink, timed until the last one is marked sent, in wall time
//!   and the process's CPU time, against `sentry` capturing and sending as many to the same
//!   sink; and a backfill (`stacktrace forward`) of all of them, in events per second.
//!
//! The tracker installs once per process, so each capture half runs in a child process of
//! this same benchmark, set up alike, "forwarding off" first; the sink runs in a child
//! process of its own, so that its CPU time is not counted as the sender's.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use stacktrace::forward::{backfill, backfill_candidates, ForwardConfig};
use stacktrace::{Config, Guard, Report};

#[path = "support/clocks.rs"]
mod clocks;

// The process's CPU time for the senders: `sentry` sends on a thread of its own.
use clocks::{captures_and_panics, cpu_now, Clock, ProcessCpu, ThreadCpu};

const MODE_VAR: &str = "STACKTRACE_BENCH_FORWARD";
/// Rounds of "forwarding off" then "forwarding on", unless `STACKTRACE_BENCH_ROUNDS` says.
const ROUNDS: u32 = 2;
/// Events a sender sends per timed iteration: `sentry`'s transport holds 30 at most and
/// drops the rest, so each iteration stays under that and waits for its queue to empty.
const PER_ITERATION: u64 = 25;
/// Events of the burst, unless `STACKTRACE_BENCH_BURST` says.
const BURST: u64 = 5000;

#[derive(Debug)]
struct Inner;

impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused by db.internal:5432")
    }
}

impl std::error::Error for Inner {}

#[derive(Debug)]
struct BenchError(Inner);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("checkout failed for order 4455")
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[inline(never)]
fn fail() {
    panic!("bench panic");
}

// ---------------------------------------------------------------------------------------
// The sink: a child process answering every POST with 200 at once. `GET /count` answers the
// number of POSTs so far, `GET /first` the first envelope's body, un-gzipped.

fn run_sink() {
    // The sink stands for a server on another machine: it runs on what the benchmark's
    // threads leave idle (`SCHED_IDLE`, inherited by its threads), so that it does not
    // take a core from the program whose captures are timed.
    #[cfg(target_os = "linux")]
    // SAFETY: a valid `sched_param` that lives through the call; pid 0 is this thread.
    #[allow(unsafe_code)]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    println!("{}", listener.local_addr().expect("address").port());
    std::io::stdout().flush().ok();
    let posts = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None::<Vec<u8>>));
    for stream in listener.incoming().flatten() {
        let (posts, first) = (Arc::clone(&posts), Arc::clone(&first));
        std::thread::spawn(move || sink_connection(stream, &posts, &first));
    }
}

fn sink_connection(stream: TcpStream, posts: &AtomicU64, first: &Mutex<Option<Vec<u8>>>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (method, path) = {
            let mut parts = line.split_whitespace();
            (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        };
        let (mut length, mut gzip) = (0usize, false);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if h.starts_with("content-encoding:") && h.contains("gzip") {
                gzip = true;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = if method == "POST" {
            posts.fetch_add(1, Ordering::SeqCst);
            let mut kept = first.lock().unwrap();
            if kept.is_none() {
                let mut plain = Vec::new();
                if gzip {
                    let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain);
                } else {
                    plain = body;
                }
                *kept = Some(plain);
            }
            b"{}".to_vec()
        } else if path == "/count" {
            posts.load(Ordering::SeqCst).to_string().into_bytes()
        } else {
            first.lock().unwrap().clone().unwrap_or_default()
        };
        // Head and body in one write: two small writes wait out the client's delayed ACK.
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        out.extend_from_slice(&answer);
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// The sink child process and its port; killed when dropped.
struct SinkProcess {
    child: Child,
    port: u16,
}

impl SinkProcess {
    fn start() -> SinkProcess {
        let mut child = Command::new(std::env::current_exe().expect("this benchmark"))
            .env(MODE_VAR, "sink")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink's port");
        let port = line.trim().parse().expect("a port");
        SinkProcess { child, port }
    }

    fn dsn(&self) -> String {
        format!("http://benchkey01@127.0.0.1:{}/1", self.port)
    }

    fn get(&self, path: &str) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the sink");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: sink\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        body
    }

    fn count(&self) -> u64 {
        String::from_utf8_lossy(&self.get("/count"))
            .parse()
            .unwrap()
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The capture path, forwarding off and on.

fn bench_captures<C: Clock>(c: &mut Criterion<C>, guard: &Guard, label: &str) {
    // The writer's work (storing, the outbox mark) is left out of the timing: each batch
    // is flushed untimed, so every capture is a real enqueue. The forwarder sends all the
    // while, as in a program, at its lower priority: it takes the second core from the
    // writer only when the writer leaves it idle. Waiting for it to empty the outbox
    // between batches would make the untimed part of a "forwarding on" iteration far
    // longer, and criterion would then plan that half with fewer, smaller batches than
    // "forwarding off": the two halves would no longer run alike.
    let flush = || {
        guard.flush();
    };
    // A panic is journaled durably on the panicking thread before the hook returns.
    captures_and_panics(
        c,
        label,
        || {
            black_box(stacktrace::capture_error(&BenchError(Inner)));
        },
        || {
            black_box(std::panic::catch_unwind(fail).is_err());
        },
        flush,
    );
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn capture_half(on: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = on.then(SinkProcess::start);
    let mut config = Config::default()
        .db_path(dir.path().join("bench.db"))
        .queue_capacity(1 << 20)
        .capture_env(false);
    if let Some(s) = &sink {
        config = config.forward(ForwardConfig::new(&s.dsn()).expect("a DSN"));
    }
    let guard = stacktrace::install_with(config);
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let label = if on {
        "forwarding on"
    } else {
        "forwarding off"
    };
    let mut wall = criterion().configure_from_args();
    let mut cpu = criterion()
        .with_measurement(ThreadCpu)
        .configure_from_args();
    bench_captures(&mut wall, &guard, label);
    bench_captures(&mut cpu, &guard, label);
    wall.final_summary();
    cpu.final_summary();
    if let Some(s) = &sink {
        drop(guard);
        println!("the sink took {} envelopes", s.count());
    }
}

// ---------------------------------------------------------------------------------------
// The sender's cost per event: ours against `sentry`'s transport.

fn bench_senders<M: Measurement>(
    c: &mut Criterion<M>,
    clock: &str,
    ours: &mut dyn FnMut(),
    theirs: &mut dyn FnMut(),
) {
    let mut group = c.benchmark_group(format!("forward {PER_ITERATION} events, {clock}"));
    group.throughput(Throughput::Elements(PER_ITERATION));
    group.bench_function("stacktrace forwarder (gzip)", |b| b.iter(&mut *ours));
    group.bench_function("sentry transport (ureq)", |b| b.iter(&mut *theirs));
    group.finish();
}

fn senders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SinkProcess::start();
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(dir.path().join("bench.db"))
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    for i in 0..PER_ITERATION {
        Report::error(&BenchError(Inner))
            .tag("shop", "eu-1")
            .user("user-42")
            .extra("order", i.to_string())
            .capture();
    }
    assert!(guard.flush());
    let store = stacktrace::store().expect("the running program's store");
    let config = ForwardConfig::new(&sink.dsn()).expect("a DSN");
    let ids = backfill_candidates(store, &config, 0).expect("the events");
    assert_eq!(ids.len() as u64, PER_ITERATION);
    let sent_by = |counts: stacktrace::forward::ForwardCounts| counts.sent;
    let first = backfill(store, &config, &ids, |_, _| {}).expect("a first backfill");
    assert_eq!(sent_by(first), PER_ITERATION);

    // The same event for `sentry`: the one the sink received, as `sentry`'s own type.
    let body = sink.get("/first");
    let (event, client, _sentry) = sentry_sending(&sink, &body);

    let mut ours = || {
        let counts = backfill(store, &config, &ids, |_, _| {}).expect("a backfill");
        black_box(counts);
    };
    let mut sent_by_sentry = 0u64;
    let mut theirs = || {
        for _ in 0..PER_ITERATION {
            black_box(sentry::capture_event(event.clone()));
        }
        assert!(client.flush(Some(Duration::from_secs(30))));
        sent_by_sentry += PER_ITERATION;
    };
    let before = sink.count();
    let mut wall = criterion().configure_from_args();
    bench_senders(&mut wall, "wall time", &mut ours, &mut theirs);
    let mut cpu = criterion()
        .with_measurement(ProcessCpu)
        .configure_from_args();
    bench_senders(&mut cpu, "process CPU time", &mut ours, &mut theirs);
    wall.final_summary();
    cpu.final_summary();
    // Every event sentry was given reached the sink: none was dropped from its queue.
    let took = sink.count() - before;
    println!(
        "the sink took {took} envelopes; sentry's transport was given {sent_by_sentry}, \
         our forwarder the rest"
    );
    assert!(took >= sent_by_sentry);
}

// ---------------------------------------------------------------------------------------
// A burst, end to end: captured, stored, delivered by the forwarder's thread.

/// Wall and process CPU time since `start`.
struct Span {
    wall: std::time::Instant,
    cpu: Duration,
}

impl Span {
    fn start() -> Span {
        Span {
            wall: std::time::Instant::now(),
            cpu: cpu_now(libc::CLOCK_PROCESS_CPUTIME_ID),
        }
    }

    /// Says the span's figures for `n` events.
    fn say(&self, what: &str, n: u64) -> f64 {
        let wall = self.wall.elapsed();
        let cpu = cpu_now(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(self.cpu);
        let per_second = n as f64 / wall.as_secs_f64();
        println!(
            "{what}: {n} events in {:.1} ms wall ({per_second:.0} events/s), {:.1} µs of \
             process CPU per event",
            wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / n as f64,
        );
        per_second
    }
}

fn burst_size() -> u64 {
    std::env::var("STACKTRACE_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BURST)
}

/// Waits until `done` says so, looking every millisecond, at most a minute.
fn wait_until(mut done: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < end,
            "the burst was not delivered"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn burst() {
    let n = burst_size();
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SinkProcess::start();
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false)
            .forward(ForwardConfig::new(&sink.dsn()).expect("a DSN")),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let store = stacktrace::store().expect("the running program's store");
    let span = Span::start();
    for i in 0..n {
        Report::error(&BenchError(Inner))
            .tag("shop", "eu-1")
            .user("user-42")
            .extra("order", i.to_string())
            .capture();
    }
    // The sink's count first (the marks come a moment after each answer), then the marks.
    wait_until(|| sink.count() >= n);
    wait_until(|| store.forward_counts().expect("the counts").sent >= n);
    span.say("burst, stacktrace (captured, stored, forwarded)", n);
    assert_eq!(store.unsent_count(), 0);

    // The same number of the same event through `sentry`, whose queue holds 30: given 25
    // at a time, each time waited out.
    let body = sink.get("/first");
    println!("one envelope: {} bytes before gzip", body.len());
    let (event, client, _sentry) = sentry_sending(&sink, &body);
    let before = sink.count();
    let span = Span::start();
    let mut given = 0;
    while given < n {
        let chunk = PER_ITERATION.min(n - given);
        for _ in 0..chunk {
            black_box(sentry::capture_event(event.clone()));
        }
        assert!(client.flush(Some(Duration::from_secs(30))));
        given += chunk;
    }
    span.say("burst, sentry transport (ureq)", n);
    assert_eq!(sink.count() - before, n, "sentry dropped events");
}

/// `stacktrace forward`: a whole database sent again, in events per second.
fn backfill_all() {
    let n = burst_size();
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SinkProcess::start();
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false),
    );
    for i in 0..n {
        Report::error(&BenchError(Inner))
            .tag("shop", "eu-1")
            .user("user-42")
            .extra("order", i.to_string())
            .capture();
    }
    assert!(guard.flush());
    let store = stacktrace::store().expect("the running program's store");
    let config = ForwardConfig::new(&sink.dsn()).expect("a DSN");
    let span = Span::start();
    let ids = backfill_candidates(store, &config, 0).expect("the events");
    let counts = backfill(store, &config, &ids, |_, _| {}).expect("a backfill");
    span.say("backfill (stacktrace forward)", n);
    assert_eq!(counts.sent, n);
    assert_eq!(sink.count(), n);
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    match std::env::var(MODE_VAR).as_deref() {
        Ok("sink") => return run_sink(),
        Ok("off") => return capture_half(false),
        Ok("on") => return capture_half(true),
        Ok("senders") => return senders(),
        Ok("burst") => return burst(),
        Ok("backfill") => return backfill_all(),
        _ => {}
    }
    // Each part in fresh child processes set up alike; the capture halves alternate for
    // `rounds` rounds, so a drift of the machine shows as a change between rounds of one
    // half, next to the difference between halves.
    let run = |mode: &str| {
        let status = Command::new(std::env::current_exe().expect("this benchmark"))
            .args(std::env::args_os().skip(1))
            .env(MODE_VAR, mode)
            .status()
            .expect("a part of the benchmark");
        assert!(status.success(), "the {mode} part failed");
    };
    let rounds = std::env::var("STACKTRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 1..=rounds {
        for mode in ["off", "on"] {
            println!("round {round} of {rounds}, forwarding {mode}");
            run(mode);
        }
    }
    println!("senders: our forwarder against sentry's transport");
    run("senders");
    println!("a burst delivered end to end, and a backfill of a database");
    run("burst");
    run("backfill");
}

/// `sentry`'s client sending to `sink`, with our event as it reached the sink (its `body`)
/// read by `sentry`'s own types: the same event for both sides of a comparison. The guard
/// keeps the client for as long as it is held.
fn sentry_sending(
    sink: &SinkProcess,
    body: &[u8],
) -> (
    sentry::protocol::Event<'static>,
    std::sync::Arc<sentry::Client>,
    sentry::ClientInitGuard,
) {
    let item = body.split(|b| *b == b'\n').nth(2).expect("an event item");
    let event = serde_json::from_slice(item).expect("our event read by sentry's types");
    let guard = sentry::init((
        sink.dsn(),
        sentry::ClientOptions {
            default_integrations: false,
            ..Default::default()
        },
    ));
    let client = sentry::Hub::current().client().expect("a sentry client");
    (event, client, guard)
}
